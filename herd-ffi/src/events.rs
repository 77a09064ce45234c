//! Session-end callbacks: how a C function pointer and its `userdata`
//! become a core `on_session_end` callback, and how `herd_pool_free` knows
//! that no callback runs any more.
//!
//! # Concurrency
//! Callbacks run on the pool's event thread (herd-core guarantees it is
//! never a runtime thread and never holds a pool lock, so a callback may
//! call back into herd). Each pool has a [`Gate`]: a callback runs under
//! its read lock and only while it is open; `herd_pool_free` closes it and
//! then takes the write lock, so once it returns no callback is running and
//! none will start.
//!
//! `userdata` is shared by the config and every pool made from it, through
//! an `Arc<Registration>`; the finalizer runs when the last of them lets go
//! (see [`Registration`]'s `Drop`).

use std::cell::Cell;
use std::ffi::{CString, c_char, c_int, c_uint, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use herd_core::{EndReason, SessionEnd};
use parking_lot::RwLock;

/// Why a session ended. Numbers are stable and never reused.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum herd_end_reason_t {
    /// `herd_end_session` was called.
    HERD_END_ENDED = 1,
    /// The session had no open lease and no activity for the pool's TTL.
    HERD_END_IDLE_TIMEOUT = 2,
    /// The session reached the pool's maximum session lifetime.
    HERD_END_MAX_LIFETIME = 3,
    /// The worker exited on its own (crash, OOM kill, `kill -9`); see
    /// `exit_code` and `signal`.
    HERD_END_CRASHED = 4,
    /// The worker failed the configured number of health checks in a row.
    HERD_END_UNHEALTHY = 5,
    /// The pool shut down.
    HERD_END_SHUTDOWN = 6,
}

impl herd_end_reason_t {
    fn from_core(reason: &EndReason) -> Self {
        match reason {
            EndReason::Ended => herd_end_reason_t::HERD_END_ENDED,
            EndReason::IdleTimeout => herd_end_reason_t::HERD_END_IDLE_TIMEOUT,
            EndReason::MaxLifetime => herd_end_reason_t::HERD_END_MAX_LIFETIME,
            EndReason::Crashed { .. } => herd_end_reason_t::HERD_END_CRASHED,
            EndReason::Unhealthy => herd_end_reason_t::HERD_END_UNHEALTHY,
            EndReason::Shutdown => herd_end_reason_t::HERD_END_SHUTDOWN,
        }
    }
}

/// The stable name of an end reason (`"crashed"`, `"idle_timeout"`...), or
/// `"unknown"` for a number herd does not know. Static. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn herd_end_reason_str(reason: c_uint) -> *const c_char {
    let name = match reason {
        1 => c"ended",
        2 => c"idle_timeout",
        3 => c"max_lifetime",
        4 => c"crashed",
        5 => c"unhealthy",
        6 => c"shutdown",
        _ => c"unknown",
    };
    name.as_ptr()
}

/// A session that ended, as passed to a `herd_session_end_callback_t`.
///
/// Owned by herd and valid only during the callback: copy what you need.
/// herd may add fields at the end; never allocate this struct yourself.
#[repr(C)]
#[derive(Debug)]
pub struct herd_session_end_t {
    /// The session ID, NUL-terminated.
    pub session_id: *const c_char,
    /// The worker the session was bound to (the `N` in herd's `wN`).
    pub worker_id: u64,
    /// That worker's process ID, or 0 if it has none.
    pub pid: u32,
    /// Why the session ended.
    pub reason: herd_end_reason_t,
    /// For `HERD_END_CRASHED`: the worker's exit code, or -1 if a signal
    /// killed it. -1 for every other reason.
    pub exit_code: c_int,
    /// For `HERD_END_CRASHED`: the signal that killed the worker (9 for
    /// `kill -9`), or 0. 0 for every other reason.
    pub signal: c_int,
    /// How long the session was bound, in milliseconds.
    pub duration_ms: u64,
}

/// Called when a session ends, on the pool's event thread (one thread per
/// pool, never the caller's). `end` is valid only during the call.
///
/// The callback may call any herd function on any pool, blocking ones
/// included: it runs outside every pool lock. While it runs, later events of
/// that pool wait, so keep it short.
#[allow(non_camel_case_types)]
pub type herd_session_end_callback_t =
    Option<unsafe extern "C" fn(userdata: *mut c_void, end: *const herd_session_end_t)>;

/// Frees a callback's `userdata` once herd no longer needs it.
#[allow(non_camel_case_types)]
pub type herd_userdata_free_t = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// A C callback, its `userdata` and the finalizer for it.
pub(crate) struct Registration {
    callback: unsafe extern "C" fn(*mut c_void, *const herd_session_end_t),
    userdata: *mut c_void,
    free_userdata: herd_userdata_free_t,
}

// SAFETY: the header states that `userdata` is used on herd's event thread
// and freed on whichever thread lets go of it last; the caller promises
// that this is safe for their data.
unsafe impl Send for Registration {}
// SAFETY: as above; herd itself never touches `userdata`.
unsafe impl Sync for Registration {}

