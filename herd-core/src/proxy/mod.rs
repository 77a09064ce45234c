//! The reverse proxy: an HTTP/1.1 gateway that sends each request to its
//! session's worker.
//!
//! * [`config`]: [`ProxyConfig`] and [`SessionSource`].
//! * [`session_id`]: finding the session ID in a request.
//! * [`forward`]: the request path (lease, forward, stream back).
//! * [`headers`]: hop-by-hop stripping and `X-Forwarded-*`.
//! * [`upstream`]: keep-alive connection pools, one per worker.
//! * [`body`]: response bodies that hold their lease until sent.
//! * [`tunnel`] and [`frames`]: upgraded connections (WebSocket) and the
//!   close frame herd sends when a session ends.
//! * [`responses`]: what herd answers when no worker can.
//! * [`admin`] and [`metrics`]: `/stats`, `/metrics`, `DELETE /sessions/{id}`.
//! * [`server`]: listeners, connections, graceful stop.
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
mod config;
mod forward;
mod frames;
mod headers;
mod metrics;
mod responses;
mod server;
mod session_id;
mod tunnel;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

pub use self::config::{ProxyConfig, SessionSource};
use self::forward::Gateway;
use self::server::{Stage, StopSignal, Tracker};
use self::upstream::Upstreams;
use crate::error::{Error, ErrorKind};
use crate::events::EventKind;
use crate::pool::Pool;

/// After the grace period, how long the last connections get to notice
/// they must close.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// A running gateway in front of a [`Pool`].
///
/// It serves on the pool's runtime until [`Proxy::stop`] (graceful) or
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
    tracker: Arc<Tracker>,
    gateway: Arc<Gateway>,
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
        self.gateway.upstreams.retire_all();
    }
}

impl Proxy {
    /// Binds the listeners and starts serving on the pool's runtime.
    ///
    /// Errors: `InvalidConfig` (names the field), `Io` (an address cannot
    /// be bound), `PoolClosed`.
    pub async fn serve(pool: Pool, config: ProxyConfig) -> Result<Proxy, Error> {
        Proxy::start(&pool, config)
    }

    /// [`Proxy::serve`] for threads outside any async runtime (C, Python,
    /// Node). It does not block: binding is immediate and serving runs on
    /// the pool's runtime.
    pub fn start(pool: &Pool, config: ProxyConfig) -> Result<Proxy, Error> {
        config.validate()?;
        if pool.is_closed() {
            return Err(Error::new(ErrorKind::PoolClosed, "cannot serve a pool that is shut down"));
        }
        let handle = pool.runtime_handle().clone();
        let _runtime = handle.enter();
        let listener = server::bind(config.listen, "gateway")?;
        let admin_listener = config.admin_listen.map(|addr| server::bind(addr, "admin")).transpose()?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::io(format!("cannot read the address bound for {}", config.listen), e))?;
        let admin_addr = match &admin_listener {
            Some(l) => Some(l.local_addr().map_err(|e| Error::io("cannot read the admin address", e))?),
            None => None,
        };

        let metrics = Arc::new(metrics::Metrics::new());
        let (stage, stop) = StopSignal::new();
        let tracker = Arc::new(Tracker::default());
        let upstreams = Upstreams::new(
            upstream::Settings {
                connect_timeout: config.upstream_connect_timeout,
                idle_timeout: config.upstream_idle_timeout,
                max_idle: config.upstream_max_idle,
            },
            metrics.clone(),
        );
        let gateway = Arc::new(Gateway {
            pool: pool.clone(),
            sources: session_id::Sources::new(&config.session_sources),
            acquire_timeout: config.acquire_timeout.unwrap_or(pool.config().acquire_timeout),
            retry_after_secs: config.retry_after_secs(),
            preserve_host: config.preserve_host,
            close_timeout: config.websocket_close_timeout,
            upstreams,
            metrics: metrics.clone(),
            stop: stop.clone(),
            tracker: tracker.clone(),
        });
        let http = Arc::new(server::http_server(config.max_header_bytes, config.header_read_timeout));

        let serving = gateway.clone();
        tokio::spawn(server::accept_loop(
            listener,
            http.clone(),
            move |req, client| serving.clone().handle(req, client),
            stop.clone(),
            tracker.clone(),
            Some(metrics.clone()),
        ));
        if let Some(listener) = admin_listener {
            let admin = Arc::new(admin::Admin { pool: pool.clone(), metrics: metrics.clone() });
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
            ));
        }
        tokio::spawn(retire_exited_workers(gateway.clone(), pool.subscribe(), stop));
        tracing::info!(listen = %local_addr, admin = ?admin_addr, "herd proxy serving");
        let control = Arc::new(Control { stage, tracker, gateway });
        Ok(Proxy { local_addr, admin_addr, control, handle })
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

/// Drops the upstream connections of workers that exited.
async fn retire_exited_workers(
    gateway: Arc<Gateway>,
    mut events: broadcast::Receiver<crate::Event>,
    mut stop: StopSignal,
) {
    loop {
        let event = tokio::select! {
            _ = stop.closed() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(event) => {
                if let EventKind::WorkerExited { worker, .. } = event.kind {
                    gateway.upstreams.retire(worker);
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let alive: Vec<_> = gateway.pool.stats().worker_rows.iter().map(|w| w.id).collect();
                gateway.upstreams.retain(&alive);
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
