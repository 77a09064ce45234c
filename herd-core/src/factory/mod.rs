//! Worker factories: how the pool gets a new worker.
//!
//! [`ProcessFactory`] starts a local program on a free port (the common
//! case). Implement [`WorkerFactory`] and [`Worker`] to plug in anything
//! else — a remote VM, a container, a pre-forked server.

mod ports;
mod probe;
mod process;
mod template;
mod ticker;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::BoxFuture;

pub use self::probe::Readiness;
pub use self::process::ProcessFactory;
use crate::error::Error;
use crate::process::ExitStatus;

/// Identifies a worker within its pool for its whole life (`w1`, `w2`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(pub u64);

impl std::fmt::Display for WorkerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "w{}", self.0)
    }
}

/// What the pool tells a factory about the worker it wants.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SpawnContext {
    /// The ID the new worker will have.
    pub worker_id: WorkerId,
    /// A name unique to this pool among all pools of this host (used to name
    /// cgroups and similar host-wide resources).
    pub pool_name: String,
}

/// Starts workers for a pool.
///
/// `spawn` resolves once the worker is ready to serve (or failed to start);
/// the pool calls it from its own runtime and keeps any number of spawns in
/// flight at once.
pub trait WorkerFactory: Send + Sync + 'static {
    /// Starts one worker and waits until it is ready.
    fn spawn(&self, ctx: SpawnContext) -> BoxFuture<'static, Result<Box<dyn Worker>, Error>>;

    /// Checks the factory's settings before the pool starts (for example
    /// that the program exists), so mistakes surface at `Pool::new`.
    fn check(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Called once when a pool using this factory starts, before any
    /// spawn: prepare host-wide resources (the process factory checks the
    /// sandbox and cleans up cgroups left by dead herd processes).
    fn pool_starting(&self, pool_name: &str) -> Result<(), Error> {
        let _ = pool_name;
        Ok(())
    }

    /// A short description for logs (`"node server.js"`).
    fn describe(&self) -> String {
        "custom worker factory".to_string()
    }
}

/// One running worker, owned by the pool's supervisor task for that worker.
pub trait Worker: Send + 'static {
    /// Where the worker serves, if it is a network server.
    fn address(&self) -> Option<SocketAddr>;

    /// The worker's OS process ID as the host sees it, if it is a process.
    fn pid(&self) -> Option<u32>;

    /// One health check. The future must not borrow the worker, so the pool
    /// can run it while also waiting for [`Worker::exited`].
    fn health_check(&self, timeout: Duration) -> BoxFuture<'static, Result<(), String>>;

    /// Resolves when the worker has exited on its own. Cancel-safe.
    fn exited(&mut self) -> BoxFuture<'_, ExitStatus>;

    /// Stops the worker and everything it started: polite request, `grace`
    /// to comply, then forced. Resolves when nothing of it is left.
    fn stop(&mut self, grace: Duration) -> BoxFuture<'_, ExitStatus>;
}
