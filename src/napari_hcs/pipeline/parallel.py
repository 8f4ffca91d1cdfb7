"""Map work over plate sites: in-process, in a local pool, or on a dask cluster.

:func:`map_sites` is the one place where the package spreads per-site work. It
yields each result as soon as it is ready, so the caller can write it and drop
it: at most ``2 * workers`` items are in flight at any time and memory stays
flat however large the plate. A failing item yields its exception instead of a
result; nothing is dropped silently.

Three ways to run:

- ``workers=1`` (default): one item after the other, in this process.
- ``workers > 1``: a local pool. ``pool="process"`` (default) uses worker
  processes started by a fork server (or ``spawn`` where there is none), so the
  mapped function must be a top-level, importable function and items must pickle.
  ``pool="thread"`` uses threads of this process (no pickling; only as fast as
  the work releases the GIL).
- ``scheduler="tcp://host:port"`` or a :class:`distributed.Client`: a dask
  distributed cluster (``client.submit`` + ``as_completed``).

:class:`Workers` names one of these ways as a value, for the functions that
pass it on (:func:`napari_hcs.pipeline.run_plate`).

Examples
--------
>>> [(item, result) for item, result in map_sites(abs, [-2, 3])]
[(-2, 2), (3, 3)]
>>> list(Workers(2, pool="thread").map(abs, [-1]))
[(-1, 1)]
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..cancel import CancelCheck, is_cancelled
from ..vocabulary import POOLS
from .lifetime import PARENT_PID_VARIABLE, guard_parent_death

__all__ = ["POOLS", "Workers", "map_sites"]


@dataclass(frozen=True)
class Workers:
    """Where per-site work runs: ``count`` local workers of a ``pool``, or a dask cluster.

    Attributes
    ----------
    count : int
        Local workers; 1 runs in this process, in order.
    pool : {"process", "thread"}
        Kind of local pool for ``count > 1``.
    scheduler : str or distributed.Client, optional
        A dask cluster to run on instead (``count`` is then ignored).
    """

    count: int = 1
    pool: str = "process"
    scheduler: Any = None

    @classmethod
    def of(cls, workers: "int | Workers") -> "Workers":
        """Return ``workers`` as Workers (an int is that many local processes)."""
        return workers if isinstance(workers, Workers) else cls(int(workers))

    def map(self, func: Callable[[Any], Any], items: Iterable[Any], **options) -> Iterator[tuple[Any, Any]]:
        """:func:`map_sites` with these workers; ``options`` as there."""
        return map_sites(func, items, workers=self.count, scheduler=self.scheduler, pool=self.pool, **options)


def map_sites(
    func: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    workers: int = 1,
    scheduler: Any = None,
    pool: str = "process",
    max_in_flight: int | None = None,
    preload: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelCheck = None,
) -> Iterator[tuple[Any, Any]]:
    """Apply ``func`` to every item and yield ``(item, result)`` as each completes.

    Parameters
    ----------
    func : callable
        ``func(item) -> result``. For process pools and dask clusters it must be
        a top-level function of an importable module.
    items : iterable
        Units of work (for instance one task per site); must pickle when run in
        other processes.
    workers : int, optional
        Number of local workers; 1 runs in this process, in order.
    scheduler : str or distributed.Client, optional
        Address of a dask scheduler (``"tcp://..."``) or a client; when given,
        the work runs on that cluster and ``workers`` is ignored.
    pool : {"process", "thread"}, optional
        Kind of local pool used when ``workers > 1``.
    max_in_flight : int, optional
        Most items submitted and not yet yielded; ``2 * workers`` by default
        (``2 *`` the cluster's threads with a scheduler).
    preload : sequence of str, optional
        Modules that process workers import once, before any task (through the
        fork server, which starts with the first process pool of the session);
        the module of ``func`` by default.
    progress : callable, optional
        ``progress(n_done, n_total)``, called with 0 before the first item,
        then after the caller has taken each result.
    cancel : callable or threading.Event, optional
        Checked before each submission; once it says stop no new item is
        started. Items already running finish and are yielded (a local pool
        drops the ones still queued).

    Yields
    ------
    item, result
        The item and ``func(item)``, or the exception it raised.

    Raises
    ------
    ValueError
        If ``workers`` is below 1 or ``pool`` is unknown.
    """
    if int(workers) < 1:
        raise ValueError(f"workers must be at least 1, got {workers}.")
    if pool not in POOLS:
        raise ValueError(f"Unknown pool {pool!r}; expected one of {', '.join(POOLS)}.")
    items = list(items)
    if scheduler is not None:
        outcomes = _map_distributed(func, items, scheduler, max_in_flight, cancel)
    elif int(workers) == 1:
        outcomes = _map_serial(func, items, cancel)
    else:
        modules = list(preload) if preload else [getattr(func, "__module__", "__main__")]
        executor = _make_executor(pool, int(workers), preload=modules)
        outcomes = _map_executor(func, items, executor, max_in_flight or 2 * int(workers), cancel)
    if progress is not None:
        progress(0, len(items))
    try:
        for n_done, (item, outcome) in enumerate(outcomes, start=1):
            yield item, outcome
            if progress is not None:
                progress(n_done, len(items))
    finally:
        outcomes.close()


def _call(func: Callable[[Any], Any], item: Any) -> Any:
    try:
        return func(item)
    except Exception as error:  # noqa: BLE001 - handed to the caller, never dropped
        return error


def _map_serial(func, items, cancel) -> Iterator[tuple[Any, Any]]:
    for item in items:
        if is_cancelled(cancel):
            return
        yield item, _call(func, item)


def _process_context(preload: list[str]) -> multiprocessing.context.BaseContext:
    # A fork server imports the mapped function's module (and with it the heavy
    # libraries) once, then forks cheap workers from that clean process. Plain
    # fork is unsafe in a process that runs threads (Qt, dask); spawn re-imports
    # everything in every worker. The server starts once per session, so only
    # the first pool's modules are preloaded; later ones import theirs on demand.
    # The guard comes first: the server then dies with this process (Linux).
    if "forkserver" in multiprocessing.get_all_start_methods():
        os.environ[PARENT_PID_VARIABLE] = str(os.getpid())
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([_SERVER_GUARD] + [m for m in preload if m not in ("__main__", _SERVER_GUARD)])
        return context
    return multiprocessing.get_context("spawn")


def _make_executor(pool: str, workers: int, *, preload: list[str]) -> cf.Executor:
    if pool == "thread":
        return cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="napari-hcs")
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=_process_context(preload),
                                  initializer=guard_parent_death)


_SERVER_GUARD = "napari_hcs.pipeline.fork_server_guard"


def _stop_workers(executor: cf.Executor) -> None:
    """Kill a process pool's workers now (an exception or a signal is unwinding the run)."""
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            process.kill()


def _future_outcome(future: cf.Future) -> Any:
    error = future.exception()
    return error if error is not None else future.result()


def _map_executor(func, items, executor: cf.Executor, max_in_flight: int, cancel):
    pending: dict[cf.Future, Any] = {}
    queue = iter(items)

    def submit_next() -> bool:
        if is_cancelled(cancel):
            return False
        item = next(queue, _END)
        if item is _END:
            return False
        pending[executor.submit(func, item)] = item
        return True

    try:
        while len(pending) < max_in_flight and submit_next():
            pass
        while pending:
            if is_cancelled(cancel):
                _drop_queued(pending)
                if not pending:
                    return
            finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                item = pending.pop(future)
                if not future.cancelled():
                    yield item, _future_outcome(future)
            while len(pending) < max_in_flight and submit_next():
                pass
    except BaseException:
        # Ctrl-C, SIGTERM or the caller closing early: running items' results are not wanted.
        _stop_workers(executor)
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _drop_queued(pending: dict) -> None:
    for future in list(pending):
        if future.cancel():
            del pending[future]


_END = object()


def _map_distributed(func, items, scheduler, max_in_flight, cancel):
    from distributed import Client, as_completed

    own_client = isinstance(scheduler, str)
    client = Client(scheduler) if own_client else scheduler
    try:
        if max_in_flight is None:
            max_in_flight = 2 * max(1, sum(client.nthreads().values()))
        queue = iter(items)
        pending: dict = {}
        completed = as_completed()

        def submit_next() -> bool:
            if is_cancelled(cancel):
                return False
            item = next(queue, _END)
            if item is _END:
                return False
            future = client.submit(func, item, pure=False)
            pending[future] = item
            completed.add(future)
            return True

        while len(pending) < max_in_flight and submit_next():
            pass
        for future in completed:
            item = pending.pop(future)
            outcome = future.exception() if future.status == "error" else future.result()
            future.release()
            yield item, outcome
            while len(pending) < max_in_flight and submit_next():
                pass
    finally:
        if own_client:
            client.close()
