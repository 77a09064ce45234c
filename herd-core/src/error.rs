//! herd's error type: a kind the caller can match on, a message in the
//! caller's terms, and the underlying cause kept as a `source` chain.
//!
//! Errors are cheap to clone (the cause is behind an `Arc`) because one
//! failure — a spawn that failed, say — is delivered to every caller that
//! waited for it.

use std::fmt;
use std::sync::Arc;

/// What went wrong, at the level a caller decides on.
///
/// The numeric values are stable: the C ABI, Python and Node map them to
/// their own status codes and exception types, so a value is never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u32)]
pub enum ErrorKind {
    /// The session ID is empty, longer than [`crate::MAX_SESSION_ID_LEN`]
    /// bytes, or contains control characters.
    InvalidSessionId = 1,
    /// A configuration value is out of range or inconsistent (`min > max`...).
    InvalidConfig = 2,
    /// No worker became available for the session within the timeout.
    AcquireTimeout = 3,
    /// Every worker is bound and the wait queue is full.
    PoolExhausted = 4,
    /// The pool is shutting down or was shut down.
    PoolClosed = 5,
    /// A worker could not be started (missing program, exited during start,
    /// never became ready...).
    SpawnFailed = 6,
    /// The sandbox was required but the host cannot provide it.
    Sandbox = 7,
    /// The pool was created in a parent process and used after `fork()`.
    Forked = 8,
    /// The worker serving the session is gone or unreachable.
    WorkerUnavailable = 9,
    /// An operating-system call failed.
    Io = 10,
    /// A bug in herd. Please report it.
    Internal = 11,
}

/// Which side of herd an error comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The caller passed something herd cannot use.
    Caller,
    /// A worker process misbehaved (did not start, crashed, unreachable).
    Worker,
    /// herd itself or the host it runs on (capacity, OS, shutdown).
    Herd,
}

impl ErrorKind {
    /// A stable, lower-case, machine-readable name (`"acquire_timeout"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidSessionId => "invalid_session_id",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::AcquireTimeout => "acquire_timeout",
            ErrorKind::PoolExhausted => "pool_exhausted",
            ErrorKind::PoolClosed => "pool_closed",
            ErrorKind::SpawnFailed => "spawn_failed",
            ErrorKind::Sandbox => "sandbox",
            ErrorKind::Forked => "forked",
            ErrorKind::WorkerUnavailable => "worker_unavailable",
            ErrorKind::Io => "io",
            ErrorKind::Internal => "internal",
        }
    }

    /// Which side the error comes from.
    pub fn origin(self) -> Origin {
        match self {
            ErrorKind::InvalidSessionId | ErrorKind::InvalidConfig | ErrorKind::Forked => Origin::Caller,
            ErrorKind::SpawnFailed | ErrorKind::WorkerUnavailable => Origin::Worker,
            ErrorKind::AcquireTimeout
            | ErrorKind::PoolExhausted
            | ErrorKind::PoolClosed
            | ErrorKind::Sandbox
            | ErrorKind::Io
            | ErrorKind::Internal => Origin::Herd,
        }
    }

    /// Whether the same call may succeed if tried again later.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::AcquireTimeout
                | ErrorKind::PoolExhausted
                | ErrorKind::SpawnFailed
                | ErrorKind::WorkerUnavailable
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error type of every fallible herd call.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with herd's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message in the caller's terms.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), source: None }
    }

    /// Attaches the underlying cause, kept as the `source()` chain.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the cause chain.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// The message followed by every cause, `": "`-separated.
    pub fn full_message(&self) -> String {
        let mut out = self.message.clone();
        let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(self);
        while let Some(c) = cause {
            out.push_str(": ");
            out.push_str(&c.to_string());
            cause = c.source();
        }
        out
    }

    pub(crate) fn invalid_config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidConfig, message)
    }

    pub(crate) fn io(context: impl Into<String>, err: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, context).with_source(err)
    }

    pub(crate) fn closed() -> Self {
        Error::new(ErrorKind::PoolClosed, "the pool is shut down")
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &self.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() { f.write_str(&self.full_message()) } else { f.write_str(&self.message) }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static))
    }
}
