"""Executing a notebook by papermill (`notebook_execution.execute_notebook`): what a successful run leaves on
the terminal and in the executed notebook."""

from __future__ import annotations

import signal

import nbformat
import pytest


def small_notebook(path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("greeting = 'hi'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print(greeting)"),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


@pytest.mark.slow  # starts a kernel
def test_a_successful_execution_never_interrupts_its_kernel(tmp_path, monkeypatch, capfd):
    """Issue 31, finding 4: a successful `fer run` printed `[IPKernelApp] ERROR | KeyboardInterrupt caught
    in kernel.` on the terminal and as stderr in notebook 03. jupyter_client sends SIGINT to every kernel it
    shuts down, also to one that ran all its cells; a kernel busy at that moment logs the line."""
    from jupyter_client.manager import AsyncKernelManager

    from fer_utils.notebook_execution import execute_notebook

    signals = []
    send = AsyncKernelManager._async_signal_kernel

    async def recorded(self, signum):
        signals.append(signum)
        await send(self, signum)

    monkeypatch.setattr(AsyncKernelManager, "_async_signal_kernel", recorded)
    output = tmp_path / "out.ipynb"
    execute_notebook(small_notebook(tmp_path / "small.ipynb"), output, {"greeting": "hello"}, tmp_path)
    assert signal.SIGINT not in signals
    executed = nbformat.read(output, as_version=4)
    streams = [output for cell in executed.cells for output in cell.get("outputs", [])]
    assert [stream["text"] for stream in streams] == ["hello\n"]  # no stderr at all
    printed = capfd.readouterr()
    assert "KeyboardInterrupt" not in printed.out + printed.err
