//! `Pool`: the session-affine process pool, from JavaScript.
//!
//! # Concurrency
//!
//! Every method is called on the JavaScript thread and returns without
//! waiting for I/O:
//!
//! * `acquire` polls the core's acquire future once, right here. For a bound
//!   session (or a ready idle worker) that first poll finishes the acquire in
//!   about a microsecond and the promise is returned already resolved. If the
//!   session must wait for a worker, the same future — which by then holds
//!   the caller's place in the queue — moves to the pool's runtime and settles
//!   the promise from there.
//! * `Pool.create`, `close` and the `Symbol.asyncDispose` method run their
//!   waits on the pool's runtime too.
//! * `serve` binds its listeners here (no wait) and serves on the proxy's
//!   own threads.
//! * A closed pool's core handle is dropped on a helper thread: dropping
//!   it joins the pool's threads, which must not happen on the event loop.

use std::future::Future;
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use herd_core::{Error as HerdError, ErrorKind};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use parking_lot::Mutex;

use crate::errors;
use crate::lease::Lease;
use crate::options::{self, AcquireOptions, CloseOptions, PoolOptions};
use crate::proxy::{self, Proxy, Serving};
use crate::proxy_options::{self, ServeOptions};
use crate::session_end;
use crate::settle::{AbortWiring, Failure, Settle, SharedSettle};
use crate::stats::Stats;

/// A session-affine process pool: every session ID is pinned to its own
/// worker process for the session's lifetime (one session → one worker, one
/// worker → at most one session).
///
/// ```js
/// const { Pool, demoWorkerCommand } = require('herd')
/// const pool = await Pool.create({ command: demoWorkerCommand(), min: 1, max: 4 })
/// const lease = await pool.acquire('user-42') // same ID → same worker
/// console.log(lease.url, lease.pid)
/// lease.release()
/// await pool.close() // every worker process is gone
/// ```
///
/// Workers start in the background; `new Pool` returns at once and
/// `Pool.create` resolves once `min` workers are ready. After `close()`,
/// calls fail with `HERD_POOL_CLOSED`.
#[napi]
pub struct Pool {
    state: Arc<Mutex<State>>,
    /// The proxies `serve` started; `close()` closes those still serving.
    proxies: Mutex<Vec<Weak<Serving>>>,
}

enum State {
    Open(herd_core::Pool),
    /// `close()` was called; the shutdown runs.
    Closing(herd_core::Pool),
    /// The last snapshot, for `stats()` after the pool closed.
    Closed(Box<herd_core::Stats>),
}

impl Pool {
    fn wrap(pool: herd_core::Pool) -> Self {
        Pool { state: Arc::new(Mutex::new(State::Open(pool))), proxies: Mutex::new(Vec::new()) }
    }

    fn open(&self) -> std::result::Result<herd_core::Pool, HerdError> {
        match &*self.state.lock() {
            State::Open(pool) => Ok(pool.clone()),
            State::Closing(_) | State::Closed(_) => Err(errors::closed()),
        }
    }

    /// The core pool the options describe, with errors in JavaScript terms,
    /// and how long `Pool.create` waits for its `min` workers.
    fn build(env: &Env, options: Unknown<'_>) -> Result<(herd_core::Pool, Duration)> {
        // SAFETY: `options` is a live value of this call.
        let options = unsafe { PoolOptions::from_napi_value(env.raw(), options.raw()) }
            .map_err(|e| errors::invalid_config(env, format!("bad pool options: {}", e.reason)))?;
        let (factory, config) = options::build(&options).map_err(|m| errors::invalid_config(env, m))?;
        let start_timeout = options::millis("startTimeoutMs", options.start_timeout_ms)
            .ok()
            .flatten()
            .unwrap_or(options::DEFAULT_START_TIMEOUT);
        let mut builder = herd_core::Pool::builder(factory).config(config);
        if let Some(callback) = &options.on_session_end {
            builder = builder.on_session_end(session_end::forward(callback)?);
        }
        let pool = builder.build().map_err(|e| {
            let e = match e.kind() {
                ErrorKind::InvalidConfig => HerdError::new(e.kind(), options::in_js_terms(e.message())),
                _ => e,
            };
            errors::to_js(env, &e)
        })?;
        Ok((pool, start_timeout.saturating_mul(2)))
    }
}

