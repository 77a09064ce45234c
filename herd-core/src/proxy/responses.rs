//! Responses herd writes itself, when no worker answers a request.
//!
//! | cause | status |
//! |---|---|
//! | no session ID, or an invalid one | `400` |
//! | no worker within the acquire timeout; wait queue full | `503` + `Retry-After` |
//! | the pool is shutting down | `503` + `Retry-After`, connection closed |
//! | the session's worker failed to start (`SpawnFailed`) | `502`: the worker program is at fault, as when a running worker refuses |
//! | the worker refused or reset the connection | `502` |
//! | anything else (a bug in herd, `fork()` misuse) | `500` |
//!
//! Bodies are one short `text/plain` line; the detail that would help an
//! operator (worker ID, address, OS error) goes to the log instead when it
//! names internals.

use http::{HeaderValue, Response, StatusCode, header};

use super::body::ProxyBody;
use super::metrics::Rejected;
use crate::error::{Error, ErrorKind};

/// A plain-text response.
pub(crate) fn text(status: StatusCode, message: impl Into<String>) -> Response<ProxyBody> {
    let mut body = message.into();
    body.push('\n');
    let mut resp = Response::new(ProxyBody::full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// `503` with `Retry-After`.
pub(crate) fn unavailable(message: impl Into<String>, retry_after_secs: u64) -> Response<ProxyBody> {
    let mut resp = text(StatusCode::SERVICE_UNAVAILABLE, message);
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    resp
}

/// The response for an acquire that failed, and why, for metrics.
pub(crate) fn acquire_failed(error: &Error, retry_after_secs: u64) -> (Response<ProxyBody>, Rejected) {
    match error.kind() {
        ErrorKind::InvalidSessionId => (
            text(StatusCode::BAD_REQUEST, format!("invalid session ID: {}", error.message())),
            Rejected::InvalidSessionId,
        ),
        ErrorKind::AcquireTimeout => (
            unavailable("no worker became free in time for this session; retry later", retry_after_secs),
            Rejected::AcquireTimeout,
        ),
        ErrorKind::PoolExhausted => (
            unavailable("every worker is busy and the wait queue is full; retry later", retry_after_secs),
            Rejected::PoolExhausted,
        ),
        ErrorKind::PoolClosed => {
            let mut resp = unavailable("herd is shutting down", retry_after_secs);
            resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            (resp, Rejected::PoolClosed)
        }
        ErrorKind::SpawnFailed => (
            text(StatusCode::BAD_GATEWAY, "the worker for this session failed to start"),
            Rejected::SpawnFailed,
        ),
        _ => {
            (text(StatusCode::INTERNAL_SERVER_ERROR, "herd could not serve this request"), Rejected::Internal)
        }
    }
}

/// `502` for a worker that refused, reset or broke the connection.
pub(crate) fn worker_unreachable() -> Response<ProxyBody> {
    text(StatusCode::BAD_GATEWAY, "the worker for this session did not answer")
}
