//! `herd_pool_t`: the pool, its lifecycle, and acquiring sessions.

use std::ffi::c_char;

use herd_core::Pool;

use crate::boundary::{Out, arg_ref, arg_str, status_call, value_call};
use crate::config::{herd_config_t, millis};
use crate::events::{Dispatcher, wire};
use crate::lease::herd_lease_t;
use crate::status::{Failure, herd_status_t};

/// `herd_acquire` timeout meaning "the pool's acquire timeout"
/// (`herd_config_set_acquire_timeout_ms`, default 30 s).
pub const HERD_TIMEOUT_DEFAULT: u64 = 0xFFFF_FFFF_FFFF_FFFF;

/// A session-affine pool of worker processes. Each session ID is bound to
/// its own worker for the session's lifetime: one session → one worker,
/// one worker → at most one session.
///
/// Thread safety: thread-safe. Every function may be called on one pool
/// from many threads at once, except `herd_pool_free`, which must be the
/// last call on it.
pub struct herd_pool_t {
    pool: Pool,
    /// The fork generation the pool was made in; another is a forked child.
    generation: u64,
    dispatcher: Option<Dispatcher>,
}

impl herd_pool_t {
    /// The pool, or `HERD_STATUS_FORKED` in a forked child. For calls the
    /// core does not check itself (stats, shutdown).
    pub(crate) fn checked(&self) -> Result<&Pool, Failure> {
        if crate::fork::is_inherited(self.generation) {
            return Err(Failure::new(
                herd_status_t::HERD_STATUS_FORKED,
                "this pool was created before fork(); a forked child cannot use it \
                 (its threads and workers belong to the parent): create a new pool in the child",
            ));
        }
        Ok(&self.pool)
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }
}

/// Creates a pool from `config` (which is copied: free it whenever you
/// like) and starts its `min` workers in the background; see
/// `herd_pool_wait_ready`. The pool runs its own threads.
///
/// Errors: `HERD_STATUS_INVALID_ARGUMENT` (NULL argument),
/// `HERD_STATUS_INVALID_CONFIG` (a bad setting, named in the message, or no
/// command), `HERD_STATUS_SPAWN_FAILED` (the program does not exist or is
/// not executable), `HERD_STATUS_IO`.
///
/// # Safety
/// `config` is NULL or a live config; `pool_out` is NULL or valid for
/// writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_pool_new(
    config: *const herd_config_t,
    pool_out: *mut *mut herd_pool_t,
) -> herd_status_t {
    status_call("herd_pool_new", || {
        // SAFETY: the caller's contract.
        let config = unsafe { arg_ref(config, "config") }?;
        let out = Out::new(pool_out, "pool_out")?;
        let mut builder = Pool::builder(config.factory()?).config(config.pool.clone());
        let mut dispatcher = None;
        if let Some(registration) = &config.on_session_end {
            let (callback, wired) = wire(registration.clone());
            builder = builder.on_session_end(callback);
            dispatcher = Some(wired);
        }
        let pool = builder.build()?;
        let handle = Box::new(herd_pool_t { pool, generation: crate::fork::generation(), dispatcher });
        // SAFETY: checked non-NULL; the caller's contract.
        unsafe { out.write(Box::into_raw(handle)) };
        Ok(())
    })
}

/// Shuts the pool down if it is not already (as `herd_pool_shutdown` with
/// the config's stop grace), waits until every worker process and its
/// whole tree is gone, then frees the pool. NULL is ignored.
///
/// Release every lease first. When this returns, no session-end callback
/// of this pool is running or will run; the callbacks for sessions ended
/// by the shutdown have been delivered. (With a lease still open herd's
/// event thread lives on: herd_pool_free waits for it at most 10 s, then
/// drops the callbacks not yet delivered. Called from this pool's own
/// callback it cannot wait for that thread at all.)
///
/// In a forked child this only frees the child's copy of the handle: the
/// workers belong to the parent.
///
/// # Safety
/// `pool` is NULL or a pool from `herd_pool_new` not yet freed, and no
/// other thread uses it during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_pool_free(pool: *mut herd_pool_t) {
    value_call("herd_pool_free", (), || {
        if pool.is_null() {
            return;
        }
        // SAFETY: the caller's contract: ours, freed once, no other user.
        let handle = unsafe { Box::from_raw(pool) };
        let herd_pool_t { pool, generation, dispatcher } = *handle;
        if crate::fork::is_inherited(generation) {
            // herd-core leaves the parent's runtime and workers alone.
            drop(pool);
            if let Some(dispatcher) = dispatcher {
                dispatcher.abandon();
            }
            return;
        }
        pool.shutdown_blocking(pool.config().stop_grace);
        drop(pool);
        if let Some(dispatcher) = dispatcher {
            dispatcher.finish();
        }
    })
}

/// Shuts the pool down: waiting and later acquires fail with
/// `HERD_STATUS_POOL_CLOSED`; every session ends (`HERD_END_SHUTDOWN`);
/// every worker gets SIGTERM, up to `grace_ms` to exit, then SIGKILL to its
/// whole process tree. Returns when no worker process is left. Calling it
/// again waits for the first shutdown. The pool stays valid for
/// `herd_stats` until `herd_pool_free`.
///
/// Errors: `HERD_STATUS_INVALID_ARGUMENT`, `HERD_STATUS_FORKED`.
///
/// # Safety
/// `pool` is NULL or a live pool.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_pool_shutdown(pool: *mut herd_pool_t, grace_ms: u64) -> herd_status_t {
    status_call("herd_pool_shutdown", || {
        // SAFETY: the caller's contract.
        let pool = unsafe { arg_ref(pool, "pool") }?.checked()?;
        pool.shutdown_blocking(millis(grace_ms, "grace_ms")?);
        Ok(())
    })
}

