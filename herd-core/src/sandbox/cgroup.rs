//! One worker's cgroups: created with limits before the worker starts,
//! joined by its shim before exec, emptied and removed when it stops.
//!
//! Limits are written with the `cgroups-rs` controllers (memory, pids,
//! cpu; v1 and v2). Three things `cgroups-rs` cannot do for herd, done
//! with the kernel files directly:
//!
//! * **joining before exec**: the shim writes `0` into pre-opened
//!   `cgroup.procs` descriptors between clone and exec, where only raw
//!   system calls are allowed;
//! * **killing everything on v1**: `Cgroup::kill` is v2-only
//!   (`cgroup.kill`); on v1 herd SIGKILLs every PID listed in
//!   `cgroup.procs` until the list stays empty;
//! * **v2 delegation**: enabling controllers in `cgroup.subtree_control`
//!   must report failures (`cgroups-rs` ignores them), and a non-root
//!   cgroup with processes cannot enable any — see [`enable_subtree`].
//!
//! Directory names: `herd-<host pid>-<pool>/w<N>` under the base of each
//! hierarchy, so pools of one host never collide, and a pool directory
//! whose PID is gone is a leftover of a host that died (cleaned at pool
//! start by [`clean_stale`]).

use std::fs::OpenOptions;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;

use super::Limits;
use super::layout::{self, Controller, Layout, Version};

/// One cgroup directory of a worker (one per hierarchy used).
#[derive(Debug, Clone)]
struct Dir {
    path: PathBuf,
    mount: PathBuf,
    version: Version,
    controllers: Vec<Controller>,
}

/// A worker's cgroups, one directory per hierarchy.
#[derive(Debug)]
pub(crate) struct WorkerCgroup {
    dirs: Vec<Dir>,
}

fn pool_dir_name(pool_name: &str) -> String {
    format!("herd-{pool_name}")
}

impl WorkerCgroup {
    /// Creates the worker's cgroups with `limits`. On error nothing is
    /// left behind.
    pub(crate) fn create(
        layout: &Layout,
        pool_name: &str,
        worker: &str,
        limits: &Limits,
    ) -> Result<Self, String> {
        let mut dirs: Vec<Dir> = Vec::new();
        for home in &layout.homes {
            let path = home.base.join(pool_dir_name(pool_name)).join(worker);
            match dirs.iter_mut().find(|d| d.path == path) {
                Some(dir) => dir.controllers.push(home.controller),
                None => dirs.push(Dir {
                    path,
                    mount: home.mount.clone(),
                    version: home.version,
                    controllers: vec![home.controller],
                }),
            }
        }
        // On a hybrid host the controllers live on v1, but a cgroup2 is
        // still there: put the worker in it too, with no controllers, for
        // membership and `cgroup.kill` (one write kills the whole tree).
        if let Some(v2_base) = &layout.v2_base
            && !dirs.iter().any(|d| d.version == Version::V2)
            && layout::is_cgroup_dir(v2_base, Version::V2)
        {
            dirs.push(Dir {
                path: v2_base.join(pool_dir_name(pool_name)).join(worker),
                mount: v2_base.clone(),
                version: Version::V2,
                controllers: Vec::new(),
            });
        }
        let mut cgroup = WorkerCgroup { dirs: Vec::new() };
        for dir in dirs {
            let tracking_only = dir.controllers.is_empty();
            cgroup.dirs.push(dir);
            if let Err(e) = cgroup.create_dir(cgroup.dirs.len() - 1, limits) {
                if tracking_only {
                    // Membership tracking is a bonus, not a requirement.
                    tracing::debug!("no v2 tracking cgroup: {e}");
                    if let Some(dir) = cgroup.dirs.pop() {
                        let _ = std::fs::remove_dir(&dir.path);
                    }
                    continue;
                }
                cgroup.remove();
                return Err(e);
            }
        }
        Ok(cgroup)
    }

