//! Connections from the proxy to workers: one small pool of HTTP/1.1
//! keep-alive connections per worker.
//!
//! A connection is checked out for one request and given back when the
//! response body has been read to its end (a connection whose response was
//! abandoned midway is closed: its remaining bytes would corrupt the next
//! exchange). Idle connections are reused newest first, not reused after
//! `upstream_idle_timeout`, capped at `upstream_max_idle` per worker, and
//! all dropped when the worker exits ([`Upstreams::retire`]).
//!
//! # Concurrency
//!
//! The worker map is behind a read-mostly lock held only to clone an
//! `Arc`; each worker's idle list is behind its own short mutex, never held
//! across an await. A connection being given back while its worker is
//! retired is either dropped by `retire` (it was in the list) or sees
//! `retired` set and drops itself: `retired` is set before the list is
//! drained, and checked under the list's lock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use parking_lot::{Mutex, RwLock};
use tokio::net::TcpStream;

use super::metrics::Metrics;
use crate::factory::WorkerId;

/// Settings shared by every worker's pool.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_idle: usize,
}

/// The per-worker pools of one proxy.
pub(crate) struct Upstreams {
    workers: RwLock<HashMap<WorkerId, Arc<Upstream>>>,
    settings: Settings,
    metrics: Arc<Metrics>,
}

/// One worker's connections.
pub(crate) struct Upstream {
    pub worker: WorkerId,
    pub address: SocketAddr,
    /// `Host` for requests to this worker (`127.0.0.1:port`).
    pub host: HeaderValue,
    idle: Mutex<Vec<(SendRequest<Incoming>, Instant)>>,
    retired: AtomicBool,
    settings: Settings,
    metrics: Arc<Metrics>,
}

/// A connection checked out for one exchange.
pub(crate) struct Conn {
    sender: SendRequest<Incoming>,
    upstream: Arc<Upstream>,
}

/// Why no connection to the worker could be made.
#[derive(Debug)]
pub(crate) struct ConnectError {
    pub message: String,
}

impl Upstreams {
    pub(crate) fn new(settings: Settings, metrics: Arc<Metrics>) -> Upstreams {
        Upstreams { workers: RwLock::new(HashMap::new()), settings, metrics }
    }

    /// The pool of connections to `worker` at `address`.
    pub(crate) fn get(&self, worker: WorkerId, address: SocketAddr) -> Arc<Upstream> {
        if let Some(up) = self.workers.read().get(&worker)
            && up.address == address
        {
            return up.clone();
        }
        let mut workers = self.workers.write();
        let entry = workers.entry(worker).or_insert_with(|| self.upstream(worker, address));
        if entry.address != address {
            *entry = self.upstream(worker, address);
        }
        entry.clone()
    }

    fn upstream(&self, worker: WorkerId, address: SocketAddr) -> Arc<Upstream> {
        Arc::new(Upstream {
            worker,
            address,
            host: HeaderValue::from_str(&address.to_string())
                .unwrap_or(HeaderValue::from_static("localhost")),
            idle: Mutex::new(Vec::new()),
            retired: AtomicBool::new(false),
            settings: self.settings.clone(),
            metrics: self.metrics.clone(),
        })
    }

    /// Drops every idle connection to `worker` (it exited), and forgets it.
    pub(crate) fn retire(&self, worker: WorkerId) {
        let removed = self.workers.write().remove(&worker);
        if let Some(up) = removed {
            up.retire();
        }
    }

    /// Retires every worker not in `alive` (used after missed events).
    pub(crate) fn retain(&self, alive: &[WorkerId]) {
        let gone: Vec<WorkerId> =
            self.workers.read().keys().filter(|w| !alive.contains(w)).copied().collect();
        for worker in gone {
            self.retire(worker);
        }
    }

    /// Drops every idle connection (the proxy is stopping).
    pub(crate) fn retire_all(&self) {
        let all: Vec<Arc<Upstream>> = self.workers.write().drain().map(|(_, up)| up).collect();
        for up in all {
            up.retire();
        }
    }
}

impl Upstream {
    fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        let idle = std::mem::take(&mut *self.idle.lock());
        drop(idle);
    }

    /// An idle connection that is ready for a request, or a new one.
    pub(crate) async fn checkout(self: &Arc<Self>) -> Result<Conn, ConnectError> {
        if let Some(conn) = self.reuse() {
            return Ok(conn);
        }
        self.connect().await
    }

    /// The newest idle connection still fit for use, if any.
    ///
    /// # Race window
    ///
    /// A connection is given back as soon as its response body has been
    /// read, which can be a moment before hyper's connection task has
    /// marked it ready for the next request. One found in that state here
    /// is handed to a task that waits for it to become ready (or close)
    /// and then gives it back, so it is neither lost nor waited on by a
    /// request.
    fn reuse(self: &Arc<Self>) -> Option<Conn> {
        let mut idle = self.idle.lock();
        while let Some((mut sender, since)) = idle.pop() {
            if since.elapsed() >= self.settings.idle_timeout || sender.is_closed() {
                continue;
            }
            if sender.is_ready() {
                return Some(Conn { sender, upstream: self.clone() });
            }
            let upstream = self.clone();
            tokio::spawn(async move {
                if sender.ready().await.is_ok() {
                    upstream.give_back(sender);
                }
            });
        }
        None
    }

    /// Opens a new connection.
    pub(crate) async fn connect(self: &Arc<Self>) -> Result<Conn, ConnectError> {
        let fail = |what: String| ConnectError {
            message: format!("cannot connect to worker {} at {}: {what}", self.worker, self.address),
        };
        let stream =
            match tokio::time::timeout(self.settings.connect_timeout, TcpStream::connect(self.address)).await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return Err(fail(e.to_string())),
                Err(_) => return Err(fail(format!("no answer within {:?}", self.settings.connect_timeout))),
            };
        let _ = stream.set_nodelay(true);
        let (sender, connection) =
            http1::Builder::new().handshake(TokioIo::new(stream)).await.map_err(|e| fail(e.to_string()))?;
        self.metrics.upstream_connects.inc();
        let metrics = self.metrics.clone();
        metrics.upstream_connections.inc();
        tokio::spawn(async move {
            // Ends when the worker or herd closes the connection; errors
            // reach the request that was using it.
            let _ = connection.with_upgrades().await;
            metrics.upstream_connections.dec();
        });
        Ok(Conn { sender, upstream: self.clone() })
    }

    fn give_back(&self, sender: SendRequest<Incoming>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock();
        if !self.retired.load(Ordering::SeqCst) && idle.len() < self.settings.max_idle {
            idle.push((sender, Instant::now()));
        }
    }
}

impl Conn {
    /// Sends `req`. On failure the request comes back when it was never
    /// written to the connection (so it can be sent on another one).
    pub(crate) async fn send(
        &mut self,
        req: Request<Incoming>,
    ) -> Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<Incoming>>> {
        self.sender.try_send_request(req).await
    }

    /// Gives the connection back for the next request: call only once the
    /// response body has been read to its end.
    pub(crate) fn give_back(self) {
        let Conn { sender, upstream } = self;
        upstream.give_back(sender);
    }
}
