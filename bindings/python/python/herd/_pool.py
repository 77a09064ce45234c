"""``herd.Pool``: the native pool plus its asyncio methods."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, AsyncIterator, Optional

from . import _herd

if TYPE_CHECKING:
    import asyncio

    from ._herd import Lease


class Pool(_herd.Pool):
    """A session-affine pool of worker processes.

    Each session ID is bound to its own worker process for the session's
    lifetime: one session → one worker, one worker → at most one session.
    herd starts workers from ``command``, keeps ``min`` alive and
    ``min_idle`` warm spares ready, caps them at ``max``, queues new
    sessions when all are busy, ends idle sessions after ``ttl``,
    health-checks workers, replaces crashed ones, and kills each worker's
    whole process tree when it stops (and when this process dies).

    A pool is a context manager (``with`` / ``async with``) that shuts it
    down on exit.

    Args:
        command: the worker program and its arguments, e.g.
            ``["ollama", "serve"]``. ``{{.Port}}`` and ``{{.WorkerId}}`` are
            replaced per worker in the arguments and in ``env`` values; the
            environment variables ``PORT``, ``HERD_WORKER_ID`` and
            ``HERD_WORKER_PID`` are always set.
        min: workers always alive, bound or not (default 1).
        max: hard cap on worker processes (default 10).
        min_idle: ready, unbound workers kept warm so a new session binds in
            microseconds (default 0; never raises the count above ``max``).
        ttl: seconds without an open lease or activity after which a session
            ends with reason ``"idle_timeout"`` (default 300).
        reuse: after a session ends, keep its worker for the next session
            (default), or stop it and start a fresh one (no state can leak
            between tenants).
        health_path: readiness and health check: ``GET health_path`` must
            answer 2xx (default ``"/health"``). ``None`` checks that the port
            accepts TCP connections instead (for non-HTTP workers).
        env: extra environment variables for the workers.
        inherit_env: whether workers inherit this process's environment
            (default ``True``).
        cwd: the workers' working directory.
        start_timeout: seconds a worker may take to become ready (default 30).
        start_delay: seconds to wait after starting a worker before the first
            readiness check (default 0: checks begin at once).
        acquire_timeout: seconds an ``acquire`` of a new session waits for a
            worker when the call gives no ``timeout`` (default 30).
        max_queue: sessions allowed to wait for a worker beyond what can be
            started; past it, acquires fail at once with ``PoolExhausted``
            (default 1024).
        max_session_lifetime: seconds after which a session ends (reason
            ``"max_lifetime"``) even if in use (default: none).
        recycle_after_sessions: with ``reuse``, stop a worker after it has
            served this many sessions (default: none).
        max_worker_age: stop unbound workers older than this many seconds
            (default: none).
        idle_worker_timeout: unbound workers above ``max(min, min_idle)`` are
            stopped after being idle this many seconds (default 60).
        health_interval: seconds between health checks of a worker (default 5).
        health_timeout: seconds one health check may take (default 2).
        health_failure_threshold: consecutive failed checks before a worker is
            declared unhealthy and its session ends (default 3).
        stop_grace: seconds between SIGTERM and SIGKILL when stopping a
            worker (default 5).
        stats_interval: seconds between samples of per-worker memory/CPU and
            host figures for ``stats()`` (default 2).
        runtime_threads: threads of the pool's own runtime; 0 picks
            ``min(cores, 4)``, at least 2.
        port_retries: how often to retry a worker start with a new port when
            another process took the port meanwhile (default 3).
        sandbox: ``"best_effort"`` (default: apply the limits and namespaces
            the host allows, warn once about the rest), ``"required"`` (a
            worker that cannot be sandboxed fails to start, with
            ``SandboxError``) or ``"off"``. Whatever the mode, a worker's whole
            process tree is killed when it stops.
        memory_limit: memory per worker in bytes, swap excluded (cgroup);
            default: none.
        cpu_limit: CPU per worker in cores, fractional (``0.5``); default:
            none.
        pids_limit: processes and threads per worker (default 100; ``None``:
            unlimited) — a fork bomb stays inside its worker.
        namespaces: run each worker in new PID, mount (private ``/proc``) and
            IPC namespaces (default ``True``; the network is shared). PIDs
            herd reports are always as the host sees them.
        cgroup_root: the cgroup path to nest herd's cgroups under (e.g.
            ``"/herd"``); default: this process's own cgroup.
        on_session_end: called as ``on_session_end(end: SessionEnd)`` when a
            session ends, with the reason (a crash carries the exit code or
            signal). Runs on a herd thread; an exception it raises is logged
            on the ``herd`` logger.
        on_event: called as ``on_event(event: Event)`` for every lifecycle
            event (worker spawning/ready/exited, session bound/ended, lease
            released). Same rules as ``on_session_end``.

    Raises:
        InvalidConfig: an argument is out of range (the message names it).
        SpawnError: the program cannot be found or is not executable.

    Example::

        import herd

        with herd.Pool(herd.demo_command(), max=4) as pool:
            with pool.acquire("user-42") as lease:
                print(lease.url, lease.pid)   # the same worker for every
                                              # acquire of "user-42"
    """

    async def acquire_async(self, session_id: str, timeout: Optional[float] = None) -> "Lease":
        """Acquires a lease like :meth:`acquire`, without blocking the event
        loop: the wait runs on herd's own threads.

        Cancelling the awaiting task cancels the acquire (a lease that
        arrives anyway is released). Raises the same errors as
        :meth:`acquire`.
        """
        lease = self.try_acquire(session_id)
        if lease is not None:
            return lease
        import asyncio

        loop = asyncio.get_running_loop()
        future: asyncio.Future[Lease] = loop.create_future()

        def deliver(lease: Optional[Lease], error: Optional[BaseException]) -> None:
            # Runs on herd's bridge thread, with the GIL.
            try:
                loop.call_soon_threadsafe(_resolve, future, lease, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                if lease is not None:
                    lease.release()

        task = self._start_acquire(session_id, timeout, deliver)
        try:
            return await future
        except BaseException:
            task.cancel()
            raise

    @contextlib.asynccontextmanager
    async def session(self, session_id: str, timeout: Optional[float] = None) -> AsyncIterator["Lease"]:
        """``async with pool.session(id) as lease:`` acquires a lease with
        :meth:`acquire_async` and releases it when the block ends."""
        lease = await self.acquire_async(session_id, timeout)
        try:
            yield lease
        finally:
            lease.release()

    async def shutdown_async(self, grace: Optional[float] = None) -> None:
        """:meth:`shutdown` without blocking the event loop."""
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, self.shutdown, grace)

    async def __aenter__(self) -> "Pool":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.shutdown_async()


def _resolve(future: "asyncio.Future[Lease]", lease: Optional["Lease"], error: Optional[BaseException]) -> None:
    """Completes an ``acquire_async`` future on its loop."""
    if future.done():  # cancelled meanwhile: give the lease back
        if lease is not None:
            lease.release()
    elif error is not None:
        future.set_exception(error)
    else:
        future.set_result(lease)
