//! `pool.stats()`: a snapshot of the pool, in JavaScript's terms.
//!
//! Never waits: counts come from the pool's state and process figures from
//! the last background sample (every `statsIntervalMs`).

use std::time::{Duration, UNIX_EPOCH};

use napi_derive::napi;

/// A snapshot of a pool (`pool.stats()`).
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct Stats {
    /// Workers by state.
    pub workers: WorkerCounts,
    /// Sessions bound to a worker now.
    pub sessions: u32,
    /// `acquire` calls waiting for a worker now (several may wait for one
    /// session).
    pub waiting_acquires: u32,
    /// Sessions waiting for a worker now.
    pub queued_sessions: u32,
    /// Open leases over all sessions.
    pub open_leases: f64,
    /// The configured `min`.
    pub min: u32,
    /// The configured `max`.
    pub max: u32,
    /// The configured `minIdle`.
    pub min_idle: u32,
    /// The configured `maxQueue`.
    pub max_queue: u32,
    /// Totals since the pool started.
    pub counters: Counters,
    /// One row per worker process.
    pub worker_rows: Vec<WorkerRow>,
    /// The host, from the last background sample.
    pub host: HostStats,
    /// Whether the pool is closed (or closing).
    pub closed: bool,
}

/// Workers by lifecycle state.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct WorkerCounts {
    /// Starting, not ready yet.
    pub starting: u32,
    /// Ready and unbound.
    pub idle: u32,
    /// Bound to a session.
    pub bound: u32,
    /// Session ended; waiting for its last leases before reuse.
    pub draining: u32,
    /// Being stopped.
    pub stopping: u32,
    /// All worker processes.
    pub total: u32,
}

/// Totals since the pool started.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct Counters {
    /// Workers that became ready.
    pub spawned: f64,
    /// Workers that failed to start.
    pub spawn_failures: f64,
    /// Workers that exited on their own.
    pub crashed: f64,
    /// Workers stopped after failing health checks.
    pub unhealthy: f64,
    /// Workers stopped for `recycleAfterSessions` or `maxWorkerAgeMs`.
    pub recycled: f64,
    /// Sessions bound to a worker.
    pub sessions_bound: f64,
    /// Sessions ended, by reason.
    pub sessions_ended: SessionsEnded,
    /// Acquires that timed out.
    pub acquire_timeouts: f64,
    /// Acquires refused at once because the queue was full.
    pub acquires_rejected: f64,
}

/// Sessions ended, by reason.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct SessionsEnded {
    pub ended: f64,
    pub idle_timeout: f64,
    pub max_lifetime: f64,
    pub crashed: f64,
    pub unhealthy: f64,
    pub shutdown: f64,
}

/// One worker process.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct WorkerRow {
    /// The worker's ID (`"w3"`).
    pub id: String,
    /// Its PID, once started.
    pub pid: Option<u32>,
    /// `127.0.0.1:port`.
    pub address: Option<String>,
    #[napi(ts_type = "'starting' | 'idle' | 'bound' | 'draining' | 'stopping'")]
    pub state: String,
    /// The session it serves, if bound.
    pub session_id: Option<String>,
    /// Milliseconds since it was started.
    pub age_ms: f64,
    /// Sessions it has served.
    pub sessions_served: u32,
    /// Failed health checks in a row.
    pub health_failures: u32,
    /// Resident memory, from the last sample.
    pub rss_bytes: Option<f64>,
    /// User + system CPU time in milliseconds, from the last sample.
    pub cpu_time_ms: Option<f64>,
}

/// Host memory and CPU, from the last background sample.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct HostStats {
    pub memory_total_bytes: f64,
    pub memory_available_bytes: f64,
    /// Share of CPU time idle between the last two samples, 0 to 1.
    pub cpu_idle: f64,
    /// When the sample was taken (milliseconds since the Unix epoch);
    /// `null` before the first sample.
    pub sampled_at_ms: Option<f64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn n(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl From<herd_core::Stats> for Stats {
    fn from(s: herd_core::Stats) -> Self {
        let w = s.workers;
        let c = s.counters;
        let e = c.sessions_ended;
        Stats {
            workers: WorkerCounts {
                starting: n(w.starting),
                idle: n(w.idle),
                bound: n(w.bound),
                draining: n(w.draining),
                stopping: n(w.stopping),
                total: n(w.total),
            },
            sessions: n(s.sessions),
            waiting_acquires: n(s.waiting_acquires),
            queued_sessions: n(s.queued_sessions),
            open_leases: s.open_leases as f64,
            min: n(s.min),
            max: n(s.max),
            min_idle: n(s.min_idle),
            max_queue: n(s.max_queue),
            counters: Counters {
                spawned: c.spawned as f64,
                spawn_failures: c.spawn_failures as f64,
                crashed: c.crashed as f64,
                unhealthy: c.unhealthy as f64,
                recycled: c.recycled as f64,
                sessions_bound: c.sessions_bound as f64,
                sessions_ended: SessionsEnded {
                    ended: e.ended as f64,
                    idle_timeout: e.idle_timeout as f64,
                    max_lifetime: e.max_lifetime as f64,
                    crashed: e.crashed as f64,
                    unhealthy: e.unhealthy as f64,
                    shutdown: e.shutdown as f64,
                },
                acquire_timeouts: c.acquire_timeouts as f64,
                acquires_rejected: c.acquires_rejected as f64,
            },
            worker_rows: s
                .worker_rows
                .into_iter()
                .map(|r| WorkerRow {
                    id: r.id.to_string(),
                    pid: r.pid,
                    address: r.address.map(|a| a.to_string()),
                    state: r.state.as_str().to_string(),
                    session_id: r.session,
                    age_ms: ms(r.age),
                    sessions_served: r.sessions_served,
                    health_failures: r.health_failures,
                    rss_bytes: r.rss_bytes.map(|b| b as f64),
                    cpu_time_ms: r.cpu_time.map(ms),
                })
                .collect(),
            host: HostStats {
                memory_total_bytes: s.host.memory_total_bytes as f64,
                memory_available_bytes: s.host.memory_available_bytes as f64,
                cpu_idle: s.host.cpu_idle,
                sampled_at_ms: s.host.sampled_at.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(ms),
            },
            closed: s.closed,
        }
    }
}
