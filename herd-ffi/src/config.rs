//! `herd_config_t`: pool options through setters, so adding an option
//! never changes the ABI. A config is validated as a whole by
//! `herd_pool_new` (the message names the bad setting); setters only check
//! their own arguments.

use std::ffi::{c_char, c_uint, c_void};
use std::sync::Arc;
use std::time::Duration;

use herd_core::{PoolConfig, ProcessFactory, Readiness, SandboxConfig, SandboxMode};

use crate::boundary::{Out, arg_str, edit_config as edit, status_call, value_call};
use crate::events::{Registration, herd_session_end_callback_t, herd_userdata_free_t};
use crate::status::{Failure, herd_status_t};

/// How strictly the sandbox (cgroup limits, PID/mount/IPC namespaces) is
/// applied to workers. Numbers are stable and never reused.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum herd_sandbox_mode_t {
    /// No cgroups, no namespaces (the worker's process tree is still killed
    /// as a whole).
    HERD_SANDBOX_OFF = 1,
    /// Use what the host offers; warn once about the rest (the default).
    HERD_SANDBOX_BEST_EFFORT = 2,
    /// `herd_pool_new` fails with `HERD_STATUS_SANDBOX`, naming what the
    /// host lacks.
    HERD_SANDBOX_REQUIRED = 3,
}

/// The longest duration any setting or timeout accepts, in milliseconds
/// (ten years): longer ones would overflow clock arithmetic.
pub const HERD_MAX_DURATION_MS: u64 = 315_360_000_000;

/// Pool options: the worker command, its readiness check, sizing and
/// timing, and the session-end callback. Create with `herd_config_new`,
/// change with `herd_config_set_*`, pass to `herd_pool_new` (which copies
/// what it needs), free with `herd_config_free`.
///
/// Thread safety: not thread-safe. Use one config from one thread at a
/// time; `herd_pool_new` only reads it.
pub struct herd_config_t {
    program: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    inherit_env: bool,
    cwd: Option<String>,
    readiness: Readiness,
    start_timeout: Option<Duration>,
    start_delay: Option<Duration>,
    sandbox: SandboxConfig,
    pub(crate) pool: PoolConfig,
    pub(crate) on_session_end: Option<Arc<Registration>>,
}

impl herd_config_t {
    /// The worker factory these options describe.
    pub(crate) fn factory(&self) -> Result<ProcessFactory, Failure> {
        let Some(program) = &self.program else {
            return Err(Failure::new(
                herd_status_t::HERD_STATUS_INVALID_CONFIG,
                "no worker command: call herd_config_set_command first",
            ));
        };
        let mut factory = ProcessFactory::new(program.clone(), self.args.clone())
            .envs(self.env.iter().cloned())
            .inherit_env(self.inherit_env)
            .readiness(self.readiness.clone())
            .sandbox_config(self.sandbox.clone());
        if let Some(dir) = &self.cwd {
            factory = factory.cwd(dir);
        }
        if let Some(timeout) = self.start_timeout {
            factory = factory.start_timeout(timeout);
        }
        if let Some(delay) = self.start_delay {
            factory = factory.start_delay(delay);
        }
        Ok(factory)
    }
}

/// A duration argument in milliseconds, bounded by `HERD_MAX_DURATION_MS`.
pub(crate) fn millis(ms: u64, name: &str) -> Result<Duration, Failure> {
    if ms > HERD_MAX_DURATION_MS {
        return Err(Failure::invalid_argument(format!(
            "{name} is {ms} ms; the limit is HERD_MAX_DURATION_MS ({HERD_MAX_DURATION_MS} ms, ten years)"
        )));
    }
    Ok(Duration::from_millis(ms))
}

/// `0` means "not set" for optional durations.
fn optional_millis(ms: u64, name: &str) -> Result<Option<Duration>, Failure> {
    if ms == 0 { Ok(None) } else { millis(ms, name).map(Some) }
}

