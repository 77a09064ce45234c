//! The pool's shared core: its state and every transition of it.
//!
//! # Concurrency
//! One `parking_lot::Mutex` guards [`State`]. Every transition below runs
//! with it held, does only in-memory work (plus non-blocking wake-ups:
//! `Notify`, `watch` sends, event-channel sends, task spawns), and never
//! awaits. So invariant 1 (one session ↔ one worker) and 2 (singleflight)
//! reduce to: the session table and the worker states change together, in
//! one critical section.
//!
//! Process I/O — starting, health-checking and stopping workers — happens
//! in each worker's supervisor task ([`super::supervisor`]), which reports
//! back through `worker_ready`, `worker_exited`, `worker_stopped` and
//! `spawn_failed`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::binding::{Binding, Pending, PoolLink};
use super::lease::{Lease, WaitGuard};
use super::state::{Slot, State, StopCause, WState, WorkerEntry};
use super::supervisor;
use crate::config::PoolConfig;
use crate::error::{Error, ErrorKind};
use crate::events::{EndReason, EventKind, EventSink, SessionEnd};
use crate::factory::{WorkerFactory, WorkerId};
use crate::process::ExitStatus;

pub(crate) struct Shared {
    /// This `Shared` itself, for the tasks it spawns.
    pub me: std::sync::Weak<Shared>,
    pub config: PoolConfig,
    pub factory: Arc<dyn WorkerFactory>,
    pub name: String,
    pub state: Mutex<State>,
    pub events: EventSink,
    pub handle: tokio::runtime::Handle,
    pub epoch: Instant,
    pub fork_generation: u64,
    /// Wakes the maintainer (timers changed, backoff, shutdown).
    pub maintainer: Notify,
    /// Wakes `wait_ready` and `shutdown` when workers come or go.
    pub changed: Notify,
    pub acquire_timeouts: AtomicU64,
}

/// The result of one locked acquire attempt.
pub(crate) enum Step {
    Leased(Lease),
    Wait(WaitGuard),
}