    fn create_dir(&self, index: usize, limits: &Limits) -> Result<(), String> {
        let dir = &self.dirs[index];
        let pool_dir = dir.path.parent().unwrap_or(&dir.path);
        if dir.version == Version::V2 && !dir.controllers.is_empty() {
            let base = pool_dir.parent().unwrap_or(pool_dir);
            let names: Vec<&str> = dir.controllers.iter().map(|c| c.name()).collect();
            enable_subtree(base, &names)?;
            mkdir(pool_dir)?;
            enable_subtree(pool_dir, &names)?;
        } else {
            mkdir(pool_dir)?;
        }
        mkdir(&dir.path)?;
        for &controller in &dir.controllers {
            apply(dir, controller, limits).map_err(|e| {
                format!("cannot set the {} limit in {}: {e}", controller.name(), dir.path.display())
            })?;
        }
        Ok(())
    }

    /// `cgroup.procs` of every directory, opened for the shim to write `0`.
    pub(crate) fn procs_files(&self) -> io::Result<Vec<OwnedFd>> {
        self.dirs
            .iter()
            .map(|d| {
                OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(d.path.join("cgroup.procs"))
                    .map(OwnedFd::from)
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("{}: {e}", d.path.join("cgroup.procs").display()))
                    })
            })
            .collect()
    }

    /// Kills whatever is left in the cgroups, waits (bounded) until they
    /// are empty, and removes them. Blocking: run off the async threads.
    pub(crate) fn destroy(&self) -> Result<(), String> {
        let emptied = kill_until_empty(&self.dirs.iter().map(|d| d.path.clone()).collect::<Vec<_>>());
        self.remove();
        emptied
    }

    fn remove(&self) {
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(&dir.path);
            // The pool directory goes with its last worker; racing with a
            // sibling being created is harmless (rmdir of a non-empty
            // cgroup fails, mkdir of the next one recreates it).
            if let Some(pool_dir) = dir.path.parent() {
                let _ = std::fs::remove_dir(pool_dir);
            }
        }
    }
}

fn mkdir(path: &Path) -> Result<(), String> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create cgroup {}: {e}", path.display())),
    }
}

fn apply(dir: &Dir, controller: Controller, limits: &Limits) -> Result<(), String> {
    let v2 = dir.version == Version::V2;
    let err = |e: cgroups_rs::fs::error::Error| {
        let mut msg = e.to_string();
        if let Some(cause) = std::error::Error::source(&e) {
            msg.push_str(&format!(": {cause}"));
        }
        msg
    };
    match controller {
        Controller::Memory => {
            let Some(bytes) = limits.memory else { return Ok(()) };
            let mem = MemController::new(dir.path.clone(), dir.mount.clone(), v2);
            let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
            mem.set_limit(bytes).map_err(err)?;
            // No swap: the limit is the limit. (v1 needs swap accounting
            // for memsw; without it there is no file and nothing to do.)
            let swap_file = if v2 { "memory.swap.max" } else { "memory.memsw.limit_in_bytes" };
            if dir.path.join(swap_file).exists() {
                mem.set_memswap_limit(if v2 { 0 } else { bytes }).map_err(err)?;
            }
            if v2 {
                // An OOM kill takes the whole worker tree, not one process.
                let _ = std::fs::write(dir.path.join("memory.oom.group"), "1");
            }
        }
        Controller::Pids => {
            let pids = PidController::new(dir.path.clone(), dir.mount.clone(), v2);
            let max = match limits.pids {
                Some(n) => cgroups_rs::fs::MaxValue::Value(i64::try_from(n).unwrap_or(i64::MAX)),
                None => cgroups_rs::fs::MaxValue::Max,
            };
            pids.set_pid_max(max).map_err(err)?;
        }
        Controller::Cpu => {
            let Some(cores) = limits.cpu else { return Ok(()) };
            let cpu = CpuController::new(dir.path.clone(), dir.mount.clone(), v2);
            let period: u64 = 100_000;
            let quota = ((cores * period as f64).round() as i64).max(1_000);
            cpu.set_cfs_quota_and_period(Some(quota), Some(period)).map_err(err)?;
        }
    }
    Ok(())
}

