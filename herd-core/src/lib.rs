//! # herd-core
//!
//! The engine of herd, a session-affine process pool: each session ID is
//! pinned to its own worker process for the session's lifetime (one
//! session → one worker, one worker → at most one session), so a stateful
//! single-tenant program — a headless browser, an LLM server, a REPL —
//! becomes a multi-tenant service.
//!
//! * [`Pool`] binds sessions to workers, keeps `min`/`min_idle` workers
//!   warm, caps at `max`, queues the rest (FIFO, bounded), evicts idle
//!   sessions, health-checks workers and replaces crashed ones.
//! * [`ProcessFactory`] starts a local program on a free port; its whole
//!   process tree lives under a small *shim* that reaps it, forwards
//!   signals, and kills every descendant when the worker stops or the host
//!   dies.
//! * [`Lease`] is one use of a session; drop it to release.
//! * [`Event`]s and callbacks report every lifecycle step; [`Pool::stats`]
//!   never blocks.
//! * [`Proxy`] is an HTTP/WebSocket gateway that sends each request to
//!   its session's worker (the `herd serve` command).
//!
//! The pool owns its tokio runtime; callers on any thread, in any runtime
//! or none, use the async or the blocking API.
//!
//! See `ARCHITECTURE.md` at the repository root for the design.

pub mod config;
pub mod demo;
pub mod error;
pub mod events;
pub mod factory;
mod pool;
pub mod process;
pub mod proxy;
mod runtime;
pub mod sandbox;
pub mod session;
pub mod stats;

pub use config::PoolConfig;
pub use error::{Error, ErrorKind, Origin, Result};
pub use events::{EndReason, Event, EventKind, SessionEnd};
pub use factory::{ProcessFactory, Readiness, SpawnContext, Worker, WorkerFactory, WorkerId};
pub use pool::{Lease, PendingAcquire, Pool, PoolBuilder};
pub use process::ExitStatus;
pub use proxy::{Proxy, ProxyConfig, SessionSource};
pub use sandbox::{Limits, SandboxConfig, SandboxMode};
pub use session::{MAX_SESSION_ID_LEN, validate_session_id};
pub use stats::{Stats, WorkerState};

/// herd's version (from Cargo metadata).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
