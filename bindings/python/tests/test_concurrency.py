"""Singleflight from threads and asyncio, and waits that block nothing."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import herd
from conftest import identity

N = 1000


def test_1000_threads_acquiring_one_new_id_get_one_process(make_pool):
    pool = make_pool(min=0, max=4)
    barrier = threading.Barrier(N)
    pids = []
    errors = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait()
            with pool.acquire("shared-session", timeout=30) as lease:
                with lock:
                    pids.append(lease.pid)
        except BaseException as e:  # noqa: BLE001 - reported below
            with lock:
                errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert len(pids) == N
    assert len(set(pids)) == 1
    stats = pool.stats()
    assert stats.counters.sessions_bound == 1
    assert stats.open_leases == 0


def test_1000_asyncio_tasks_acquiring_one_new_id_get_one_process(make_pool):
    pool = make_pool(min=0, max=4)

    async def one() -> int:
        async with pool.session("shared-session", timeout=30) as lease:
            return lease.pid

    async def main() -> list:
        return await asyncio.gather(*(one() for _ in range(N)))

    pids = asyncio.run(main())
    assert len(pids) == N and len(set(pids)) == 1
    assert pool.stats().counters.sessions_bound == 1
    assert pool.stats().open_leases == 0


def test_acquire_async_does_not_block_the_event_loop(make_pool):
    pool = make_pool(max=1)
    holder = pool.acquire("holder")  # the only worker is bound

    async def main() -> int:
        ticks = 0
        waiting = asyncio.ensure_future(pool.acquire_async("newcomer", timeout=0.5))
        while not waiting.done():
            await asyncio.sleep(0.01)
            ticks += 1
        with pytest.raises(herd.AcquireTimeout):
            waiting.result()
        return ticks

    ticks = asyncio.run(main())
    # The loop kept running while the acquire waited half a second.
    assert ticks >= 10
    holder.release()


def test_cancelling_acquire_async_leaves_the_session_to_others(make_pool):
    pool = make_pool(max=1)
    holder = pool.acquire("holder")

    async def main() -> None:
        task = asyncio.ensure_future(pool.acquire_async("waiting", timeout=30))
        deadline = time.monotonic() + 10
        while pool.stats().waiting_acquires != 1:
            assert time.monotonic() < deadline, "the acquire never started waiting"
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The cancelled acquire left the queue.
        deadline = time.monotonic() + 5
        while pool.stats().waiting_acquires != 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)

    asyncio.run(main())
    holder.release()
    pool.end_session("holder")
    # The freed worker goes to a new session, not to the cancelled one.
    with pool.acquire("next", timeout=10) as lease:
        assert lease.pid == holder.pid
    assert pool.stats().counters.sessions_bound == 2


def test_acquire_async_of_a_bound_session_returns_the_same_worker(make_pool):
    pool = make_pool()

    async def main() -> tuple:
        async with pool.session("s") as first:
            pid = first.pid
        lease = await pool.acquire_async("s")
        lease.release()
        return pid, lease.pid, lease.released

    first, second, released = asyncio.run(main())
    assert first == second and released


def test_async_with_pool_shuts_it_down():
    async def main() -> herd.Pool:
        async with herd.Pool(herd.demo_command(), stop_grace=1.0) as pool:
            async with pool.session("s") as lease:
                identity(lease)
        return pool

    pool = asyncio.run(main())
    assert pool.closed


def test_blocking_acquire_releases_the_gil_while_it_waits(make_pool):
    pool = make_pool(max=1)
    holder = pool.acquire("holder")
    counted = []
    stop = threading.Event()

    def count() -> None:
        n = 0
        while not stop.is_set():
            n += 1
        counted.append(n)

    counter = threading.Thread(target=count)
    counter.start()
    try:
        with pytest.raises(herd.AcquireTimeout):
            pool.acquire("blocked", timeout=0.3)
    finally:
        stop.set()
        counter.join()
    # Another Python thread ran all along.
    assert counted[0] > 1000
    holder.release()
