"""``fer dashboard RUNS_DIR``: serve notebook 04 with Voila on a loopback address.

The runs folder reaches the notebook through ``$FER_RUNS_DIR`` (and ``$FER_INITIAL_RUN``), read when the
notebook's ``runs_dir`` parameter is empty. Kernels are culled once their page is gone (no connection
and idle for ``cull_idle_s``), so memory is bounded by the viewers at a time, not by page loads.

The page loads nothing from the network: it is rendered with :data:`OFFLINE_TEMPLATE`, Voila's lab template
without the two Font Awesome stylesheets it links from cdn.jsdelivr.net (the dashboard draws no icon),
found through ``$JUPYTER_PATH`` (:func:`voila_environment`), as is a ``python3`` kernelspec that keeps the
kernel's "TCP without encryption" warning off the terminal (see :mod:`.voila_main` for the others).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fer_utils.paths import NOTEBOOKS_DIR
from fer_utils.viz.dashboard.runs import INITIAL_RUN_ENV, RUNS_DIR_ENV

DASHBOARD_NOTEBOOK = NOTEBOOKS_DIR / "04_results.ipynb"
#: A Jupyter data folder (package data): ``voila/templates/<OFFLINE_TEMPLATE>``, ``kernels/python3``.
JUPYTER_DATA = Path(__file__).with_name("jupyter")
OFFLINE_TEMPLATE = "fer-offline"
#: Voila's log on the terminal: warnings and errors only; its INFO lines (connection files, static files,
#: "Voilà is running at", each kernel started and culled) ask nothing of the user, and `fer dashboard`
#: prints the address itself.
VOILA_LOG_LEVEL = "WARN"
#: A kernel with no open page is shut down after this many idle seconds …
CULL_IDLE_S = 60
#: … checked this often.
CULL_INTERVAL_S = 15


def culling_options(idle_s: int = CULL_IDLE_S, interval_s: int = CULL_INTERVAL_S) -> list[str]:
    """jupyter_server options that shut down kernels whose page is closed: idle for ``idle_s`` with no
    connection (``cull_connected=False`` keeps every open page's kernel, however idle)."""
    if idle_s <= 0 or interval_s <= 0:
        raise ValueError(f"culling needs positive seconds, got idle {idle_s}, interval {interval_s}")
    return [
        f"--MappingKernelManager.cull_idle_timeout={int(idle_s)}",
        f"--MappingKernelManager.cull_interval={int(interval_s)}",
        "--MappingKernelManager.cull_connected=False",
        "--MappingKernelManager.cull_busy=False",
    ]


def voila_command(
    notebook: Path,
    port: int,
    host: str,
    open_browser: bool,
    cull_idle_s: int = CULL_IDLE_S,
    cull_interval_s: int = CULL_INTERVAL_S,
) -> list[str]:
    """The command line that serves ``notebook`` with Voila (kernels of closed pages culled)."""
    command = [
        sys.executable,
        "-m",
        "fer_utils.viz.dashboard.voila_main",  # Voila without its unactionable warnings
        str(notebook),
        f"--port={port}",
        f"--Voila.ip={host}",
        "--Voila.port_retries=0",  # fail clearly rather than serve on another port than the one printed
        f"--template={OFFLINE_TEMPLATE}",  # found through voila_environment()'s JUPYTER_PATH
        f"--Voila.log_level={VOILA_LOG_LEVEL}",
        *culling_options(cull_idle_s, cull_interval_s),
    ]
    if not open_browser:
        command.append("--no-browser")
    return command


def voila_environment(environment: dict | None = None) -> dict:
    """The environment Voila runs in: ``environment`` (default: this process's) with :data:`JUPYTER_DATA`
    first on ``$JUPYTER_PATH``, where Voila finds :data:`OFFLINE_TEMPLATE`."""
    environment = dict(os.environ if environment is None else environment)
    paths = [str(JUPYTER_DATA), *filter(None, environment.get("JUPYTER_PATH", "").split(os.pathsep))]
    environment["JUPYTER_PATH"] = os.pathsep.join(dict.fromkeys(paths))
    return environment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serve notebooks/04_results.ipynb with Voila on a loopback address; the runs folder "
        f"reaches the notebook through ${RUNS_DIR_ENV}. The kernel of a closed page is shut down "
        "after --cull-idle seconds."
    )
    parser.add_argument("runs_dir", help="folder of run directories (searched at any depth)")
    parser.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)"
    )
    parser.add_argument("--initial-run", help="run to open first (its folder name)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    parser.add_argument(
        "--cull-idle",
        type=int,
        default=CULL_IDLE_S,
        help=f"seconds a closed page's kernel may idle before it is shut down (default {CULL_IDLE_S})",
    )
    parser.set_defaults(func=_cli_dashboard)


def _cli_dashboard(args) -> int:
    runs_dir = Path(args.runs_dir).expanduser().resolve()
    if not runs_dir.is_dir():
        raise ValueError(f"runs folder {runs_dir} does not exist")
    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be between 1 and 65535, got {args.port}")
    if args.cull_idle <= 0:
        raise ValueError(f"--cull-idle must be a positive number of seconds, got {args.cull_idle}")
    if not DASHBOARD_NOTEBOOK.exists():
        raise ValueError(f"dashboard notebook {DASHBOARD_NOTEBOOK} is missing")
    environment = voila_environment({**os.environ, RUNS_DIR_ENV: str(runs_dir)})
    if args.initial_run:
        environment[INITIAL_RUN_ENV] = args.initial_run
    command = voila_command(
        DASHBOARD_NOTEBOOK,
        args.port,
        args.host,
        not args.no_browser,
        cull_idle_s=args.cull_idle,
        cull_interval_s=min(CULL_INTERVAL_S, args.cull_idle),
    )
    print(f"serving {runs_dir} at http://{args.host}:{args.port}/ (Ctrl+C stops)", flush=True)
    os.chdir(NOTEBOOKS_DIR)
    # Voila replaces this process, so a signal that stops `fer dashboard` stops the server and its kernels.
    os.execve(sys.executable, command, environment)
    return 0  # not reached
