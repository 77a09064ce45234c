"""Session ends, callbacks, stats and shutdown."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading

import pytest

import herd
from conftest import http_get, pid_alive, wait_until


def test_on_session_end_after_kill_9_reports_the_session_and_the_signal(make_pool):
    ended = []
    pool = make_pool(max=2, on_session_end=ended.append)
    with pool.acquire("victim") as lease:
        pid = lease.pid
        worker = lease.worker_id
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: ended, what="on_session_end")
    end = ended[0]
    assert isinstance(end, herd.SessionEnd)
    assert end.session_id == "victim"
    assert end.reason == "crashed"
    assert end.signal == signal.SIGKILL and end.exit_code is None
    assert end.pid == pid and end.worker_id == worker
    assert end.duration > 0
    assert pool.stats().counters.sessions_ended.crashed == 1
    # The session is free again: the next acquire gets a new, live worker.
    with pool.acquire("victim", timeout=10) as lease:
        assert lease.pid != pid
        assert http_get(lease.url + "/health") == b"ok"


def test_a_worker_exiting_with_a_code_reports_it(make_pool):
    ended = []
    pool = make_pool(on_session_end=ended.append)
    with pool.acquire("s") as lease:
        try:
            http_get(lease.url + "/crash?code=7", timeout=5)
        except OSError:
            pass  # the worker exits before or while answering
    wait_until(lambda: ended, what="on_session_end")
    assert ended[0].reason == "crashed" and ended[0].exit_code == 7


def test_end_session_and_idle_timeout_and_shutdown_reasons(make_pool):
    ended = []
    pool = make_pool(max=3, ttl=0.3, on_session_end=ended.append)
    pool.acquire("explicit").release()
    pool.end_session("explicit")
    pool.acquire("idle").release()
    kept = pool.acquire("kept-by-its-lease")
    wait_until(lambda: any(e.session_id == "idle" for e in ended), what="the idle timeout")
    reasons = {e.session_id: e.reason for e in ended}
    assert reasons["explicit"] == "ended"
    assert reasons["idle"] == "idle_timeout"
    # An open lease keeps its session from idling out.
    assert "kept-by-its-lease" not in reasons and not kept.ended
    pool.shutdown()
    wait_until(lambda: len(ended) == 3, what="the shutdown end")
    assert ended[2].session_id == "kept-by-its-lease" and ended[2].reason == "shutdown"
    kept.release()


def test_an_exception_in_a_callback_is_logged_not_lost(make_pool, caplog):
    calls = []

    def failing(end: herd.SessionEnd) -> None:
        calls.append(end)
        raise RuntimeError("callback bug")

    pool = make_pool(on_session_end=failing)
    with caplog.at_level(logging.ERROR, logger="herd"):
        pool.acquire("s").release()
        pool.end_session("s")
        wait_until(lambda: any(r.exc_info for r in caplog.records), what="the logged callback error")
    record = next(r for r in caplog.records if r.exc_info)
    assert record.name == "herd"
    assert "on_session_end" in record.getMessage()
    assert isinstance(record.exc_info[1], RuntimeError)
    assert str(record.exc_info[1]) == "callback bug"
    # The pool carries on.
    with pool.acquire("after") as lease:
        assert lease.pid


def test_a_callback_may_call_into_the_pool_while_another_thread_waits_in_acquire(make_pool):
    seen = []

    def on_end(end: herd.SessionEnd) -> None:
        # Takes the GIL on herd's event thread and calls the pool while the
        # main thread is blocked in acquire (without the GIL).
        seen.append((end.session_id, pool.stats().sessions))

    pool = make_pool(max=1, on_session_end=on_end)
    pool.acquire("first").release()
    timer = threading.Timer(0.2, pool.end_session, args=("first",))
    timer.start()
    with pool.acquire("second", timeout=10) as lease:  # waits for "first" to end
        assert lease.pid
    timer.join()
    wait_until(lambda: seen, what="the callback")
    assert seen[0][0] == "first"


def test_on_event_reports_the_lifecycle(make_pool):
    events = []
    pool = make_pool(on_event=events.append)
    with pool.acquire("s") as lease:
        pid = lease.pid
    pool.end_session("s")
    wait_until(lambda: any(e.kind == "session_ended" for e in events), what="session_ended")
    kinds = [e.kind for e in events]
    for kind in ("worker_spawning", "worker_ready", "session_bound", "lease_released", "session_ended"):
        assert kind in kinds, kinds
    ready = next(e for e in events if e.kind == "worker_ready")
    assert ready.pid == pid and ready.startup > 0 and ready.address
    bound = next(e for e in events if e.kind == "session_bound")
    assert bound.session_id == "s" and bound.pid == pid
    ended = next(e for e in events if e.kind == "session_ended")
    assert ended.session_end.reason == "ended"


def test_stats_are_typed_read_only_and_match_as_dict(make_pool):
    pool = make_pool(max=3, min_idle=1)
    lease = pool.acquire("a")
    wait_until(lambda: pool.stats().workers.idle == 1, what="a warm spare")
    stats = pool.stats()
    assert isinstance(stats, herd.Stats)
    assert (stats.sessions, stats.open_leases, stats.max, stats.min_idle) == (1, 1, 3, 1)
    assert stats.workers.bound == 1 and stats.workers.total == 2
    row = next(r for r in stats.worker_rows if r.state == "bound")
    assert (row.session, row.pid) == ("a", lease.pid)
    with pytest.raises(AttributeError):
        stats.sessions = 5
    # Every key of as_dict() is an attribute with the same value.
    as_dict = stats.as_dict()

    def check(obj, d):
        for key, value in d.items():
            attr = getattr(obj, key)
            if isinstance(value, dict):
                check(attr, value)
            elif isinstance(value, list):
                for item, sub in zip(attr, value):
                    check(item, sub)
            elif key not in ("age_seconds",):
                assert attr == value, key

    check(stats, as_dict)
    lease.release()


def test_stats_report_process_usage_from_the_background_sample(make_pool):
    pool = make_pool(stats_interval=0.05)
    with pool.acquire("s") as lease:
        def sampled():
            row = next(r for r in pool.stats().worker_rows if r.pid == lease.pid)
            return row.rss_bytes
        assert wait_until(sampled, what="a usage sample") > 1_000_000
        assert pool.stats().host.memory_total_bytes > 0


def descendants(pid: int) -> list:
    """Host PIDs of every descendant of ``pid``, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.mark.parametrize("namespaces", [True, False])
def test_shutdown_kills_every_worker_and_its_children(make_pool, namespaces):
    pool = make_pool(max=2, namespaces=namespaces)
    with pool.acquire("s") as lease:
        before = set(descendants(lease.pid))
        http_get(lease.url + "/children?n=2&ignore_term=1")
        children = [p for p in descendants(lease.pid) if p not in before]
        pid = lease.pid
    assert len(children) == 2
    assert all(pid_alive(p) for p in children + [pid])
    pool.shutdown(grace=0.2)
    assert pool.closed
    assert not any(pid_alive(p) for p in children + [pid])


def test_a_fork_bomb_stays_inside_its_pids_limit(make_pool):
    # Only with the sandbox required: without a pids cgroup a fork bomb
    # would hit the whole host.
    try:
        pool = make_pool(sandbox="required", pids_limit=20)
    except herd.SandboxError as e:
        pytest.skip(f"this host cannot sandbox workers: {e}")
    with pool.acquire("bomb") as lease:
        made = int(json.loads(http_get(lease.url + "/forkbomb", timeout=30))["forked"])
        assert http_get(lease.url + "/health") == b"ok"  # the worker survives
    assert 0 < made < 20
