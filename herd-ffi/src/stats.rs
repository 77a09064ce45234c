//! `herd_stats` and `herd_stats_workers`: snapshots into caller-owned
//! memory. Both structs are versioned by size: the caller passes the size
//! it was compiled with, herd writes the fields it knows, so either side
//! may be newer.

use std::ffi::{c_char, c_uint};
use std::time::{Duration, SystemTime};

use herd_core::{Stats, WorkerState};

use crate::boundary::{Out, arg_ref, status_call};
use crate::pool::herd_pool_t;
use crate::status::{Failure, herd_status_t};

/// The longest session ID herd accepts, in bytes (without the NUL).
pub const HERD_MAX_SESSION_ID_LEN: usize = 256;

/// The size of `herd_worker_stats_t.session_id`: the longest ID and its NUL.
pub const HERD_SESSION_ID_BUF_LEN: usize = 257;

const _: () = assert!(HERD_MAX_SESSION_ID_LEN == herd_core::MAX_SESSION_ID_LEN);
const _: () = assert!(HERD_SESSION_ID_BUF_LEN == HERD_MAX_SESSION_ID_LEN + 1);

/// A snapshot of a pool. Set `size` to `sizeof(herd_stats_t)` before
/// calling `herd_stats`; herd sets it to the number of bytes it filled.
/// Counts of workers, sessions and leases are from one instant; process
/// and host figures are from the last background sample.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct herd_stats_t {
    /// In: `sizeof(herd_stats_t)` as the caller knows it. Out: the bytes
    /// herd filled (fields beyond it were left untouched).
    pub size: usize,
    /// Worker processes, in any state.
    pub workers_total: u64,
    /// Workers starting (not yet ready).
    pub workers_starting: u64,
    /// Ready workers with no session.
    pub workers_idle: u64,
    /// Workers bound to a session.
    pub workers_bound: u64,
    /// Workers whose session ended, waiting for its last leases.
    pub workers_draining: u64,
    /// Workers being stopped.
    pub workers_stopping: u64,
    /// Sessions bound to a worker.
    pub sessions: u64,
    /// `herd_acquire` calls waiting for a worker.
    pub waiting_acquires: u64,
    /// New sessions waiting for a worker.
    pub queued_sessions: u64,
    /// Open leases over all sessions.
    pub open_leases: u64,
    /// The configured `min`.
    pub min: u64,
    /// The configured `max`.
    pub max: u64,
    /// The configured `min_idle`.
    pub min_idle: u64,
    /// The configured `max_queue`.
    pub max_queue: u64,
    /// Since the pool started: workers that became ready.
    pub spawned: u64,
    /// Since the pool started: workers that failed to start.
    pub spawn_failures: u64,
    /// Since the pool started: workers that exited on their own.
    pub crashed: u64,
    /// Since the pool started: workers stopped for failing health checks.
    pub unhealthy: u64,
    /// Since the pool started: workers stopped for recycling or age.
    pub recycled: u64,
    /// Since the pool started: sessions bound to a worker.
    pub sessions_bound: u64,
    /// Since the pool started: sessions ended by `herd_end_session`.
    pub ends_ended: u64,
    /// Since the pool started: sessions ended by idle timeout.
    pub ends_idle_timeout: u64,
    /// Since the pool started: sessions ended at their maximum lifetime.
    pub ends_max_lifetime: u64,
    /// Since the pool started: sessions ended because their worker crashed.
    pub ends_crashed: u64,
    /// Since the pool started: sessions ended because their worker was
    /// unhealthy.
    pub ends_unhealthy: u64,
    /// Since the pool started: sessions ended by shutdown.
    pub ends_shutdown: u64,
    /// Since the pool started: acquires that timed out.
    pub acquire_timeouts: u64,
    /// Since the pool started: acquires refused because the queue was full.
    pub acquires_rejected: u64,
    /// Host memory, from the last sample (0 before the first).
    pub host_memory_total_bytes: u64,
    /// Host memory available, from the last sample.
    pub host_memory_available_bytes: u64,
    /// Share of host CPU time idle between the last two samples, 0.0 to 1.0.
    pub host_cpu_idle: f64,
    /// When the host was last sampled, in milliseconds since the Unix
    /// epoch; 0 before the first sample.
    pub host_sampled_at_ms: u64,
    /// Whether the pool is shut down or shutting down.
    pub closed: bool,
}

