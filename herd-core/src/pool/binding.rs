//! Bindings (session → worker) and pending acquires (a session waiting for
//! its first worker).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::watch;

use crate::error::Error;
use crate::events::EndReason;
use crate::factory::WorkerId;

/// A session pinned to a worker, from the first acquire until it ends.
///
/// # Concurrency
/// `leases` and `last_activity` change without the pool lock (lease drop is
/// lock-free). Everything that *decides* on them — idle eviction, handing
/// the worker to another session — runs under the pool lock and reads them
/// there. `leases` only grows under the lock, so a session seen with zero
/// leases under the lock stays at zero until the lock is released.
///
/// # Race window
/// A lease may drop (`leases` 1 → 0) while the session is being ended under
/// the lock. Ending stores `ended` then loads `leases`; a drop decrements
/// `leases` then loads `ended`; all four are `SeqCst`, so at least one side
/// sees the other and finishes the hand-back (`Pool::finish_drain`, which is
/// idempotent).
pub(crate) struct Binding {
    pub session: Arc<str>,
    pub worker: WorkerId,
    pub address: Option<SocketAddr>,
    pub pid: Option<u32>,
    pub bound_at: Instant,
    pub leases: AtomicUsize,
    /// Nanoseconds since the pool's epoch.
    pub last_activity: AtomicU64,
    pub ended: AtomicBool,
    end_tx: watch::Sender<Option<EndReason>>,
    /// What a lease needs from its pool, kept here so that a lease holds
    /// only its binding: with an `Arc<Shared>` per lease, every acquire and
    /// release on any session touched the pool's one reference count, a
    /// cache line that threads acquiring different sessions fought over.
    pub pool: PoolLink,
}

/// A binding's way back to its pool.
pub(crate) struct PoolLink {
    /// Upgraded only on rare paths (the last lease of an ended session).
    pub shared: std::sync::Weak<super::shared::Shared>,
    /// The pool's clock origin (activity is nanoseconds since it).
    pub epoch: Instant,
    pub fork_generation: u64,
    /// Whether the pool reports every lease release.
    pub release_events: std::sync::Arc<AtomicBool>,
}

impl PoolLink {
    pub(crate) fn now_nanos(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

impl Binding {
    pub(crate) fn new(
        session: Arc<str>,
        worker: WorkerId,
        address: Option<SocketAddr>,
        pid: Option<u32>,
        now_nanos: u64,
        pool: PoolLink,
    ) -> Self {
        Binding {
            session,
            worker,
            address,
            pid,
            bound_at: Instant::now(),
            leases: AtomicUsize::new(0),
            last_activity: AtomicU64::new(now_nanos),
            ended: AtomicBool::new(false),
            end_tx: watch::channel(None).0,
            pool,
        }
    }

    pub(crate) fn touch(&self, now_nanos: u64) {
        self.last_activity.fetch_max(now_nanos, Ordering::Release);
    }

    pub(crate) fn is_ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// Marks the binding ended (under the pool lock) and wakes everyone
    /// watching it (the proxy closes open WebSockets with the reason).
    pub(crate) fn end(&self, reason: EndReason) {
        self.ended.store(true, Ordering::SeqCst);
        self.end_tx.send_replace(Some(reason));
    }

    pub(crate) fn watch_end(&self) -> watch::Receiver<Option<EndReason>> {
        self.end_tx.subscribe()
    }
}

/// The outcome every caller waiting on a pending session receives.
pub(crate) type PendingResult = Option<Result<(), Error>>;

/// A session waiting for a worker. The pool, not the first caller, owns
/// it: it stays queued while at least one caller waits, so a first caller
/// that gives up never strands the others.
pub(crate) struct Pending {
    pub session: Arc<str>,
    /// Callers waiting. Incremented only under the pool lock.
    pub waiters: AtomicUsize,
    done: watch::Sender<PendingResult>,
}

impl Pending {
    pub(crate) fn new(session: Arc<str>) -> Self {
        Pending { session, waiters: AtomicUsize::new(0), done: watch::channel(None).0 }
    }

    pub(crate) fn resolve(&self, result: Result<(), Error>) {
        self.done.send_replace(Some(result));
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<PendingResult> {
        self.done.subscribe()
    }

    pub(crate) fn is_resolved(&self) -> bool {
        self.done.borrow().is_some()
    }

    pub(crate) fn is_abandoned(&self) -> bool {
        self.waiters.load(Ordering::SeqCst) == 0
    }
}
