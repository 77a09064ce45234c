//! The default factory: a local program listening on a port herd picks.

use std::ffi::{CString, OsStr, OsString};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use parking_lot::Mutex;

use super::ports::{self, PortLease};
use super::probe::{Readiness, probe};
use super::template::{TemplateValues, render};
use super::{SpawnContext, Worker, WorkerFactory};
use crate::error::{Error, ErrorKind};
use crate::process::ExitStatus;
use crate::process::handle::{ProcessEvent, ProcessHandle};
use crate::process::logs::{OutputTail, forward_output};
use crate::process::spawner::{self, SpawnPlan};
use crate::sandbox::cgroup::WorkerCgroup;
use crate::sandbox::{Sandbox, SandboxConfig, SandboxMode};

/// Starts a local program per worker, on a loopback port herd picks.
///
/// `{{.Port}}` and `{{.WorkerId}}` in the arguments and in environment
/// values are replaced per worker; `PORT` and `HERD_WORKER_ID` are always
/// set, and `HERD_WORKER_PID` holds the worker's PID as the host sees it.
///
/// ```no_run
/// use std::time::Duration;
/// use herd_core::ProcessFactory;
///
/// let factory = ProcessFactory::new("python3", ["-m", "http.server", "{{.Port}}"])
///     .health_path("/")
///     .start_timeout(Duration::from_secs(10));
/// ```
#[derive(Clone)]
pub struct ProcessFactory {
    spec: Arc<Spec>,
}

#[derive(Debug, Clone)]
struct Spec {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    inherit_env: bool,
    cwd: Option<PathBuf>,
    readiness: Readiness,
    start_timeout: Duration,
    start_delay: Duration,
    probe_timeout: Duration,
    port_retries: u32,
    sandbox: SandboxConfig,
    /// The sandbox's run-time state, made on first use from `sandbox`
    /// (reset whenever the settings change).
    sandbox_state: OnceLock<Arc<Sandbox>>,
}

impl Spec {
    fn sandbox(&self) -> &Arc<Sandbox> {
        self.sandbox_state.get_or_init(|| Sandbox::new(self.sandbox.clone()))
    }
}

/// Workers in their readiness phase, process-wide: polling slows down
/// when many start at once, so probes do not starve the workers of CPU.
static STARTING: AtomicUsize = AtomicUsize::new(0);

/// The pause before readiness poll number `poll` (0-based): 250 µs for
/// the first 10 ms, then 1 ms until ~100 ms, then growing to 100 ms; all
/// stretched by the number of workers starting at once, over 4.
fn poll_delay(poll: u32, starting: usize) -> Duration {
    let base = match poll {
        0 => return Duration::ZERO,
        1..=40 => Duration::from_micros(250),
        41..=130 => Duration::from_millis(1),
        n => Duration::from_millis(u64::from(n - 130) * 5).min(Duration::from_millis(100)),
    };
    let stretch = (starting / 4).max(1) as u32;
    (base * stretch).min(Duration::from_millis(100).max(base))
}

