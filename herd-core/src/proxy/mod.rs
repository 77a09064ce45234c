//! The reverse proxy: an HTTP/1.1 gateway that sends each request to its
//! session's worker.
//!
//! * `config`: [`ProxyConfig`] and [`SessionSource`].
//! * `session_id`: finding the session ID in a request.
//! * `forward`: the request path (lease, forward, stream back).
//! * `headers`: hop-by-hop stripping and `X-Forwarded-*`.
//! * `upstream`: keep-alive connection pools, one per worker.
//! * `client`: herd's HTTP/1.1 client for workers (the client-facing side
//!   is hyper's server).
//! * `body`: response bodies that hold their lease until sent.
//! * `tunnel` and `frames`: upgraded connections (WebSocket) and the
//!   close frame herd sends when a session ends.
//! * `responses`: what herd answers when no worker can.
//! * `admin` and `metrics`: `/stats`, `/metrics`, `DELETE /sessions/{id}`.
//! * `server`: listeners, connections, graceful stop; `timer`: hyper's
//!   header-read deadlines on a coarse clock.
//!
//! Every request is a lease: acquired before forwarding, released when
//! the response body has been sent or the client went away. An upgraded
//! connection holds its lease for its whole life.
//!
//! ```no_run
//! # async fn demo() -> Result<(), herd_core::Error> {
//! use std::time::Duration;
//! use herd_core::{Pool, PoolConfig, Proxy, ProxyConfig};
//!
//! let pool = Pool::new(herd_core::demo::embedded_factory()?, PoolConfig::default())?;
//! let proxy = Proxy::serve(pool.clone(), ProxyConfig::default()).await?;
//! println!("curl -H 'X-Session-ID: alice' http://{}/", proxy.local_addr());
//! // ... later:
//! proxy.stop(Duration::from_secs(10)).await;
//! pool.shutdown(Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```

mod admin;
mod body;
mod client;
mod config;
mod forward;
mod frames;
mod headers;
mod metrics;
mod responses;
mod server;
mod session_id;
mod timer;
mod tunnel;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use self::config::{ProxyConfig, SessionSource};
use self::forward::Gateway;
use self::server::{IoThread, Sharing, Stage, StopSignal, Tracker};
use self::upstream::Upstreams;
use crate::error::{Error, ErrorKind};
use crate::factory::WorkerId;
use crate::pool::Pool;

/// After the grace period, how long the last connections get to notice
/// they must close.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// A running gateway in front of a [`Pool`].
///
/// It serves on its own I/O threads until [`Proxy::stop`] (graceful) or
/// until it is dropped (at once). It keeps a handle to the pool, so the
/// pool lives at least as long as the proxy; shut the pool down after
/// stopping the proxy.
pub struct Proxy {
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    control: Arc<Control>,
    handle: tokio::runtime::Handle,
}

/// What stopping a proxy acts on.
struct Control {
    stage: watch::Sender<Stage>,
    /// Counts the I/O threads and admin connections.
    tracker: Arc<Tracker>,
    io: Vec<Arc<IoThread>>,
}

impl Control {
    /// The graceful stop; runs on the pool's runtime.
    async fn stop(&self, grace: Duration) {
        self.stage.send_if_modified(|s| {
            let running = *s == Stage::Running;
            if running {
                *s = Stage::Draining;
            }
            running
        });
        let _ = tokio::time::timeout(grace, self.tracker.none_left()).await;
        self.stop_now();
        let _ = tokio::time::timeout(CLOSE_WAIT, self.tracker.none_left()).await;
    }

    /// Drops every connection and tunnel left.
    fn stop_now(&self) {
        self.stage.send_replace(Stage::Closed);
        for io in &self.io {
            io.upstreams.retire_all();
        }
    }
}

impl Proxy {
    /// Binds the listeners and starts serving (see [`ProxyConfig::threads`]).
    ///
    /// Errors: `InvalidConfig` (names the field), `Io` (an address cannot
    /// be bound, a thread cannot start), `PoolClosed`.
    pub async fn serve(pool: Pool, config: ProxyConfig) -> Result<Proxy, Error> {
        Proxy::start(&pool, config)
    }

