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
//! hyper's client connection is a future that must be polled to move
//! bytes. Instead of a task per connection, the request that holds a
//! connection polls it itself — while waiting for the response head
//! ([`Conn::send`]) and while its response body is read
//! ([`Conn::poll_connection`], from the body). A request then runs in one
//! task, the client connection's, with no wake-up across tasks: the
//! largest cost of a proxied request on a small machine. An idle
//! connection is polled by no one; a worker closing it is noticed at the
//! next checkout. Upgraded connections (WebSocket) get their own task.
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
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use parking_lot::{Mutex, RwLock};
use tokio::net::TcpStream;

use super::metrics::Metrics;
use crate::factory::WorkerId;

type Io = TokioIo<TcpStream>;

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
    idle: Mutex<Vec<(Conn, Instant)>>,
    retired: AtomicBool,
    settings: Settings,
    metrics: Arc<Metrics>,
}

/// A connection checked out for one exchange.
pub(crate) struct Conn {
    sender: SendRequest<Incoming>,
    /// The connection's I/O, polled by its user; `None` once it ended (or
    /// moved to its own task for an upgrade).
    connection: Option<Box<Connection<Io, Incoming>>>,
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

/// Why a request did not reach the worker.
pub(crate) enum SendError {
    /// The connection was closing before the request was written: the
    /// request comes back, to be sent on another connection.
    Unsent(Box<Request<Incoming>>),
    /// The exchange failed.
    Failed(String),
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
            let alive = poll_fn(|cx| Poll::Ready(conn.poll_connection(cx).is_pending())).await;
            if alive && conn.sender.is_ready() {
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
        self.metrics.upstream_connections.inc();
        Ok(Conn {
            sender,
            connection: Some(Box::new(connection)),
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
    /// meanwhile (see the module docs).
    pub(crate) async fn send(&mut self, req: Request<Incoming>) -> Result<Response<Incoming>, SendError> {
        let response = self.sender.try_send_request(req);
        tokio::pin!(response);
        let outcome = poll_fn(|cx| {
            if let Poll::Ready(outcome) = response.as_mut().poll(cx) {
                return Poll::Ready(outcome);
            }
            if self.poll_connection(cx).is_ready() {
                // The connection ended with the request pending: hyper
                // answers it once the connection is dropped.
                return response.as_mut().poll(cx);
            }
            Poll::Pending
        })
        .await;
        outcome.map_err(|mut error| match error.take_message() {
            Some(req) => SendError::Unsent(Box::new(req)),
            None => SendError::Failed(format!(
                "worker {} at {}: {}",
                self.upstream.worker,
                self.upstream.address,
                error.error()
            )),
        })
    }

    /// Moves bytes on the connection. `Ready` once it has ended (closed by
    /// the worker, failed, or moved away for an upgrade).
    pub(crate) fn poll_connection(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(connection) = self.connection.as_mut() else { return Poll::Ready(()) };
        match Pin::new(&mut **connection).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => {
                self.connection = None;
                Poll::Ready(())
            }
        }
    }

    /// Lets the connection carry an upgrade: it gets its own task, which
    /// hands the raw connection to `hyper::upgrade::on` after a `101`.
    /// Call before sending the upgrade request.
    pub(crate) fn prepare_upgrade(&mut self) {
        if let Some(connection) = self.connection.take() {
            tokio::spawn(async move {
                let _ = connection.with_upgrades().await;
            });
        }
    }

    /// Gives the connection back for the next request once its response
    /// body was read to its end; a connection not ready for another
    /// request (its request body still streaming) is closed instead.
    pub(crate) fn give_back(mut self, cx: &mut Context<'_>) {
        if self.poll_connection(cx).is_ready() || !self.sender.is_ready() {
            return;
        }
        let upstream = self.upstream.clone();
        upstream.give_back(self);
    }
}
