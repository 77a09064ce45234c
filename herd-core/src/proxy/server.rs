//! Listening, serving client connections, and stopping gracefully.
//!
//! # Threads
//!
//! The gateway serves on its own I/O threads (`ProxyConfig::threads`),
//! each a single-threaded runtime with its own listening socket on the
//! shared port (`SO_REUSEPORT`: the kernel spreads connections) and its
//! own upstream connections ([`IoThread`]). A request is then served from
//! start to end by one thread, with no wake-up of another thread: on the
//! pool's work-stealing runtime a proxied request cost 4–5 context
//! switches, here 2 (one wake for the request, one for the worker's
//! answer), and about 30% less CPU. Pool calls still run on the pool's
//! runtime (a bound session's acquire needs no runtime at all), and so do
//! the admin routes.
//!
//! # Stopping
//!
//! [`Stage`] moves `Running → Draining → Closed`, once each. On
//! `Draining` the listeners stop accepting, each HTTP connection finishes
//! the request in flight and then closes (hyper's graceful shutdown), and
//! each tunnel sends its close frame. Every connection and tunnel holds a
//! [`Tracker`] guard; `stop` waits for the count to reach zero or for the
//! grace period, then moves to `Closed`, which drops whatever is left.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, watch};

use super::body::ProxyBody;
use super::forward::Gateway;
use super::headers::ClientInfo;
use super::metrics::{Metrics, ThreadMetrics};
use super::timer::{CoarseTimer, Timers};
use super::upstream::Upstreams;
use crate::error::Error;

/// Where a proxy is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    Running,
    Draining,
    Closed,
}

/// A receiver of [`Stage`] changes.
#[derive(Clone)]
pub(crate) struct StopSignal(watch::Receiver<Stage>);

impl StopSignal {
    pub(crate) fn new() -> (watch::Sender<Stage>, StopSignal) {
        let (tx, rx) = watch::channel(Stage::Running);
        (tx, StopSignal(rx))
    }

    /// Resolves once stopping has begun.
    pub(crate) async fn stopping(&mut self) {
        let _ = self.0.wait_for(|s| *s >= Stage::Draining).await;
    }

    /// Whether the stage moved since this receiver was made (or the proxy
    /// is gone). A cheap check: one atomic load.
    pub(crate) fn changed(&self) -> bool {
        self.0.has_changed().unwrap_or(true)
    }

    /// Resolves once the grace period is over.
    pub(crate) async fn closed(&mut self) {
        let _ = self.0.wait_for(|s| *s >= Stage::Closed).await;
    }
}

/// Counts live connections and tunnels.
#[derive(Default)]
pub(crate) struct Tracker {
    live: AtomicUsize,
    none_left: Notify,
}

/// Held by one connection or tunnel.
pub(crate) struct TrackerGuard(Arc<Tracker>);

impl Tracker {
    pub(crate) fn guard(self: &Arc<Self>) -> TrackerGuard {
        self.live.fetch_add(1, Ordering::SeqCst);
        TrackerGuard(self.clone())
    }

    /// Waits until no connection or tunnel is left.
    pub(crate) async fn none_left(&self) {
        loop {
            let notified = self.none_left.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for TrackerGuard {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.none_left.notify_waiters();
        }
    }
}

/// How a listening socket shares its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sharing {
    /// Not at all.
    Alone,
    /// The first of a `SO_REUSEPORT` group: the port must be free.
    First,
    /// Another socket of the group.
    Join,
}

/// Binds `addr` on the current runtime, with a deep accept backlog.
pub(crate) fn bind(addr: SocketAddr, what: &str, sharing: Sharing) -> Result<TcpListener, Error> {
    let fail = |e: std::io::Error| Error::io(format!("cannot listen on {addr} ({what})"), e);
    let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(fail)?;
    socket.set_reuseaddr(true).map_err(fail)?;
    if sharing == Sharing::First && addr.port() != 0 {
        // Sockets that share a port split its connections: make sure no
        // one listens on it already (another herd, say), or both would
        // quietly serve half of the clients.
        drop(std::net::TcpListener::bind(addr).map_err(fail)?);
    }
    if sharing != Sharing::Alone {
        socket.set_reuseport(true).map_err(fail)?;
    }
    socket.bind(addr).map_err(fail)?;
    socket.listen(1024).map_err(fail)
}

/// What one I/O thread owns: its upstream connections (registered with
/// its runtime, so used by no other thread) and its live connections.
pub(crate) struct IoThread {
    pub upstreams: Upstreams,
    pub tracker: Arc<Tracker>,
    pub metrics: Arc<ThreadMetrics>,
}

/// What every I/O thread shares.
pub(crate) struct Serving {
    pub gateway: Arc<Gateway>,
    /// Counts each thread until its runtime is gone.
    pub all: Arc<Tracker>,
    pub max_header_bytes: usize,
    pub header_read_timeout: Duration,
    /// The pool's runtime, where each thread's header-read ticker runs.
    pub pool_runtime: tokio::runtime::Handle,
    /// The I/O threads' other timers (their runtimes have none).
    pub timers: Timers,
}

