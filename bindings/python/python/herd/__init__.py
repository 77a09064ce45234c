"""herd: a session-affine process pool.

herd turns a single-tenant, stateful program — a headless browser, an LLM
server, a REPL, a notebook kernel — into a multi-tenant service: every
session ID is pinned to its own worker process for the session's lifetime,
so in-memory state, caches and local files stay with their user.

Quick start::

    import herd

    with herd.Pool(["python3", "-m", "http.server", "{{.Port}}"], health_path="/") as pool:
        with pool.acquire("user-42") as lease:      # same ID → same process
            print(lease.url, lease.pid)

    # asyncio
    async with herd.Pool(herd.demo_command()) as pool:
        async with pool.session("user-42") as lease:
            ...

    # the HTTP/WebSocket gateway: X-Session-ID picks the worker
    with herd.Pool(herd.demo_command()) as pool, pool.serve("127.0.0.1:8080") as proxy:
        ...

herd's logs go to the standard ``logging`` module, logger ``herd`` (worker
output: ``herd.worker``).
"""

from __future__ import annotations

import atexit
import sys
from typing import List

from . import _herd
from ._errors import (
    AcquireTimeout,
    ForkedError,
    HerdError,
    InternalError,
    InvalidConfig,
    InvalidSessionId,
    IoError,
    PoolClosed,
    PoolExhausted,
    SandboxError,
    SpawnError,
    WorkerUnavailable,
)
from ._herd import (
    MAX_SESSION_ID_LEN,
    Counters,
    Event,
    HostStats,
    Lease,
    Proxy,
    SessionEnd,
    SessionEndCounts,
    Stats,
    WorkerCounts,
    WorkerStats,
)
from ._pool import Pool

__version__: str = _herd.__version__


def demo_command() -> List[str]:
    """The command that runs herd's demo worker with this Python:
    ``[sys.executable, "-m", "herd", "demo-worker"]``.

    The demo worker is a small HTTP server with per-process state
    (``GET /`` answers its PID and worker ID, ``/kv/KEY`` stores values,
    ``/crash`` exits, any path upgrades to a WebSocket echo...), for trying
    herd and for tests.
    """
    return [sys.executable, "-m", "herd", "demo-worker"]


# Pools still alive at exit are shut down (their workers are killed with
# herd anyway if this process dies), then herd's threads stop calling into
# Python before the interpreter finalizes.
atexit.register(_herd._at_exit)

__all__ = [
    "Pool",
    "Lease",
    "Proxy",
    "Stats",
    "WorkerCounts",
    "Counters",
    "SessionEndCounts",
    "WorkerStats",
    "HostStats",
    "SessionEnd",
    "Event",
    "HerdError",
    "InvalidSessionId",
    "InvalidConfig",
    "AcquireTimeout",
    "PoolExhausted",
    "PoolClosed",
    "SpawnError",
    "SandboxError",
    "ForkedError",
    "WorkerUnavailable",
    "IoError",
    "InternalError",
    "MAX_SESSION_ID_LEN",
    "demo_command",
    "__version__",
]
