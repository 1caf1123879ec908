"""One small parallel map for every stage: local processes by default, a Dask cluster on request.

Results come back as they complete (not in input order), with at most ``window`` items in flight, so
memory stays bounded however many items there are (MEAD: ~28k clips). ``func`` must be picklable (a
module-level function or a :func:`functools.partial` of one); objects that do not pickle (dlib models)
belong in a per-process cache inside the worker.

Workers die with their parent: every local pool starts its workers with :func:`die_with_parent` (Linux:
``PR_SET_PDEATHSIG``; everywhere: a watchdog thread that notices the parent is gone), so ``kill -9`` of
the main process leaves no orphan; an interrupted or failed map (Ctrl-C included) kills its workers
instead of waiting for their current item.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

#: How often a worker's watchdog checks that its parent is alive (seconds).
WATCHDOG_SECONDS = 0.5


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(WATCHDOG_SECONDS)
        if os.getppid() != parent:
            _kill_self()


def die_with_parent(owner_pid: int | None = None) -> None:
    """Worker initializer: end this process as soon as its parent process ends.

    Linux gets ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; every platform gets a daemon thread that polls
    ``os.getppid()``. Ctrl-C is left to the parent (the terminal sends it to the whole process group;
    the parent then kills its workers), so workers do not print tracebacks of their own.

    Args:
        owner_pid: the process that made the pool; if it is already gone the worker ends at once.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still works
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if owner_pid is not None and not _alive(owner_pid):
        _kill_self()
    threading.Thread(target=_watch_parent, args=(parent,), name="die-with-parent", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_pool(workers: int, start_method: str | None = None):
    """A ``ProcessPoolExecutor`` whose workers die with this process (see :func:`die_with_parent`)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context(start_method) if start_method else None
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),)
    )


def kill_workers(executor) -> None:
    """Kill a pool's worker processes now (after Ctrl-C or a failure: no waiting for running items)."""
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        try:
            process.kill()
        except (OSError, ValueError, AttributeError):
            pass


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def parallel_map(
    func: Callable[[Any], Any],
    items: Iterable[Any],
    workers: int | None = None,
    scheduler: str | Any | None = None,
    window: int | None = None,
    start_method: str | None = None,
) -> Iterator[Any]:
    """Apply ``func`` to every item in parallel and yield the results as they complete.

    Args:
        func: picklable function of one item; include the item (or its key) in the result if the
            caller needs to know which result is which.
        items: any iterable; consumed lazily.
        workers: local worker processes (default: all cores); 1 runs in this process, in order.
            Ignored with a scheduler.
        scheduler: a Dask distributed scheduler address (``"tcp://host:8786"``) or a
            ``distributed.Client``; None = local processes.
        window: most items in flight at once (default 4 per worker).
        start_method: how local workers start (``"spawn"`` for work that imports TensorFlow, which is
            not safe to fork once loaded); None = the platform's default.

    Returns:
        An iterator of results. An exception raised by ``func`` is re-raised here after the pending
        work is cancelled.
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be ≥ 1, got {workers}")
    if window is not None and window < 1:
        raise ValueError(f"window must be ≥ 1, got {window}")
    if scheduler is not None:
        return _dask_map(func, items, scheduler, window)
    workers = workers or default_workers()
    if workers == 1:
        return (func(item) for item in items)
    return _process_map(func, items, workers, window or 4 * workers, start_method)


def _process_map(func, items, workers: int, window: int, start_method: str | None = None) -> Iterator[Any]:
    from concurrent.futures import FIRST_COMPLETED, wait

    iterator = iter(items)
    executor = process_pool(workers, start_method)
    pending = set()
    finished = False
    try:
        for item in iterator:
            pending.add(executor.submit(func, item))
            if len(pending) >= window:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
                for item in iterator:
                    pending.add(executor.submit(func, item))
                    break
        finished = True
    finally:
        for future in pending:
            future.cancel()
        if not finished:  # Ctrl-C, a failed item or an abandoned iterator: stop the running items too
            kill_workers(executor)
        executor.shutdown(wait=True, cancel_futures=True)


def _dask_map(func, items, scheduler, window: int | None) -> Iterator[Any]:
    from distributed import Client, as_completed

    own_client = isinstance(scheduler, str)
    client = Client(scheduler) if own_client else scheduler
    try:
        if window is None:
            threads = sum(client.nthreads().values()) or 1
            window = 4 * threads
        iterator = iter(items)
        first = [
            client.submit(func, item, pure=False) for _, item in zip(range(window), iterator, strict=False)
        ]
        completed = as_completed(first)
        try:
            for future in completed:
                result = future.result()
                future.release()
                for item in iterator:
                    completed.add(client.submit(func, item, pure=False))
                    break
                yield result
        finally:
            for future in list(completed.futures):
                future.cancel()
    finally:
        if own_client:
            client.close()
