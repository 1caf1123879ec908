"""Executing a notebook by papermill, quietly: the one way ``fer run``, ``fer ablate`` and ``fer report``
start a kernel.

The kernel inherits :data:`~fer_utils.environment.QUIET_TENSORFLOW_ENVIRONMENT` (no TensorFlow C++
lines in the executed notebook), optionally a thread cap, and starts with its own log at ERROR, so the
"Kernel is running over TCP without encryption" warning (a local kernel on 127.0.0.1) stays off the
terminal. ``progress`` shows one line per notebook with the cell it is on, the elapsed time and, while
a cell trains, the kernel's last epoch (:func:`step_engine`).
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import functools
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from fer_utils.environment import QUIET_TENSORFLOW_ENVIRONMENT
from fer_utils.files import format_literal
from fer_utils.progress import DISABLE_VARIABLE, watched_steps

#: Kernel command-line options: the kernel's own log only for errors (see the module docstring).
QUIET_KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
#: Environment names that cap a kernel's TensorFlow / OpenMP threads.
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")


class _KnownParameters(logging.Filter):
    """Drops papermill's "Passed unknown parameter" warnings: the notebooks read every config field from
    their globals (``settings.config_from_args``), so a field missing from a parameters cell is used all
    the same."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Passed unknown parameter")


def _quiet_papermill_log() -> None:
    logger = logging.getLogger("papermill")
    if not any(isinstance(existing, _KnownParameters) for existing in logger.filters):
        logger.addFilter(_KnownParameters())


@contextlib.contextmanager
def kernel_environment(threads: int | None = None):
    """Environment inherited by kernels started inside the block: quiet TensorFlow, no progress bars
    (:mod:`fer_utils.progress`; values already set win) and, with ``threads``, a cap on TensorFlow's and OpenMP's threads so parallel kernels do not
    oversubscribe the cores."""
    quiet = {**QUIET_TENSORFLOW_ENVIRONMENT, DISABLE_VARIABLE: "1"}  # no one watches its progress bars
    values = {name: os.environ.get(name, value) for name, value in quiet.items()}
    if threads:
        values |= {name: str(threads) for name in THREAD_VARIABLES}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def assigned_names(source: str) -> set[str]:
    """The names a cell's code assigns (``x = …``, ``x: int = …``, ``x += …``); none when it does not parse
    (IPython magics)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }


def closest_names(passed: Iterable[str], known: Iterable[str]) -> dict[str, str | None]:
    """Each name of ``passed`` not in ``known`` → the closest known name (None when nothing is close)."""
    known = sorted(set(known))
    return {
        name: next(iter(difflib.get_close_matches(name, known, n=1)), None)
        for name in sorted(set(passed) - set(known))
    }


def unknown_parameters_message(unknown: dict[str, str | None]) -> str:
    """``unknown notebook parameter 'learnig_rate' (did you mean 'learning_rate'?)``, one per name."""
    return "; ".join(
        f"unknown notebook parameter {name!r}" + (f" (did you mean {close!r}?)" if close else "")
        for name, close in unknown.items()
    )


def notebook_names(notebook: str | os.PathLike) -> set[str]:
    """Every name a notebook's code cells assign (its parameters cell's among them)."""
    cells = json.loads(Path(notebook).read_text()).get("cells", [])
    return set().union(
        *(
            assigned_names("".join(cell.get("source", "")))
            for cell in cells
            if cell.get("cell_type") == "code"
        )
    )


def check_parameters(
    notebook: str | os.PathLike, parameters: Iterable[str], accepted: Iterable[str] = ()
) -> None:
    """ValueError naming each parameter that neither the notebook's cells (its file) nor ``accepted`` (the
    config fields it reads from its globals) define, with the closest name. The one check of every
    notebook: made by the host before a kernel starts (:func:`execute_notebook`) and by the notebook's
    first call from inside its kernel (:func:`refuse_unknown_parameters`: papermill by hand, Voila)."""
    unknown = closest_names(parameters, notebook_names(notebook) | set(accepted))
    if unknown:
        raise ValueError(f"{Path(notebook).name}: {unknown_parameters_message(unknown)}")


#: Names IPython puts in a kernel's namespace besides its underscored ones.
KERNEL_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit"})
#: What a parameter holds: papermill injects literals.
PARAMETER_TYPES = (str, int, float, bool, type(None), list, tuple, dict, set)


def namespace_parameters(namespace: dict) -> set[str]:
    """The names of a kernel's namespace that can be parameters: public, not IPython's, holding a literal
    (its parameters cell's and papermill's injected values; never a module, function, class or an object
    a cell built). Independent of how papermill marks the cell it injects."""
    return {
        name
        for name, value in namespace.items()
        if not name.startswith("_") and name not in KERNEL_NAMES and isinstance(value, PARAMETER_TYPES)
    }


def refuse_unknown_parameters(
    namespace: dict, notebook: str | os.PathLike, accepted: Iterable[str] = ()
) -> None:
    """A notebook's first call, with its ``globals()``: :func:`check_parameters` on the parameter-like
    names of the kernel (:func:`namespace_parameters`), so a misspelled ``-p`` is refused in one line
    instead of being ignored."""
    check_parameters(notebook, namespace_parameters(namespace), accepted)


def cell_progress(description: str) -> dict:
    """papermill's ``progress_bar`` options: ``<description>: cell 3/17 [00:12]``, then the kernel's last
    step line (``, paper · epoch 3/15 · val_acc 0.412``, :func:`step_engine`)."""
    # disable False: the TQDM_DISABLE that kernel_environment sets for the kernel is in this process too
    return {
        "desc": description,
        "bar_format": "{desc}: cell {n_fmt}/{total_fmt} [{elapsed}]{postfix}",
        "leave": True,
        "disable": False,
    }


@functools.cache
def finished_kernel_manager() -> type:
    """The kernel manager papermill starts kernels with: jupyter_client's, except that it does not
    interrupt a kernel it is shutting down. jupyter_client sends SIGINT before every shutdown request,
    also to a kernel that has run all its cells; one that is busy at that moment (flushing output, a
    library's own SIGINT handler) logged ``[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.`` on
    the terminal and, for the ablation's kernels, into notebook 03 as stderr, after a successful run."""
    from jupyter_client.manager import AsyncKernelManager  # deferred: the Jupyter stack is heavy

    class FinishedKernelManager(AsyncKernelManager):
        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down:  # the run is over: a shutdown request follows, nothing to interrupt
                return
            await super()._async_interrupt_kernel()

    return FinishedKernelManager


#: The papermill engine of :func:`step_engine`.
STEP_ENGINE = "fer-steps"


@functools.cache
def step_engine() -> str:
    """The name of a papermill engine (registered on the first call) that shows, as the postfix of the cell
    counter, the last line the kernel's training appended to the progress file it names for the kernel
    (:func:`fer_utils.progress.watched_steps`; one line per epoch, also from the kernels an ablation
    starts inside it): a training cell is seen moving, never a counter standing still for minutes."""
    from papermill.engines import NBClientEngine, papermill_engines  # deferred: the Jupyter stack is heavy

    class StepShowingEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            bar = nb_man.pbar
            if bar is None:
                return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)
            with watched_steps(bar.set_postfix_str):
                return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register(STEP_ENGINE, StepShowingEngine)
    return STEP_ENGINE