/// A worker's lifecycle state. Numbers are stable and never reused.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum herd_worker_state_t {
    /// Starting: not yet ready.
    HERD_WORKER_STARTING = 1,
    /// Ready, with no session.
    HERD_WORKER_IDLE = 2,
    /// Bound to a session.
    HERD_WORKER_BOUND = 3,
    /// Its session ended; waiting for the session's last leases.
    HERD_WORKER_DRAINING = 4,
    /// Being stopped.
    HERD_WORKER_STOPPING = 5,
}

/// The stable name of a worker state (`"bound"`...), or `"unknown"` for a
/// number herd does not know. Static. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn herd_worker_state_str(state: c_uint) -> *const c_char {
    let name = match state {
        1 => c"starting",
        2 => c"idle",
        3 => c"bound",
        4 => c"draining",
        5 => c"stopping",
        _ => c"unknown",
    };
    name.as_ptr()
}

/// One worker, as filled by `herd_stats_workers`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct herd_worker_stats_t {
    /// The worker's ID within its pool (the `N` of `wN`).
    pub worker_id: u64,
    /// Time since the worker was started, in milliseconds.
    pub age_ms: u64,
    /// Resident memory of the worker process, from the last sample; 0 if
    /// not sampled yet.
    pub rss_bytes: u64,
    /// User + system CPU time of the worker process, from the last sample,
    /// in milliseconds.
    pub cpu_time_ms: u64,
    /// The worker's process ID, or 0 while it has none.
    pub pid: u32,
    /// Its lifecycle state.
    pub state: herd_worker_state_t,
    /// Sessions it has served.
    pub sessions_served: u32,
    /// Failed health checks in a row.
    pub health_failures: u32,
    /// Its TCP port on 127.0.0.1, or 0 while it has none.
    pub port: u16,
    /// The bound (or draining) session's ID, NUL-terminated; empty if none.
    pub session_id: [c_char; HERD_SESSION_ID_BUF_LEN],
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn to_c(s: &Stats) -> herd_stats_t {
    let c = &s.counters;
    let ends = &c.sessions_ended;
    let n = |v: usize| v as u64;
    herd_stats_t {
        size: std::mem::size_of::<herd_stats_t>(),
        workers_total: n(s.workers.total),
        workers_starting: n(s.workers.starting),
        workers_idle: n(s.workers.idle),
        workers_bound: n(s.workers.bound),
        workers_draining: n(s.workers.draining),
        workers_stopping: n(s.workers.stopping),
        sessions: n(s.sessions),
        waiting_acquires: n(s.waiting_acquires),
        queued_sessions: n(s.queued_sessions),
        open_leases: s.open_leases,
        min: n(s.min),
        max: n(s.max),
        min_idle: n(s.min_idle),
        max_queue: n(s.max_queue),
        spawned: c.spawned,
        spawn_failures: c.spawn_failures,
        crashed: c.crashed,
        unhealthy: c.unhealthy,
        recycled: c.recycled,
        sessions_bound: c.sessions_bound,
        ends_ended: ends.ended,
        ends_idle_timeout: ends.idle_timeout,
        ends_max_lifetime: ends.max_lifetime,
        ends_crashed: ends.crashed,
        ends_unhealthy: ends.unhealthy,
        ends_shutdown: ends.shutdown,
        acquire_timeouts: c.acquire_timeouts,
        acquires_rejected: c.acquires_rejected,
        host_memory_total_bytes: s.host.memory_total_bytes,
        host_memory_available_bytes: s.host.memory_available_bytes,
        host_cpu_idle: s.host.cpu_idle,
        host_sampled_at_ms: s
            .host
            .sampled_at
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, millis),
        closed: s.closed,
    }
}

fn worker_row(w: &herd_core::stats::WorkerStats) -> herd_worker_stats_t {
    let mut session_id = [0 as c_char; HERD_SESSION_ID_BUF_LEN];
    if let Some(session) = &w.session {
        // Session IDs are at most HERD_MAX_SESSION_ID_LEN bytes; the last
        // byte stays NUL whatever happens.
        for (dst, src) in session_id.iter_mut().zip(session.as_bytes().iter().take(HERD_MAX_SESSION_ID_LEN)) {
            *dst = *src as c_char;
        }
    }
    herd_worker_stats_t {
        worker_id: w.id.0,
        age_ms: millis(w.age),
        rss_bytes: w.rss_bytes.unwrap_or(0),
        cpu_time_ms: w.cpu_time.map_or(0, millis),
        pid: w.pid.unwrap_or(0),
        state: match w.state {
            WorkerState::Starting => herd_worker_state_t::HERD_WORKER_STARTING,
            WorkerState::Idle => herd_worker_state_t::HERD_WORKER_IDLE,
            WorkerState::Bound => herd_worker_state_t::HERD_WORKER_BOUND,
            WorkerState::Draining => herd_worker_state_t::HERD_WORKER_DRAINING,
            WorkerState::Stopping => herd_worker_state_t::HERD_WORKER_STOPPING,
        },
        sessions_served: w.sessions_served,
        health_failures: w.health_failures,
        port: w.address.map_or(0, |a| a.port()),
        session_id,
    }
}

