//! Sandboxing workers: cgroup limits (memory without swap, CPU, PIDs) on
//! cgroup v1 and v2, and new PID, mount and IPC namespaces.
//!
//! * [`layout`]: where the controllers live on this host, read from the
//!   kernel.
//! * [`cgroup`]: one worker's cgroups — create with limits, join before
//!   exec, empty and remove; leftover cleanup.
//!
//! Modes: `off` (no cgroups, no namespaces), `best_effort` (the default:
//! use what the host offers, warn once per factory about the rest),
//! `required` (a spawn fails with an error naming what is missing).
//!
//! Whatever the mode, every worker runs under herd's shim, which kills the
//! worker's whole process tree on stop and when the host dies; the sandbox
//! adds limits and isolation on top.

pub(crate) mod cgroup;
pub(crate) mod layout;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use self::cgroup::WorkerCgroup;
use self::layout::{Controller, Layout};
use crate::error::{Error, ErrorKind};

/// How strictly the sandbox is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SandboxMode {
    /// No cgroups, no namespaces.
    Off,
    /// Use what the host can give; warn once about what it cannot.
    #[default]
    BestEffort,
    /// Fail the spawn with an error naming what is missing.
    Required,
}

impl SandboxMode {
    /// `off`, `best_effort` or `required`.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::Off => "off",
            SandboxMode::BestEffort => "best_effort",
            SandboxMode::Required => "required",
        }
    }
}

impl FromStr for SandboxMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "off" | "none" | "false" => Ok(SandboxMode::Off),
            "best_effort" | "besteffort" => Ok(SandboxMode::BestEffort),
            "required" | "strict" => Ok(SandboxMode::Required),
            _ => Err(Error::invalid_config(format!(
                "sandbox mode {s:?} is not one of off, best_effort, required"
            ))),
        }
    }
}

impl std::fmt::Display for SandboxMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-worker resource limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Memory in bytes, swap excluded (the group may not swap).
    pub memory: Option<u64>,
    /// CPU in cores, fractional (`0.5` = half a core).
    pub cpu: Option<f64>,
    /// Processes and threads; `None` = unlimited. Default 100.
    pub pids: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory: None, cpu: None, pids: Some(100) }
    }
}

/// The sandbox settings of a [`crate::ProcessFactory`].
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxConfig {
    pub mode: SandboxMode,
    pub limits: Limits,
    /// New PID, mount (with a private `/proc`) and IPC namespaces. Default
    /// true. The network is shared: workers listen on the host's loopback.
    pub namespaces: bool,
    /// The cgroup path herd nests its cgroups under in every hierarchy
    /// (e.g. `/herd`); default: the host process's own cgroup.
    pub cgroup_root: Option<PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            mode: SandboxMode::BestEffort,
            limits: Limits::default(),
            namespaces: true,
            cgroup_root: None,
        }
    }
}

impl SandboxConfig {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let l = &self.limits;
        if let Some(m) = l.memory
            && m < 1 << 20
        {
            return Err(Error::invalid_config(format!("memory_limit ({m} bytes) must be at least 1 MiB")));
        }
        if let Some(c) = l.cpu
            && !(c.is_finite() && c > 0.0 && c <= 1024.0)
        {
            return Err(Error::invalid_config(format!("cpu_limit ({c}) must be between 0 and 1024 cores")));
        }
        if l.pids == Some(0) {
            return Err(Error::invalid_config("pids_limit must be at least 1 (or unlimited)"));
        }
        if let Some(root) = &self.cgroup_root
            && !root.is_absolute()
        {
            return Err(Error::invalid_config(format!(
                "cgroup_root {} must be an absolute cgroup path like /herd",
                root.display()
            )));
        }
        Ok(())
    }

    fn wanted(&self) -> Vec<Controller> {
        let mut c = Vec::new();
        if self.limits.memory.is_some() {
            c.push(Controller::Memory);
        }
        if self.limits.pids.is_some() {
            c.push(Controller::Pids);
        }
        if self.limits.cpu.is_some() {
            c.push(Controller::Cpu);
        }
        c
    }
}

/// What a spawn gets from the sandbox.
pub(crate) struct Prepared {
    pub cgroup: Option<WorkerCgroup>,
    pub namespaces: bool,
}

/// A factory's sandbox: its settings, the host layout (read once), and
/// the warn-once state.
#[derive(Debug)]
pub(crate) struct Sandbox {
    pub config: SandboxConfig,
    layout: OnceLock<Layout>,
    warned: AtomicBool,
    namespaces_failed: Mutex<Option<String>>,
}

impl Sandbox {
    pub(crate) fn new(config: SandboxConfig) -> Arc<Sandbox> {
        Arc::new(Sandbox {
            config,
            layout: OnceLock::new(),
            warned: AtomicBool::new(false),
            namespaces_failed: Mutex::new(None),
        })
    }

