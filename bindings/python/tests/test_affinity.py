"""Affinity and isolation with real demo workers."""

from __future__ import annotations

import urllib.request

import herd
from conftest import http_get, identity, pid_alive, put, wait_until


def test_same_session_reaches_the_same_process(make_pool):
    pool = make_pool(max=4)
    pids = set()
    for _ in range(5):
        with pool.acquire("alice") as lease:
            assert identity(lease)["pid"] == lease.pid
            pids.add(lease.pid)
    assert len(pids) == 1


def test_different_sessions_get_different_processes(make_pool):
    pool = make_pool(max=4)
    leases = [pool.acquire(name) for name in ("alice", "bob", "carol")]
    pids = {identity(lease)["pid"] for lease in leases}
    assert len(pids) == 3
    assert len({lease.worker_id for lease in leases}) == 3
    for lease in leases:
        lease.release()


def test_state_stays_with_its_session(make_pool):
    pool = make_pool(max=4)
    with pool.acquire("alice") as lease:
        put(lease.url + "/kv/secret", b"alice's")
    with pool.acquire("bob") as lease:
        try:
            http_get(lease.url + "/kv/secret")
            raise AssertionError("bob's worker must not see alice's state")
        except urllib.error.HTTPError as e:
            assert e.code == 404
    with pool.acquire("alice") as lease:
        assert http_get(lease.url + "/kv/secret") == b"alice's"


def test_lease_describes_its_worker(make_pool):
    pool = make_pool()
    session = "user-42"
    lease = pool.acquire(session)
    host, port = lease.address.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) == lease.port
    assert lease.url == f"http://{lease.address}"
    assert lease.session_id is session  # the caller's own str, not a copy
    assert lease.worker_id.startswith("w")
    assert pid_alive(lease.pid)
    assert not lease.released and not lease.ended
    assert "user-42" in repr(lease)
    lease.release()
    lease.release()  # idempotent
    assert lease.released
    assert lease.pid and lease.url  # still readable after release


def test_session_stays_bound_after_release_and_open_leases_are_counted(make_pool):
    pool = make_pool()
    first = pool.acquire("s")
    second = pool.acquire("s")
    assert pool.stats().open_leases == 2
    first.release()
    second.release()
    stats = pool.stats()
    assert stats.open_leases == 0 and stats.sessions == 1
    with pool.acquire("s") as again:
        assert again.pid == first.pid


def test_without_reuse_an_ended_session_never_reaches_the_next_tenant(make_pool):
    pool = make_pool(reuse=False, max=2)
    with pool.acquire("tenant-1") as lease:
        put(lease.url + "/kv/k", b"v")
        old_pid = lease.pid
    assert pool.end_session("tenant-1") is True
    wait_until(lambda: not pid_alive(old_pid), what="the old worker to be stopped")
    with pool.acquire("tenant-2") as lease:
        assert lease.pid != old_pid
    assert pool.end_session("never-bound") is False


def test_with_reuse_an_ended_session_frees_its_worker_for_the_next(make_pool):
    pool = make_pool(max=1)
    with pool.acquire("first") as lease:
        pid = lease.pid
    pool.end_session("first")
    with pool.acquire("second", timeout=10) as lease:
        assert lease.pid == pid


def test_lease_reports_the_end_of_its_session(make_pool):
    pool = make_pool()
    lease = pool.acquire("s")
    pool.end_session("s")
    assert lease.ended
    lease.release()


def test_try_acquire_never_waits(make_pool):
    pool = make_pool(max=1)
    pool.wait_ready()
    bound = pool.try_acquire("a")
    assert bound is not None  # the warm worker
    assert pool.try_acquire("b") is None  # would have to wait for a worker
    again = pool.try_acquire("a")
    assert again is not None and again.pid == bound.pid
    bound.release()
    again.release()


def test_min_idle_keeps_warm_spares(make_pool):
    pool = make_pool(min=0, min_idle=2, max=4)
    wait_until(lambda: pool.stats().workers.idle == 2, what="two idle workers")
    with pool.acquire("x"):
        wait_until(lambda: pool.stats().workers.idle == 2, what="the spare to be replaced")
        assert pool.stats().workers.bound == 1


def test_pool_is_a_context_manager_that_kills_every_worker():
    with herd.Pool(herd.demo_command(), max=3, stop_grace=1.0) as pool:
        pids = [pool.acquire(f"s{i}").pid for i in range(3)]
        assert all(pid_alive(p) for p in pids)
    assert pool.closed
    assert not any(pid_alive(p) for p in pids)
