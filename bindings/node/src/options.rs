//! `new Pool({...})` options: every `PoolConfig` field and every
//! `ProcessFactory` setting, in JavaScript's terms (camelCase, durations in
//! milliseconds), checked here so errors name the option the caller wrote.

use std::collections::HashMap;
use std::time::Duration;

use herd_core::{PoolConfig, ProcessFactory, SandboxMode};
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// Options of `new Pool(options)` and `Pool.create(options)`. Only
/// `command` is required; durations are in milliseconds.
#[napi(object, object_to_js = false)]
pub struct PoolOptions<'env> {
    /// The worker command: program, then arguments. `{{.Port}}` and
    /// `{{.WorkerId}}` are replaced per worker in arguments and `env`
    /// values; `PORT`, `HERD_WORKER_ID` and `HERD_WORKER_PID` are always set.
    /// The program is looked up in `PATH` unless it contains a `/`.
    pub command: Vec<String>,
    /// Workers always kept alive, bound or not. Default 1.
    pub min: Option<f64>,
    /// Hard cap on worker processes. Default 10.
    pub max: Option<f64>,
    /// Ready, unbound workers kept warm so a new session binds at once.
    /// Default 0.
    pub min_idle: Option<f64>,
    /// A session with no open lease and no activity for this long ends
    /// (`idle_timeout`). Default 300000 (5 minutes).
    pub ttl_ms: Option<f64>,
    /// A session ends (`max_lifetime`) this long after it was bound.
    /// Default: no limit.
    pub max_session_lifetime_ms: Option<f64>,
    /// Keep a worker for the next session after a session ends (`true`,
    /// default), or stop it and start a fresh one (no state can leak
    /// between tenants).
    pub reuse: Option<bool>,
    /// With `reuse`, stop a worker after it served this many sessions.
    pub recycle_after_sessions: Option<f64>,
    /// Stop unbound workers older than this.
    pub max_worker_age_ms: Option<f64>,
    /// Unbound workers above `max(min, minIdle)` stop after being idle this
    /// long. Default 60000.
    pub idle_worker_timeout_ms: Option<f64>,
    /// How often each ready worker is health-checked. Default 5000.
    pub health_interval_ms: Option<f64>,
    /// How long one health check may take. Default 2000.
    pub health_timeout_ms: Option<f64>,
    /// Failed checks in a row before a worker is unhealthy. Default 3.
    pub health_failure_threshold: Option<f64>,
    /// How long `acquire` of a new session waits for a worker when the call
    /// gives no `timeoutMs`. Default 30000.
    pub acquire_timeout_ms: Option<f64>,
    /// Sessions allowed to wait for a worker beyond what starting workers
    /// can serve; past it `acquire` fails with `HERD_POOL_EXHAUSTED`.
    /// Default 1024.
    pub max_queue: Option<f64>,
    /// Time between SIGTERM and SIGKILL when stopping a worker. Default 5000.
    pub stop_grace_ms: Option<f64>,
    /// How often per-worker memory/CPU and host figures in `stats()` are
    /// sampled. Default 2000.
    pub stats_interval_ms: Option<f64>,
    /// Threads of the pool's own runtime; 0 picks `min(cores, 4)`, at
    /// least 2. Default 0.
    pub runtime_threads: Option<f64>,
    /// Extra environment variables of each worker (values may use
    /// `{{.Port}}` and `{{.WorkerId}}`).
    pub env: Option<HashMap<String, String>>,
    /// Whether workers inherit this process's environment. Default true.
    pub inherit_env: Option<bool>,
    /// The workers' working directory.
    pub cwd: Option<String>,
    /// Readiness and health: `"http"` (GET `healthPath` answers 2xx, the
    /// default) or `"tcp"` (a TCP connect succeeds).
    #[napi(ts_type = "'http' | 'tcp'")]
    pub readiness: Option<String>,
    /// The path of the HTTP readiness and health check. Default `/health`.
    pub health_path: Option<String>,
    /// How long a worker may take to become ready. Default 30000.
    pub start_timeout_ms: Option<f64>,
    /// Wait this long after starting a worker before the first readiness
    /// check. Default 0.
    pub start_delay_ms: Option<f64>,
    /// Retries with a new port when another process took the port first.
    /// Default 3.
    pub port_retries: Option<f64>,
    /// The sandbox (Linux): `"off"`, `"best_effort"` (the default: use
    /// what the host allows, warn once about the rest) or `"required"` (fail
    /// with `HERD_SANDBOX` when the host cannot provide it).
    #[napi(ts_type = "'off' | 'best_effort' | 'required'")]
    pub sandbox: Option<String>,
    /// Memory limit per worker in bytes, swap excluded (cgroup). Default:
    /// none.
    pub memory_limit: Option<f64>,
    /// CPU limit per worker in cores, fractional (`0.5` = half a core).
    /// Default: none.
    pub cpu_limit: Option<f64>,
    /// Processes and threads per worker (cgroup); `Infinity` for no limit.
    /// Default 100.
    pub pids_limit: Option<f64>,
    /// New PID, mount and IPC namespaces per worker. Default true.
    pub namespaces: Option<bool>,
    /// The cgroup path herd nests its cgroups under (e.g. `/herd`).
    /// Default: this process's own cgroup.
    pub cgroup_root: Option<String>,
    /// Called on the JavaScript thread when a session ends, with why. It
    /// never keeps the process alive by itself. An exception thrown inside
    /// it is raised as an uncaught exception (`process.on('uncaughtException')`),
    /// like one thrown from a timer callback.
    #[napi(ts_type = "(end: SessionEnd) => void")]
    pub on_session_end: Option<Function<'env, crate::session_end::SessionEnd, ()>>,
}

