//! Leases: one use of a session. Many may be open at once; all reach the
//! same worker. Releasing (or dropping) a lease keeps the binding.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::binding::{Binding, Pending, PendingResult};
use super::shared::Shared;
use crate::events::{EndReason, EventKind};
use crate::factory::WorkerId;

/// One open use of a session's worker.
///
/// While any lease of a session is open, the session is never evicted for
/// idleness. Dropping the lease releases it; the session stays bound to its
/// worker until it ends (ttl, `end_session`, crash...).
///
/// `Lease` is `Send + Sync`: it may be released from any thread.
pub struct Lease {
    /// Only the binding: see `PoolLink` for why not the pool too.
    binding: Arc<Binding>,
}

impl Lease {
    pub(crate) fn new(binding: Arc<Binding>) -> Self {
        Lease { binding }
    }

    /// The session ID.
    pub fn session_id(&self) -> &str {
        &self.binding.session
    }

    /// The worker the session is bound to.
    pub fn worker_id(&self) -> WorkerId {
        self.binding.worker
    }

    /// The worker's PID as the host sees it.
    pub fn pid(&self) -> Option<u32> {
        self.binding.pid
    }

    /// The worker's address (`127.0.0.1:port` for process workers).
    pub fn address(&self) -> Option<SocketAddr> {
        self.binding.address
    }

    /// `http://127.0.0.1:port`, for HTTP workers.
    pub fn url(&self) -> Option<String> {
        self.binding.address.map(|a| format!("http://{a}"))
    }

    /// Records activity now (the idle ttl counts from the last activity).
    /// Releasing a lease also counts as activity.
    pub fn touch(&self) {
        self.binding.touch(self.binding.pool.now_nanos());
    }

    /// Whether the session has ended (the worker may already be gone or
    /// serving someone else: stop using it).
    pub fn is_ended(&self) -> bool {
        self.binding.is_ended()
    }

    /// Resolves when the session ends, with the reason.
    pub async fn ended(&self) -> EndReason {
        let mut rx = self.binding.watch_end();
        loop {
            if let Some(reason) = *rx.borrow_and_update() {
                return reason;
            }
            if rx.changed().await.is_err() {
                return EndReason::Shutdown;
            }
        }
    }

    /// Releases the lease (same as dropping it).
    pub fn release(self) {}
}

impl Drop for Lease {
    fn drop(&mut self) {
        let binding = &self.binding;
        if crate::runtime::check_fork(binding.pool.fork_generation).is_err() {
            // A forked child's copy of the parent's lease: the pool lock may
            // have been held by a thread that does not exist here.
            return;
        }
        binding.touch(binding.pool.now_nanos());
        if binding.leases.fetch_sub(1, Ordering::SeqCst) == 1 {
            let ended = binding.is_ended();
            if !ended && !binding.pool.release_events.load(Ordering::Relaxed) {
                return;
            }
            // A pool already gone has nothing left to drain or report to.
            let Some(shared) = binding.pool.shared.upgrade() else { return };
            if ended {
                shared.finish_drain(binding);
            } else {
                shared.events.emit(EventKind::LeaseReleased {
                    session: binding.session.clone(),
                    worker: binding.worker,
                });
            }
        }
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("session", &self.session_id())
            .field("worker", &self.worker_id())
            .field("pid", &self.pid())
            .field("address", &self.address())
            .finish()
    }
}

/// A caller's place in the wait for a pending session. Dropping it (the
/// caller timed out or was cancelled) gives the place up; the last one out
/// takes the session out of the queue.
pub(crate) struct WaitGuard {
    pending: Arc<Pending>,
    shared: Arc<Shared>,
}

impl WaitGuard {
    pub(crate) fn new(pending: Arc<Pending>, shared: Arc<Shared>) -> Self {
        WaitGuard { pending, shared }
    }

    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<PendingResult> {
        self.pending.subscribe()
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        if self.pending.waiters.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.shared.abandon(&self.pending);
        }
    }
}
