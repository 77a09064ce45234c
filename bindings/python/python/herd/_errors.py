"""The exceptions herd raises.

Every error is a :class:`HerdError`; its subclass says what went wrong
(the core's ``ErrorKind``), ``str(error)`` is the core's message, and the
underlying causes (an ``OSError`` from a failed system call, say) are
chained as ``__cause__``. Where a built-in exception means the same thing,
the class also derives from it: ``AcquireTimeout`` is a ``TimeoutError``,
``InvalidSessionId`` and ``InvalidConfig`` are ``ValueError``\\ s.
"""

from __future__ import annotations


class HerdError(Exception):
    """Base class of every herd error."""

    #: Stable machine-readable name of the error kind (``"acquire_timeout"``).
    kind: str = "internal"
    #: Whether the same call may succeed if tried again later.
    retryable: bool = False


class InvalidSessionId(HerdError, ValueError):
    """The session ID is empty, longer than 256 bytes, or contains control
    characters."""

    kind = "invalid_session_id"


class InvalidConfig(HerdError, ValueError):
    """A ``Pool`` argument is out of range or inconsistent (``min > max``,
    an empty command, a negative duration...). The message names it."""

    kind = "invalid_config"


class AcquireTimeout(HerdError, TimeoutError):
    """No worker became available for the session within the timeout."""

    kind = "acquire_timeout"
    retryable = True


class PoolExhausted(HerdError):
    """Every worker is bound and the wait queue (``max_queue``) is full."""

    kind = "pool_exhausted"
    retryable = True


class PoolClosed(HerdError):
    """The pool is shutting down or was shut down."""

    kind = "pool_closed"


class SpawnError(HerdError):
    """A worker could not be started: missing program, exited during start
    (the message quotes its last output), never became ready..."""

    kind = "spawn_failed"
    retryable = True


class SandboxError(HerdError):
    """The sandbox was required but the host cannot provide it."""

    kind = "sandbox"


class ForkedError(HerdError):
    """The pool was created before ``os.fork()`` and used in the child.
    Create a new pool in the child process instead."""

    kind = "forked"


class WorkerUnavailable(HerdError):
    """The worker serving the session is gone or unreachable."""

    kind = "worker_unavailable"
    retryable = True


class IoError(HerdError):
    """An operating-system call failed; the ``OSError`` is the cause."""

    kind = "io"


class InternalError(HerdError):
    """A bug in herd. Please report it."""

    kind = "internal"


__all__ = [
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
]