impl ProcessFactory {
    /// A factory for `program` with `args`.
    pub fn new<I, S>(program: impl Into<String>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ProcessFactory {
            spec: Arc::new(Spec {
                program: program.into(),
                args: args.into_iter().map(Into::into).collect(),
                env: Vec::new(),
                inherit_env: true,
                cwd: None,
                readiness: Readiness::default(),
                start_timeout: Duration::from_secs(30),
                start_delay: Duration::ZERO,
                probe_timeout: Duration::from_secs(2),
                port_retries: 3,
                sandbox: SandboxConfig::default(),
                sandbox_state: OnceLock::new(),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Spec)) -> Self {
        let spec = Arc::make_mut(&mut self.spec);
        f(spec);
        spec.sandbox_state = OnceLock::new();
        self
    }

    /// Adds an environment variable (its value may use placeholders).
    pub fn env(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        self.edit(|s| s.env.push((key, value)))
    }

    /// Adds `KEY=value` environment entries (values may use placeholders).
    pub fn envs<I, K, V>(self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: Vec<(String, String)> = vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self.edit(|s| s.env.extend(vars))
    }

    /// Whether workers inherit herd's own environment (default `true`).
    pub fn inherit_env(self, inherit: bool) -> Self {
        self.edit(|s| s.inherit_env = inherit)
    }

    /// The worker's working directory.
    pub fn cwd(self, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        self.edit(|s| s.cwd = Some(dir))
    }

    /// Ready (and healthy) when `GET path` answers 2xx. The default, with
    /// `/health`.
    pub fn health_path(self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.edit(|s| s.readiness = Readiness::Http { path })
    }

    /// Ready (and healthy) when a TCP connect succeeds: for non-HTTP workers.
    pub fn tcp_readiness(self) -> Self {
        self.edit(|s| s.readiness = Readiness::Tcp)
    }

    /// Sets the readiness check.
    pub fn readiness(self, readiness: Readiness) -> Self {
        self.edit(|s| s.readiness = readiness)
    }

    /// How long a worker may take to become ready (default 30 s).
    pub fn start_timeout(self, timeout: Duration) -> Self {
        self.edit(|s| s.start_timeout = timeout)
    }

    /// Wait this long after starting before the first readiness check
    /// (default 0: checks begin at once, every millisecond at first).
    pub fn start_delay(self, delay: Duration) -> Self {
        self.edit(|s| s.start_delay = delay)
    }

    /// How many times to retry with a new port when another process took the
    /// port between herd picking it and the worker binding it (default 3).
    pub fn port_retries(self, retries: u32) -> Self {
        self.edit(|s| s.port_retries = retries)
    }

    /// The sandbox mode (default `best_effort`).
    pub fn sandbox(self, mode: SandboxMode) -> Self {
        self.edit(|s| s.sandbox.mode = mode)
    }

    /// All sandbox settings at once.
    pub fn sandbox_config(self, config: SandboxConfig) -> Self {
        self.edit(|s| s.sandbox = config)
    }

    /// Memory limit per worker in bytes, swap excluded (cgroup).
    pub fn memory_limit(self, bytes: u64) -> Self {
        self.edit(|s| s.sandbox.limits.memory = Some(bytes))
    }

    /// CPU limit per worker in cores, fractional (cgroup CFS quota).
    pub fn cpu_limit(self, cores: f64) -> Self {
        self.edit(|s| s.sandbox.limits.cpu = Some(cores))
    }

    /// Process/thread limit per worker (cgroup pids); `None` = unlimited.
    /// Default 100.
    pub fn pids_limit(self, limit: Option<u64>) -> Self {
        self.edit(|s| s.sandbox.limits.pids = limit)
    }

    /// Whether workers get new PID, mount and IPC namespaces (default true).
    pub fn namespaces(self, enabled: bool) -> Self {
        self.edit(|s| s.sandbox.namespaces = enabled)
    }

    /// The cgroup path to nest herd's cgroups under (e.g. `/herd`);
    /// default: the host process's own cgroup.
    pub fn cgroup_root(self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        self.edit(|s| s.sandbox.cgroup_root = Some(path))
    }

    /// The sandbox settings.
    pub fn sandbox_settings(&self) -> &SandboxConfig {
        &self.spec.sandbox
    }

    /// The program, as given.
    pub fn program(&self) -> &str {
        &self.spec.program
    }

    /// The arguments, as given (placeholders not yet replaced).
    pub fn args(&self) -> &[String] {
        &self.spec.args
    }
}

impl std::fmt::Debug for ProcessFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessFactory").field("spec", &*self.spec).finish()
    }
}

impl WorkerFactory for ProcessFactory {
    fn spawn(&self, ctx: SpawnContext) -> BoxFuture<'static, Result<Box<dyn Worker>, Error>> {
        let spec = self.spec.clone();
        Box::pin(async move { spawn_with_retries(spec, ctx).await })
    }

    fn check(&self) -> Result<(), Error> {
        let spec = &self.spec;
        if spec.program.is_empty() {
            return Err(Error::invalid_config("the worker command is empty"));
        }
        if spec.start_timeout.is_zero() {
            return Err(Error::invalid_config("start_timeout must be greater than zero"));
        }
        if let Readiness::Http { path } = &spec.readiness
            && (!path.starts_with('/') || path.chars().any(|c| c.is_control() || c == ' '))
        {
            return Err(Error::invalid_config(format!(
                "health path {path:?} must start with '/' and contain no spaces or control characters"
            )));
        }
        for (key, _) in &spec.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(Error::invalid_config(format!("bad environment variable name {key:?}")));
            }
        }
        let strings = spec.args.iter().chain(spec.env.iter().map(|(_, v)| v));
        if let Some(bad) = strings.into_iter().find(|s| s.contains('\0')) {
            return Err(Error::invalid_config(format!("argument or value {bad:?} contains a NUL byte")));
        }
        if let Some(dir) = &spec.cwd
            && !dir.is_dir()
        {
            return Err(Error::invalid_config(format!(
                "working directory {} does not exist or is not a directory",
                dir.display()
            )));
        }
        spec.sandbox.validate()?;
        resolve_program(spec).map(|_| ())
    }

    fn pool_starting(&self, _pool_name: &str) -> Result<(), Error> {
        self.spec.sandbox().pool_starting()
    }

    fn describe(&self) -> String {
        std::iter::once(self.spec.program.as_str())
            .chain(self.spec.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Finds the program like a shell would: a path if it contains `/`,
/// otherwise the first executable match in `PATH`.
fn resolve_program(spec: &Spec) -> Result<PathBuf, Error> {
    let not_found = |detail: String| Error::new(ErrorKind::SpawnFailed, detail);
    let program = &spec.program;
    if program.contains('/') {
        let path = PathBuf::from(program);
        check_executable(&path).map_err(not_found)?;
        return Ok(path);
    }
    let path_var: OsString = spec
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| OsString::from(v))
        .or_else(|| if spec.inherit_env { std::env::var_os("PATH") } else { None })
        .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    let mut not_executable = None;
    for dir in std::env::split_paths(&path_var) {
        let candidate = dir.join(program);
        match check_executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(reason) if candidate.exists() => not_executable = Some(reason),
            Err(_) => {}
        }
    }
    Err(not_found(not_executable.unwrap_or_else(|| {
        format!("program {program:?} was not found in PATH ({})", path_var.to_string_lossy())
    })))
}

