//! Status codes and the per-thread error message.
//!
//! Every fallible call returns a [`herd_status_t`]; the message that goes
//! with a failure is kept per thread and read with
//! [`herd_last_error_message`]. The numbers `1..=11` are
//! `herd_core::ErrorKind`'s own stable numbers; the C layer's own statuses
//! start at 100. A number is never reused.

use std::cell::RefCell;
use std::ffi::{CString, c_char, c_uint};

use herd_core::ErrorKind;

/// The result of every fallible herd call. `HERD_STATUS_OK` (0) is
/// success; anything else is a failure, described further by
/// `herd_last_error_message()`. Numbers are stable and never reused; new
/// ones may be added, so keep a `default:` branch when switching on them.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum herd_status_t {
    /// Success.
    HERD_STATUS_OK = 0,
    /// The session ID is empty, longer than `HERD_MAX_SESSION_ID_LEN` bytes,
    /// or contains control characters.
    HERD_STATUS_INVALID_SESSION_ID = 1,
    /// A configuration value is out of range or inconsistent (the message
    /// names the setting), or no worker command was set.
    HERD_STATUS_INVALID_CONFIG = 2,
    /// No worker became available for a new session within the timeout.
    /// Retrying later may succeed.
    HERD_STATUS_ACQUIRE_TIMEOUT = 3,
    /// Every worker is bound and the wait queue is full. Retrying later may
    /// succeed.
    HERD_STATUS_POOL_EXHAUSTED = 4,
    /// The pool is shut down (`herd_pool_shutdown`).
    HERD_STATUS_POOL_CLOSED = 5,
    /// A worker could not be started: missing program, exited during start,
    /// not ready in time. The message carries the worker's last output.
    HERD_STATUS_SPAWN_FAILED = 6,
    /// The sandbox was required but this host cannot provide it.
    HERD_STATUS_SANDBOX = 7,
    /// The pool was created before `fork()` and used in the child. A forked
    /// child must create its own pool.
    HERD_STATUS_FORKED = 8,
    /// The worker serving the session is gone or unreachable.
    HERD_STATUS_WORKER_UNAVAILABLE = 9,
    /// An operating-system call failed.
    HERD_STATUS_IO = 10,
    /// A bug in herd. Please report it with the message.
    HERD_STATUS_INTERNAL = 11,
    /// An argument is unusable: a NULL pointer where one is required, a
    /// string that is not valid UTF-8, a size that is too small. The message
    /// names the argument.
    HERD_STATUS_INVALID_ARGUMENT = 100,
    /// herd panicked inside this call; the panic was caught at the C
    /// boundary. The pool stays usable; please report the message.
    HERD_STATUS_PANIC = 101,
    /// The proxy was stopped with `herd_proxy_stop`; only
    /// `herd_proxy_free` may be called on it now.
    HERD_STATUS_PROXY_STOPPED = 102,
}

use herd_status_t::*;

impl herd_status_t {
    /// The status for a core error kind. Kinds added to the core later map
    /// to `HERD_STATUS_INTERNAL` until they get their own status here.
    pub(crate) fn from_kind(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidSessionId => HERD_STATUS_INVALID_SESSION_ID,
            ErrorKind::InvalidConfig => HERD_STATUS_INVALID_CONFIG,
            ErrorKind::AcquireTimeout => HERD_STATUS_ACQUIRE_TIMEOUT,
            ErrorKind::PoolExhausted => HERD_STATUS_POOL_EXHAUSTED,
            ErrorKind::PoolClosed => HERD_STATUS_POOL_CLOSED,
            ErrorKind::SpawnFailed => HERD_STATUS_SPAWN_FAILED,
            ErrorKind::Sandbox => HERD_STATUS_SANDBOX,
            ErrorKind::Forked => HERD_STATUS_FORKED,
            ErrorKind::WorkerUnavailable => HERD_STATUS_WORKER_UNAVAILABLE,
            ErrorKind::Io => HERD_STATUS_IO,
            ErrorKind::Internal => HERD_STATUS_INTERNAL,
            _ => HERD_STATUS_INTERNAL,
        }
    }

    fn from_number(n: c_uint) -> Option<Self> {
        const ALL: [herd_status_t; 15] = [
            HERD_STATUS_OK,
            HERD_STATUS_INVALID_SESSION_ID,
            HERD_STATUS_INVALID_CONFIG,
            HERD_STATUS_ACQUIRE_TIMEOUT,
            HERD_STATUS_POOL_EXHAUSTED,
            HERD_STATUS_POOL_CLOSED,
            HERD_STATUS_SPAWN_FAILED,
            HERD_STATUS_SANDBOX,
            HERD_STATUS_FORKED,
            HERD_STATUS_WORKER_UNAVAILABLE,
            HERD_STATUS_IO,
            HERD_STATUS_INTERNAL,
            HERD_STATUS_INVALID_ARGUMENT,
            HERD_STATUS_PANIC,
            HERD_STATUS_PROXY_STOPPED,
        ];
        ALL.into_iter().find(|s| *s as c_uint == n)
    }

    /// The stable lower-case name, NUL-terminated.
    fn name(self) -> &'static std::ffi::CStr {
        match self {
            HERD_STATUS_OK => c"ok",
            HERD_STATUS_INVALID_SESSION_ID => c"invalid_session_id",
            HERD_STATUS_INVALID_CONFIG => c"invalid_config",
            HERD_STATUS_ACQUIRE_TIMEOUT => c"acquire_timeout",
            HERD_STATUS_POOL_EXHAUSTED => c"pool_exhausted",
            HERD_STATUS_POOL_CLOSED => c"pool_closed",
            HERD_STATUS_SPAWN_FAILED => c"spawn_failed",
            HERD_STATUS_SANDBOX => c"sandbox",
            HERD_STATUS_FORKED => c"forked",
            HERD_STATUS_WORKER_UNAVAILABLE => c"worker_unavailable",
            HERD_STATUS_IO => c"io",
            HERD_STATUS_INTERNAL => c"internal",
            HERD_STATUS_INVALID_ARGUMENT => c"invalid_argument",
            HERD_STATUS_PANIC => c"panic",
            HERD_STATUS_PROXY_STOPPED => c"proxy_stopped",
        }
    }
}