/// Options of `pool.acquire(sessionId, options)`.
#[napi(object, object_to_js = false)]
pub struct AcquireOptions<'env> {
    /// How long a new session waits for a worker. Default: the pool's
    /// `acquireTimeoutMs`. A bound session never waits.
    pub timeout_ms: Option<f64>,
    /// Cancels the wait: the promise rejects with an `AbortError`
    /// (`code` `ABORT_ERR`, the signal's reason as `cause`), and other
    /// callers waiting for the same session keep waiting.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<Object<'env>>,
}

/// Options of `pool.close(options)`.
#[napi(object, object_to_js = false)]
pub struct CloseOptions {
    /// Time each worker gets between SIGTERM and SIGKILL. Default: the
    /// pool's `stopGraceMs`.
    pub grace_ms: Option<f64>,
}

/// `ProcessFactory`'s default `start_timeout`.
pub(crate) const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);

/// A whole number ≥ 0 given as a JavaScript number.
pub(crate) fn count(name: &str, value: Option<f64>) -> std::result::Result<Option<usize>, String> {
    let Some(v) = value else { return Ok(None) };
    if !v.is_finite() || v < 0.0 || v.fract() != 0.0 || v > u32::MAX as f64 {
        return Err(format!("{name} must be a whole number from 0 to {}, got {v}", u32::MAX));
    }
    Ok(Some(v as usize))
}

/// A duration in milliseconds given as a JavaScript number.
pub(crate) fn millis(name: &str, value: Option<f64>) -> std::result::Result<Option<Duration>, String> {
    let Some(v) = value else { return Ok(None) };
    // A year is far beyond any sensible timeout and keeps the arithmetic of
    // deadlines away from overflow.
    if !v.is_finite() || !(0.0..=31_536_000_000.0).contains(&v) {
        return Err(format!("{name} must be a number of milliseconds from 0 to 31536000000, got {v}"));
    }
    Ok(Some(Duration::from_secs_f64(v / 1000.0)))
}