/// Creates a config with herd's defaults: `min` 1, `max` 10, `min_idle` 0,
/// TTL 5 minutes, reuse on, health checks every 5 s (2 s timeout, 3
/// failures), readiness `GET /health`, start timeout 30 s, acquire timeout
/// 30 s, queue of 1024, stop grace 5 s, sandbox `HERD_SANDBOX_BEST_EFFORT`
/// with namespaces and a limit of 100 processes per worker. The worker
/// command must be set with `herd_config_set_command`.
///
/// Errors: `HERD_STATUS_INVALID_ARGUMENT` if `config_out` is NULL.
///
/// # Safety
/// `config_out` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_new(config_out: *mut *mut herd_config_t) -> herd_status_t {
    status_call("herd_config_new", || {
        let out = Out::new(config_out, "config_out")?;
        let config = Box::new(herd_config_t {
            program: None,
            args: Vec::new(),
            env: Vec::new(),
            inherit_env: true,
            cwd: None,
            readiness: Readiness::default(),
            start_timeout: None,
            start_delay: None,
            sandbox: SandboxConfig::default(),
            pool: PoolConfig::default(),
            on_session_end: None,
        });
        // SAFETY: checked non-NULL; the caller's contract.
        unsafe { out.write(Box::into_raw(config)) };
        Ok(())
    })
}

/// Frees a config. Pools made from it are unaffected. NULL is ignored.
///
/// # Safety
/// `config` is NULL or a config from `herd_config_new` not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_free(config: *mut herd_config_t) {
    value_call("herd_config_free", (), || {
        if !config.is_null() {
            // SAFETY: the caller's contract: ours, and freed once.
            drop(unsafe { Box::from_raw(config) });
        }
    })
}

/// Sets the worker command: `program` (a path, or a name looked up in
/// `PATH`) and its `args_len` arguments. In arguments and environment
/// values, `{{.Port}}` becomes the worker's port and `{{.WorkerId}}` its ID;
/// `PORT`, `HERD_WORKER_ID` and `HERD_WORKER_PID` are always set.
/// Replaces any previous command.
///
/// Errors: `HERD_STATUS_INVALID_ARGUMENT` if `config` or `program` is NULL,
/// `args` is NULL while `args_len` > 0, or a string is not UTF-8.
///
/// # Safety
/// `program` is NULL or a NUL-terminated string; `args` is NULL or points
/// to `args_len` such strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_command(
    config: *mut herd_config_t,
    program: *const c_char,
    args: *const *const c_char,
    args_len: usize,
) -> herd_status_t {
    edit("herd_config_set_command", config, |config| {
        // SAFETY: the caller's contract.
        let program = unsafe { arg_str(program, "program") }?;
        if args.is_null() && args_len > 0 {
            return Err(Failure::invalid_argument(format!("args is NULL but args_len is {args_len}")));
        }
        let mut parsed = Vec::with_capacity(args_len);
        for i in 0..args_len {
            // SAFETY: `args` points to `args_len` pointers (checked non-NULL).
            let arg = unsafe { *args.add(i) };
            // SAFETY: each is NULL or a NUL-terminated string.
            parsed.push(unsafe { arg_str(arg, &format!("args[{i}]")) }?.to_string());
        }
        config.program = Some(program.to_string());
        config.args = parsed;
        Ok(())
    })
}

/// Sets an environment variable for the workers (replacing an earlier value
/// of the same `key`). `value` may use `{{.Port}}` and `{{.WorkerId}}`.
///
/// Errors: `HERD_STATUS_INVALID_ARGUMENT` for a NULL or non-UTF-8 argument,
/// or a `key` that is empty or contains `=`.
///
/// # Safety
/// `key` and `value` are NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_env(
    config: *mut herd_config_t,
    key: *const c_char,
    value: *const c_char,
) -> herd_status_t {
    edit("herd_config_set_env", config, |config| {
        // SAFETY: the caller's contract.
        let (key, value) = unsafe { (arg_str(key, "key")?, arg_str(value, "value")?) };
        if key.is_empty() || key.contains('=') {
            return Err(Failure::invalid_argument(format!(
                "key {key:?} is not a valid environment variable name"
            )));
        }
        config.env.retain(|(k, _)| k != key);
        config.env.push((key.to_string(), value.to_string()));
        Ok(())
    })
}

/// Whether workers inherit this process's environment (default true).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_inherit_env(
    config: *mut herd_config_t,
    inherit: bool,
) -> herd_status_t {
    edit("herd_config_set_inherit_env", config, |config| {
        config.inherit_env = inherit;
        Ok(())
    })
}