    /// [`Proxy::serve`] for threads outside any async runtime (C, Python,
    /// Node). It does not block: binding is immediate and serving runs on
    /// the proxy's own threads.
    pub fn start(pool: &Pool, config: ProxyConfig) -> Result<Proxy, Error> {
        config.validate()?;
        if pool.is_closed() {
            return Err(Error::new(ErrorKind::PoolClosed, "cannot serve a pool that is shut down"));
        }
        let threads = config.effective_threads();
        let handle = pool.runtime_handle().clone();

        // Bind everything first, so no thread starts when an address is taken.
        let mut runtimes = Vec::with_capacity(threads);
        let mut listeners = Vec::with_capacity(threads);
        let mut local_addr = config.listen;
        for _ in 0..threads {
            // I/O only: the threads' timers run on the pool's runtime
            // (`timer`), so parking never touches a timer wheel.
            let runtime = IdleRuntime(Some(
                tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .map_err(|e| Error::io("cannot start a proxy runtime", e))?,
            ));
            let listener = {
                let _inside = runtime.0.as_ref().map(|r| r.enter());
                let sharing = if listeners.is_empty() { Sharing::First } else { Sharing::Join };
                server::bind(local_addr, "gateway", sharing)?
            };
            local_addr = listener
                .local_addr()
                .map_err(|e| Error::io(format!("cannot read the address bound for {}", config.listen), e))?;
            runtimes.push(runtime);
            listeners.push(listener);
        }
        let admin_listener = match config.admin_listen {
            Some(addr) => {
                let _inside = handle.enter();
                Some(server::bind(addr, "admin", Sharing::Alone)?)
            }
            None => None,
        };
        let admin_addr = match &admin_listener {
            Some(l) => Some(l.local_addr().map_err(|e| Error::io("cannot read the admin address", e))?),
            None => None,
        };

        let metrics = Arc::new(metrics::Metrics::new(threads));
        let timers = timer::Timers::new(handle.clone());
        let (stage, stop) = StopSignal::new();
        let tracker = Arc::new(Tracker::default());
        let gateway = Arc::new(Gateway {
            pool: pool.clone(),
            sources: session_id::Sources::new(&config.session_sources),
            acquire_timeout: config.acquire_timeout.unwrap_or(pool.config().acquire_timeout),
            retry_after_secs: config.retry_after_secs(),
            preserve_host: config.preserve_host,
            close_timeout: config.websocket_close_timeout,
            metrics: metrics.clone(),
            stop: stop.clone(),
            timers: timers.clone(),
        });
        let settings = upstream::Settings {
            connect_timeout: config.upstream_connect_timeout,
            idle_timeout: config.upstream_idle_timeout,
            max_idle: config.upstream_max_idle,
        };
        let io: Vec<Arc<IoThread>> = (0..threads)
            .map(|index| {
                Arc::new(IoThread {
                    upstreams: Upstreams::new(settings.clone(), metrics.clone(), timers.clone()),
                    tracker: Arc::new(Tracker::default()),
                    metrics: metrics.thread(index),
                })
            })
            .collect();
        let control = Arc::new(Control { stage, tracker: tracker.clone(), io: io.clone() });
        let proxy = Proxy { local_addr, admin_addr, control, handle: handle.clone() };
        let serving = server::Serving {
            gateway,
            all: tracker.clone(),
            max_header_bytes: config.max_header_bytes,
            header_read_timeout: config.header_read_timeout,
            pool_runtime: handle.clone(),
            timers: timers.clone(),
        };
        let started = runtimes.into_iter().filter_map(|mut r| r.0.take()).zip(listeners).zip(io.iter());
        for (index, ((runtime, listener), io)) in started.enumerate() {
            // On failure, dropping `proxy` stops the threads already started.
            server::spawn_io_thread(index, runtime, listener, io.clone(), &serving)?;
        }
        let _inside = handle.enter();
        if let Some(listener) = admin_listener {
            let admin = Arc::new(admin::Admin { pool: pool.clone(), metrics: metrics.clone() });
            let timer = hyper_util::rt::TokioTimer::new();
            let http =
                Arc::new(server::http_server(config.max_header_bytes, config.header_read_timeout, timer));
            tokio::spawn(server::accept_loop(
                listener,
                http,
                move |req, _client| {
                    let resp = admin.handle(&req);
                    async move { Ok(resp) }
                },
                stop.clone(),
                tracker.clone(),
                None,
                timers,
            ));
        }
        tokio::spawn(forget_exited_workers(pool.clone(), io, stop));
        tracing::info!(listen = %local_addr, admin = ?admin_addr, threads, "herd proxy serving");
        Ok(proxy)
    }

    /// The address the gateway listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address the admin routes listen on, if configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Stops accepting connections; requests in flight get up to `grace` to
    /// finish and open WebSockets get a close frame; whatever is left after
    /// `grace` is dropped. Returns when the proxy is stopped. The pool is
    /// left running.
    pub async fn stop(&self, grace: Duration) {
        let control = self.control.clone();
        let _ = self.handle.spawn(async move { control.stop(grace).await }).await;
    }

    /// Blocking [`Proxy::stop`], for threads outside any async runtime.
    /// Called on the pool's own runtime it cannot wait: it stops at once.
    pub fn stop_blocking(&self, grace: Duration) {
        if crate::runtime::on_pool_runtime() {
            self.control.stop_now();
            return;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let control = self.control.clone();
        self.handle.spawn(async move {
            control.stop(grace).await;
            let _ = tx.send(());
        });
        let _ = rx.recv();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.control.stop_now();
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("local_addr", &self.local_addr)
            .field("admin_addr", &self.admin_addr)
            .finish()
    }
}

/// A runtime made for an I/O thread that has not started yet. If `start`
/// fails first, it is dropped without blocking: `start` may run inside an
/// async context, where dropping a runtime the usual way panics.
struct IdleRuntime(Option<tokio::runtime::Runtime>);

impl Drop for IdleRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// How often upstream connections of exited workers are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Drops the upstream connections of workers that exited, once a second.
///
/// Polling the pool's stats, not subscribing to its events: a subscriber
/// makes the pool report every lease release, which on a proxy is every
/// request — about 20 µs of CPU and two thread wake-ups each. A worker
/// that exits closes its connections itself; a request never waits for
/// this sweep (a closed idle connection is skipped at checkout).
async fn forget_exited_workers(pool: Pool, io: Vec<Arc<IoThread>>, mut stop: StopSignal) {
    loop {
        tokio::select! {
            _ = stop.closed() => return,
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
        }
        if io.iter().all(|t| t.upstreams.is_empty()) {
            continue;
        }
        let alive: Vec<WorkerId> = pool.stats().worker_rows.iter().map(|w| w.id).collect();
        for thread in &io {
            thread.upstreams.retain(&alive);
        }
    }
}
