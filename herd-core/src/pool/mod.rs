//! The session-affine pool.
//!
//! * [`Pool`]: the public handle (async and blocking API).
//! * [`shared`]: the state under one lock and every transition of it.
//! * [`binding`]: session → worker bindings and pending acquires.
//! * [`lease`]: leases and places in the wait queue.
//! * [`supervisor`]: one task per worker (start, exit, health, stop).
//! * [`maintainer`]: timers — idle eviction, lifetimes, trimming, sampling.

mod binding;
mod lease;
mod maintainer;
mod shared;
mod state;
mod supervisor;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::broadcast;

pub use self::lease::Lease;
use self::shared::{Shared, Step};
use self::state::{Slot, State, WState};
use crate::config::PoolConfig;
use crate::error::{Error, ErrorKind};
use crate::events::{Event, EventCallback, EventKind, EventSink, SessionEnd};
use crate::factory::WorkerFactory;
use crate::runtime;
use crate::session::validate_session_id;
use crate::stats::{Counters, SessionEndCounts, Stats, WorkerCounts, WorkerStats};

static POOL_SEQUENCE: AtomicU64 = AtomicU64::new(1);

/// A session-affine process pool.
///
/// Each session ID is bound to its own worker for the session's lifetime:
/// one session → one worker, one worker → at most one session. Cloning a
/// `Pool` gives another handle to the same pool; the pool shuts down when
/// [`Pool::shutdown`] is called or the last handle is dropped.
///
/// The pool runs on its own tokio runtime; its methods may be called from
/// any thread, inside or outside any async runtime.
///
/// ```no_run
/// # async fn demo() -> Result<(), herd_core::Error> {
/// use herd_core::{Pool, PoolConfig, ProcessFactory};
///
/// let factory = ProcessFactory::new("herd-demo-worker", Vec::<String>::new());
/// let pool = Pool::new(factory, PoolConfig { min: 1, max: 4, ..Default::default() })?;
/// let lease = pool.acquire("user-42").await?;
/// println!("user-42 is served by {} (pid {:?})", lease.url().unwrap(), lease.pid());
/// drop(lease); // the session stays bound to its worker
/// pool.shutdown(std::time::Duration::from_secs(5)).await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    shared: Arc<Shared>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

/// Builds a [`Pool`] with callbacks.
pub struct PoolBuilder {
    factory: Arc<dyn WorkerFactory>,
    config: PoolConfig,
    callbacks: Vec<EventCallback>,
    lease_events: bool,
}

impl PoolBuilder {
    /// Sets the pool configuration.
    pub fn config(mut self, config: PoolConfig) -> Self {
        self.config = config;
        self
    }

    /// Calls `callback` for every [`Event`], on the pool's event thread.
    pub fn on_event(mut self, callback: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.callbacks.push(Arc::new(callback));
        self
    }

    /// Also emit [`EventKind::LeaseReleased`] each time a session's last
    /// open lease is released (off by default: on a busy gateway that is
    /// every request, and each event is a hand-off to the event thread).
    pub fn lease_events(mut self, enabled: bool) -> Self {
        self.lease_events = enabled;
        self
    }

    /// Calls `callback` when a session ends, with the reason (a crash
    /// carries the worker's exit code or signal). Runs on the pool's event
    /// thread; it may call back into the pool.
    pub fn on_session_end(self, callback: impl Fn(&SessionEnd) + Send + Sync + 'static) -> Self {
        self.on_event(move |event| {
            if let EventKind::SessionEnded(end) = &event.kind {
                callback(end);
            }
        })
    }

    /// Validates the configuration and the factory, starts the runtime and
    /// the `min` workers (in the background; see [`Pool::wait_ready`]).
    pub fn build(self) -> Result<Pool, Error> {
        self.config.validate()?;
        self.factory.check()?;
        let fork_generation = runtime::fork_generation();
        runtime::raise_fd_limit();
        let name = format!("{}-{}", std::process::id(), POOL_SEQUENCE.fetch_add(1, Ordering::Relaxed));
        self.factory.pool_starting(&name)?;
        let rt = runtime::build(self.config.effective_runtime_threads(), &name)?;
        let events = EventSink::start(&name, self.callbacks, self.lease_events)
            .map_err(|e| Error::io("cannot start the pool's event thread", e))?;
        let shared = Arc::new_cyclic(|me| Shared {
            me: me.clone(),
            config: self.config,
            factory: self.factory,
            name,
            state: Mutex::new(State::new()),
            events,
            handle: rt.handle().clone(),
            epoch: Instant::now(),
            fork_generation,
            maintainer: tokio::sync::Notify::new(),
            changed: tokio::sync::Notify::new(),
            acquire_timeouts: AtomicU64::new(0),
        });
        tracing::debug!(pool = %shared.name, factory = %shared.factory.describe(), "pool starting");
        rt.spawn(maintainer::run(shared.clone()));
        rt.spawn(maintainer::sample(shared.clone()));
        {
            let mut st = shared.state.lock();
            shared.plan(&mut st);
        }
        Ok(Pool { inner: Arc::new(PoolInner { shared, runtime: Mutex::new(Some(rt)) }) })
    }
}