/// Sets the workers' working directory (checked by `herd_pool_new`).
///
/// # Safety
/// `dir` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_cwd(
    config: *mut herd_config_t,
    dir: *const c_char,
) -> herd_status_t {
    edit("herd_config_set_cwd", config, |config| {
        // SAFETY: the caller's contract.
        config.cwd = Some(unsafe { arg_str(dir, "dir") }?.to_string());
        Ok(())
    })
}

/// A worker is ready, and healthy, while `GET path` answers 2xx (default
/// `/health`). `path` must start with `/` (checked by `herd_pool_new`).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_health_path(
    config: *mut herd_config_t,
    path: *const c_char,
) -> herd_status_t {
    edit("herd_config_set_health_path", config, |config| {
        // SAFETY: the caller's contract.
        config.readiness = Readiness::Http { path: unsafe { arg_str(path, "path") }?.to_string() };
        Ok(())
    })
}

/// A worker is ready, and healthy, while a TCP connection to its port
/// succeeds: for workers that do not speak HTTP.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_tcp_readiness(config: *mut herd_config_t) -> herd_status_t {
    edit("herd_config_set_tcp_readiness", config, |config| {
        config.readiness = Readiness::Tcp;
        Ok(())
    })
}

/// How long a worker may take to become ready (default 30 000 ms).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_start_timeout_ms(
    config: *mut herd_config_t,
    ms: u64,
) -> herd_status_t {
    edit("herd_config_set_start_timeout_ms", config, |config| {
        config.start_timeout = Some(millis(ms, "ms")?);
        Ok(())
    })
}

/// A pause after starting a worker before its first readiness check
/// (default 0: checks begin at once, every 250 µs at first).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_start_delay_ms(
    config: *mut herd_config_t,
    ms: u64,
) -> herd_status_t {
    edit("herd_config_set_start_delay_ms", config, |config| {
        config.start_delay = Some(millis(ms, "ms")?);
        Ok(())
    })
}

/// Workers always kept alive, bound or not (default 1).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_min(config: *mut herd_config_t, min: usize) -> herd_status_t {
    edit("herd_config_set_min", config, |config| {
        config.pool.min = min;
        Ok(())
    })
}

/// Hard cap on worker processes, starting and stopping ones included
/// (default 10, at least 1).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_max(config: *mut herd_config_t, max: usize) -> herd_status_t {
    edit("herd_config_set_max", config, |config| {
        config.pool.max = max;
        Ok(())
    })
}

/// Ready, unbound workers kept warm so a new session binds in
/// microseconds; never raises the count above `max` (default 0).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_min_idle(
    config: *mut herd_config_t,
    min_idle: usize,
) -> herd_status_t {
    edit("herd_config_set_min_idle", config, |config| {
        config.pool.min_idle = min_idle;
        Ok(())
    })
}

/// A session with no open lease and no activity for this long ends with
/// `HERD_END_IDLE_TIMEOUT` (default 300 000 ms; must be > 0).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_ttl_ms(config: *mut herd_config_t, ms: u64) -> herd_status_t {
    edit("herd_config_set_ttl_ms", config, |config| {
        config.pool.ttl = millis(ms, "ms")?;
        Ok(())
    })
}

/// A session ends with `HERD_END_MAX_LIFETIME` this long after it was
/// bound, leases or not. 0 (the default) means no limit.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_max_session_lifetime_ms(
    config: *mut herd_config_t,
    ms: u64,
) -> herd_status_t {
    edit("herd_config_set_max_session_lifetime_ms", config, |config| {
        config.pool.max_session_lifetime = optional_millis(ms, "ms")?;
        Ok(())
    })
}

/// After a session ends, keep its worker for the next session (true, the
/// default), or stop it and start a fresh one (false: no state can leak
/// between sessions).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_reuse(config: *mut herd_config_t, reuse: bool) -> herd_status_t {
    edit("herd_config_set_reuse", config, |config| {
        config.pool.reuse = reuse;
        Ok(())
    })
}

/// With reuse, stop a worker after it has served this many sessions. 0 (the
/// default) means never.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_recycle_after_sessions(
    config: *mut herd_config_t,
    sessions: u32,
) -> herd_status_t {
    edit("herd_config_set_recycle_after_sessions", config, |config| {
        config.pool.recycle_after_sessions = (sessions > 0).then_some(sessions);
        Ok(())
    })
}