#[napi]
impl Pool {
    /// Creates a pool and starts its `min` workers in the background. Throws
    /// `HERD_INVALID_CONFIG` for bad options (naming the option) and
    /// `HERD_SPAWN_FAILED` when the program cannot be found.
    #[napi(constructor, ts_args_type = "options: PoolOptions")]
    pub fn new(env: &Env, options: Unknown<'_>) -> Result<Self> {
        Ok(Pool::wrap(Pool::build(env, options)?.0))
    }

    /// Creates a pool and resolves once `min` workers are ready. Rejects with
    /// the spawn error (`HERD_SPAWN_FAILED`) if workers fail to start, or
    /// `HERD_ACQUIRE_TIMEOUT` if they are not ready within twice
    /// `startTimeoutMs`; the pool is closed then.
    #[napi(ts_args_type = "options: PoolOptions", ts_return_type = "Promise<Pool>")]
    pub fn create<'env>(env: &'env Env, options: Unknown<'_>) -> Result<Object<'env>> {
        let (pool, timeout) = match Pool::build(env, options) {
            Ok(built) => built,
            Err(error) => return rejected(env, error),
        };
        let (settle, promise) = Settle::<Pool>::new(env)?;
        pool.runtime_handle().clone().spawn(async move {
            match pool.wait_ready(timeout).await {
                Ok(()) => settle.finish(Ok(Pool::wrap(pool))),
                Err(error) => {
                    pool.shutdown(pool.config().stop_grace).await;
                    drop_in_background(pool);
                    settle.finish(Err(Failure::Herd(error)));
                }
            }
        });
        Ok(promise)
    }

