//! The pool's state, all behind one lock.
//!
//! The lock is held only for in-memory bookkeeping (no I/O, no awaits);
//! the longest holders walk the session table (eviction) or build stats.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::binding::{Binding, Pending};
use crate::factory::WorkerId;
use crate::stats::{HostStats, ProcessUsage, WorkerState};

/// What a session ID maps to.
pub(crate) enum Slot {
    Bound(Arc<Binding>),
    Pending(Arc<Pending>),
}

/// Where a worker is in its life.
pub(crate) enum WState {
    Starting,
    Idle,
    Bound(Arc<Binding>),
    /// Its session ended while leases were open; it is handed on (reuse)
    /// only after the last lease is released.
    Draining(Arc<Binding>),
    Stopping,
}

impl WState {
    pub(crate) fn public(&self) -> WorkerState {
        match self {
            WState::Starting => WorkerState::Starting,
            WState::Idle => WorkerState::Idle,
            WState::Bound(_) => WorkerState::Bound,
            WState::Draining(_) => WorkerState::Draining,
            WState::Stopping => WorkerState::Stopping,
        }
    }
}

/// Why herd stops a worker (as opposed to the worker exiting by itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopCause {
    /// Its session ended and `reuse` is off.
    NoReuse,
    /// `recycle_after_sessions` or `max_worker_age`.
    Recycled,
    /// Too many failed health checks.
    Unhealthy,
    /// Idle above `max(min, min_idle)` for `idle_worker_timeout`.
    Surplus,
    Shutdown,
}

pub(crate) struct WorkerEntry {
    pub id: WorkerId,
    pub state: WState,
    pub address: Option<SocketAddr>,
    pub pid: Option<u32>,
    pub spawned_at: Instant,
    pub idle_since: Instant,
    pub sessions_served: u32,
    /// Consecutive failed health checks (reset by a passing one).
    pub health_failures: u32,
    /// Wakes the worker's supervisor to stop it.
    pub stop: Arc<Notify>,
    pub stop_cause: Option<StopCause>,
}

/// Plain counters, updated under the lock.
#[derive(Default)]
pub(crate) struct Tally {
    pub spawned: u64,
    pub spawn_failures: u64,
    pub crashed: u64,
    pub unhealthy: u64,
    pub recycled: u64,
    pub sessions_bound: u64,
    pub sessions_ended: [u64; 6],
    pub acquires_rejected: u64,
}

pub(crate) struct State {
    pub closed: bool,
    pub sessions: HashMap<Arc<str>, Slot>,
    pub workers: BTreeMap<WorkerId, WorkerEntry>,
    /// Ready unbound workers; the most recently freed is taken first.
    pub idle: Vec<WorkerId>,
    /// Sessions waiting for a worker, oldest first.
    pub queue: VecDeque<Arc<Pending>>,
    pub starting: usize,
    pub next_worker: u64,
    pub failures_in_row: u32,
    pub backoff_until: Option<Instant>,
    pub shutdown_grace: Option<Duration>,
    pub last_spawn_error: Option<crate::Error>,
    pub tally: Tally,
    pub usage: HashMap<u32, ProcessUsage>,
    pub host: HostStats,
}

impl State {
    pub(crate) fn new() -> Self {
        State {
            closed: false,
            sessions: HashMap::new(),
            workers: BTreeMap::new(),
            idle: Vec::new(),
            queue: VecDeque::new(),
            starting: 0,
            next_worker: 1,
            failures_in_row: 0,
            backoff_until: None,
            shutdown_grace: None,
            last_spawn_error: None,
            tally: Tally::default(),
            usage: HashMap::new(),
            host: HostStats::default(),
        }
    }

    /// Workers that exist in any state (count against `max`).
    pub(crate) fn live(&self) -> usize {
        self.workers.len()
    }
}
