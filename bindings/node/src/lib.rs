//! # herd for Node
//!
//! The `herd` npm package: Node bindings, built with napi-rs, for herd's
//! session-affine process pool. Every session ID is pinned to its own worker
//! process for the session's lifetime.
//!
//! * [`pool::Pool`]: `new Pool({...})` / `await Pool.create({...})`,
//!   `await pool.acquire(id)`, `pool.endSession(id)`, `pool.stats()`,
//!   `await pool.close()`.
//! * [`lease::Lease`]: one use of a session; `lease.release()` or `using`.
//! * [`proxy::Proxy`]: `await pool.serve({...})`, herd's HTTP and WebSocket
//!   gateway in front of the pool; `await proxy.close()`.
//! * [`command`]: the `herd` command line (`npx herd serve --demo`).
//! * [`errors`]: every herd error is an `Error` with a stable `code`.
//! * [`settle`]: how promises are settled without blocking Node's event loop.
//! * [`demo`]: the demo worker, so `node bin/herd.js demo-worker` serves tests.
//! * `HERD_LOG=info` prints herd's logs and the workers' output on stderr.
//!
//! # Threads
//!
//! Node's event loop never waits on herd. A call that can be answered at once
//! (a bound session's acquire, ~1 µs) is answered on the JavaScript thread
//! with an already-settled promise. Anything that waits — a new session that
//! needs a worker, `Pool.create`, `close` — runs on the pool's own tokio
//! runtime and settles its promise through a threadsafe function.
//! `onSessionEnd` runs on the JavaScript thread, called from the pool's event
//! thread through an unref'd threadsafe function.

#![deny(clippy::unwrap_used)]

pub mod command;
pub mod demo;
pub mod errors;
mod keep_alive;
pub mod lease;
mod logging;
pub mod options;
pub mod pool;
pub mod proxy;
pub mod proxy_options;
pub mod session_end;
pub mod settle;
pub mod stats;

/// Runs when the addon is loaded into a JavaScript environment.
#[napi_derive::napi(module_exports)]
pub fn init(_exports: napi::bindgen_prelude::Object<'_>) -> napi::Result<()> {
    logging::init_from_env();
    Ok(())
}

/// herd's version.
#[napi_derive::napi]
pub const VERSION: &str = herd_core::VERSION;