    /// Acquires a lease on `sessionId`'s worker.
    ///
    /// A bound session resolves at once. A new session gets a ready idle
    /// worker, else a new worker if below `max`, else waits (FIFO) up to
    /// `timeoutMs`. Concurrent acquires of one new session make exactly one
    /// binding. Rejects with `HERD_INVALID_SESSION_ID`, `HERD_ACQUIRE_TIMEOUT`,
    /// `HERD_POOL_EXHAUSTED`, `HERD_SPAWN_FAILED`, `HERD_POOL_CLOSED`, or an
    /// `AbortError` when `signal` fires.
    #[napi(ts_args_type = "sessionId: string, options?: AcquireOptions", ts_return_type = "Promise<Lease>")]
    pub fn acquire<'env>(
        &self,
        env: &'env Env,
        session_id: Unknown<'_>,
        options: Option<Unknown<'_>>,
    ) -> Result<Object<'env>> {
        let session = match session_string(env, session_id) {
            Ok(session) => session,
            Err(error) => return rejected(env, error),
        };
        let (timeout_ms, signal) = match parse_options::<AcquireOptions>(env, options, "acquire options") {
            Ok(Some(o)) => (o.timeout_ms, o.signal),
            Ok(None) => (None, None),
            Err(error) => return rejected(env, error),
        };
        if let Some(signal) = &signal
            && !is_event_target(signal)
        {
            return rejected(env, errors::invalid_config(env, "signal must be an AbortSignal"));
        }
        if let Some(signal) = &signal
            && crate::settle::is_aborted(signal)?
        {
            let message = format!("the acquire of session {session:?} was aborted");
            return rejected(env, errors::aborted(env, &message, crate::settle::reason(signal)));
        }
        let pool = match self.open() {
            Ok(pool) => pool,
            Err(error) => return rejected(env, errors::to_js(env, &error)),
        };
        let timeout = match options::millis("timeoutMs", timeout_ms) {
            Ok(timeout) => timeout.unwrap_or(pool.config().acquire_timeout),
            Err(message) => return rejected(env, errors::invalid_config(env, message)),
        };

        let waiting = pool.clone();
        let id = session.clone();
        let mut acquire = Box::pin(async move { waiting.acquire_timeout(&id, timeout).await });
        if let Poll::Ready(result) = acquire.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            return match result {
                Ok(lease) => PromiseRaw::resolve(env, Lease::from(lease)).map(|p| promise_object(env, p)),
                Err(error) => rejected(env, errors::to_js(env, &error)),
            };
        }

        let message = format!("the acquire of session {session:?} was aborted");
        let task: Arc<OnceLock<tokio::task::AbortHandle>> = Arc::new(OnceLock::new());
        let shared: SharedSettle<Lease> = Arc::new(Mutex::new(None));
        // The listener first: a `Settle` dropped on an error path would
        // reject a promise nobody holds (an unhandled rejection).
        let wiring = match &signal {
            Some(signal) => {
                let (task, shared) = (task.clone(), shared.clone());
                // Runs on this thread, so never before this method returned
                // and the task handle was set.
                Some(AbortWiring::listen(env, signal, move || {
                    if let Some(settle) = shared.lock().take() {
                        if let Some(task) = task.get() {
                            task.abort();
                        }
                        settle.finish(Err(Failure::Aborted(message.clone())));
                    }
                })?)
            }
            None => None,
        };
        let (mut settle, promise) = Settle::<Lease>::new(env)?;
        if let Some(wiring) = wiring {
            settle.set_abort(wiring);
        }
        *shared.lock() = Some(settle);
        let handle = pool.runtime_handle().spawn(async move {
            let outcome = acquire.await;
            // Whoever takes the settle answers; if the signal fired first,
            // the lease (if any) drops here and is released.
            if let Some(settle) = shared.lock().take() {
                settle.finish(outcome.map(Lease::from).map_err(Failure::from));
            }
        });
        let _ = task.set(handle.abort_handle());
        Ok(promise)
    }

    /// Ends `sessionId`'s session now (reason `ended`): with `reuse` its
    /// worker serves the next session once open leases are released;
    /// without, the worker is stopped. Returns whether the session was bound.
    #[napi(ts_args_type = "sessionId: string")]
    pub fn end_session(&self, env: &Env, session_id: Unknown<'_>) -> Result<bool> {
        let session = session_string(env, session_id)?;
        let pool = self.open().map_err(|e| errors::to_js(env, &e))?;
        pool.end_session(&session).map_err(|e| errors::to_js(env, &e))
    }

    /// A snapshot of the pool; never waits. After `close()`, the last
    /// snapshot (with `closed: true`).
    #[napi]
    pub fn stats(&self) -> Stats {
        let stats = match &*self.state.lock() {
            State::Open(pool) | State::Closing(pool) => pool.stats(),
            State::Closed(stats) => (**stats).clone(),
        };
        Stats::from(stats)
    }

    /// Starts herd's HTTP and WebSocket gateway in front of this pool (the
    /// same gateway as `herd serve`) and resolves with its `Proxy` once it
    /// listens. Each request goes to the worker of its session ID, found in
    /// a header (default `X-Session-ID`), a cookie, a query parameter or a
    /// path prefix.
    ///
    /// ```js
    /// const proxy = await pool.serve({ listen: '127.0.0.1:0' })
    /// await fetch(proxy.url, { headers: { 'X-Session-ID': 'alice' } })
    /// ```
    ///
    /// Rejects with `HERD_INVALID_CONFIG` (naming the option), `HERD_IO`
    /// (an address cannot be bound) or `HERD_POOL_CLOSED`.
    #[napi(ts_args_type = "options?: ServeOptions", ts_return_type = "Promise<Proxy>")]
    pub fn serve<'env>(&self, env: &'env Env, options: Option<Unknown<'_>>) -> Result<Object<'env>> {
        let config = match serve_config(env, options) {
            Ok(config) => config,
            Err(error) => return rejected(env, error),
        };
        let pool = match self.open() {
            Ok(pool) => pool,
            Err(error) => return rejected(env, errors::to_js(env, &error)),
        };
        let started = herd_core::Proxy::start(&pool, config).map_err(|e| match e.kind() {
            ErrorKind::InvalidConfig => HerdError::new(e.kind(), options::in_js_terms(e.message())),
            _ => e,
        });
        let serving = match started.map(|proxy| Serving::start(env, proxy, pool)) {
            Ok(Ok(serving)) => serving,
            Ok(Err(error)) => return rejected(env, error),
            Err(error) => return rejected(env, errors::to_js(env, &error)),
        };
        let mut proxies = self.proxies.lock();
        proxies.retain(|p| p.strong_count() > 0);
        proxies.push(Arc::downgrade(&serving));
        PromiseRaw::resolve(env, Proxy::new(serving)).map(|p| promise_object(env, p))
    }

    /// Whether `close()` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        !matches!(&*self.state.lock(), State::Open(_))
    }

    /// Closes the pool: proxies still serving it close first (as
    /// `proxy.close()`), new and waiting acquires fail with
    /// `HERD_POOL_CLOSED`, every session ends (`shutdown`), every worker gets
    /// SIGTERM, up to `graceMs` to exit, then SIGKILL to its whole process
    /// tree. Resolves when no worker process is left. Calling it again
    /// resolves when the pool is closed.
    #[napi(ts_args_type = "options?: CloseOptions", ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env, options: Option<Unknown<'_>>) -> Result<Object<'env>> {
        let grace_ms = match parse_options::<CloseOptions>(env, options, "close options") {
            Ok(options) => options.and_then(|o| o.grace_ms),
            Err(error) => return rejected(env, error),
        };
        let grace = match options::millis("graceMs", grace_ms) {
            Ok(grace) => grace,
            Err(message) => return rejected(env, errors::invalid_config(env, message)),
        };
        let pool = {
            let mut state = self.state.lock();
            match &*state {
                State::Open(pool) => {
                    let pool = pool.clone();
                    *state = State::Closing(pool.clone());
                    pool
                }
                // Closing: shutting down again waits for the first shutdown.
                State::Closing(pool) => pool.clone(),
                State::Closed(_) => return PromiseRaw::resolve(env, ()).map(|p| promise_object(env, p)),
            }
        };
        let (settle, promise) = Settle::<()>::new(env)?;
        let grace = grace.unwrap_or(pool.config().stop_grace);
        let state = self.state.clone();
        let proxies = std::mem::take(&mut *self.proxies.lock());
        pool.runtime_handle().clone().spawn(async move {
            close_proxies(proxies).await;
            pool.shutdown(grace).await;
            {
                let mut state = state.lock();
                if let State::Closing(closing) =
                    std::mem::replace(&mut *state, State::Closed(Box::new(pool.stats())))
                {
                    drop_in_background(closing);
                }
            }
            drop_in_background(pool);
            settle.finish(Ok(()));
        });
        Ok(promise)
    }

    /// `await using pool = await Pool.create(...)` closes the pool at the end
    /// of the block.
    #[napi(well_known_symbol = "asyncDispose", ts_return_type = "Promise<void>")]
    pub fn async_dispose<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        self.close(env, None)
    }
}

