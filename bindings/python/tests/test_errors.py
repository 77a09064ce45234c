"""Every exception type, raised by the matching bad input."""

from __future__ import annotations

import os
import stat

import pytest

import herd
from herd import _herd


@pytest.mark.parametrize(
    "session_id, words",
    [
        ("", "empty"),
        ("x" * (herd.MAX_SESSION_ID_LEN + 1), "257 bytes"),
        ("a\nb", "control character"),
        ("nul\0", "control character"),
    ],
)
def test_invalid_session_ids(make_pool, session_id, words):
    pool = make_pool()
    for call in (pool.acquire, pool.try_acquire, pool.end_session):
        with pytest.raises(herd.InvalidSessionId, match=words) as info:
            call(session_id)
        assert isinstance(info.value, ValueError)
        assert info.value.kind == "invalid_session_id"


def test_invalid_session_id_in_acquire_async(make_pool):
    import asyncio

    pool = make_pool()
    with pytest.raises(herd.InvalidSessionId):
        asyncio.run(pool.acquire_async(""))


def test_non_str_session_id_is_a_type_error(make_pool):
    pool = make_pool()
    with pytest.raises(TypeError):
        pool.acquire(42)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"min": 5, "max": 2}, "min \\(5\\) must not exceed max \\(2\\)"),
        ({"max": 0}, "max must be at least 1"),
        ({"ttl": -1.0}, "ttl must be a finite, non-negative"),
        ({"ttl": 0.0}, "ttl must be greater than zero"),
        ({"acquire_timeout": float("nan")}, "acquire_timeout"),
        ({"command": []}, "empty list"),
        ({"health_path": "no-slash"}, "health path"),
        ({"env": {"A=B": "x"}}, "bad environment variable name"),
        ({"cwd": "/nonexistent/dir"}, "working directory"),
        ({"on_session_end": 42}, "on_session_end must be callable"),
        ({"sandbox": "sometimes"}, "not one of off, best_effort, required"),
        ({"memory_limit": 1000}, "memory_limit"),
        ({"cpu_limit": 0.0}, "cpu_limit"),
        ({"pids_limit": 0}, "pids_limit"),
        ({"cgroup_root": "relative/path"}, "absolute cgroup path"),
    ],
)
def test_invalid_config(kwargs, words):
    command = kwargs.pop("command", herd.demo_command())
    with pytest.raises(herd.InvalidConfig, match=words) as info:
        herd.Pool(command, **kwargs)
    assert isinstance(info.value, ValueError)


def test_missing_program_is_a_spawn_error():
    with pytest.raises(herd.SpawnError, match="not found in PATH"):
        herd.Pool(["herd-no-such-program-anywhere"])


def test_non_executable_program_is_a_spawn_error(tmp_path):
    script = tmp_path / "worker.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(script, stat.S_IRUSR | stat.S_IWUSR)
    with pytest.raises(herd.SpawnError, match="not executable"):
        herd.Pool([str(script)])


def test_worker_that_dies_at_start_is_a_spawn_error(make_pool):
    # (The core quotes the worker's last output when it has read it by then;
    # that is racy, so only the exit is checked here.)
    pool = make_pool(["sh", "-c", "echo 'boom: config missing' >&2; exit 3"], min=0)
    with pytest.raises(herd.SpawnError, match="exited during start with exit code 3") as info:
        pool.acquire("s", timeout=10)
    assert info.value.retryable
    assert pool.stats().counters.spawn_failures >= 1


def test_required_sandbox_that_cannot_be_had_is_a_sandbox_error():
    with pytest.raises(herd.SandboxError, match="sandbox is required") as info:
        herd.Pool(herd.demo_command(), sandbox="required", cgroup_root="/no/such/parent/herd")
    assert "/no/such/parent/herd" in str(info.value)


def test_acquire_timeout(make_pool):
    pool = make_pool(max=1)
    holder = pool.acquire("holder")
    with pytest.raises(herd.AcquireTimeout, match="within") as info:
        pool.acquire("other", timeout=0.2)
    assert isinstance(info.value, TimeoutError)
    assert pool.stats().counters.acquire_timeouts == 1
    holder.release()


def test_pool_exhausted_when_the_queue_is_full(make_pool):
    pool = make_pool(max=1, max_queue=0)
    holder = pool.acquire("holder")
    with pytest.raises(herd.PoolExhausted, match="max_queue = 0"):
        pool.acquire("other", timeout=5)
    assert pool.stats().counters.acquires_rejected == 1
    holder.release()


def test_pool_closed_after_shutdown(make_pool):
    pool = make_pool()
    pool.shutdown()
    with pytest.raises(herd.PoolClosed):
        pool.acquire("s")
    import asyncio

    with pytest.raises(herd.PoolClosed):
        asyncio.run(pool.acquire_async("s"))


def test_negative_timeout_is_rejected(make_pool):
    pool = make_pool()
    with pytest.raises(herd.InvalidConfig, match="timeout"):
        pool.acquire("s", timeout=-1)


def test_every_error_kind_maps_to_its_class():
    for kind, cls in [
        ("invalid_session_id", herd.InvalidSessionId),
        ("invalid_config", herd.InvalidConfig),
        ("acquire_timeout", herd.AcquireTimeout),
        ("pool_exhausted", herd.PoolExhausted),
        ("pool_closed", herd.PoolClosed),
        ("spawn_failed", herd.SpawnError),
        ("sandbox", herd.SandboxError),
        ("forked", herd.ForkedError),
        ("worker_unavailable", herd.WorkerUnavailable),
        ("io", herd.IoError),
        ("internal", herd.InternalError),
    ]:
        error = _herd._error_for_test(kind, f"a {kind} error", None)
        assert type(error) is cls
        assert issubclass(cls, herd.HerdError)
        assert error.kind == kind
        assert str(error) == f"a {kind} error"


def test_the_cause_chain_is_kept():
    import errno

    error = _herd._error_for_test("spawn_failed", "worker w1: cannot start x", errno.EMFILE)
    assert isinstance(error, herd.SpawnError)
    cause = error.__cause__
    assert isinstance(cause, herd.IoError) and "while starting" in str(cause)
    root = cause.__cause__
    assert isinstance(root, OSError) and root.errno == errno.EMFILE
