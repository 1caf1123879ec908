"""``python -m fer_utils.viz.dashboard.voila_main ARGS``: Voila as ``fer dashboard`` runs it, without the
warnings that ask nothing of the user: "Notebook 04_results.ipynb is not trusted" (the committed notebook
has no outputs to trust) and tornado's websocket ping timeout notice (jupyter_server's default timeout,
3 pings, is longer than tornado allows: set to one ping here). The kernel's "TCP without encryption"
warning is kept off by the kernelspec in ``jupyter/kernels`` (log level ERROR, as papermill's kernels)."""

from __future__ import annotations

import logging

#: jupyter_server's websocket ping interval (ms); tornado refuses a longer timeout and says so.
WS_PING_MS = 30_000
QUIET_MESSAGES = ("is not trusted",)


class _Unactionable(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in str(record.msg) for text in QUIET_MESSAGES)


def main() -> None:
    from voila.app import Voila

    logging.getLogger(Voila.__name__).addFilter(_Unactionable())
    Voila.launch_instance(tornado_settings={"ws_ping_timeout": WS_PING_MS})


if __name__ == "__main__":
    main()
