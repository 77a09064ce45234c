"""Shared fixtures: pools of real demo workers, cleaned up after each test.

Every test ends by checking that no process it started is left: all
pools are shut down, then this process must have no child processes.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from typing import Any, Callable, Dict, List, Optional

import pytest

import herd


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Polls ``condition`` until it returns something truthy; fails after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def http_get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def identity(lease: herd.Lease) -> Dict[str, Any]:
    """The demo worker's ``GET /`` answer: its pid, worker_id, requests..."""
    return json.loads(http_get(lease.url + "/"))


def put(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="PUT")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (zombies count as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def free_port() -> int:
    """A loopback port free at the time of the call."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_processes() -> List[int]:
    """PIDs whose parent is this process."""
    me = os.getpid()
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            children.append(int(entry))
    return children


@pytest.fixture
def make_pool() -> Any:
    """``make_pool(**kwargs)`` → a pool of demo workers (``command``
    overridable); every pool is shut down after the test, pass or fail."""
    pools: List[herd.Pool] = []

    def make(command: Optional[List[str]] = None, **kwargs: Any) -> herd.Pool:
        kwargs.setdefault("stop_grace", 2.0)
        pool = herd.Pool(command or herd.demo_command(), **kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.shutdown(grace=1.0)


@pytest.fixture(autouse=True)
def no_process_left_behind(request: pytest.FixtureRequest) -> Any:
    """After each test (and its pools' shutdown), no child process of
    this one may remain: every worker tree is gone and reaped."""
    yield
    # Runs after make_pool's teardown (autouse fixtures are set up first,
    # so they are torn down last).
    try:
        wait_until(lambda: not child_processes(), timeout=10, what="every child process to exit")
    except AssertionError:
        left = {pid: _cmdline(pid) for pid in child_processes()}
        raise AssertionError(f"processes left behind: {left}") from None


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"