def papermill_path(path: str | os.PathLike) -> str:
    """``path`` as papermill must be given it to open exactly that file: papermill formats the input and
    output paths with the parameters (``str.format``), so ``abl_{seed}`` would become ``abl_0`` and
    ``rep {x}`` an error; braces are doubled so the path is data, never a template."""
    return format_literal(path)


def execute_notebook(
    notebook: str | os.PathLike,
    output: str | os.PathLike,
    parameters: dict,
    cwd: str | os.PathLike,
    progress: str | None = None,
    threads: int | None = None,
    timeout: int | None = None,
    accepted: Iterable[str] | None = None,
    **options,
):
    """Execute ``notebook`` into ``output`` with ``parameters`` in a quiet kernel (see the module).

    Args:
        notebook: the notebook to run.
        output: where the executed notebook goes (its folder is created). Both paths are taken as they
            are (:func:`papermill_path`), braces included.
        parameters: injected after the cell tagged ``parameters``.
        cwd: the kernel's working folder.
        progress: a description for a one-line cell counter with elapsed time (None: no display).
        threads: TensorFlow / OpenMP thread cap of the kernel (None: no cap).
        timeout: seconds a cell may run (None: no limit).
        accepted: names the notebook reads besides those its cells assign (the config fields of
            notebooks 02 / 03); given, an unknown parameter is refused before the kernel starts
            (:func:`check_parameters`).
        options: further ``papermill.execute_notebook`` options (e.g. ``report_mode``).

    Returns:
        The executed notebook (papermill's node); raises papermill's errors.
    """
    if accepted is not None:
        check_parameters(notebook, parameters, accepted)
    import papermill  # deferred: papermill (and its Jupyter stack) is heavy

    Path(output).parent.mkdir(parents=True, exist_ok=True)
    _quiet_papermill_log()
    with kernel_environment(threads):
        return papermill.execute_notebook(
            papermill_path(notebook),
            papermill_path(output),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(cwd),
            progress_bar=cell_progress(progress) if progress else False,
            engine_name=step_engine(),
            execution_timeout=timeout,
            extra_arguments=QUIET_KERNEL_ARGUMENTS,
            kernel_manager_class=finished_kernel_manager(),
            **options,
        )