/// Fills `*stats_out` with a snapshot of the pool. Never waits for I/O.
/// Set `stats_out->size = sizeof(herd_stats_t)` first.
///
/// Errors: `HERD_STATUS_INVALID_ARGUMENT` (NULL argument, or `size`
/// smaller than this version's `herd_stats_t`), `HERD_STATUS_FORKED`.
///
/// # Safety
/// `pool` is NULL or a live pool; `stats_out` is NULL or points to
/// `stats_out->size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_stats(pool: *const herd_pool_t, stats_out: *mut herd_stats_t) -> herd_status_t {
    status_call("herd_stats", || {
        // SAFETY: the caller's contract.
        let pool = unsafe { arg_ref(pool, "pool") }?.checked()?;
        let out = Out::new(stats_out, "stats_out")?;
        // Only `size` is read: the rest may be uninitialised.
        // SAFETY: non-NULL (checked by Out::new) and valid (the caller's
        // contract).
        let size = unsafe { std::ptr::addr_of!((*stats_out).size).read_unaligned() };
        let ours = std::mem::size_of::<herd_stats_t>();
        if size < ours {
            return Err(Failure::invalid_argument(format!(
                "stats_out->size is {size}; set it to sizeof(herd_stats_t) ({ours} in this version)"
            )));
        }
        // SAFETY: at least `ours` writable bytes (checked above).
        unsafe { out.write(to_c(&pool.stats())) };
        Ok(())
    })
}

/// Fills `rows` with one row per worker (at most `capacity` rows, each
/// `row_size` bytes apart) and sets `*count_out` to the number of workers,
/// which may exceed `capacity`: then call again with more room. Pass
/// `rows = NULL, capacity = 0` to learn the count.
///
/// Errors: `HERD_STATUS_INVALID_ARGUMENT` (NULL `pool` or `count_out`,
/// NULL `rows` with `capacity` > 0, `row_size` smaller than this version's
/// `herd_worker_stats_t`), `HERD_STATUS_FORKED`.
///
/// # Safety
/// `pool` is NULL or a live pool; `rows` is NULL or points to `capacity`
/// writable rows of `row_size` bytes; `count_out` is NULL or valid for
/// writing a `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_stats_workers(
    pool: *const herd_pool_t,
    rows: *mut herd_worker_stats_t,
    row_size: usize,
    capacity: usize,
    count_out: *mut usize,
) -> herd_status_t {
    status_call("herd_stats_workers", || {
        // SAFETY: the caller's contract.
        let pool = unsafe { arg_ref(pool, "pool") }?.checked()?;
        let count = Out::new(count_out, "count_out")?;
        if capacity > 0 {
            if rows.is_null() {
                return Err(Failure::invalid_argument(format!("rows is NULL but capacity is {capacity}")));
            }
            let ours = std::mem::size_of::<herd_worker_stats_t>();
            if row_size < ours {
                return Err(Failure::invalid_argument(format!(
                    "row_size is {row_size}; pass sizeof(herd_worker_stats_t) ({ours} in this version)"
                )));
            }
        }
        let stats = pool.stats();
        for (i, worker) in stats.worker_rows.iter().take(capacity).enumerate() {
            // SAFETY: `rows` has `capacity` rows of `row_size` bytes (the
            // caller's contract); `i < capacity`. Rows of a newer, larger
            // layout need not be aligned for ours.
            unsafe {
                rows.cast::<u8>()
                    .add(i * row_size)
                    .cast::<herd_worker_stats_t>()
                    .write_unaligned(worker_row(worker))
            };
        }
        // SAFETY: checked non-NULL; the caller's contract.
        unsafe { count.write(stats.worker_rows.len()) };
        Ok(())
    })
}
