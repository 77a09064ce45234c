//! Lifecycle events and why sessions end.
//!
//! Every transition worth knowing about becomes an [`Event`]. Events reach
//! callbacks and async subscribers through one dispatcher thread per pool:
//!
//! * callbacks never run on the pool's runtime threads or while a pool lock
//!   is held, so a callback may call back into herd — even its blocking
//!   API — without deadlocking;
//! * a slow callback delays later events, never the pool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

use crate::factory::WorkerId;
use crate::process::ExitStatus;

/// Why a session ended. Each session ends exactly once, with one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// `end_session` was called.
    Ended,
    /// No open lease and no activity for the pool's `ttl`.
    IdleTimeout,
    /// The session reached `max_session_lifetime`.
    MaxLifetime,
    /// The worker exited on its own (crash, OOM kill, `kill -9`).
    Crashed {
        /// How the worker ended.
        status: ExitStatus,
    },
    /// The worker failed `health_failure_threshold` checks in a row.
    Unhealthy,
    /// The pool shut down.
    Shutdown,
}

impl EndReason {
    /// The stable name: `ended`, `idle_timeout`, `max_lifetime`, `crashed`,
    /// `unhealthy` or `shutdown`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EndReason::Ended => "ended",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::MaxLifetime => "max_lifetime",
            EndReason::Crashed { .. } => "crashed",
            EndReason::Unhealthy => "unhealthy",
            EndReason::Shutdown => "shutdown",
        }
    }

    /// The worker's exit status, for `Crashed`.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        match self {
            EndReason::Crashed { status } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn index(&self) -> usize {
        match self {
            EndReason::Ended => 0,
            EndReason::IdleTimeout => 1,
            EndReason::MaxLifetime => 2,
            EndReason::Crashed { .. } => 3,
            EndReason::Unhealthy => 4,
            EndReason::Shutdown => 5,
        }
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::Crashed { status } => write!(f, "crashed ({status})"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// Something that happened in a pool.
#[derive(Debug, Clone)]
pub struct Event {
    /// When it happened.
    pub at: SystemTime,
    /// What happened.
    pub kind: EventKind,
}

/// The kinds of [`Event`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EventKind {
    /// A worker is being started.
    WorkerSpawning { worker: WorkerId },
    /// A worker is ready to serve.
    WorkerReady {
        worker: WorkerId,
        pid: Option<u32>,
        address: Option<SocketAddr>,
        /// From the spawn request to ready.
        startup: Duration,
    },
    /// A worker could not be started.
    WorkerSpawnFailed { worker: WorkerId, error: crate::Error },
    /// A session was bound to a worker.
    SessionBound { session: Arc<str>, worker: WorkerId, pid: Option<u32> },
    /// The last open lease of a session was released (the binding stays).
    /// Only emitted when asked for ([`crate::PoolBuilder::lease_events`]):
    /// it happens on every request of a busy gateway.
    LeaseReleased { session: Arc<str>, worker: WorkerId },
    /// A session ended; its binding is gone.
    SessionEnded(SessionEnd),
    /// A worker process is gone. `expected` is false for crashes.
    WorkerExited { worker: WorkerId, pid: Option<u32>, status: Option<ExitStatus>, expected: bool },
}

/// A session that ended, and why.
#[derive(Debug, Clone)]
pub struct SessionEnd {
    /// The session ID.
    pub session: Arc<str>,
    /// The worker it was bound to.
    pub worker: WorkerId,
    /// That worker's PID.
    pub pid: Option<u32>,
    /// Why it ended.
    pub reason: EndReason,
    /// How long the session was bound.
    pub duration: Duration,
}

/// A callback for events; runs on the pool's event thread.
pub type EventCallback = Arc<dyn Fn(&Event) + Send + Sync + 'static>;

pub(crate) struct EventSink {
    tx: mpsc::Sender<Event>,
    broadcast: broadcast::Sender<Event>,
    /// Set when anyone listens; lets the hot path skip building events.
    listening: AtomicBool,
    /// Shared with every binding, so a lease's release reads it without
    /// touching the pool's reference count (see `Lease`).
    release_events: Arc<AtomicBool>,
}

impl EventSink {
    /// Starts the dispatcher thread for `callbacks`.
    pub(crate) fn start(
        pool_name: &str,
        callbacks: Vec<EventCallback>,
        lease_events: bool,
    ) -> std::io::Result<EventSink> {
        let (tx, rx) = mpsc::channel::<Event>();
        let (broadcast, _) = broadcast::channel(4096);
        let forward = broadcast.clone();
        let listening = !callbacks.is_empty();
        std::thread::Builder::new().name(format!("herd-events-{pool_name}")).spawn(move || {
            while let Ok(event) = rx.recv() {
                for callback in &callbacks {
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(&event)));
                    if outcome.is_err() {
                        tracing::error!("a herd event callback panicked while handling {:?}", event.kind);
                    }
                }
                let _ = forward.send(event);
            }
        })?;
        Ok(EventSink {
            tx,
            broadcast,
            listening: AtomicBool::new(listening),
            release_events: Arc::new(AtomicBool::new(lease_events)),
        })
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.listening.store(true, Ordering::Relaxed);
        self.broadcast.subscribe()
    }

    /// Whether every lease release is reported (a binding reads it).
    pub(crate) fn release_events_flag(&self) -> Arc<AtomicBool> {
        self.release_events.clone()
    }

    pub(crate) fn emit(&self, kind: EventKind) {
        if self.listening.load(Ordering::Relaxed) {
            let _ = self.tx.send(Event { at: SystemTime::now(), kind });
        }
    }
}
