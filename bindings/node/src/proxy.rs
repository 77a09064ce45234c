//! `Proxy`: herd's gateway in front of a pool (`await pool.serve({...})`).
//!
//! The gateway is herd-core's [`herd_core::Proxy`]: it serves on its own
//! I/O threads, so no request ever runs on Node's event loop.
//!
//! # Lifetime
//!
//! A serving proxy keeps Node alive and keeps serving until `close()` (or
//! `pool.close()`), like a listening `http.Server`, even once its `Proxy`
//! object is garbage-collected: its [`KeepAlive`] owns it. It also holds a
//! handle to the pool, so the pool's runtime (where the graceful stop runs)
//! outlives it whatever the order of `proxy.close()` and `pool.close()`.
//!
//! # Concurrency
//!
//! `close()` may be called from JavaScript while `pool.close()` closes the
//! same proxy on the pool's runtime. The state moves `Serving → Closing →
//! Closed` under one mutex: whoever finds it `Serving` starts the stop;
//! the others register a callback that the stop runs once it is `Closed`
//! (or run theirs at once when it already is), so every `close()` settles
//! and the stop runs once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use parking_lot::Mutex;

use crate::errors;
use crate::keep_alive::KeepAlive;
use crate::proxy_options::ProxyCloseOptions;
use crate::settle::Settle;

/// How long requests in flight get when a proxy closes, unless
/// `proxy.close({ graceMs })` says otherwise (as `herd serve
/// --shutdown-grace`).
pub(crate) const DEFAULT_CLOSE_GRACE: Duration = Duration::from_secs(10);

/// herd's HTTP and WebSocket gateway in front of a pool (from
/// `pool.serve()`): each request goes to its session's worker.
///
/// ```js
/// const proxy = await pool.serve({ listen: '127.0.0.1:8080', sessionHeader: 'X-Session-ID' })
/// // curl -H 'X-Session-ID: alice' http://127.0.0.1:8080/
/// await proxy.close() // then: await pool.close()
/// ```
///
/// Every request holds a lease on its session until its response has been
/// sent; a WebSocket holds one for its whole life, and gets a close frame
/// whose reason says why when herd ends its session. Requests without a
/// session ID get `400`, requests that find no worker in time `503` with
/// `Retry-After`, requests whose worker does not answer `502`.
///
/// It keeps Node alive until `close()`, like a listening `http.Server`.
#[napi]
pub struct Proxy {
    serving: Arc<Serving>,
}

/// A proxy and where it is in its life; shared by its `Proxy` object, its
/// keep-alive and its pool's list of proxies.
pub(crate) struct Serving {
    address: SocketAddr,
    admin_address: Option<SocketAddr>,
    state: Mutex<State>,
}

/// Runs once a proxy has closed (on any thread).
pub(crate) type OnClosed = Box<dyn FnOnce() + Send>;

enum State {
    Serving { proxy: herd_core::Proxy, pool: herd_core::Pool, keep_alive: KeepAlive },
    Closing { on_closed: Vec<OnClosed> },
    Closed,
}

impl Serving {
    /// Wraps a proxy that serves `pool`, keeping Node alive until it closes.
    pub(crate) fn start(env: &Env, proxy: herd_core::Proxy, pool: herd_core::Pool) -> Result<Arc<Serving>> {
        let serving = Arc::new(Serving {
            address: proxy.local_addr(),
            admin_address: proxy.admin_addr(),
            state: Mutex::new(State::Closed),
        });
        let keep_alive = KeepAlive::new(env, serving.clone())?;
        *serving.state.lock() = State::Serving { proxy, pool, keep_alive };
        Ok(serving)
    }