impl Drop for Pool {
    /// A pool garbage-collected without `close()` shuts down on a helper
    /// thread, not on the event loop.
    fn drop(&mut self) {
        let mut state = self.state.lock();
        let pool = match &*state {
            State::Open(pool) | State::Closing(pool) => pool.clone(),
            State::Closed(_) => return,
        };
        // Our clone keeps the pool alive while the state's handle drops here.
        *state = State::Closed(Box::new(pool.stats()));
        drop_in_background(pool);
    }
}

/// Closes the proxies still serving (all at once) and waits until they are
/// closed.
async fn close_proxies(proxies: Vec<Weak<Serving>>) {
    let mut closed = Vec::new();
    for serving in proxies.iter().filter_map(Weak::upgrade) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        serving.close(
            proxy::DEFAULT_CLOSE_GRACE,
            Box::new(move || {
                let _ = tx.send(());
            }),
        );
        closed.push(rx);
    }
    for rx in closed {
        let _ = rx.await;
    }
}

/// The proxy configuration of `pool.serve(options)`, with errors in
/// JavaScript terms.
fn serve_config(env: &Env, options: Option<Unknown<'_>>) -> Result<herd_core::ProxyConfig> {
    let Some(written) = parse_options::<Object>(env, options, "serve options")? else {
        return Ok(herd_core::ProxyConfig::default());
    };
    // SAFETY: a live object value of this call.
    let parsed = unsafe { ServeOptions::from_napi_value(env.raw(), written.raw()) }
        .map_err(|e| errors::invalid_config(env, format!("bad serve options: {}", e.reason)))?;
    proxy_options::build(parsed, &written).map_err(|m| errors::invalid_config(env, m))
}