/// A failed call: its status and a message in the caller's terms.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: herd_status_t,
    pub message: String,
}

impl Failure {
    pub(crate) fn new(status: herd_status_t, message: impl Into<String>) -> Self {
        Failure { status, message: message.into() }
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Failure::new(HERD_STATUS_INVALID_ARGUMENT, message)
    }
}

impl From<herd_core::Error> for Failure {
    fn from(error: herd_core::Error) -> Self {
        Failure { status: herd_status_t::from_kind(error.kind()), message: error.full_message() }
    }
}

thread_local! {
    /// The message of the last failed call on this thread. `None` after a
    /// successful call.
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Records `message` as this thread's last error.
pub(crate) fn set_last_error(message: String) {
    // A message cannot carry a NUL into C; replace any (from worker output,
    // say) rather than lose the message.
    let message = CString::new(message).unwrap_or_else(|e| {
        let cleaned: Vec<u8> = e.into_vec().into_iter().map(|b| if b == 0 { b'?' } else { b }).collect();
        CString::new(cleaned).unwrap_or_default()
    });
    LAST_ERROR.with(|slot| *slot.borrow_mut() = Some(message));
}

/// Forgets this thread's last error (a call succeeded).
#[inline]
pub(crate) fn clear_last_error() {
    LAST_ERROR.with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut()
            && slot.is_some()
        {
            *slot = None;
        }
    });
}

/// Turns a call's outcome into its status, recording the message of a
/// failure as `"<function>: <message>"`.
#[inline]
pub(crate) fn finish(function: &str, outcome: Result<(), Failure>) -> herd_status_t {
    match outcome {
        Ok(()) => {
            clear_last_error();
            HERD_STATUS_OK
        }
        Err(failure) => {
            set_last_error(format!("{function}: {}", failure.message));
            failure.status
        }
    }
}

/// The message of the most recent failed call on this thread, e.g.
/// `"herd_acquire: no worker became available for session \"a\" within 50ms
/// (...)"`, or `""` if the most recent call that returns a `herd_status_t`
/// succeeded.
///
/// The string is owned by herd and stays valid until the next call on this
/// thread that returns a `herd_status_t`. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn herd_last_error_message() -> *const c_char {
    let outcome = std::panic::catch_unwind(|| {
        LAST_ERROR.with(|slot| match slot.try_borrow() {
            Ok(slot) => slot.as_ref().map_or(c"".as_ptr(), |m| m.as_ptr()),
            Err(_) => c"".as_ptr(),
        })
    });
    outcome.unwrap_or(c"".as_ptr())
}

/// The stable name of a status (`"acquire_timeout"`), or `"unknown"` for a
/// number herd does not know. Takes any integer so that a value from a
/// newer herd is safe to pass. The string is static. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn herd_status_str(status: c_uint) -> *const c_char {
    herd_status_t::from_number(status).map_or(c"unknown".as_ptr(), |s| s.name().as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_kinds_keep_their_numbers() {
        let kinds = [
            ErrorKind::InvalidSessionId,
            ErrorKind::InvalidConfig,
            ErrorKind::AcquireTimeout,
            ErrorKind::PoolExhausted,
            ErrorKind::PoolClosed,
            ErrorKind::SpawnFailed,
            ErrorKind::Sandbox,
            ErrorKind::Forked,
            ErrorKind::WorkerUnavailable,
            ErrorKind::Io,
            ErrorKind::Internal,
        ];
        for kind in kinds {
            let status = herd_status_t::from_kind(kind);
            assert_eq!(status as u32, kind as u32, "{kind:?}");
            // The C name is the core's name.
            assert_eq!(status.name().to_str().unwrap(), kind.as_str());
        }
    }

    #[test]
    fn every_number_round_trips_and_unknown_is_named() {
        for n in 0..200 {
            if let Some(status) = herd_status_t::from_number(n) {
                assert_eq!(status as c_uint, n);
            }
        }
        let name = unsafe { std::ffi::CStr::from_ptr(herd_status_str(9999)) };
        assert_eq!(name.to_str().unwrap(), "unknown");
    }
}