impl Pool {
    /// A pool of workers made by `factory`, sized and timed by `config`.
    pub fn new(factory: impl WorkerFactory, config: PoolConfig) -> Result<Pool, Error> {
        Pool::builder(factory).config(config).build()
    }

    /// A builder, for adding callbacks.
    pub fn builder(factory: impl WorkerFactory) -> PoolBuilder {
        PoolBuilder {
            factory: Arc::new(factory),
            config: PoolConfig::default(),
            callbacks: Vec::new(),
            lease_events: false,
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// The configuration the pool runs with.
    pub fn config(&self) -> &PoolConfig {
        &self.inner.shared.config
    }

    /// A handle to the pool's runtime, to run herd-related tasks on it.
    pub fn runtime_handle(&self) -> &tokio::runtime::Handle {
        &self.inner.shared.handle
    }

    /// Acquires a lease on `session`'s worker, waiting up to the pool's
    /// `acquire_timeout` for a worker if the session is new.
    pub async fn acquire(&self, session: &str) -> Result<Lease, Error> {
        self.acquire_timeout(session, self.config().acquire_timeout).await
    }

    /// Acquires a lease on `session`'s worker.
    ///
    /// A bound session gets its lease at once, with one short critical
    /// section and no hop through the runtime. A new session gets a ready
    /// idle worker if there is one, else a new worker if below `max`, else
    /// waits in a FIFO queue. Concurrent acquires of one new session make
    /// exactly one binding; any caller giving up leaves the others waiting.
    ///
    /// Errors: `InvalidSessionId`, `AcquireTimeout`, `PoolExhausted` (queue
    /// full), `PoolClosed`, `SpawnFailed` (the worker started for this
    /// session failed), `Forked`.
    pub async fn acquire_timeout(&self, session: &str, timeout: Duration) -> Result<Lease, Error> {
        let shared = self.shared();
        runtime::check_fork(shared.fork_generation)?;
        validate_session_id(session)?;
        let guard = match shared.try_acquire(session)? {
            Step::Leased(lease) => return Ok(lease),
            Step::Wait(guard) => guard,
        };
        // Waiting needs timers: run it on the pool's runtime, so this
        // future works under any executor.
        let task = shared.handle.spawn(wait_for_worker(shared.clone(), session.to_string(), guard, timeout));
        AbortOnDrop(task).await
    }

    /// Like [`Pool::acquire_timeout`] but only succeeds without waiting:
    /// `Ok(None)` if the session would have to wait for a worker.
    pub fn try_acquire(&self, session: &str) -> Result<Option<Lease>, Error> {
        let shared = self.shared();
        runtime::check_fork(shared.fork_generation)?;
        validate_session_id(session)?;
        match shared.try_acquire(session)? {
            Step::Leased(lease) => Ok(Some(lease)),
            Step::Wait(_guard) => Ok(None),
        }
    }

    /// Blocking acquire for threads outside any async runtime (C, Python).
    /// `None` uses the pool's `acquire_timeout`.
    ///
    /// A bound session (or an idle worker) is served on the calling thread
    /// without touching the runtime; otherwise the wait runs on the pool's
    /// runtime while this thread blocks on a channel.
    pub fn acquire_blocking(&self, session: &str, timeout: Option<Duration>) -> Result<Lease, Error> {
        let shared = self.shared();
        runtime::check_fork(shared.fork_generation)?;
        validate_session_id(session)?;
        if let Step::Leased(lease) = shared.try_acquire(session)? {
            return Ok(lease);
        }
        self.begin_acquire(session, timeout)?.wait()
    }

    /// Starts an acquire on the pool's runtime and returns a handle to wait
    /// for it in slices — for callers that must stay interruptible (Python's
    /// Ctrl-C) or that deliver results elsewhere (Node promises, C
    /// callbacks). Dropping the handle cancels the acquire.
    pub fn begin_acquire(&self, session: &str, timeout: Option<Duration>) -> Result<PendingAcquire, Error> {
        let shared = self.shared();
        runtime::check_fork(shared.fork_generation)?;
        validate_session_id(session)?;
        if runtime::on_pool_runtime() {
            return Err(Error::new(
                ErrorKind::Internal,
                "blocking acquire called on the pool's own runtime thread; use the async acquire",
            ));
        }
        let timeout = timeout.unwrap_or(self.config().acquire_timeout);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let pool = self.clone();
        let session = session.to_string();
        let task = shared.handle.spawn(async move {
            let result = pool.acquire_timeout(&session, timeout).await;
            let _ = tx.send(result);
        });
        Ok(PendingAcquire { rx, task })
    }

    /// Ends `session` now (reason `ended`): with `reuse` its worker serves
    /// the next session once the session's open leases are released;
    /// without, the worker is stopped. Returns whether the session was bound.
    pub fn end_session(&self, session: &str) -> Result<bool, Error> {
        let shared = self.shared();
        runtime::check_fork(shared.fork_generation)?;
        validate_session_id(session)?;
        Ok(shared.end_session(session))
    }

    /// A snapshot of the pool. Never waits for I/O: process and host figures
    /// come from the last background sample. In a process forked from the
    /// one that made the pool, the snapshot is empty and `closed`.
    pub fn stats(&self) -> Stats {
        let shared = self.shared();
        if runtime::check_fork(shared.fork_generation).is_err() {
            return Stats::forked(&shared.config);
        }
        let st = shared.state.lock();
        let mut counts = WorkerCounts::default();
        let mut rows = Vec::with_capacity(st.workers.len());
        let mut open_leases = 0u64;
        for entry in st.workers.values() {
            let session = match &entry.state {
                WState::Starting => {
                    counts.starting += 1;
                    None
                }
                WState::Idle => {
                    counts.idle += 1;
                    None
                }
                WState::Bound(b) => {
                    counts.bound += 1;
                    open_leases += b.leases.load(Ordering::Relaxed) as u64;
                    Some(b.session.to_string())
                }
                WState::Draining(b) => {
                    counts.draining += 1;
                    open_leases += b.leases.load(Ordering::Relaxed) as u64;
                    Some(b.session.to_string())
                }
                WState::Stopping => {
                    counts.stopping += 1;
                    None
                }
            };
            let usage = entry.pid.and_then(|pid| st.usage.get(&pid));
            rows.push(WorkerStats {
                id: entry.id,
                pid: entry.pid,
                address: entry.address,
                state: entry.state.public(),
                session,
                age: entry.spawned_at.elapsed(),
                sessions_served: entry.sessions_served,
                health_failures: entry.health_failures,
                rss_bytes: usage.map(|u| u.rss_bytes),
                cpu_time: usage.map(|u| u.cpu_time),
            });
        }
        counts.total = st.workers.len();
        let waiting = st.queue.iter().map(|p| p.waiters.load(Ordering::Relaxed)).sum();
        let sessions = st.sessions.values().filter(|s| matches!(s, Slot::Bound(_))).count();
        let t = &st.tally;
        Stats {
            workers: counts,
            sessions,
            waiting_acquires: waiting,
            queued_sessions: st.queue.len(),
            open_leases,
            min: shared.config.min,
            max: shared.config.max,
            min_idle: shared.config.min_idle,
            max_queue: shared.config.max_queue,
            counters: Counters {
                spawned: t.spawned,
                spawn_failures: t.spawn_failures,
                crashed: t.crashed,
                unhealthy: t.unhealthy,
                recycled: t.recycled,
                sessions_bound: t.sessions_bound,
                sessions_ended: SessionEndCounts::from_array(t.sessions_ended),
                acquire_timeouts: shared.acquire_timeouts.load(Ordering::Relaxed),
                acquires_rejected: t.acquires_rejected,
            },
            worker_rows: rows,
            host: st.host,
            closed: st.closed,
        }
    }

    /// Subscribes to lifecycle events. A receiver that falls more than 4096
    /// events behind loses the oldest (`RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared().events.subscribe()
    }

    /// Waits until at least `min` workers are ready. Fails with the spawn
    /// error if workers fail to start, or `AcquireTimeout` after `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        let shared = self.shared().clone();
        let min = shared.config.min;
        let waiting = shared.clone();
        let wait = async move {
            let shared = waiting;
            loop {
                let notified = shared.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                {
                    let st = shared.state.lock();
                    if st.closed {
                        return Err(Error::closed());
                    }
                    let ready = st
                        .workers
                        .values()
                        .filter(|w| !matches!(w.state, WState::Starting | WState::Stopping))
                        .count();
                    if ready >= min {
                        return Ok(());
                    }
                    if st.failures_in_row > 0
                        && let Some(error) = &st.last_spawn_error
                    {
                        return Err(error.clone());
                    }
                }
                notified.await;
            }
        };
        let handle = shared.handle.clone();
        let task = handle.spawn(async move { tokio::time::timeout(timeout, wait).await });
        match task.await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::new(
                ErrorKind::AcquireTimeout,
                format!("fewer than min = {} workers were ready within {timeout:?}", self.config().min),
            )),
            Err(_) => Err(Error::closed()),
        }
    }

    /// Blocking [`Pool::wait_ready`].
    pub fn wait_ready_blocking(&self, timeout: Duration) -> Result<(), Error> {
        runtime::check_fork(self.shared().fork_generation)?;
        let pool = self.clone();
        self.block_on_runtime(async move { pool.wait_ready(timeout).await })?
    }

    /// Shuts the pool down: new acquires fail with `PoolClosed`, waiting
    /// ones too; every session ends with reason `shutdown`; every worker
    /// gets SIGTERM, up to `grace` to exit, then SIGKILL to its whole tree.
    /// Returns when no worker process is left. Calling it again waits for
    /// the first shutdown.
    pub async fn shutdown(&self, grace: Duration) {
        let shared = self.shared().clone();
        shared.begin_shutdown(grace);
        let waiter = shared.clone();
        let task = shared.handle.spawn(async move {
            waiter.wait_all_stopped().await;
            crate::process::wait_background_reaps(Duration::from_secs(2)).await;
        });
        let _ = task.await;
    }

    /// Blocking [`Pool::shutdown`], for threads outside any async runtime.
    pub fn shutdown_blocking(&self, grace: Duration) {
        if runtime::check_fork(self.shared().fork_generation).is_err() {
            return;
        }
        let pool = self.clone();
        let _ = self.block_on_runtime(async move { pool.shutdown(grace).await });
    }

    /// Whether the pool has been shut down (or is shutting down).
    pub fn is_closed(&self) -> bool {
        self.shared().state.lock().closed
    }

    /// Runs `future` on the pool's runtime and blocks this thread until it
    /// finishes.
    fn block_on_runtime<F>(&self, future: F) -> Result<F::Output, Error>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if runtime::on_pool_runtime() {
            return Err(Error::new(
                ErrorKind::Internal,
                "a blocking pool call was made on the pool's own runtime thread; use the async API",
            ));
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.shared().handle.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv().map_err(|_| Error::closed())
    }
}

