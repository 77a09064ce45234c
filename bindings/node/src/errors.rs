//! herd errors as JavaScript `Error`s with a stable `code`.
//!
//! Every herd error reaches JavaScript as a plain `Error` whose `code` is
//! `HERD_` followed by the upper-cased [`herd_core::ErrorKind`] name
//! (`HERD_ACQUIRE_TIMEOUT`...), with two more properties: `retryable` (the
//! same call may succeed later) and `origin` (`"caller"`, `"worker"` or
//! `"herd"`). The message carries the whole cause chain.
//!
//! The error objects are built on the JavaScript thread and handed to napi-rs
//! as the exact value to throw or reject with, so the `code` survives both
//! synchronous throws and promise rejections.

use herd_core::{Error as HerdError, ErrorKind, Origin};
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// The `code` of every error herd raises (`err.code`). One per kind of
/// failure; the values never change meaning.
#[napi(string_enum)]
pub enum ErrorCode {
    /// The session ID is not a string, is empty, longer than 256 bytes, or
    /// contains control characters.
    #[napi(value = "HERD_INVALID_SESSION_ID")]
    InvalidSessionId,
    /// An option is out of range or inconsistent (`min > max`...); the
    /// message names it.
    #[napi(value = "HERD_INVALID_CONFIG")]
    InvalidConfig,
    /// No worker became available for a new session in time.
    #[napi(value = "HERD_ACQUIRE_TIMEOUT")]
    AcquireTimeout,
    /// Every worker is bound and the wait queue (`maxQueue`) is full.
    #[napi(value = "HERD_POOL_EXHAUSTED")]
    PoolExhausted,
    /// The pool is closed or closing.
    #[napi(value = "HERD_POOL_CLOSED")]
    PoolClosed,
    /// A worker could not be started (missing program, exited during start,
    /// never became ready); the message has the worker's last output.
    #[napi(value = "HERD_SPAWN_FAILED")]
    SpawnFailed,
    /// The sandbox was required but the host cannot provide it.
    #[napi(value = "HERD_SANDBOX")]
    Sandbox,
    /// The pool was created before `fork()` and used in the child.
    #[napi(value = "HERD_FORKED")]
    Forked,
    /// The worker serving the session is gone or unreachable.
    #[napi(value = "HERD_WORKER_UNAVAILABLE")]
    WorkerUnavailable,
    /// An operating-system call failed.
    #[napi(value = "HERD_IO")]
    Io,
    /// A bug in herd. Please report it.
    #[napi(value = "HERD_INTERNAL")]
    Internal,
}

/// The `code` of errors of `kind`: `HERD_` and the kind's stable name.
pub(crate) fn code(kind: ErrorKind) -> String {
    format!("HERD_{}", kind.as_str().to_ascii_uppercase())
}

fn origin(origin: Origin) -> &'static str {
    match origin {
        Origin::Caller => "caller",
        Origin::Worker => "worker",
        Origin::Herd => "herd",
    }
}

/// A JavaScript `Error` for `error`, ready to throw or reject with.
///
/// Call on the JavaScript thread only (it builds a JavaScript object).
pub(crate) fn to_js(env: &Env, error: &HerdError) -> Error {
    let message = format!("{error:#}");
    let built = build(env, &code(error.kind()), &message, |object| {
        object.set_named_property("retryable", error.is_retryable())?;
        object.set_named_property("origin", origin(error.kind().origin()))
    });
    // If even building the error object failed, napi-rs still throws an
    // `Error` with the message; only the extra properties are lost.
    built.unwrap_or_else(|_| Error::new(Status::GenericFailure, message))
}

/// An invalid-configuration error naming the option (`what`) in the
/// caller's terms.
pub(crate) fn invalid_config(env: &Env, what: impl Into<String>) -> Error {
    to_js(env, &HerdError::new(ErrorKind::InvalidConfig, what))
}

/// An invalid-session-ID error.
pub(crate) fn invalid_session_id(env: &Env, what: impl Into<String>) -> Error {
    to_js(env, &HerdError::new(ErrorKind::InvalidSessionId, what))
}

/// The error of a call made after `close()`.
pub(crate) fn closed() -> HerdError {
    HerdError::new(ErrorKind::PoolClosed, "the pool is closed (pool.close() was called)")
}

/// Node's error for an aborted operation: `name` `AbortError`, `code`
/// `ABORT_ERR` (as `fetch`, `timers/promises` and `events.once` use), with
/// the signal's `reason` as `cause`.
pub(crate) fn aborted(env: &Env, message: &str, reason: Option<Unknown<'_>>) -> Error {
    let built = build(env, "ABORT_ERR", message, |object| {
        object.set_named_property("name", "AbortError")?;
        if let Some(reason) = reason {
            object.set_named_property("cause", reason)?;
        }
        Ok(())
    });
    built.unwrap_or_else(|_| Error::new(Status::Cancelled, message.to_string()))
}

/// Builds `new Error(message)` with `code`, lets `decorate` add properties,
/// and wraps it so napi-rs throws or rejects with this exact object.
fn build(
    env: &Env,
    code: &str,
    message: &str,
    decorate: impl FnOnce(&mut Object<'_>) -> Result<()>,
) -> Result<Error> {
    let plain: Error<String> = Error::new(code.to_string(), message.to_string());
    // SAFETY: `env` is the live environment of the current (JavaScript) thread.
    let raw = unsafe { JsError::from(plain).into_value(env.raw()) };
    if raw.is_null() {
        return Err(Error::new(Status::GenericFailure, "cannot create an Error object"));
    }
    let mut object = Object::from_raw(env.raw(), raw);
    decorate(&mut object)?;
    // SAFETY: `raw` is a live value created just above in this scope.
    let value = unsafe { Unknown::from_raw_unchecked(env.raw(), raw) };
    Ok(Error::from(value))
}