/// Stop a worker once it is this old and not bound to a session. 0 (the
/// default) means no age limit.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_max_worker_age_ms(
    config: *mut herd_config_t,
    ms: u64,
) -> herd_status_t {
    edit("herd_config_set_max_worker_age_ms", config, |config| {
        config.pool.max_worker_age = optional_millis(ms, "ms")?;
        Ok(())
    })
}

/// Unbound workers above `max(min, min_idle)` are stopped after being idle
/// this long (default 60 000 ms; must be > 0).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_idle_worker_timeout_ms(
    config: *mut herd_config_t,
    ms: u64,
) -> herd_status_t {
    edit("herd_config_set_idle_worker_timeout_ms", config, |config| {
        config.pool.idle_worker_timeout = millis(ms, "ms")?;
        Ok(())
    })
}

/// How often each ready worker is health-checked (default 5 000 ms; must
/// be > 0).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_health_interval_ms(
    config: *mut herd_config_t,
    ms: u64,
) -> herd_status_t {
    edit("herd_config_set_health_interval_ms", config, |config| {
        config.pool.health_interval = millis(ms, "ms")?;
        Ok(())
    })
}

/// How long one health check may take (default 2 000 ms; must be > 0).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_health_timeout_ms(
    config: *mut herd_config_t,
    ms: u64,
) -> herd_status_t {
    edit("herd_config_set_health_timeout_ms", config, |config| {
        config.pool.health_timeout = millis(ms, "ms")?;
        Ok(())
    })
}

/// Failed health checks in a row before a worker is declared unhealthy and
/// its session ends with `HERD_END_UNHEALTHY` (default 3; at least 1).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_health_failure_threshold(
    config: *mut herd_config_t,
    failures: u32,
) -> herd_status_t {
    edit("herd_config_set_health_failure_threshold", config, |config| {
        config.pool.health_failure_threshold = failures;
        Ok(())
    })
}

/// How long `herd_acquire` with `HERD_TIMEOUT_DEFAULT` waits for a worker
/// for a new session (default 30 000 ms).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_acquire_timeout_ms(
    config: *mut herd_config_t,
    ms: u64,
) -> herd_status_t {
    edit("herd_config_set_acquire_timeout_ms", config, |config| {
        config.pool.acquire_timeout = millis(ms, "ms")?;
        Ok(())
    })
}

/// Most new sessions allowed to wait for a worker beyond what starting and
/// startable workers can serve; past it `herd_acquire` fails at once with
/// `HERD_STATUS_POOL_EXHAUSTED` (default 1024).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_max_queue(
    config: *mut herd_config_t,
    max_queue: usize,
) -> herd_status_t {
    edit("herd_config_set_max_queue", config, |config| {
        config.pool.max_queue = max_queue;
        Ok(())
    })
}

/// When stopping a worker: time between SIGTERM and SIGKILL to its whole
/// process tree (default 5 000 ms). Also the grace `herd_pool_free` uses.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_stop_grace_ms(config: *mut herd_config_t, ms: u64) -> herd_status_t {
    edit("herd_config_set_stop_grace_ms", config, |config| {
        config.pool.stop_grace = millis(ms, "ms")?;
        Ok(())
    })
}

/// How often per-worker memory/CPU and host figures are sampled for
/// `herd_stats` (default 2 000 ms; must be > 0).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_stats_interval_ms(
    config: *mut herd_config_t,
    ms: u64,
) -> herd_status_t {
    edit("herd_config_set_stats_interval_ms", config, |config| {
        config.pool.stats_interval = millis(ms, "ms")?;
        Ok(())
    })
}

/// Threads of the pool's own runtime; 0 (the default) picks
/// `min(cores, 4)`, at least 2.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_runtime_threads(
    config: *mut herd_config_t,
    threads: usize,
) -> herd_status_t {
    edit("herd_config_set_runtime_threads", config, |config| {
        config.pool.runtime_threads = threads;
        Ok(())
    })
}