/// The factory and configuration the options describe.
pub(crate) fn build(options: &PoolOptions<'_>) -> std::result::Result<(ProcessFactory, PoolConfig), String> {
    let (program, args) = options
        .command
        .split_first()
        .ok_or_else(|| "command must name a program: command: [program, ...args]".to_string())?;
    let mut factory = ProcessFactory::new(program.clone(), args.iter().cloned());
    if let Some(env) = &options.env {
        factory = factory.envs(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(inherit) = options.inherit_env {
        factory = factory.inherit_env(inherit);
    }
    if let Some(cwd) = &options.cwd {
        factory = factory.cwd(cwd);
    }
    match (options.readiness.as_deref(), &options.health_path) {
        (None | Some("http"), Some(path)) => factory = factory.health_path(path.clone()),
        (None | Some("http"), None) => {}
        (Some("tcp"), None) => factory = factory.tcp_readiness(),
        (Some("tcp"), Some(_)) => {
            return Err("healthPath applies to readiness 'http' only, not 'tcp'".to_string());
        }
        (Some(other), _) => return Err(format!("readiness must be 'http' or 'tcp', got {other:?}")),
    }
    if let Some(d) = millis("startTimeoutMs", options.start_timeout_ms)? {
        factory = factory.start_timeout(d);
    }
    if let Some(d) = millis("startDelayMs", options.start_delay_ms)? {
        factory = factory.start_delay(d);
    }
    if let Some(n) = count("portRetries", options.port_retries)? {
        factory = factory.port_retries(n as u32);
    }
    if let Some(mode) = &options.sandbox {
        factory = factory.sandbox(mode.parse::<SandboxMode>().map_err(|e| e.message().to_string())?);
    }
    if let Some(bytes) = options.memory_limit {
        if !bytes.is_finite() || bytes < 1.0 || bytes.fract() != 0.0 {
            return Err(format!("memoryLimit must be a whole number of bytes, got {bytes}"));
        }
        factory = factory.memory_limit(bytes as u64);
    }
    if let Some(cores) = options.cpu_limit {
        factory = factory.cpu_limit(cores);
    }
    match options.pids_limit {
        Some(f64::INFINITY) => factory = factory.pids_limit(None),
        Some(n) => factory = factory.pids_limit(count("pidsLimit", Some(n))?.map(|n| n as u64)),
        None => {}
    }
    if let Some(enabled) = options.namespaces {
        factory = factory.namespaces(enabled);
    }
    if let Some(root) = &options.cgroup_root {
        factory = factory.cgroup_root(root);
    }

    let mut c = PoolConfig::default();
    let set = |target: &mut usize, name: &str, value: Option<f64>| -> std::result::Result<(), String> {
        if let Some(n) = count(name, value)? {
            *target = n;
        }
        Ok(())
    };
    set(&mut c.min, "min", options.min)?;
    set(&mut c.max, "max", options.max)?;
    set(&mut c.min_idle, "minIdle", options.min_idle)?;
    set(&mut c.max_queue, "maxQueue", options.max_queue)?;
    set(&mut c.runtime_threads, "runtimeThreads", options.runtime_threads)?;
    let set_ms = |target: &mut Duration, name: &str, value: Option<f64>| -> std::result::Result<(), String> {
        if let Some(d) = millis(name, value)? {
            *target = d;
        }
        Ok(())
    };
    set_ms(&mut c.ttl, "ttlMs", options.ttl_ms)?;
    set_ms(&mut c.idle_worker_timeout, "idleWorkerTimeoutMs", options.idle_worker_timeout_ms)?;
    set_ms(&mut c.health_interval, "healthIntervalMs", options.health_interval_ms)?;
    set_ms(&mut c.health_timeout, "healthTimeoutMs", options.health_timeout_ms)?;
    set_ms(&mut c.acquire_timeout, "acquireTimeoutMs", options.acquire_timeout_ms)?;
    set_ms(&mut c.stop_grace, "stopGraceMs", options.stop_grace_ms)?;
    set_ms(&mut c.stats_interval, "statsIntervalMs", options.stats_interval_ms)?;
    c.max_session_lifetime = millis("maxSessionLifetimeMs", options.max_session_lifetime_ms)?;
    c.max_worker_age = millis("maxWorkerAgeMs", options.max_worker_age_ms)?;
    if let Some(reuse) = options.reuse {
        c.reuse = reuse;
    }
    if let Some(n) = count("recycleAfterSessions", options.recycle_after_sessions)? {
        c.recycle_after_sessions = Some(n as u32);
    }
    if let Some(n) = count("healthFailureThreshold", options.health_failure_threshold)? {
        c.health_failure_threshold = n as u32;
    }
    Ok((factory, c))
}

/// The JavaScript name of each `PoolConfig`, factory and `ProxyConfig`
/// field that herd-core's messages name.
const JS_NAMES: &[(&str, &str)] = &[
    ("min_idle", "minIdle"),
    ("ttl", "ttlMs"),
    ("max_session_lifetime", "maxSessionLifetimeMs"),
    ("recycle_after_sessions", "recycleAfterSessions"),
    ("max_worker_age", "maxWorkerAgeMs"),
    ("idle_worker_timeout", "idleWorkerTimeoutMs"),
    ("health_interval", "healthIntervalMs"),
    ("health_timeout", "healthTimeoutMs"),
    ("health_failure_threshold", "healthFailureThreshold"),
    ("acquire_timeout", "acquireTimeoutMs"),
    ("max_queue", "maxQueue"),
    ("stop_grace", "stopGraceMs"),
    ("stats_interval", "statsIntervalMs"),
    ("runtime_threads", "runtimeThreads"),
    ("start_timeout", "startTimeoutMs"),
    ("memory_limit", "memoryLimit"),
    ("cpu_limit", "cpuLimit"),
    ("pids_limit", "pidsLimit"),
    ("cgroup_root", "cgroupRoot"),
    ("admin_listen", "adminListen"),
    ("max_header_bytes", "maxHeaderBytes"),
    ("header_read_timeout", "headerReadTimeoutMs"),
    ("upstream_connect_timeout", "upstreamConnectTimeoutMs"),
    ("upstream_idle_timeout", "upstreamIdleTimeoutMs"),
    ("upstream_max_idle", "upstreamMaxIdle"),
    ("websocket_close_timeout", "websocketCloseTimeoutMs"),
];

/// Rewrites herd-core's field names (`min_idle`) in a configuration error
/// into the option names JavaScript callers wrote (`minIdle`).
pub(crate) fn in_js_terms(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 8);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let js = JS_NAMES.iter().find(|(rust, _)| rust == word).map(|(_, js)| *js);
        out.push_str(js.unwrap_or(word));
        word.clear();
    };
    for c in message.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}
