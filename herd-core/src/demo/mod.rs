//! The demo worker: a small, fast HTTP server with per-process state, used
//! by herd's tests, benchmarks and the README demo. It needs nothing
//! installed: every herd binary can run it (`herd-demo-worker`,
//! `herd demo-worker`, the Python and Node packages' `herd demo-worker`).
//!
//! | route | what it does |
//! |---|---|
//! | `GET /health` | `200 ok` (or `503` after `POST /health/fail`) |
//! | `POST /health/fail`, `POST /health/ok` | make health checks fail / pass |
//! | `GET /` | JSON identity: `worker_id`, `pid` (as the host sees it), `requests` served, `session` header seen |
//! | `GET`/`PUT`/`DELETE /kv/{key}` | an in-memory key/value store (state that stays with the session) |
//! | `GET /sleep?ms=N` | answers after N ms |
//! | `POST /echo` | streams the request body back |
//! | `GET /bytes?n=N` | streams N bytes |
//! | `GET /headers` | the request headers as JSON |
//! | `GET /crash?code=N` | exits at once with code N (default 3) |
//! | `GET /abort` | kills itself with SIGABRT |
//! | `GET /children?n=N&ignore_term=1&detach=1` | starts N sleeping child processes; returns their PIDs (as the worker sees them) |
//! | `GET /ns` | its PID in its namespace, the PIDs it can see, its namespace IDs |
//! | `GET /alloc?mb=N` | allocates and touches N MiB, and keeps it |
//! | `GET /spin?ms=N` | burns CPU on N threads (`threads`, default 1) for N ms |
//! | `GET /forkbomb` | forks until it cannot; returns how many it made |
//! | any path with `Upgrade: websocket` | WebSocket echo |
//!
//! Flags: `--port N` (default `$PORT`), `--host ADDR` (default 127.0.0.1),
//! `--threads N` (default 1), `--ignore-sigterm`.

mod server;

pub use server::run;

use crate::error::{Error, ErrorKind};
use crate::factory::ProcessFactory;

/// The argument that makes a herd executable act as the demo worker.
pub const WORKER_ARG: &str = "demo-worker";

/// If this process was started as an embedded demo worker
/// (`<exe> demo-worker [flags]`), runs the worker and exits; otherwise
/// returns. Call it first thing in `main` of any binary that uses
/// [`embedded_factory`] — before starting an async runtime, since the
/// worker starts its own (so not inside `#[tokio::main]`).
pub fn run_if_requested() {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some(WORKER_ARG) {
        std::process::exit(run(args.collect()));
    }
}

/// A factory that starts this same executable as a demo worker
/// (`<current exe> demo-worker`), so a demo needs nothing else installed.
pub fn embedded_factory() -> Result<ProcessFactory, Error> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::new(ErrorKind::SpawnFailed, "cannot find this executable").with_source(e))?;
    let exe = exe.to_str().ok_or_else(|| {
        Error::new(ErrorKind::SpawnFailed, format!("executable path {} is not UTF-8", exe.display()))
    })?;
    Ok(ProcessFactory::new(exe, [WORKER_ARG]))
}
