//! `Lease`: one use of a session's worker, from JavaScript.

use std::net::SocketAddr;

use herd_core::WorkerId;
use napi_derive::napi;

/// One open use of a session's worker (from `pool.acquire`).
///
/// While any lease of a session is open, the session is never evicted for
/// idleness. `release()` it when done (or declare it with `using`); the
/// session stays bound to its worker until it ends. A lease that is never
/// released is released when it is garbage-collected.
#[napi]
pub struct Lease {
    lease: Option<herd_core::Lease>,
    session_id: String,
    worker: WorkerId,
    pid: Option<u32>,
    address: Option<SocketAddr>,
}

impl From<herd_core::Lease> for Lease {
    fn from(lease: herd_core::Lease) -> Self {
        Lease {
            session_id: lease.session_id().to_string(),
            worker: lease.worker_id(),
            pid: lease.pid(),
            address: lease.address(),
            lease: Some(lease),
        }
    }
}

#[napi]
impl Lease {
    /// The session ID.
    #[napi(getter)]
    pub fn session_id(&self) -> String {
        self.session_id.clone()
    }

    /// The worker the session is bound to (`"w3"`).
    #[napi(getter)]
    pub fn worker_id(&self) -> String {
        self.worker.to_string()
    }

    /// The worker's PID.
    #[napi(getter)]
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The worker's address, `127.0.0.1:port`.
    #[napi(getter)]
    pub fn address(&self) -> Option<String> {
        self.address.map(|a| a.to_string())
    }

    /// `http://127.0.0.1:port`, for HTTP workers.
    #[napi(getter)]
    pub fn url(&self) -> Option<String> {
        self.address.map(|a| format!("http://{a}"))
    }

    /// Whether `release()` was called.
    #[napi(getter)]
    pub fn released(&self) -> bool {
        self.lease.is_none()
    }

    /// Whether the session has ended (its worker may be gone or serving
    /// someone else: stop using it).
    #[napi(getter)]
    pub fn session_ended(&self) -> bool {
        self.lease.as_ref().is_none_or(|l| l.is_ended())
    }

    /// Records activity now: the idle `ttlMs` counts from the last activity.
    #[napi]
    pub fn touch(&self) {
        if let Some(lease) = &self.lease {
            lease.touch();
        }
    }

    /// Releases the lease; the session stays bound. Calling it again does
    /// nothing.
    #[napi]
    pub fn release(&mut self) {
        self.lease = None;
    }

    /// `using lease = await pool.acquire(id)` releases at the end of the block.
    #[napi(well_known_symbol = "dispose")]
    pub fn dispose(&mut self) {
        self.release();
    }
}
