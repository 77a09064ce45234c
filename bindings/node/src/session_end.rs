//! `onSessionEnd`: the pool's session-end callback, delivered to JavaScript.
//!
//! The core calls session-end callbacks on its own event thread. The
//! JavaScript function is wrapped in a *weak* (unref'd) threadsafe function:
//! a pending call runs on the JavaScript thread, but the callback never keeps
//! Node's event loop alive by itself, so a script that closes its pool exits.
//!
//! An exception thrown by the callback is not swallowed: napi-rs hands it to
//! Node as an uncaught exception (`process.on('uncaughtException')`), as for
//! an exception thrown from a timer callback.

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

/// A session that ended, and why (the argument of `onSessionEnd`).
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct SessionEnd {
    /// The session ID.
    pub session_id: String,
    /// The worker it was bound to (`"w3"`).
    pub worker_id: String,
    /// That worker's PID.
    pub pid: Option<u32>,
    /// Why it ended: `pool.endSession` (`ended`), the idle `ttlMs`
    /// (`idle_timeout`), `maxSessionLifetimeMs` (`max_lifetime`), its
    /// worker exited (`crashed`), failed health checks (`unhealthy`), or the
    /// pool closed (`shutdown`).
    #[napi(ts_type = "'ended' | 'idle_timeout' | 'max_lifetime' | 'crashed' | 'unhealthy' | 'shutdown'")]
    pub reason: String,
    /// For `crashed`: the worker's exit code, if it exited.
    pub exit_code: Option<i32>,
    /// For `crashed`: the signal that killed the worker (`"SIGKILL"`).
    pub signal: Option<String>,
    /// How long the session was bound, in milliseconds.
    pub duration_ms: f64,
}

impl From<&herd_core::SessionEnd> for SessionEnd {
    fn from(end: &herd_core::SessionEnd) -> Self {
        let status = end.reason.exit_status();
        SessionEnd {
            session_id: end.session.to_string(),
            worker_id: end.worker.to_string(),
            pid: end.pid,
            reason: end.reason.as_str().to_string(),
            exit_code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()).map(herd_core::process::signal_name),
            duration_ms: end.duration.as_secs_f64() * 1000.0,
        }
    }
}

type Callback = ThreadsafeFunction<SessionEnd, (), SessionEnd, Status, false, true>;

/// A core `on_session_end` callback that calls `function` on the
/// JavaScript thread.
pub(crate) fn forward(
    function: &Function<'_, SessionEnd, ()>,
) -> Result<impl Fn(&herd_core::SessionEnd) + Send + Sync + 'static> {
    let tsfn: Callback =
        function.build_threadsafe_function().weak::<true>().callee_handled::<false>().build()?;
    Ok(move |end: &herd_core::SessionEnd| {
        // NonBlocking: the event thread never waits for JavaScript. The queue
        // is unbounded, so a busy event loop delays callbacks, never drops them.
        let _ = tsfn.call(SessionEnd::from(end), ThreadsafeFunctionCallMode::NonBlocking);
    })
}
