"""map_sites: serial, thread and process pools, dask distributed, failures, cancel."""

from __future__ import annotations

import threading

import pytest

from napari_hcs.pipeline import Workers, map_sites


def square(value: int) -> int:
    """Top-level so that worker processes can import it."""
    if value == 3:
        raise ValueError("three is not welcome")
    return value * value


def _as_dict(pairs):
    return {item: outcome for item, outcome in pairs}


@pytest.mark.parametrize("options", [{}, {"workers": 2, "pool": "thread"}])
def test_every_item_yields_result_or_its_exception(options):
    outcomes = _as_dict(map_sites(square, range(6), **options))
    assert sorted(outcomes) == list(range(6))
    assert isinstance(outcomes[3], ValueError) and "three" in str(outcomes[3])
    assert {k: v for k, v in outcomes.items() if k != 3} == {0: 0, 1: 1, 2: 4, 4: 16, 5: 25}


def test_process_pool_gives_the_same_results():
    outcomes = _as_dict(map_sites(square, range(5), workers=2))
    assert isinstance(outcomes.pop(3), ValueError)
    assert outcomes == {0: 0, 1: 1, 2: 4, 4: 16}


def test_progress_counts_taken_results():
    calls = []
    list(map_sites(square, [1, 2, 4], progress=lambda done, total: calls.append((done, total))))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_cancel_stops_submitting_new_items():
    taken = []

    def cancel():
        return len(taken) >= 2

    for item, _ in map_sites(square, range(10), cancel=cancel):
        taken.append(item)
    assert taken == [0, 1]


def test_cancel_may_be_an_event():
    stop = threading.Event()
    stop.set()
    assert list(map_sites(square, range(3), cancel=stop)) == []


def test_workers_name_where_the_work_runs():
    assert Workers.of(3) == Workers(3, pool="process")
    assert _as_dict(Workers(2, pool="thread").map(square, [1, 2])) == {1: 1, 2: 4}


def test_thread_pool_keeps_in_flight_items_bounded():
    running = []
    peak = []
    lock = threading.Lock()
    release = threading.Event()

    def slow(value):
        with lock:
            running.append(value)
            peak.append(len(running))
        release.wait(0.01)
        with lock:
            running.remove(value)
        return value

    results = [item for item, _ in map_sites(slow, range(20), workers=2, pool="thread", max_in_flight=3)]
    assert sorted(results) == list(range(20))
    assert max(peak) <= 3


def test_thread_pool_cancel_finishes_running_items_only():
    started = []
    stop = threading.Event()

    def work(value):
        started.append(value)
        return value

    taken = []
    for item, _ in map_sites(work, range(50), workers=2, pool="thread", cancel=stop.is_set):
        taken.append(item)
        stop.set()
    assert len(taken) <= 4  # the first result plus what was already in flight
    assert len(started) < 50


def test_bad_options_raise():
    with pytest.raises(ValueError, match="workers"):
        list(map_sites(square, [1], workers=0))
    with pytest.raises(ValueError, match="pool"):
        list(map_sites(square, [1], workers=2, pool="gpu"))


def test_dask_distributed_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as client:
            outcomes = _as_dict(map_sites(square, range(6), scheduler=client))
        by_address = _as_dict(map_sites(square, [2, 3], scheduler=cluster.scheduler_address))
    assert isinstance(outcomes.pop(3), ValueError)
    assert outcomes == {0: 0, 1: 1, 2: 4, 4: 16, 5: 25}
    assert by_address[2] == 4 and isinstance(by_address[3], ValueError)