fn check_executable(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("program {}: {e}", path.display()))?;
    if meta.is_dir() {
        return Err(format!("program {} is a directory", path.display()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "program {} is not executable (mode {:o})",
            path.display(),
            meta.permissions().mode() & 0o777
        ));
    }
    Ok(())
}

fn cstring(s: impl AsRef<OsStr>) -> Result<CString, Error> {
    CString::new(s.as_ref().as_bytes())
        .map_err(|_| Error::invalid_config(format!("{:?} contains a NUL byte", s.as_ref())))
}

async fn spawn_with_retries(spec: Arc<Spec>, ctx: SpawnContext) -> Result<Box<dyn Worker>, Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = ports::allocate().map_err(|e| {
            Error::new(ErrorKind::SpawnFailed, "cannot find a free loopback port").with_source(e)
        })?;
        match start_once(&spec, &ctx, port).await {
            Ok(worker) => return Ok(worker),
            Err(Failure::PortTaken(port)) if attempt <= spec.port_retries => {
                tracing::warn!(worker = %ctx.worker_id, port, "port was taken by another process; retrying with a new port");
            }
            Err(Failure::PortTaken(port)) => {
                return Err(Error::new(
                    ErrorKind::SpawnFailed,
                    format!(
                        "worker {}: port {port} was taken by another process ({attempt} attempts)",
                        ctx.worker_id
                    ),
                ));
            }
            Err(Failure::Other(err)) => return Err(err),
        }
    }
}

enum Failure {
    PortTaken(u16),
    Other(Error),
}