/// Calls `callback(userdata, end)` whenever a session of a pool made from
/// this config ends, whatever the reason (see `herd_session_end_t`). It
/// runs on the pool's event thread, never on the caller's.
///
/// `free_userdata` (may be NULL) is called once with `userdata` when herd
/// no longer needs it: when this config and every pool made from it are
/// freed (so by the time `herd_pool_free` of the last such pool returns,
/// if the config was freed before). `userdata` must be safe to use from
/// herd's threads. Setting a callback again replaces the previous one.
/// On failure herd does not take `userdata`.
///
/// Errors: `HERD_STATUS_INVALID_ARGUMENT` if `config` or `callback` is NULL.
///
/// # Safety
/// `callback` and `free_userdata` are valid to call with `userdata` from
/// any thread until `free_userdata` is called.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_on_session_end(
    config: *mut herd_config_t,
    callback: herd_session_end_callback_t,
    userdata: *mut c_void,
    free_userdata: herd_userdata_free_t,
) -> herd_status_t {
    edit("herd_config_on_session_end", config, |config| {
        let callback = callback.ok_or_else(|| Failure::invalid_argument("callback is NULL"))?;
        config.on_session_end = Some(Registration::new(callback, userdata, free_userdata));
        Ok(())
    })
}

/// Sets the sandbox mode: one of `herd_sandbox_mode_t` (default
/// `HERD_SANDBOX_BEST_EFFORT`).
///
/// Errors: `HERD_STATUS_INVALID_ARGUMENT` for a NULL config or a number
/// that is not a `herd_sandbox_mode_t`.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_sandbox(config: *mut herd_config_t, mode: c_uint) -> herd_status_t {
    edit("herd_config_set_sandbox", config, |config| {
        config.sandbox.mode = match mode {
            1 => SandboxMode::Off,
            2 => SandboxMode::BestEffort,
            3 => SandboxMode::Required,
            other => {
                return Err(Failure::invalid_argument(format!(
                    "mode {other} is not a herd_sandbox_mode_t (1 off, 2 best effort, 3 required)"
                )));
            }
        };
        Ok(())
    })
}

/// Memory limit per worker in bytes, swap excluded (cgroup; at least 1 MiB,
/// checked by `herd_pool_new`). A worker above it is killed by the kernel
/// and its session ends with `HERD_END_CRASHED`. 0 (the default) means no
/// limit.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_memory_limit(
    config: *mut herd_config_t,
    bytes: u64,
) -> herd_status_t {
    edit("herd_config_set_memory_limit", config, |config| {
        config.sandbox.limits.memory = (bytes > 0).then_some(bytes);
        Ok(())
    })
}

/// CPU limit per worker in cores, fractional (`0.5` is half a core; cgroup
/// CPU quota; at most 1024, checked by `herd_pool_new`). 0 (the default)
/// means no limit.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_cpu_limit(config: *mut herd_config_t, cores: f64) -> herd_status_t {
    edit("herd_config_set_cpu_limit", config, |config| {
        config.sandbox.limits.cpu = (cores != 0.0).then_some(cores);
        Ok(())
    })
}

/// Limit on processes and threads per worker (cgroup pids), so a fork bomb
/// stays inside its worker. Default 100; 0 means unlimited.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_pids_limit(config: *mut herd_config_t, pids: u64) -> herd_status_t {
    edit("herd_config_set_pids_limit", config, |config| {
        config.sandbox.limits.pids = (pids > 0).then_some(pids);
        Ok(())
    })
}

/// Whether workers get new PID, mount (with a private `/proc`) and IPC
/// namespaces where the host allows (default true). The network is shared:
/// workers listen on the host's loopback.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_namespaces(
    config: *mut herd_config_t,
    enabled: bool,
) -> herd_status_t {
    edit("herd_config_set_namespaces", config, |config| {
        config.sandbox.namespaces = enabled;
        Ok(())
    })
}

/// The cgroup path herd nests its per-worker cgroups under in every
/// hierarchy, e.g. `/herd` (absolute; checked by `herd_pool_new`). Default:
/// the cgroup of this process.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_config_set_cgroup_root(
    config: *mut herd_config_t,
    path: *const c_char,
) -> herd_status_t {
    edit("herd_config_set_cgroup_root", config, |config| {
        // SAFETY: the caller's contract.
        config.sandbox.cgroup_root = Some(unsafe { arg_str(path, "path") }?.into());
        Ok(())
    })
}