/// Waits until at least `min` workers are ready, up to `timeout_ms`.
///
/// Errors: `HERD_STATUS_SPAWN_FAILED` (workers fail to start; the message
/// has the worker's last output), `HERD_STATUS_ACQUIRE_TIMEOUT` (not ready
/// in time), `HERD_STATUS_POOL_CLOSED`, `HERD_STATUS_FORKED`,
/// `HERD_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// `pool` is NULL or a live pool.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_pool_wait_ready(pool: *const herd_pool_t, timeout_ms: u64) -> herd_status_t {
    status_call("herd_pool_wait_ready", || {
        // SAFETY: the caller's contract.
        let pool = unsafe { arg_ref(pool, "pool") }?;
        pool.pool().wait_ready_blocking(millis(timeout_ms, "timeout_ms")?)?;
        Ok(())
    })
}

/// Acquires a lease on `session_id`'s worker, binding the session to a
/// worker if it is new. Release the lease with `herd_release`; the session
/// stays bound to its worker until it ends (`herd_end_session`, TTL,
/// crash...).
///
/// A bound session is served at once on the calling thread (no hop to
/// herd's threads). A new session takes a ready idle worker, else a new
/// worker if below `max`, else waits in a FIFO queue. `timeout_ms` bounds
/// that wait: `HERD_TIMEOUT_DEFAULT` uses the pool's acquire timeout, and
/// 0 never waits (the call fails with `HERD_STATUS_ACQUIRE_TIMEOUT` unless
/// the session is bound or a worker is idle; a worker may still be started
/// for it, so a later try can succeed). Concurrent acquires of one new
/// session make one binding; all get the same worker.
///
/// Errors: `HERD_STATUS_INVALID_ARGUMENT` (NULL or non-UTF-8 argument,
/// `timeout_ms` above `HERD_MAX_DURATION_MS`),
/// `HERD_STATUS_INVALID_SESSION_ID` (empty, longer than
/// `HERD_MAX_SESSION_ID_LEN` bytes, control characters),
/// `HERD_STATUS_ACQUIRE_TIMEOUT`, `HERD_STATUS_POOL_EXHAUSTED`,
/// `HERD_STATUS_POOL_CLOSED`, `HERD_STATUS_SPAWN_FAILED`,
/// `HERD_STATUS_FORKED`.
///
/// # Safety
/// `pool` is NULL or a live pool; `session_id` is NULL or a NUL-terminated
/// string; `lease_out` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_acquire(
    pool: *mut herd_pool_t,
    session_id: *const c_char,
    timeout_ms: u64,
    lease_out: *mut *mut herd_lease_t,
) -> herd_status_t {
    status_call("herd_acquire", || {
        // SAFETY: the caller's contract.
        let (pool, session) = unsafe { (arg_ref(pool, "pool")?, arg_str(session_id, "session_id")?) };
        let out = Out::new(lease_out, "lease_out")?;
        let (generation, pool) = (pool.generation, pool.pool());
        let lease = match timeout_ms {
            0 => pool.try_acquire(session)?.ok_or_else(|| {
                Failure::new(
                    herd_status_t::HERD_STATUS_ACQUIRE_TIMEOUT,
                    format!(
                        "session {session:?} is not bound and no worker is idle, \
                         and timeout_ms = 0 does not wait"
                    ),
                )
            })?,
            HERD_TIMEOUT_DEFAULT => pool.acquire_blocking(session, None)?,
            ms => pool.acquire_blocking(session, Some(millis(ms, "timeout_ms")?))?,
        };
        // SAFETY: checked non-NULL; the caller's contract.
        unsafe { out.write(herd_lease_t::boxed(lease, generation)) };
        Ok(())
    })
}

/// Ends `session_id` now (`HERD_END_ENDED`): with reuse its worker serves
/// the next session once the session's open leases are released; without,
/// the worker is stopped. `*was_bound_out` (if not NULL) tells whether the
/// session was bound. Ending an unknown session is not an error.
///
/// Errors: `HERD_STATUS_INVALID_ARGUMENT`, `HERD_STATUS_INVALID_SESSION_ID`,
/// `HERD_STATUS_FORKED`.
///
/// # Safety
/// `pool` is NULL or a live pool; `session_id` is NULL or a NUL-terminated
/// string; `was_bound_out` is NULL or valid for writing a `bool`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_end_session(
    pool: *mut herd_pool_t,
    session_id: *const c_char,
    was_bound_out: *mut bool,
) -> herd_status_t {
    status_call("herd_end_session", || {
        // SAFETY: the caller's contract.
        let (pool, session) = unsafe { (arg_ref(pool, "pool")?, arg_str(session_id, "session_id")?) };
        let was_bound = pool.pool().end_session(session)?;
        if let Ok(out) = Out::new(was_bound_out, "was_bound_out") {
            // SAFETY: checked non-NULL; the caller's contract.
            unsafe { out.write(was_bound) };
        }
        Ok(())
    })
}