async fn start_once(
    spec: &Arc<Spec>,
    ctx: &SpawnContext,
    port: PortLease,
) -> Result<Box<dyn Worker>, Failure> {
    let worker_id = ctx.worker_id.to_string();
    let fail = |msg: String| {
        Failure::Other(Error::new(ErrorKind::SpawnFailed, format!("worker {worker_id}: {msg}")))
    };
    let program = resolve_program(spec).map_err(Failure::Other)?;
    let values = TemplateValues { port: port.port(), worker_id: &worker_id };

    let overridden = |k: &OsStr| {
        let k = k.as_bytes();
        k == b"PORT" || k == b"HERD_WORKER_ID" || spec.env.iter().any(|(key, _)| key.as_bytes() == k)
    };
    let mut entries: Vec<(OsString, OsString)> = Vec::new();
    if spec.inherit_env {
        entries.extend(std::env::vars_os().filter(|(k, _)| !overridden(k)));
    }
    entries.push(("PORT".into(), port.port().to_string().into()));
    entries.push(("HERD_WORKER_ID".into(), worker_id.clone().into()));
    for (k, v) in &spec.env {
        entries.push((k.into(), render(v, &values).into()));
    }
    let env = entries
        .into_iter()
        .map(|(mut k, v)| {
            k.push("=");
            k.push(v);
            cstring(k)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::Other)?;
    let mut argv = vec![cstring(&spec.program).map_err(Failure::Other)?];
    for arg in &spec.args {
        argv.push(cstring(render(arg, &values)).map_err(Failure::Other)?);
    }
    let mut plan = SpawnPlan {
        program: cstring(program.as_os_str()).map_err(Failure::Other)?,
        argv,
        env,
        cwd: spec.cwd.as_ref().map(|d| cstring(d.as_os_str())).transpose().map_err(Failure::Other)?,
        cgroup_procs: Vec::new(),
    };

    // The sandbox: cgroups made (blocking cgroupfs writes) before the
    // worker exists, so its shim can join them before exec.
    let started_at = Instant::now();
    let sandbox = spec.sandbox().clone();
    let (pool_name, id) = (ctx.pool_name.clone(), worker_id.clone());
    let prepared = tokio::task::spawn_blocking(move || sandbox.prepare(&pool_name, &id))
        .await
        .map_err(|e| {
            Failure::Other(Error::new(ErrorKind::Internal, format!("sandbox setup task failed: {e}")))
        })?
        .map_err(Failure::Other)?;
    let mut cgroup = CgroupSlot(prepared.cgroup);
    if let Some(cg) = &cgroup.0 {
        plan.cgroup_procs = cg.procs_files().map_err(|e| {
            Failure::Other(Error::new(ErrorKind::Sandbox, "cannot open the worker's cgroup").with_source(e))
        })?;
    }
    let plan = Arc::new(plan);
    let mut namespaces = prepared.namespaces;
    let spawned = loop {
        match spawner::spawn_with(&plan, namespaces).await {
            Ok(spawned) => break spawned,
            Err(e) if namespaces && namespace_refusal(&e) => {
                spec.sandbox().namespaces_refused(&e).map_err(Failure::Other)?;
                namespaces = false;
            }
            Err(e) => {
                cgroup.destroy().await;
                return Err(Failure::Other(
                    Error::new(
                        ErrorKind::SpawnFailed,
                        format!("worker {worker_id}: cannot start {}", spec.program),
                    )
                    .with_source(e),
                ));
            }
        }
    };
    let (mut handle, stdout, stderr) = ProcessHandle::new(spawned)
        .map_err(|e| Failure::Other(Error::io("cannot watch worker process", e)))?;
    let tail = Arc::new(Mutex::new(OutputTail::default()));
    let mut output = tokio::spawn(forward_output(worker_id.clone(), stdout, stderr, tail.clone()));

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port.port()));
    let deadline = started_at + spec.start_timeout;
    let mut last_probe = None;
    let outcome =
        tokio::time::timeout_at(deadline.into(), wait_ready(spec, &mut handle, addr, &mut last_probe)).await;
    let error = match outcome {
        Ok(Ok(pid)) => {
            tracing::debug!(worker = %worker_id, pid, %addr, elapsed = ?started_at.elapsed(), "worker ready");
            return Ok(Box::new(ProcessWorker {
                handle,
                cgroup,
                addr,
                pid,
                readiness: spec.readiness.clone(),
                _port: port,
            }));
        }
        Ok(Err(StartError::Exited(status))) => {
            let port_number = port.port();
            drop(port);
            if ports::taken_by_someone_else(port_number) {
                return Err(Failure::PortTaken(port_number));
            }
            format!("exited during start with {status}")
        }
        Ok(Err(StartError::Setup(message))) => message,
        Err(_) => not_ready_message(spec, addr, last_probe),
    };
    handle.stop(Duration::ZERO).await;
    cgroup.destroy().await;
    // The tree is gone, so its pipes reach EOF: let the reader log the last
    // lines before quoting them (bounded: a grandchild that escaped the
    // tree could hold a pipe open).
    let _ = tokio::time::timeout(Duration::from_millis(500), &mut output).await;
    let output = tail.lock().summary();
    Err(fail(match output {
        Some(output) => format!("{error}; last output: {output}"),
        None => error,
    }))
}

/// Why a worker that never became ready did not: the readiness check, the
/// last probe's answer, and what to change when the worker answers but not
/// with a 2xx (most often a health path it does not serve).
fn not_ready_message(spec: &Spec, addr: SocketAddr, last_probe: Option<String>) -> String {
    let check = match &spec.readiness {
        Readiness::Http { path } => format!("GET {path} on {addr}"),
        Readiness::Tcp => format!("TCP connect to {addr}"),
    };
    let mut message = format!("not ready within {:?} (readiness: {check})", spec.start_timeout);
    if let Some(last) = last_probe {
        message.push_str(&format!("; last probe: {last}"));
        if matches!(spec.readiness, Readiness::Http { .. }) && last.contains(" answered ") {
            message.push_str(
                " (readiness needs a 2xx answer: set the health path to a route the worker serves, \
                 or use TCP readiness)",
            );
        }
    }
    message
}