    /// Closes the proxy (once): no new connections, requests in flight get
    /// up to `grace`, WebSockets get a close frame; then `on_closed` runs.
    pub(crate) fn close(self: &Arc<Self>, grace: Duration, on_closed: OnClosed) {
        let mut state = self.state.lock();
        match std::mem::replace(&mut *state, State::Closed) {
            State::Serving { proxy, pool, keep_alive } => {
                *state = State::Closing { on_closed: vec![on_closed] };
                drop(state);
                let serving = self.clone();
                // The pool handle keeps this runtime alive until the task ends.
                pool.runtime_handle().clone().spawn(async move {
                    proxy.stop(grace).await;
                    drop(proxy);
                    let waiting = match std::mem::replace(&mut *serving.state.lock(), State::Closed) {
                        State::Closing { on_closed } => on_closed,
                        _ => Vec::new(),
                    };
                    crate::pool::drop_in_background(pool);
                    drop(keep_alive);
                    for done in waiting {
                        done();
                    }
                });
            }
            State::Closing { on_closed: mut waiting } => {
                waiting.push(on_closed);
                *state = State::Closing { on_closed: waiting };
            }
            State::Closed => {
                drop(state);
                on_closed();
            }
        }
    }

    fn is_closed(&self) -> bool {
        !matches!(&*self.state.lock(), State::Serving { .. })
    }
}

impl Drop for Serving {
    /// Only reached serving when Node tears the environment down (the
    /// keep-alive owns a serving proxy): stop at once, and drop the pool
    /// handle off this thread.
    fn drop(&mut self) {
        if let State::Serving { proxy, pool, keep_alive } =
            std::mem::replace(self.state.get_mut(), State::Closed)
        {
            drop(proxy);
            crate::pool::drop_in_background(pool);
            drop(keep_alive);
        }
    }
}

impl Proxy {
    pub(crate) fn new(serving: Arc<Serving>) -> Self {
        Proxy { serving }
    }
}

#[napi]
impl Proxy {
    /// The address clients connect to, `'127.0.0.1:8080'` (with the port
    /// picked when `listen` asked for port 0).
    #[napi(getter)]
    pub fn address(&self) -> String {
        self.serving.address.to_string()
    }

    /// `'http://127.0.0.1:8080'`; WebSocket clients use `ws://` and the
    /// same address.
    #[napi(getter)]
    pub fn url(&self) -> String {
        format!("http://{}", self.serving.address)
    }

    /// The address of the admin routes, if `adminListen` was given.
    #[napi(getter)]
    pub fn admin_address(&self) -> Option<String> {
        self.serving.admin_address.map(|a| a.to_string())
    }

    /// `'http://127.0.0.1:9090'` for the admin routes (`/stats`, `/metrics`,
    /// `DELETE /sessions/{id}`), if `adminListen` was given.
    #[napi(getter)]
    pub fn admin_url(&self) -> Option<String> {
        self.serving.admin_address.map(|a| format!("http://{a}"))
    }

    /// Whether `close()` (or the pool's `close()`) was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.serving.is_closed()
    }

    /// Stops the gateway: it stops accepting connections, requests in
    /// flight get up to `graceMs` to finish, open WebSockets get a close
    /// frame; then the rest is dropped. Resolves once it is stopped; Node is
    /// no longer kept alive by it. The pool keeps running. Calling it again
    /// resolves when the proxy is closed.
    #[napi(ts_args_type = "options?: ProxyCloseOptions", ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env, options: Option<Unknown<'_>>) -> Result<Object<'env>> {
        let grace_ms = match crate::pool::parse_options::<ProxyCloseOptions>(env, options, "close options") {
            Ok(options) => options.and_then(|o| o.grace_ms),
            Err(error) => return crate::pool::rejected(env, error),
        };
        let grace = match crate::options::millis("graceMs", grace_ms) {
            Ok(grace) => grace.unwrap_or(DEFAULT_CLOSE_GRACE),
            Err(message) => return crate::pool::rejected(env, errors::invalid_config(env, message)),
        };
        let (settle, promise) = Settle::<()>::new(env)?;
        self.serving.close(grace, Box::new(move || settle.finish(Ok(()))));
        Ok(promise)
    }

    /// `await using proxy = await pool.serve(...)` closes the proxy at the
    /// end of the block.
    #[napi(well_known_symbol = "asyncDispose", ts_return_type = "Promise<void>")]
    pub fn async_dispose<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        self.close(env, None)
    }
}