/// Waits (on the pool's runtime) until the pending session is bound, then
/// takes the lease through the fast path.
async fn wait_for_worker(
    shared: Arc<Shared>,
    session: String,
    mut guard: lease::WaitGuard,
    timeout: Duration,
) -> Result<Lease, Error> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut rx = guard.subscribe();
        match tokio::time::timeout_at(deadline, rx.wait_for(|v| v.is_some())).await {
            Err(_) => return Err(shared.timeout_error(&session, timeout)),
            Ok(Ok(result)) => {
                if let Some(Err(error)) = &*result {
                    return Err(error.clone());
                }
            }
            Ok(Err(_)) => {}
        }
        drop(rx);
        guard = match shared.try_acquire(&session)? {
            Step::Leased(lease) => return Ok(lease),
            Step::Wait(next) => next,
        };
    }
}

/// Awaits a task and aborts it if the awaiting future is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> std::future::Future for AbortOnDrop<Result<T, Error>> {
    type Output = Result<T, Error>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|joined| {
            joined.unwrap_or_else(|e| {
                Err(if e.is_cancelled() {
                    Error::closed()
                } else {
                    Error::new(ErrorKind::Internal, format!("acquire task failed: {e}"))
                })
            })
        })
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("name", &self.inner.shared.name).finish()
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        let shared = self.shared.clone();
        let Some(rt) = self.runtime.lock().take() else { return };
        if runtime::check_fork(shared.fork_generation).is_err() {
            // A forked child's copy: the threads and workers belong to the
            // parent. Leak the runtime rather than touch them.
            std::mem::forget(rt);
            return;
        }
        let grace = shared.state.lock().shutdown_grace.unwrap_or(shared.config.stop_grace);
        shared.begin_shutdown(grace);
        if !runtime::on_pool_runtime() {
            let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
            let waiter = shared.clone();
            rt.spawn(async move {
                waiter.wait_all_stopped().await;
                crate::process::wait_background_reaps(Duration::from_secs(2)).await;
                let _ = tx.send(());
            });
            let _ = rx.recv();
        }
        rt.shutdown_background();
    }
}

/// An acquire running on the pool's runtime, for callers that wait in
/// their own way. Dropping it cancels the acquire (a lease that arrives
/// anyway is released).
pub struct PendingAcquire {
    rx: std::sync::mpsc::Receiver<Result<Lease, Error>>,
    task: tokio::task::JoinHandle<()>,
}

impl PendingAcquire {
    /// Blocks until the acquire finishes.
    pub fn wait(self) -> Result<Lease, Error> {
        self.rx.recv().unwrap_or_else(|_| Err(Error::closed()))
    }

    /// Blocks up to `slice`; `None` if the acquire is still running.
    pub fn wait_for(&self, slice: Duration) -> Option<Result<Lease, Error>> {
        match self.rx.recv_timeout(slice) {
            Ok(result) => Some(result),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Some(Err(Error::closed())),
        }
    }
}

impl Drop for PendingAcquire {
    fn drop(&mut self) {
        self.task.abort();
    }
}
