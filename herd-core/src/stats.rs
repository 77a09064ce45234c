//! Point-in-time pool statistics, and the background sampler behind the
//! parts that come from `/proc`.
//!
//! [`crate::Pool::stats`] never waits for I/O: counts come from the pool's
//! state, and per-worker RSS/CPU and host memory/CPU come from the last
//! background sample (every `stats_interval`). CPU idle is the share of idle
//! time between the last two samples — the Go reference blocked each
//! `Stats()` call for 100 ms to measure it.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::factory::WorkerId;

/// A snapshot of a pool.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Workers by state.
    pub workers: WorkerCounts,
    /// Sessions currently bound to a worker.
    pub sessions: usize,
    /// Acquire calls currently waiting for a worker (several calls may wait
    /// for the same session).
    pub waiting_acquires: usize,
    /// Sessions waiting for a worker.
    pub queued_sessions: usize,
    /// Open leases over all sessions.
    pub open_leases: u64,
    /// The configured bounds.
    pub min: usize,
    pub max: usize,
    pub min_idle: usize,
    pub max_queue: usize,
    /// Totals since the pool started.
    pub counters: Counters,
    /// One row per worker process.
    pub worker_rows: Vec<WorkerStats>,
    /// The host, from the last background sample.
    pub host: HostStats,
    /// Whether the pool is shut down (or shutting down).
    pub closed: bool,
}

impl Stats {
    /// What a forked child sees of its parent's pool: nothing, closed.
    pub(crate) fn forked(config: &crate::PoolConfig) -> Stats {
        Stats {
            workers: WorkerCounts::default(),
            sessions: 0,
            waiting_acquires: 0,
            queued_sessions: 0,
            open_leases: 0,
            min: config.min,
            max: config.max,
            min_idle: config.min_idle,
            max_queue: config.max_queue,
            counters: Counters::default(),
            worker_rows: Vec::new(),
            host: HostStats::default(),
            closed: true,
        }
    }
}

/// Workers by lifecycle state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WorkerCounts {
    pub starting: usize,
    pub idle: usize,
    pub bound: usize,
    /// Session ended, waiting for its last leases before reuse.
    pub draining: usize,
    pub stopping: usize,
    pub total: usize,
}

/// Cumulative counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Workers that became ready.
    pub spawned: u64,
    pub spawn_failures: u64,
    /// Workers that exited on their own.
    pub crashed: u64,
    /// Workers stopped after failing health checks.
    pub unhealthy: u64,
    /// Workers stopped for `recycle_after_sessions` or `max_worker_age`.
    pub recycled: u64,
    pub sessions_bound: u64,
    pub sessions_ended: SessionEndCounts,
    pub acquire_timeouts: u64,
    /// Acquires refused at once because the queue was full.
    pub acquires_rejected: u64,
}

/// Sessions ended, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SessionEndCounts {
    pub ended: u64,
    pub idle_timeout: u64,
    pub max_lifetime: u64,
    pub crashed: u64,
    pub unhealthy: u64,
    pub shutdown: u64,
}

impl SessionEndCounts {
    pub(crate) fn from_array(a: [u64; 6]) -> Self {
        SessionEndCounts {
            ended: a[0],
            idle_timeout: a[1],
            max_lifetime: a[2],
            crashed: a[3],
            unhealthy: a[4],
            shutdown: a[5],
        }
    }

    /// Sum over all reasons.
    pub fn total(&self) -> u64 {
        self.ended + self.idle_timeout + self.max_lifetime + self.crashed + self.unhealthy + self.shutdown
    }
}

/// A worker's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    Starting,
    Idle,
    Bound,
    Draining,
    Stopping,
}

impl WorkerState {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Starting => "starting",
            WorkerState::Idle => "idle",
            WorkerState::Bound => "bound",
            WorkerState::Draining => "draining",
            WorkerState::Stopping => "stopping",
        }
    }
}

/// One worker.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct WorkerStats {
    #[serde(serialize_with = "display")]
    pub id: WorkerId,
    pub pid: Option<u32>,
    pub address: Option<std::net::SocketAddr>,
    pub state: WorkerState,
    pub session: Option<String>,
    #[serde(rename = "age_seconds", serialize_with = "seconds")]
    pub age: Duration,
    pub sessions_served: u32,
    /// Consecutive failed health checks.
    pub health_failures: u32,
    /// Resident memory of the worker process, from the last sample.
    pub rss_bytes: Option<u64>,
    /// User + system CPU time of the worker process, from the last sample.
    #[serde(rename = "cpu_seconds", serialize_with = "opt_seconds")]
    pub cpu_time: Option<Duration>,
}

/// Host memory and CPU, from the last background sample.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[non_exhaustive]
pub struct HostStats {
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    /// Share of CPU time idle between the last two samples, 0.0 to 1.0.
    pub cpu_idle: f64,
    /// When the sample was taken; `None` before the first one.
    #[serde(serialize_with = "opt_unix_seconds")]
    pub sampled_at: Option<SystemTime>,
}

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn opt_seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

fn opt_unix_seconds<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()) {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// Per-process usage from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessUsage {
    pub rss_bytes: u64,
    pub cpu_time: Duration,
}

/// Keeps the previous CPU counters so idle share can be computed.
#[derive(Default)]
pub(crate) struct HostSampler {
    last_cpu: Option<(u64, u64)>,
}

impl HostSampler {
    /// Reads host memory and CPU, and usage of each of `pids`. Blocking
    /// file reads: call from a blocking thread.
    pub(crate) fn sample(&mut self, pids: &[u32]) -> (HostStats, HashMap<u32, ProcessUsage>) {
        use procfs::{Current, CurrentSI};
        let mut host = HostStats { sampled_at: Some(SystemTime::now()), ..Default::default() };
        if let Ok(mem) = procfs::Meminfo::current() {
            host.memory_total_bytes = mem.mem_total;
            host.memory_available_bytes = mem.mem_available.unwrap_or(mem.mem_free);
        }
        if let Ok(stat) = procfs::KernelStats::current() {
            let t = &stat.total;
            let idle = t.idle + t.iowait.unwrap_or(0);
            let total = t.user
                + t.nice
                + t.system
                + idle
                + t.irq.unwrap_or(0)
                + t.softirq.unwrap_or(0)
                + t.steal.unwrap_or(0);
            if let Some((last_idle, last_total)) = self.last_cpu
                && total > last_total
            {
                host.cpu_idle = (idle.saturating_sub(last_idle)) as f64 / (total - last_total) as f64;
            }
            self.last_cpu = Some((idle, total));
        }
        let ticks = procfs::ticks_per_second().max(1);
        let page = procfs::page_size();
        let mut usage = HashMap::with_capacity(pids.len());
        for &pid in pids {
            let Ok(process) = procfs::process::Process::new(pid as i32) else { continue };
            let Ok(stat) = process.stat() else { continue };
            let cpu_ticks = stat.utime + stat.stime;
            usage.insert(
                pid,
                ProcessUsage {
                    rss_bytes: stat.rss * page,
                    cpu_time: Duration::from_micros(cpu_ticks * 1_000_000 / ticks),
                },
            );
        }
        (host, usage)
    }
}
