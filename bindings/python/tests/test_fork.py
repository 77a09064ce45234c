"""A pool used in a forked child raises a clear error instead of hanging."""

from __future__ import annotations

import os
import select

import herd


def run_in_child(fn) -> str:
    """Runs ``fn()`` in a forked child; returns what it reported."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running atexit
        os.close(read_end)
        try:
            message = fn()
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            message = f"{type(e).__name__}: {e}"
        os.write(write_end, message.encode())
        os._exit(0)
    os.close(write_end)
    try:
        # A hang in the child would show as a timeout here, not a stuck test.
        ready, _, _ = select.select([read_end], [], [], 20)
        assert ready, "the child hung"
        return os.read(read_end, 65536).decode()
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)


def test_a_pool_used_after_fork_raises_forked_error(make_pool):
    pool = make_pool()
    with pool.acquire("parent") as lease:
        parent_pid = lease.pid

    def in_child() -> str:
        results = []
        for call in (lambda: pool.acquire("parent"), lambda: pool.acquire("new"), lambda: pool.end_session("parent")):
            try:
                call()
                results.append("no error")
            except herd.ForkedError as e:
                results.append(f"ForkedError: {e}")
        return "\n".join(results)

    report = run_in_child(in_child)
    lines = report.splitlines()
    assert len(lines) == 3 and all(line.startswith("ForkedError:") for line in lines), report
    assert "create a new pool in the child" in report
    # The parent's pool is untouched.
    with pool.acquire("parent") as lease:
        assert lease.pid == parent_pid


def test_a_forked_child_can_make_its_own_pool():
    def in_child() -> str:
        with herd.Pool(herd.demo_command(), stop_grace=1.0) as pool:
            with pool.acquire("child") as lease:
                return f"pid {lease.pid}"

    report = run_in_child(in_child)
    assert report.startswith("pid "), report