/// Drops a pool handle on a short-lived thread: dropping the last handle of
/// a pool shuts it down and joins its threads, which must never happen on
/// Node's event loop (or on the pool's own runtime).
pub(crate) fn drop_in_background(pool: herd_core::Pool) {
    let cell = Arc::new(Mutex::new(Some(pool)));
    let moved = cell.clone();
    let spawned = std::thread::Builder::new().name("herd-pool-drop".into()).spawn(move || {
        drop(moved.lock().take());
    });
    if spawned.is_err() {
        // No thread to spare: drop here, which waits for the shutdown.
        drop(cell.lock().take());
    }
}

/// The session ID argument: a string, checked like every session ID.
fn session_string(env: &Env, value: Unknown<'_>) -> Result<String> {
    let kind = value.get_type()?;
    if kind != ValueType::String {
        let got = describe(kind);
        return Err(errors::invalid_session_id(env, format!("the session ID must be a string, got {got}")));
    }
    // SAFETY: checked above to be a string value of this call.
    let session = unsafe { String::from_napi_value(env.raw(), value.raw()) }?;
    herd_core::validate_session_id(&session).map_err(|e| errors::to_js(env, &e))?;
    Ok(session)
}

/// Per-call options: `undefined`/`null` or an object of type `T`; anything
/// else is a `HERD_INVALID_CONFIG` error naming `what`.
pub(crate) fn parse_options<'v, T: FromNapiValue + 'v>(
    env: &Env,
    value: Option<Unknown<'v>>,
    what: &str,
) -> Result<Option<T>> {
    let Some(value) = value else { return Ok(None) };
    match value.get_type()? {
        ValueType::Undefined | ValueType::Null => Ok(None),
        ValueType::Object => {
            // SAFETY: a live object value of this call.
            unsafe { T::from_napi_value(env.raw(), value.raw()) }
                .map(Some)
                .map_err(|e| errors::invalid_config(env, format!("bad {what}: {}", e.reason)))
        }
        other => {
            Err(errors::invalid_config(env, format!("{what} must be an object, got {}", describe(other))))
        }
    }
}

/// Whether `value` has `addEventListener` (an `AbortSignal`, or any
/// `EventTarget` that behaves like one).
fn is_event_target(value: &Object<'_>) -> bool {
    value
        .get_named_property::<Unknown>("addEventListener")
        .is_ok_and(|f| f.get_type().ok() == Some(ValueType::Function))
}

/// A JavaScript value's type, for error messages ("got a number").
fn describe(kind: ValueType) -> &'static str {
    match kind {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "a boolean",
        ValueType::Number => "a number",
        ValueType::String => "a string",
        ValueType::BigInt => "a bigint",
        ValueType::Symbol => "a symbol",
        ValueType::Function => "a function",
        _ => "an object",
    }
}

/// An already-rejected promise.
pub(crate) fn rejected<'env>(env: &'env Env, error: Error) -> Result<Object<'env>> {
    PromiseRaw::<()>::reject(env, error).map(|p| promise_object(env, p))
}

fn promise_object<'env, T>(env: &'env Env, promise: PromiseRaw<'_, T>) -> Object<'env> {
    Object::from_raw(env.raw(), promise.raw())
}