enum StartError {
    Exited(ExitStatus),
    Setup(String),
}

/// Waits for the worker process to exist, then polls readiness (see
/// [`poll_delay`] for the schedule).
async fn wait_ready(
    spec: &Spec,
    handle: &mut ProcessHandle,
    addr: SocketAddr,
    last_probe: &mut Option<String>,
) -> Result<u32, StartError> {
    let pid = match handle.next_event().await {
        ProcessEvent::Started(pid) => pid,
        other => return Err(early_end(spec, other)),
    };
    if !spec.start_delay.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(spec.start_delay) => {}
            event = handle.next_event() => return Err(early_end(spec, event)),
        }
    }
    STARTING.fetch_add(1, Ordering::Relaxed);
    let _starting = scopeguard(|| {
        STARTING.fetch_sub(1, Ordering::Relaxed);
    });
    let ticker = super::ticker::Ticker::new().ok();
    let mut polls = 0u32;
    loop {
        let attempt = async {
            let delay = poll_delay(polls, STARTING.load(Ordering::Relaxed));
            if !delay.is_zero() {
                match &ticker {
                    Some(t) if delay < Duration::from_millis(5) => {
                        if t.sleep(delay).await.is_err() {
                            tokio::time::sleep(delay).await;
                        }
                    }
                    _ => tokio::time::sleep(delay).await,
                }
            }
            probe(addr, &spec.readiness, spec.probe_timeout).await
        };
        tokio::select! {
            biased;
            event = handle.next_event() => return Err(early_end(spec, event)),
            result = attempt => {
                match result {
                    Ok(()) => return Ok(pid as u32),
                    Err(why) => *last_probe = Some(why),
                }
                polls += 1;
            }
        }
    }
}

/// Runs `f` when dropped.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

fn early_end(spec: &Spec, event: ProcessEvent) -> StartError {
    match event {
        ProcessEvent::Exited(status) => StartError::Exited(status),
        ProcessEvent::SetupFailed(failure) => {
            let cwd = spec.cwd.as_ref().map(|d| d.display().to_string());
            StartError::Setup(failure.describe(&spec.program, cwd.as_deref()))
        }
        ProcessEvent::Started(_) => StartError::Setup("worker reported its start twice".to_string()),
    }
}

/// Whether a clone error means "namespaces not permitted here".
fn namespace_refusal(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM | libc::EINVAL | libc::ENOSPC | libc::EUSERS | libc::ENOSYS))
}

/// A worker's cgroups, destroyed once the worker is gone — on its
/// normal path by `destroy().await`, otherwise (dropped early) on a
/// background thread.
struct CgroupSlot(Option<WorkerCgroup>);

impl CgroupSlot {
    async fn destroy(&mut self) {
        let Some(cgroup) = self.0.take() else { return };
        match tokio::task::spawn_blocking(move || cgroup.destroy()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("worker cgroup cleanup: {e}"),
            Err(e) => tracing::warn!("worker cgroup cleanup task failed: {e}"),
        }
    }
}

impl Drop for CgroupSlot {
    fn drop(&mut self) {
        if let Some(cgroup) = self.0.take() {
            let _ = std::thread::Builder::new().name("herd-cgroup-cleanup".into()).spawn(move || {
                if let Err(e) = cgroup.destroy() {
                    tracing::warn!("worker cgroup cleanup: {e}");
                }
            });
        }
    }
}

struct ProcessWorker {
    handle: ProcessHandle,
    cgroup: CgroupSlot,
    addr: SocketAddr,
    pid: u32,
    readiness: Readiness,
    _port: PortLease,
}

impl Worker for ProcessWorker {
    fn address(&self) -> Option<SocketAddr> {
        Some(self.addr)
    }

    fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }

    fn health_check(&self, timeout: Duration) -> BoxFuture<'static, Result<(), String>> {
        let (addr, readiness) = (self.addr, self.readiness.clone());
        Box::pin(async move { probe(addr, &readiness, timeout).await })
    }

    fn exited(&mut self) -> BoxFuture<'_, ExitStatus> {
        Box::pin(async move {
            let status = self.handle.wait().await;
            self.cgroup.destroy().await;
            status
        })
    }

    fn stop(&mut self, grace: Duration) -> BoxFuture<'_, ExitStatus> {
        Box::pin(async move {
            let status = self.handle.stop(grace).await;
            self.cgroup.destroy().await;
            status
        })
    }
}