impl Registration {
    pub(crate) fn new(
        callback: unsafe extern "C" fn(*mut c_void, *const herd_session_end_t),
        userdata: *mut c_void,
        free_userdata: herd_userdata_free_t,
    ) -> Arc<Registration> {
        Arc::new(Registration { callback, userdata, free_userdata })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(free) = self.free_userdata {
            let userdata = self.userdata;
            // SAFETY: the caller gave us this finalizer for this pointer,
            // and this is the one time it is called.
            let outcome = std::panic::catch_unwind(|| unsafe { free(userdata) });
            if outcome.is_err() {
                tracing::error!("a herd userdata finalizer unwound; ignored");
            }
        }
    }
}

/// Lets callbacks run until the pool is freed.
struct Gate {
    open: AtomicBool,
    running: RwLock<()>,
}

thread_local! {
    /// The gate of the pool whose callback this thread is running, if any.
    static DISPATCHING: Cell<*const Gate> = const { Cell::new(std::ptr::null()) };
}

/// The part of the callback wiring that `herd_pool_free` keeps.
pub(crate) struct Dispatcher {
    gate: Arc<Gate>,
    /// Disconnects when the core drops the callback closure — when the
    /// pool's event thread has delivered its last event.
    finished: mpsc::Receiver<()>,
}

/// What the core's callback closure owns.
struct Delivery {
    registration: Option<Arc<Registration>>,
    gate: Arc<Gate>,
    finished: Option<mpsc::SyncSender<()>>,
}

impl Drop for Delivery {
    fn drop(&mut self) {
        // The finalizer (if this was the last holder) runs before
        // `herd_pool_free` is told that delivery is over.
        drop(self.registration.take());
        drop(self.finished.take());
    }
}

impl Delivery {
    fn deliver(&self, end: &SessionEnd) {
        let Some(registration) = &self.registration else { return };
        let _running = self.gate.running.read();
        if !self.gate.open.load(Ordering::Acquire) {
            return;
        }
        let Ok(session_id) = CString::new(end.session.as_bytes()) else {
            tracing::error!(session = %end.session, "session ID with a NUL byte; callback skipped");
            return;
        };
        let status = end.reason.exit_status();
        let c_end = herd_session_end_t {
            session_id: session_id.as_ptr(),
            worker_id: end.worker.0,
            pid: end.pid.unwrap_or(0),
            reason: herd_end_reason_t::from_core(&end.reason),
            exit_code: status.and_then(|s| s.code()).unwrap_or(-1),
            signal: status.and_then(|s| s.signal()).unwrap_or(0),
            duration_ms: u64::try_from(end.duration.as_millis()).unwrap_or(u64::MAX),
        };
        let previous = DISPATCHING.with(|d| d.replace(Arc::as_ptr(&self.gate)));
        // SAFETY: the caller registered this function for this userdata;
        // `c_end` and the string it points to outlive the call.
        unsafe { (registration.callback)(registration.userdata, &c_end) };
        DISPATCHING.with(|d| d.set(previous));
    }
}

/// Wires `registration` into a core callback; returns the callback for
/// `PoolBuilder::on_session_end` and the [`Dispatcher`] the pool keeps.
pub(crate) fn wire(
    registration: Arc<Registration>,
) -> (impl Fn(&SessionEnd) + Send + Sync + 'static, Dispatcher) {
    let gate = Arc::new(Gate { open: AtomicBool::new(true), running: RwLock::new(()) });
    let (finished_tx, finished_rx) = mpsc::sync_channel(1);
    let delivery =
        Delivery { registration: Some(registration), gate: gate.clone(), finished: Some(finished_tx) };
    (move |end: &SessionEnd| delivery.deliver(end), Dispatcher { gate, finished: finished_rx })
}

/// How long `herd_pool_free` waits for the event thread to finish once the
/// pool is shut down. It finishes in milliseconds unless a lease is still
/// open (the thread lives as long as the pool's state does) or callbacks
/// are slow; then the remaining callbacks are dropped instead.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

impl Dispatcher {
    /// Whether this thread is running a callback of this pool right now.
    pub(crate) fn on_callback_thread(&self) -> bool {
        DISPATCHING.with(|d| std::ptr::eq(d.get(), Arc::as_ptr(&self.gate)))
    }

    /// Called by `herd_pool_free` after the pool is shut down and dropped:
    /// waits for the callbacks already queued (those of the shutdown
    /// included), then makes sure none runs again.
    pub(crate) fn finish(self) {
        if self.on_callback_thread() {
            // Freed from its own callback: waiting for the event thread
            // would wait for ourselves. Stop later deliveries; the running
            // one is ours.
            self.gate.open.store(false, Ordering::Release);
            return;
        }
        if self.finished.recv_timeout(DRAIN_LIMIT) == Err(mpsc::RecvTimeoutError::Timeout) {
            tracing::warn!(
                "herd_pool_free: the pool's event thread is still running after {DRAIN_LIMIT:?} \
                 (a lease still open?); later session-end callbacks are dropped"
            );
        }
        self.gate.open.store(false, Ordering::Release);
        drop(self.gate.running.write());
    }

    /// For a pool freed in a forked child: the event thread belongs to the
    /// parent, and the gate's lock may have been held there at the fork.
    pub(crate) fn abandon(self) {
        std::mem::forget(self);
    }
}