    fn layout(&self) -> &Layout {
        self.layout.get_or_init(|| layout::detect(&self.config.wanted(), self.config.cgroup_root.as_deref()))
    }

    /// Checks, before the pool starts, that the sandbox can be had (in
    /// `required` mode), and removes leftovers of dead herd processes.
    pub(crate) fn pool_starting(&self) -> Result<(), Error> {
        if self.config.mode == SandboxMode::Off {
            return Ok(());
        }
        let layout = self.layout();
        let cleaned = cgroup::clean_stale(layout);
        if cleaned > 0 {
            tracing::info!(cleaned, "removed cgroups left by herd processes that died");
        }
        let mut missing = self.missing_cgroups();
        if self.config.namespaces
            && let Err(e) = namespaces_permitted()
        {
            missing.push(format!("namespaces: {e}"));
        }
        self.judge(missing)
    }

    /// What of the wanted cgroup controllers this host cannot give.
    fn missing_cgroups(&self) -> Vec<String> {
        let layout = self.layout();
        let mut missing: Vec<String> = layout.missing.iter().map(|(_, why)| why.clone()).collect();
        let mut bases: Vec<_> = layout.homes.iter().map(|h| h.base.clone()).collect();
        bases.dedup();
        for base in bases {
            if let Err(e) = cgroup::can_create_in(&base) {
                missing.push(e);
            }
        }
        missing
    }

    /// Required: an error naming what is missing. Best effort: warn once.
    fn judge(&self, missing: Vec<String>) -> Result<(), Error> {
        if missing.is_empty() {
            return Ok(());
        }
        let what = missing.join("; ");
        match self.config.mode {
            SandboxMode::Required => Err(Error::new(
                ErrorKind::Sandbox,
                format!("sandbox is required but this host cannot provide it: {what}{}", privilege_hint()),
            )),
            _ => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "sandbox (best_effort): workers run without what this host cannot give: {what}{}. \
                         Set sandbox to \"off\" to silence this, or \"required\" to refuse",
                        privilege_hint()
                    );
                }
                Ok(())
            }
        }
    }

    /// Creates the worker's cgroups and decides on namespaces.
    /// Blocking (cgroupfs writes): call from a blocking thread.
    pub(crate) fn prepare(&self, pool_name: &str, worker: &str) -> Result<Prepared, Error> {
        if self.config.mode == SandboxMode::Off {
            return Ok(Prepared { cgroup: None, namespaces: false });
        }
        let layout = self.layout();
        let mut missing: Vec<String> = layout.missing.iter().map(|(_, why)| why.clone()).collect();
        let cgroup = if layout.homes.is_empty() && layout.v2_base.is_none() {
            None
        } else {
            match WorkerCgroup::create(layout, pool_name, worker, &self.config.limits) {
                Ok(cg) => Some(cg),
                Err(e) => {
                    missing.push(e);
                    None
                }
            }
        };
        let namespaces = self.config.namespaces && self.namespaces_failed.lock().is_none();
        if let Err(e) = self.judge(missing) {
            if let Some(cg) = &cgroup {
                let _ = cg.destroy();
            }
            return Err(e);
        }
        Ok(Prepared { cgroup, namespaces })
    }

    /// Called when cloning with namespaces failed: in `required` mode the
    /// spawn fails; otherwise herd stops asking for namespaces and warns.
    pub(crate) fn namespaces_refused(&self, error: &std::io::Error) -> Result<(), Error> {
        let what = format!("namespaces (clone with CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWIPC: {error})");
        *self.namespaces_failed.lock() = Some(what.clone());
        self.judge(vec![what])
    }
}

fn privilege_hint() -> &'static str {
    // SAFETY: geteuid has no failure mode.
    if unsafe { libc::geteuid() } != 0 { " (herd is not running as root)" } else { "" }
}

/// Whether this process may create PID, mount and IPC namespaces (tried
/// once, with a child that exits at once).
pub(crate) fn namespaces_permitted() -> Result<(), String> {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    RESULT
        .get_or_init(|| {
            let flags = (libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::SIGCHLD)
                as libc::c_ulong;
            // SAFETY: the child only calls _exit.
            let pid = unsafe { crate::process::clone_process(flags, std::ptr::null_mut()) };
            if pid == 0 {
                unsafe { libc::_exit(0) };
            }
            if pid < 0 {
                return Err(format!(
                    "cannot create PID/mount/IPC namespaces: {}",
                    std::io::Error::last_os_error()
                ));
            }
            let mut status = 0;
            // SAFETY: reaping the child we just made.
            unsafe { libc::waitpid(pid as i32, &mut status, 0) };
            Ok(())
        })
        .clone()
}