/// Starts I/O thread number `index`, serving `listener` (bound on
/// `runtime`) until the proxy stops.
pub(crate) fn spawn_io_thread(
    index: usize,
    runtime: tokio::runtime::Runtime,
    listener: TcpListener,
    io: Arc<IoThread>,
    serving: &Serving,
) -> Result<(), Error> {
    let guard = serving.all.guard();
    // Each thread has its own header-read timer: no lock is shared.
    let timer = CoarseTimer::new(serving.header_read_timeout);
    let http = Arc::new(http_server(serving.max_header_bytes, serving.header_read_timeout, timer.clone()));
    let gateway = serving.gateway.clone();
    let stop = gateway.stop.clone();
    let timers = serving.timers.clone();
    // The ticker runs on the pool's runtime, not on this thread: the
    // thread's runtime has no timer (see `timer`). It ends when the proxy
    // has closed.
    let mut closed = stop.clone();
    serving.pool_runtime.spawn(async move {
        tokio::select! {
            _ = timer.tick() => {}
            _ = closed.closed() => {}
        }
    });
    std::thread::Builder::new()
        .name(format!("herd-proxy-{index}"))
        .spawn(move || {
            let mut stopped = stop.clone();
            let tracker = io.tracker.clone();
            let metrics = gateway.metrics.clone();
            runtime.block_on(async {
                let serving = io.clone();
                let serve = async {
                    accept_loop(
                        listener,
                        http,
                        move |req, client| gateway.clone().handle(req, client, serving.clone()),
                        stop,
                        tracker.clone(),
                        Some(metrics),
                        timers,
                    )
                    .await;
                    tokio::select! {
                        _ = tracker.none_left() => {}
                        _ = stopped.closed() => {}
                    }
                };
                serve.await;
            });
            // Drops what is left (after the grace period), then uncounts
            // the thread.
            drop(runtime);
            drop(guard);
        })
        .map(|_| ())
        .map_err(|e| Error::io("cannot start a proxy thread", e))
}

/// The HTTP/1.1 server settings for client connections.
///
/// `writev(false)`: hyper copies each body piece behind the head in its
/// write buffer (bounded by its `max_buf_size`) and writes once, instead
/// of queueing the pieces for `writev`. A small answer then leaves in one
/// plain write of one buffer, and the worker's read buffer is released
/// at once; at one connection this took ~2 µs off the median round trip
/// (BENCHMARKS.md). Large bodies pay one extra copy per piece (16 KiB),
/// small next to the system calls that move them.
///
/// `timer` runs the header-read deadlines: a [`CoarseTimer`] on the I/O
/// threads (hyper arms one per request; in tokio's timer wheel each would
/// also be "the earliest timer" on an otherwise timer-less thread, which
/// makes tokio wake its own runtime through an eventfd).
pub(crate) fn http_server<T>(
    max_header_bytes: usize,
    header_read_timeout: Duration,
    timer: T,
) -> http1::Builder
where
    T: hyper::rt::Timer + Send + Sync + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(timer)
        .header_read_timeout(header_read_timeout)
        .max_header_size(max_header_bytes)
        .writev(false)
        .keep_alive(true);
    builder
}

/// Accepts connections until stopping begins; serves each with `service`.
/// `timers` runs the back-off after a failed accept.
pub(crate) async fn accept_loop<S, F>(
    listener: TcpListener,
    server: Arc<http1::Builder>,
    service: S,
    stop: StopSignal,
    tracker: Arc<Tracker>,
    metrics: Option<Arc<Metrics>>,
    timers: Timers,
) where
    S: Fn(Request<Incoming>, Arc<ClientInfo>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<ProxyBody>, Infallible>> + Send + 'static,
{
    let mut stopping = stop.clone();
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            _ = stopping.stopping() => return,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of descriptors or similar: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    timers.sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let guard = tracker.guard();
        let service = service.clone();
        let server = server.clone();
        let stop = stop.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _guard = guard;
            if let Some(m) = &metrics {
                m.client_connections.inc();
            }
            serve_connection(stream, peer, &server, service, stop).await;
            if let Some(m) = &metrics {
                m.client_connections.dec();
            }
        });
    }
}

async fn serve_connection<S, F>(
    stream: TcpStream,
    peer: SocketAddr,
    server: &http1::Builder,
    service: S,
    mut stop: StopSignal,
) where
    S: Fn(Request<Incoming>, Arc<ClientInfo>) -> F + Send + 'static,
    F: Future<Output = Result<Response<ProxyBody>, Infallible>> + Send + 'static,
{
    let _ = stream.set_nodelay(true);
    let client = Arc::new(ClientInfo::new(peer.ip()));
    let connection = server
        .serve_connection(TokioIo::new(stream), service_fn(move |req| service(req, client.clone())))
        .with_upgrades();
    tokio::pin!(connection);
    // Not a `select!`: that would poll the stop signal on every wake-up of
    // the connection, i.e. several times per request. The stop future
    // registers this task's waker on its first poll and stays registered;
    // after that it only needs polling once the stage has changed.
    let probe = stop.clone();
    let mut waiting = stop.clone();
    let stopping = waiting.stopping();
    tokio::pin!(stopping);
    let mut registered = false;
    let finished = std::future::poll_fn(|cx| {
        if connection.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(true);
        }
        if !registered || probe.changed() {
            registered = true;
            if stopping.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(false);
            }
        }
        std::task::Poll::Pending
    })
    .await;
    if finished {
        return;
    }
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        _ = connection => {}
        _ = stop.closed() => {}
    }
}