impl Shared {
    pub(crate) fn now_nanos(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    pub(crate) fn stop_grace(&self) -> Duration {
        self.state.lock().shutdown_grace.unwrap_or(self.config.stop_grace)
    }

    // ----- acquire -------------------------------------------------------

    /// One attempt under the lock: a lease at once (bound session, or an
    /// idle worker to bind), or a place in the wait for a worker.
    pub(crate) fn try_acquire(self: &Arc<Self>, id: &str) -> Result<Step, Error> {
        let mut st = self.state.lock();
        match st.sessions.get(id) {
            Some(Slot::Bound(binding)) => {
                binding.leases.fetch_add(1, Ordering::SeqCst);
                return Ok(Step::Leased(Lease::new(binding.clone())));
            }
            Some(Slot::Pending(pending)) => {
                pending.waiters.fetch_add(1, Ordering::SeqCst);
                return Ok(Step::Wait(WaitGuard::new(pending.clone(), self.clone())));
            }
            None => {}
        }
        if st.closed {
            return Err(Error::closed());
        }
        let session: Arc<str> = Arc::from(id);
        if let Some(worker) = self.take_idle(&mut st) {
            let binding = self.bind(&mut st, worker, session);
            binding.leases.fetch_add(1, Ordering::SeqCst);
            self.plan(&mut st);
            return Ok(Step::Leased(Lease::new(binding)));
        }
        // Must wait. Refuse at once if the wait could not be served by the
        // workers starting and startable, plus max_queue more.
        let servable = st.starting + self.config.max.saturating_sub(st.live());
        let beyond = (st.queue.len() + 1).saturating_sub(servable);
        if beyond > self.config.max_queue {
            st.tally.acquires_rejected += 1;
            return Err(Error::new(
                ErrorKind::PoolExhausted,
                format!(
                    "pool exhausted: all {} workers are in use and {} sessions are already waiting \
                     (max_queue = {})",
                    self.config.max,
                    st.queue.len(),
                    self.config.max_queue
                ),
            ));
        }
        let pending = Arc::new(Pending::new(session.clone()));
        pending.waiters.store(1, Ordering::SeqCst);
        st.sessions.insert(session, Slot::Pending(pending.clone()));
        st.queue.push_back(pending.clone());
        self.plan(&mut st);
        Ok(Step::Wait(WaitGuard::new(pending, self.clone())))
    }

    /// The last waiter of `pending` gave up (timeout, cancellation): take
    /// the session out of the queue unless someone joined meanwhile.
    pub(crate) fn abandon(&self, pending: &Arc<Pending>) {
        if pending.is_resolved() {
            return;
        }
        let mut st = self.state.lock();
        if !pending.is_abandoned() {
            return;
        }
        if let Some(Slot::Pending(p)) = st.sessions.get(&*pending.session)
            && Arc::ptr_eq(p, pending)
        {
            st.sessions.remove(&*pending.session);
            st.queue.retain(|p| !Arc::ptr_eq(p, pending));
        }
    }

    /// Describes why an acquire timed out, from the current state.
    pub(crate) fn timeout_error(&self, session: &str, timeout: Duration) -> Error {
        self.acquire_timeouts.fetch_add(1, Ordering::Relaxed);
        let st = self.state.lock();
        let bound = st.workers.values().filter(|w| matches!(w.state, WState::Bound(_))).count();
        Error::new(
            ErrorKind::AcquireTimeout,
            format!(
                "no worker became available for session {session:?} within {timeout:?} \
                 ({bound} of max {} workers bound, {} starting, {} sessions waiting)",
                self.config.max,
                st.starting,
                st.queue.len()
            ),
        )
    }

    fn take_idle(&self, st: &mut State) -> Option<WorkerId> {
        st.idle.pop()
    }

    fn bind(&self, st: &mut State, worker: WorkerId, session: Arc<str>) -> Arc<Binding> {
        let now = self.now_nanos();
        let entry = st.workers.get_mut(&worker).expect("an offered worker is in the table");
        let link = PoolLink {
            shared: self.me.clone(),
            epoch: self.epoch,
            fork_generation: self.fork_generation,
            release_events: self.events.release_events_flag(),
        };
        let binding = Arc::new(Binding::new(session.clone(), worker, entry.address, entry.pid, now, link));
        entry.state = WState::Bound(binding.clone());
        entry.sessions_served += 1;
        let pid = entry.pid;
        st.sessions.insert(session.clone(), Slot::Bound(binding.clone()));
        st.tally.sessions_bound += 1;
        self.events.emit(EventKind::SessionBound { session, worker, pid });
        binding
    }

    /// A worker is free (newly ready, or its session ended with reuse):
    /// give it to the oldest waiting session, or park it as idle.
    fn offer_worker(&self, st: &mut State, worker: WorkerId) {
        if let (Some(max_age), Some(entry)) = (self.config.max_worker_age, st.workers.get(&worker))
            && entry.spawned_at.elapsed() >= max_age
        {
            self.stop_worker(st, worker, StopCause::Recycled);
            return;
        }
        while let Some(pending) = st.queue.pop_front() {
            if pending.is_abandoned() {
                if let Some(Slot::Pending(p)) = st.sessions.get(&*pending.session)
                    && Arc::ptr_eq(p, &pending)
                {
                    st.sessions.remove(&*pending.session);
                }
                continue;
            }
            self.bind(st, worker, pending.session.clone());
            pending.resolve(Ok(()));
            return;
        }
        if let Some(entry) = st.workers.get_mut(&worker) {
            entry.state = WState::Idle;
            entry.idle_since = Instant::now();
            st.idle.push(worker);
        }
    }

    // ----- ending sessions -------------------------------------------------

    /// Ends a session by the caller's request. Returns whether it was bound.
    pub(crate) fn end_session(&self, id: &str) -> bool {
        let mut st = self.state.lock();
        let Some(Slot::Bound(binding)) = st.sessions.get(id) else { return false };
        let binding = binding.clone();
        self.end_and_release(&mut st, &binding, EndReason::Ended);
        self.plan(&mut st);
        true
    }

    /// Ends the session (session side only: table, counters, event).
    fn end_binding(&self, st: &mut State, binding: &Arc<Binding>, reason: EndReason) {
        if let Some(Slot::Bound(b)) = st.sessions.get(&*binding.session)
            && Arc::ptr_eq(b, binding)
        {
            st.sessions.remove(&*binding.session);
        }
        if binding.is_ended() {
            return;
        }
        binding.end(reason);
        st.tally.sessions_ended[reason.index()] += 1;
        self.events.emit(EventKind::SessionEnded(SessionEnd {
            session: binding.session.clone(),
            worker: binding.worker,
            pid: binding.pid,
            reason,
            duration: binding.bound_at.elapsed(),
        }));
    }

    /// Ends a session whose worker is healthy (ended, idle, lifetime) and
    /// decides the worker's fate: reuse now, reuse after the last lease
    /// (draining), or stop (`reuse` off, recycling due).
    fn end_and_release(&self, st: &mut State, binding: &Arc<Binding>, reason: EndReason) {
        self.end_binding(st, binding, reason);
        let worker = binding.worker;
        let Some(entry) = st.workers.get_mut(&worker) else { return };
        if !matches!(&entry.state, WState::Bound(b) if Arc::ptr_eq(b, binding)) {
            return;
        }
        let recycle = self.config.recycle_after_sessions.is_some_and(|n| entry.sessions_served >= n)
            || self.config.max_worker_age.is_some_and(|age| entry.spawned_at.elapsed() >= age);
        if !self.config.reuse {
            self.stop_worker(st, worker, StopCause::NoReuse);
        } else if recycle {
            self.stop_worker(st, worker, StopCause::Recycled);
        } else if binding.leases.load(Ordering::SeqCst) == 0 {
            self.offer_worker(st, worker);
        } else {
            entry.state = WState::Draining(binding.clone());
        }
    }

    /// The last lease of an ended session was released: hand its worker on
    /// if it was waiting for that. Idempotent.
    pub(crate) fn finish_drain(&self, binding: &Arc<Binding>) {
        let mut st = self.state.lock();
        let Some(entry) = st.workers.get(&binding.worker) else { return };
        if matches!(&entry.state, WState::Draining(b) if Arc::ptr_eq(b, binding))
            && binding.leases.load(Ordering::SeqCst) == 0
        {
            self.offer_worker(&mut st, binding.worker);
            self.plan(&mut st);
        }
    }

    /// Asks a worker's supervisor to stop it.
    fn stop_worker(&self, st: &mut State, worker: WorkerId, cause: StopCause) {
        let Some(entry) = st.workers.get_mut(&worker) else { return };
        if matches!(entry.state, WState::Stopping) {
            return;
        }
        if matches!(entry.state, WState::Idle) {
            st.idle.retain(|w| *w != worker);
        }
        if matches!(entry.state, WState::Starting) {
            st.starting -= 1;
        }
        let entry = st.workers.get_mut(&worker).expect("checked above");
        entry.state = WState::Stopping;
        entry.stop_cause = Some(cause);
        entry.stop.notify_one();
        if cause == StopCause::Recycled {
            st.tally.recycled += 1;
        }
    }

    // ----- supervisor reports ----------------------------------------------

    /// A worker became ready. Returns false if it must be stopped at once
    /// (the pool shut down while it started).
    pub(crate) fn worker_ready(
        &self,
        worker: WorkerId,
        address: Option<std::net::SocketAddr>,
        pid: Option<u32>,
        startup: Duration,
    ) -> bool {
        let mut st = self.state.lock();
        let Some(entry) = st.workers.get_mut(&worker) else { return false };
        if !matches!(entry.state, WState::Starting) {
            return false;
        }
        entry.address = address;
        entry.pid = pid;
        st.starting -= 1;
        st.tally.spawned += 1;
        st.failures_in_row = 0;
        st.backoff_until = None;
        self.events.emit(EventKind::WorkerReady { worker, pid, address, startup });
        self.offer_worker(&mut st, worker);
        self.plan(&mut st);
        drop(st);
        self.changed.notify_waiters();
        true
    }

    /// A worker could not be started.
    pub(crate) fn spawn_failed(&self, worker: WorkerId, error: Error) {
        tracing::warn!(worker = %worker, "{error:#}");
        let mut st = self.state.lock();
        let Some(entry) = st.workers.remove(&worker) else { return };
        if matches!(entry.state, WState::Starting) {
            st.starting -= 1;
        }
        st.tally.spawn_failures += 1;
        st.failures_in_row = st.failures_in_row.saturating_add(1);
        let backoff = Duration::from_millis(100)
            .saturating_mul(1 << st.failures_in_row.min(9).saturating_sub(1))
            .min(Duration::from_secs(30));
        st.backoff_until = Some(Instant::now() + backoff);
        self.events.emit(EventKind::WorkerSpawnFailed { worker, error: error.clone() });
        // A session waiting with no other worker on its way gets the error
        // now rather than a timeout later.
        if st.queue.len() > st.starting {
            while let Some(pending) = st.queue.pop_front() {
                if let Some(Slot::Pending(p)) = st.sessions.get(&*pending.session)
                    && Arc::ptr_eq(p, &pending)
                {
                    st.sessions.remove(&*pending.session);
                }
                if !pending.is_abandoned() {
                    pending.resolve(Err(error.clone()));
                    break;
                }
            }
        }
        st.last_spawn_error = Some(error);
        self.plan(&mut st);
        drop(st);
        self.changed.notify_waiters();
        self.maintainer.notify_one();
    }

    /// A worker exited on its own: its session (if any) ends as crashed.
    pub(crate) fn worker_exited(&self, worker: WorkerId, status: ExitStatus) {
        let mut st = self.state.lock();
        let Some(entry) = st.workers.remove(&worker) else { return };
        let expected = matches!(entry.state, WState::Stopping);
        match &entry.state {
            WState::Bound(binding) | WState::Draining(binding) => {
                self.end_binding(&mut st, binding, EndReason::Crashed { status });
            }
            WState::Idle => st.idle.retain(|w| *w != worker),
            WState::Starting => st.starting -= 1,
            WState::Stopping => {}
        }
        if expected {
            tracing::debug!(worker = %worker, %status, "worker exited while stopping");
        } else {
            st.tally.crashed += 1;
            tracing::warn!(worker = %worker, pid = ?entry.pid, %status, "worker exited unexpectedly");
        }
        self.events.emit(EventKind::WorkerExited { worker, pid: entry.pid, status: Some(status), expected });
        self.plan(&mut st);
        drop(st);
        self.changed.notify_waiters();
    }

    /// A worker herd stopped is gone (`status` is `None` if it was stopped
    /// before it started).
    pub(crate) fn worker_stopped(&self, worker: WorkerId, status: Option<ExitStatus>) {
        let mut st = self.state.lock();
        let Some(entry) = st.workers.remove(&worker) else { return };
        match &entry.state {
            WState::Bound(binding) | WState::Draining(binding) => {
                self.end_binding(&mut st, binding, EndReason::Shutdown);
            }
            WState::Idle => st.idle.retain(|w| *w != worker),
            WState::Starting => st.starting -= 1,
            WState::Stopping => {}
        }
        self.events.emit(EventKind::WorkerExited { worker, pid: entry.pid, status, expected: true });
        self.plan(&mut st);
        drop(st);
        self.changed.notify_waiters();
    }

    /// Records the outcome of a health check: `failures` in a row so far.
    pub(crate) fn health_checked(&self, worker: WorkerId, failures: u32) {
        if let Some(entry) = self.state.lock().workers.get_mut(&worker) {
            entry.health_failures = failures;
        }
    }

    /// A worker failed its health checks too often: end its session as
    /// unhealthy and stop it.
    pub(crate) fn worker_unhealthy(&self, worker: WorkerId, reason: &str) {
        let mut st = self.state.lock();
        let Some(entry) = st.workers.get(&worker) else { return };
        tracing::warn!(worker = %worker, pid = ?entry.pid, "worker is unhealthy: {reason}");
        if let WState::Bound(binding) = &entry.state {
            let binding = binding.clone();
            self.end_binding(&mut st, &binding, EndReason::Unhealthy);
        }
        st.tally.unhealthy += 1;
        self.stop_worker(&mut st, worker, StopCause::Unhealthy);
        self.plan(&mut st);
    }

    // ----- sizing ------------------------------------------------------------

    /// Starts as many workers as waiting sessions, `min_idle` and `min`
    /// need, within `max`. After spawn failures, only waiting sessions get
    /// new spawns until the backoff passes.
    pub(crate) fn plan(&self, st: &mut State) {
        if st.closed {
            return;
        }
        let c = &self.config;
        let live = st.live();
        let available = st.idle.len() + st.starting;
        let demand = st.queue.len().saturating_sub(available);
        let mut need = (st.queue.len() + c.min_idle).saturating_sub(available);
        need = need.max(c.min.saturating_sub(live));
        need = need.min(c.max.saturating_sub(live));
        if st.backoff_until.is_some_and(|t| Instant::now() < t) {
            need = need.min(demand);
        }
        for _ in 0..need {
            self.start_worker(st);
        }
    }

    fn start_worker(&self, st: &mut State) {
        let id = WorkerId(st.next_worker);
        st.next_worker += 1;
        let stop = Arc::new(Notify::new());
        st.workers.insert(
            id,
            WorkerEntry {
                id,
                state: WState::Starting,
                address: None,
                pid: None,
                spawned_at: Instant::now(),
                idle_since: Instant::now(),
                sessions_served: 0,
                health_failures: 0,
                stop: stop.clone(),
                stop_cause: None,
            },
        );
        st.starting += 1;
        self.events.emit(EventKind::WorkerSpawning { worker: id });
        if let Some(shared) = self.me.upgrade() {
            self.handle.spawn(supervisor::supervise(shared, id, stop));
        }
    }

    // ----- time-driven work (the maintainer) ----------------------------------

    /// Evicts idle and over-age sessions, trims surplus idle workers,
    /// recycles old ones, tops up sizing. Returns when to run again.
    pub(crate) fn maintain(&self) -> Option<Instant> {
        let mut st = self.state.lock();
        if st.closed {
            return None;
        }
        let c = &self.config;
        let now = Instant::now();
        let now_nanos = self.now_nanos();
        let ttl_nanos = c.ttl.as_nanos() as u64;
        let mut next: Option<Instant> = st.backoff_until.filter(|t| *t > now);
        let mut consider = |at: Instant| {
            next = Some(next.map_or(at, |n: Instant| n.min(at)));
        };

        let mut expired = Vec::new();
        for slot in st.sessions.values() {
            let Slot::Bound(b) = slot else { continue };
            if let Some(max) = c.max_session_lifetime {
                let end_at = b.bound_at + max;
                if end_at <= now {
                    expired.push((b.clone(), EndReason::MaxLifetime));
                    continue;
                }
                consider(end_at);
            }
            if b.leases.load(Ordering::SeqCst) == 0 {
                let last = b.last_activity.load(Ordering::Acquire);
                let idle_for = now_nanos.saturating_sub(last);
                if idle_for >= ttl_nanos {
                    expired.push((b.clone(), EndReason::IdleTimeout));
                } else {
                    consider(now + Duration::from_nanos(ttl_nanos - idle_for));
                }
            } else {
                // Leased sessions are re-examined when the lease goes;
                // until then, look again after a ttl.
                consider(now + c.ttl);
            }
        }
        for (binding, reason) in expired {
            tracing::debug!(session = %binding.session, worker = %binding.worker, %reason, "ending session");
            self.end_and_release(&mut st, &binding, reason);
        }

        // Surplus idle workers, oldest idle first; over-age idle workers.
        let floor_live = c.min;
        let floor_idle = c.min_idle;
        let mut idle: Vec<(Instant, WorkerId, Instant)> = st
            .idle
            .iter()
            .filter_map(|id| st.workers.get(id).map(|e| (e.idle_since, *id, e.spawned_at)))
            .collect();
        idle.sort();
        for (idle_since, id, spawned_at) in idle {
            if let Some(max_age) = c.max_worker_age {
                if spawned_at + max_age <= now {
                    self.stop_worker(&mut st, id, StopCause::Recycled);
                    continue;
                }
                consider(spawned_at + max_age);
            }
            let removable = st.live() > floor_live && st.idle.len() > floor_idle;
            if !removable {
                continue;
            }
            let due = idle_since + c.idle_worker_timeout;
            if due <= now {
                self.stop_worker(&mut st, id, StopCause::Surplus);
            } else {
                consider(due);
            }
        }
        self.plan(&mut st);
        // Never spin: wake at most every few milliseconds, relative to ttl.
        let min_gap = (c.ttl / 50).clamp(Duration::from_millis(2), Duration::from_millis(250));
        Some(next.map_or(now + Duration::from_secs(1), |n| n.max(now + min_gap)))
    }

    // ----- shutdown ------------------------------------------------------------

    /// Closes the pool: fails waiting acquires, ends every session with
    /// `shutdown`, asks every worker to stop within `grace`. Returns false
    /// if the pool was already closed.
    pub(crate) fn begin_shutdown(&self, grace: Duration) -> bool {
        let mut st = self.state.lock();
        if st.closed {
            return false;
        }
        st.closed = true;
        st.shutdown_grace = Some(grace);
        for pending in std::mem::take(&mut st.queue) {
            pending.resolve(Err(Error::closed()));
        }
        let bindings: Vec<Arc<Binding>> = st
            .sessions
            .values()
            .filter_map(|s| match s {
                Slot::Bound(b) => Some(b.clone()),
                Slot::Pending(_) => None,
            })
            .collect();
        for binding in bindings {
            self.end_binding(&mut st, &binding, EndReason::Shutdown);
        }
        st.sessions.clear();
        let ids: Vec<WorkerId> = st.workers.keys().copied().collect();
        for id in ids {
            self.stop_worker(&mut st, id, StopCause::Shutdown);
        }
        drop(st);
        self.maintainer.notify_one();
        self.changed.notify_waiters();
        true
    }

    /// Waits until every worker is gone.
    pub(crate) async fn wait_all_stopped(&self) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.state.lock().workers.is_empty() {
                return;
            }
            notified.await;
        }
    }
}
