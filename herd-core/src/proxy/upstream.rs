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
//! # No task per connection
//!
//! A connection is driven by the request that holds it — while waiting
//! for the response head ([`Conn::send`]) and while its response body is
//! read ([`Conn::poll_data`], from the body) — so the bytes of one
//! exchange never cross tasks (herd's own client, [`super::client`]). An
//! idle connection is polled by no one; a worker closing it is noticed at
//! the next checkout. Upgraded connections (WebSocket) get their own task.
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
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use parking_lot::{Mutex, RwLock};
use tokio::net::TcpStream;

use super::client::{BodyError, Connection, Outgoing, ResponseHead, SendError, Upgraded};
use super::metrics::Metrics;
use super::timer::Timers;
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
    timers: Timers,
}

/// One worker's connections.
pub(crate) struct Upstream {
    pub worker: WorkerId,
    pub address: SocketAddr,
    /// `Host` for requests to this worker (`127.0.0.1:port`).
    pub host: HeaderValue,
    idle: Mutex<Vec<(Conn, Instant)>>,
    retired: AtomicBool,
    settings: Settings,
    metrics: Arc<Metrics>,
    /// Runs the connect timeout (the I/O threads have no timer).
    timers: Timers,
}

/// A connection checked out for one exchange.
///
/// The connection's state is boxed once, when it is opened: a `Conn` is
/// moved through every request's futures (checkout, send, the response
/// body), and three words move faster than the few hundred bytes of a
/// [`Connection`].
pub(crate) struct Conn {
    connection: Box<Connection>,
    upstream: Arc<Upstream>,
    _open: OpenConnection,
}

/// Counts an open upstream connection in the metrics while it lives.
struct OpenConnection(Arc<Metrics>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.upstream_connections.dec();
    }
}

/// Why no connection to the worker could be made.
#[derive(Debug)]
pub(crate) struct ConnectError {
    pub message: String,
}

impl Upstreams {
    pub(crate) fn new(settings: Settings, metrics: Arc<Metrics>, timers: Timers) -> Upstreams {
        Upstreams { workers: RwLock::new(HashMap::new()), settings, metrics, timers }
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
            timers: self.timers.clone(),
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

    /// Whether no worker has connections here.
    pub(crate) fn is_empty(&self) -> bool {
        self.workers.read().is_empty()
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
        loop {
            let popped = self.idle.lock().pop();
            let Some((mut conn, since)) = popped else { break };
            if since.elapsed() >= self.settings.idle_timeout {
                // Everything below it is older still.
                self.idle.lock().clear();
                break;
            }
            // An idle connection is polled by no one: see now whether the
            // worker closed it meanwhile.
            if conn.connection.is_idle_alive() {
                return Ok(conn);
            }
        }
        self.connect().await
    }

    /// Opens a new connection.
    pub(crate) async fn connect(self: &Arc<Self>) -> Result<Conn, ConnectError> {
        let fail = |what: String| ConnectError {
            message: format!("cannot connect to worker {} at {}: {what}", self.worker, self.address),
        };
        let connect = TcpStream::connect(self.address);
        let stream = match self.timers.timeout(self.settings.connect_timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(fail(e.to_string())),
            Err(_) => return Err(fail(format!("no answer within {:?}", self.settings.connect_timeout))),
        };
        let _ = stream.set_nodelay(true);
        self.metrics.upstream_connects.inc();
        self.metrics.upstream_connections.inc();
        Ok(Conn {
            connection: Box::new(Connection::new(stream)),
            upstream: self.clone(),
            _open: OpenConnection(self.metrics.clone()),
        })
    }

    fn give_back(&self, conn: Conn) {
        let mut idle = self.idle.lock();
        if !self.retired.load(Ordering::SeqCst) && idle.len() < self.settings.max_idle {
            idle.push((conn, Instant::now()));
        }
    }
}

impl Conn {
    /// Sends `req` and waits for the response head, driving the connection
    /// meanwhile (see the module docs); `headers` is room for the head's
    /// headers ([`Connection::send`]).
    pub(crate) async fn send(
        &mut self,
        req: Outgoing,
        headers: HeaderMap,
    ) -> Result<ResponseHead, SendError> {
        self.connection.send(req, headers).await.map_err(|e| match e {
            SendError::Failed(why) => SendError::Failed(format!(
                "worker {} at {}: {why}",
                self.upstream.worker, self.upstream.address
            )),
            unsent => unsent,
        })
    }

    /// A buffer for the next request's head.
    pub(crate) fn take_buffer(&mut self) -> Vec<u8> {
        self.connection.take_buffer()
    }

    /// The next piece of the response body; `None` at its end.
    pub(crate) fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, BodyError>> {
        self.connection.poll_data(cx).map_err(|BodyError(why)| {
            BodyError(format!("worker {} at {}: {why}", self.upstream.worker, self.upstream.address))
        })
    }

    /// Whether the response body has been read to its end.
    pub(crate) fn is_body_done(&self) -> bool {
        self.connection.is_body_done()
    }

    /// Response body bytes still to come, when known.
    pub(crate) fn remaining(&self) -> Option<u64> {
        self.connection.remaining()
    }

    /// The raw connection after a `101`, for a tunnel.
    pub(crate) fn into_upgraded(self) -> Upgraded {
        self.connection.into_upgraded()
    }

    /// Gives the connection back for the next request once its response
    /// body was read to its end; a connection that cannot carry another
    /// exchange (its request body still streaming, the worker closing it,
    /// stray bytes after the response) is closed instead.
    pub(crate) fn give_back(mut self) {
        if !self.connection.is_reusable() {
            return;
        }
        self.connection.finish();
        let upstream = self.upstream.clone();
        upstream.give_back(self);
    }
}