/// Enables `controllers` for the children of `dir` (cgroup v2).
///
/// A v2 cgroup other than the root cannot both contain processes and
/// enable controllers for its children. When `dir` is herd's own cgroup
/// and herd is its only process, herd moves itself into a leaf
/// `dir/herd-host` first — what systemd calls delegation. If other
/// processes share the cgroup, that is not herd's to change: the error
/// says to run herd in a cgroup of its own or to set the cgroup root.
pub(crate) fn enable_subtree(dir: &Path, controllers: &[&str]) -> Result<(), String> {
    let file = dir.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&file).unwrap_or_default();
    let wanted: Vec<&str> =
        controllers.iter().copied().filter(|c| !enabled.split_whitespace().any(|e| e == *c)).collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let line = wanted.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ");
    let write = || std::fs::write(&file, &line);
    match write() {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            let procs = read_pids(dir);
            let me = std::process::id();
            if procs.iter().all(|p| *p == me) {
                let leaf = dir.join("herd-host");
                mkdir(&leaf)?;
                std::fs::write(leaf.join("cgroup.procs"), me.to_string())
                    .map_err(|e| format!("cannot move herd into {}: {e}", leaf.display()))?;
                tracing::info!(
                    "moved this process into {} so herd can delegate cgroup controllers",
                    leaf.display()
                );
                write().map_err(|e| format!("cannot enable {line} in {}: {e}", file.display()))
            } else {
                Err(format!(
                    "cannot enable {line} in {}: the cgroup has other processes ({} of them); run herd in a cgroup \
                     of its own or set the sandbox cgroup root to a delegated cgroup",
                    file.display(),
                    procs.len()
                ))
            }
        }
        Err(e) => Err(format!("cannot enable {line} in {}: {e}", file.display())),
    }
}

fn read_pids(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// SIGKILLs every process in `dirs` (v2: `cgroup.kill` where the kernel
/// has it) until all are empty, up to a few seconds.
fn kill_until_empty(dirs: &[PathBuf]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut left = 0;
        for dir in dirs {
            let pids = read_pids(dir);
            if pids.is_empty() {
                continue;
            }
            left += pids.len();
            let kill_file = dir.join("cgroup.kill");
            if !(kill_file.exists() && std::fs::write(&kill_file, "1").is_ok()) {
                for pid in pids {
                    // SAFETY: kill(2); a PID that vanished meanwhile is harmless.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
            }
        }
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{left} processes still in {} after SIGKILL", dirs[0].display()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Removes cgroups left by herd processes that died (`herd-<pid>-<n>`
/// whose PID is gone), killing anything still inside. Returns how many
/// pool directories were cleaned.
pub(crate) fn clean_stale(layout: &Layout) -> usize {
    let mut bases: Vec<PathBuf> = layout.homes.iter().map(|h| h.base.clone()).collect();
    bases.extend(layout.v2_base.clone());
    bases.sort();
    bases.dedup();
    let mut cleaned = 0;
    for base in bases {
        let Ok(entries) = std::fs::read_dir(&base) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(owner) = stale_owner(&name) else { continue };
            if owner == std::process::id() || Path::new(&format!("/proc/{owner}")).exists() {
                continue;
            }
            let pool_dir = entry.path();
            let workers: Vec<PathBuf> = std::fs::read_dir(&pool_dir)
                .map(|it| it.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()).collect())
                .unwrap_or_default();
            let mut all = workers.clone();
            all.push(pool_dir.clone());
            if let Err(e) = kill_until_empty(&all) {
                tracing::warn!("cannot empty leftover cgroup {}: {e}", pool_dir.display());
            }
            for w in &workers {
                let _ = std::fs::remove_dir(w);
            }
            match std::fs::remove_dir(&pool_dir) {
                Ok(()) => {
                    cleaned += 1;
                    tracing::info!(
                        "removed leftover cgroup {} of dead herd process {owner}",
                        pool_dir.display()
                    );
                }
                Err(e) => tracing::warn!("cannot remove leftover cgroup {}: {e}", pool_dir.display()),
            }
        }
    }
    cleaned
}

/// The host PID in a pool directory name `herd-<pid>-<n>`.
fn stale_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("herd-")?;
    let (pid, seq) = rest.split_once('-')?;
    seq.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Whether `path` can be created and removed here (a cheap privilege check).
pub(crate) fn can_create_in(base: &Path) -> Result<(), String> {
    let probe = base.join(format!("herd-probe-{}", std::process::id()));
    match std::fs::create_dir(&probe) {
        Ok(()) => {
            let _ = std::fs::remove_dir(&probe);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create cgroups in {}: {e}", base.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_names() {
        assert_eq!(stale_owner("herd-1234-1"), Some(1234));
        assert_eq!(stale_owner("herd-1234-x"), None);
        assert_eq!(stale_owner("herd-host"), None);
        assert_eq!(stale_owner("other-1-1"), None);
    }
}
