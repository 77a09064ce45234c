//! The code that runs in the forked child: herd's *shim* and, one fork
//! further, the worker up to its `execve`.
//!
//! Every worker runs under a shim, a tiny init process that is a copy of the
//! host forked by the spawner thread. The shim
//!
//! * joins the worker's cgroups before anything else, so every descendant is
//!   counted and limited;
//! * is the worker's reaper (`PR_SET_CHILD_SUBREAPER`, or PID 1 of a new PID
//!   namespace), so no zombie is ever left and orphans cannot escape;
//! * forwards the signals herd sends (`SIGTERM`...) to the worker's process
//!   group;
//! * kills the whole tree — every descendant, whatever its process group or
//!   session — when the worker exits, when herd asks for it with
//!   [`KILL_TREE`](super::spawner::kill_tree_signal), or when the host
//!   process dies (`PR_SET_PDEATHSIG`);
//! * reports to herd over a pipe: the worker's host PID, setup failures with
//!   their `errno`, and the worker's wait status.
//!
//! # Async-signal safety
//!
//! The child is a copy of a multi-threaded process: any lock another thread
//! held at the fork stays held forever. Everything here therefore uses raw
//! system calls only — no allocation, no locks, no `std` I/O, no `fork()`
//! from glibc (its atfork handlers take malloc locks). All memory the child
//! needs was prepared by the parent before the clone; the child only writes
//! into its own copy-on-write copy of it.

use libc::{c_char, c_int, pid_t};

/// A message the child sends to herd over the report pipe: 8 bytes, written
/// atomically (less than `PIPE_BUF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// The worker's PID as the host sees it.
    WorkerPid(i32),
    /// `execve` failed with this errno.
    ExecFailed(i32),
    /// `chdir` to the working directory failed with this errno.
    ChdirFailed(i32),
    /// Joining a cgroup failed with this errno.
    CgroupJoinFailed(i32),
    /// Namespace setup (private mounts, /proc) failed with this errno.
    NamespaceFailed(i32),
    /// Forking the worker from the shim failed with this errno.
    ForkFailed(i32),
    /// The worker exited with this raw wait status.
    WorkerExited(i32),
}

impl Report {
    const WORKER_PID: u32 = 1;
    const EXEC_FAILED: u32 = 2;
    const CHDIR_FAILED: u32 = 3;
    const CGROUP_JOIN_FAILED: u32 = 4;
    const NAMESPACE_FAILED: u32 = 5;
    const FORK_FAILED: u32 = 6;
    const WORKER_EXITED: u32 = 7;

    pub(crate) const SIZE: usize = 8;

    fn encode(self) -> [u8; 8] {
        let (tag, value) = match self {
            Report::WorkerPid(v) => (Self::WORKER_PID, v),
            Report::ExecFailed(v) => (Self::EXEC_FAILED, v),
            Report::ChdirFailed(v) => (Self::CHDIR_FAILED, v),
            Report::CgroupJoinFailed(v) => (Self::CGROUP_JOIN_FAILED, v),
            Report::NamespaceFailed(v) => (Self::NAMESPACE_FAILED, v),
            Report::ForkFailed(v) => (Self::FORK_FAILED, v),
            Report::WorkerExited(v) => (Self::WORKER_EXITED, v),
        };
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&tag.to_le_bytes());
        out[4..].copy_from_slice(&value.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: [u8; 8]) -> Option<Report> {
        let tag = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let value = i32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        Some(match tag {
            Self::WORKER_PID => Report::WorkerPid(value),
            Self::EXEC_FAILED => Report::ExecFailed(value),
            Self::CHDIR_FAILED => Report::ChdirFailed(value),
            Self::CGROUP_JOIN_FAILED => Report::CgroupJoinFailed(value),
            Self::NAMESPACE_FAILED => Report::NamespaceFailed(value),
            Self::FORK_FAILED => Report::ForkFailed(value),
            Self::WORKER_EXITED => Report::WorkerExited(value),
            _ => return None,
        })
    }
}

/// Everything the child needs, as raw pointers into memory the parent
/// prepared (and keeps alive until the clone has returned).
pub(crate) struct ChildContext {
    pub program: *const c_char,
    pub argv: *const *const c_char,
    pub envp: *const *const c_char,
    /// Where the worker writes its host PID in decimal, NUL-terminated
    /// (the value part of `HERD_WORKER_PID=`).
    pub pid_slot: *mut u8,
    pub pid_slot_len: usize,
    pub cwd: *const c_char,
    pub namespaces: bool,
    pub cgroup_fds: *const c_int,
    pub cgroup_fd_count: usize,
    pub parent_pid: pid_t,
    pub parent_pidfd: c_int,
    pub kill_tree_signal: c_int,
    pub devnull: c_int,
    pub stdout_w: c_int,
    pub stderr_w: c_int,
    pub report_w: c_int,
    /// Stack for the worker between its `clone(CLONE_VM | CLONE_VFORK)`
    /// and its `execve` (it shares the shim's memory until then).
    pub worker_stack: *mut u8,
    pub worker_stack_len: usize,
}

/// Signals the shim passes on to the worker's process group.
const FORWARDED: [c_int; 7] =
    [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGCONT];

/// The report fd once the shim has arranged its descriptors.
const REPORT_FD: c_int = 3;

/// Exit code of a shim that gave up before the worker ran.
pub(crate) const SHIM_SETUP_FAILED: c_int = 120;

fn errno() -> c_int {
    // SAFETY: reading the thread's errno location is always valid.
    unsafe { *libc::__errno_location() }
}

unsafe fn report(fd: c_int, message: Report) {
    let bytes = message.encode();
    // SAFETY: writing 8 bytes from a stack buffer to a pipe fd.
    unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
}

extern "C" fn ignore_signal(_: c_int) {}

/// Runs in the child right after the clone; never returns.
///
/// # Safety
/// Must only be called in a freshly cloned child whose parent prepared `ctx`.
pub(crate) unsafe fn run_shim(ctx: &ChildContext) -> ! {
    unsafe {
        // Die with the host. For the PID-namespace init SIGKILL is enough:
        // the kernel then kills the whole namespace. Outside a namespace
        // the shim must kill the tree itself, so it asks for a signal it
        // handles.
        let pdeath = if ctx.namespaces { libc::SIGKILL } else { ctx.kill_tree_signal };
        libc::prctl(libc::PR_SET_PDEATHSIG, pdeath as libc::c_ulong, 0, 0, 0);
        // # Race window
        // The host may have died between the clone and the prctl above;
        // then no death signal will ever come. Outside a namespace the
        // parent PID tells; inside one getppid() is 0, so ask the host's
        // pidfd, which turns readable once the host has exited.
        if ctx.namespaces {
            if ctx.parent_pidfd >= 0 {
                let mut pfd = libc::pollfd { fd: ctx.parent_pidfd, events: libc::POLLIN, revents: 0 };
                if libc::poll(&mut pfd, 1, 0) > 0 {
                    libc::_exit(SHIM_SETUP_FAILED);
                }
            }
        } else if libc::getppid() != ctx.parent_pid {
            libc::_exit(SHIM_SETUP_FAILED);
        }
        libc::setpgid(0, 0);
        // Show up as what it is in ps/top (and stay out of `pkill <host>`).
        libc::prctl(libc::PR_SET_NAME, c"herd-shim".as_ptr() as libc::c_ulong, 0, 0, 0);

        // Join the cgroups before the worker exists: every descendant is
        // then accounted from its first instruction.
        for i in 0..ctx.cgroup_fd_count {
            let fd = *ctx.cgroup_fds.add(i);
            if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                report(ctx.report_w, Report::CgroupJoinFailed(errno()));
                libc::_exit(SHIM_SETUP_FAILED);
            }
        }

        if ctx.namespaces {
            // Stop mount events from propagating back to the host before
            // mounting the namespace's own /proc.
            let root = b"/\0";
            if libc::mount(
                std::ptr::null(),
                root.as_ptr().cast(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                report(ctx.report_w, Report::NamespaceFailed(errno()));
                libc::_exit(SHIM_SETUP_FAILED);
            }
        }

        arrange_fds(ctx);

        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        // Signals stay blocked (inherited from the spawner thread) and are
        // taken with sigwaitinfo. A handler is installed anyway: a PID
        // namespace init never receives a signal whose disposition is the
        // default, and an inherited SIG_IGN would discard it.
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore_signal as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        for sig in FORWARDED.iter().copied().chain([libc::SIGCHLD, ctx.kill_tree_signal]) {
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }

        // The worker shares the shim's memory until it execs (like
        // posix_spawn): no page tables to copy, which on virtual machines
        // costs a few hundred microseconds per fork. The shim is suspended
        // meanwhile (CLONE_VFORK), so only the worker touches that memory.
        let stack_top = ctx.worker_stack.add(ctx.worker_stack_len & !15);
        let worker = libc::clone(
            worker_entry,
            stack_top.cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (ctx as *const ChildContext).cast_mut().cast(),
        );
        if worker < 0 {
            report(REPORT_FD, Report::ForkFailed(errno()));
            libc::_exit(SHIM_SETUP_FAILED);
        }
        supervise(ctx, worker as pid_t)
    }
}

/// Puts /dev/null, the two log pipes and the report pipe on fds 0-3 and
/// closes everything else the host had open: the shim lives long and must
/// not keep the host's sockets and files alive.
unsafe fn arrange_fds(ctx: &ChildContext) {
    unsafe {
        // Move the sources out of 0..=3 first so no dup2 clobbers another.
        let sources = [ctx.devnull, ctx.stdout_w, ctx.stderr_w, ctx.report_w];
        let mut high = [0 as c_int; 4];
        for (slot, fd) in high.iter_mut().zip(sources) {
            *slot = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 16);
        }
        for (target, fd) in high.iter().enumerate() {
            libc::dup2(*fd, target as c_int);
        }
        libc::fcntl(REPORT_FD, libc::F_SETFD, libc::FD_CLOEXEC);
        if libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) != 0 {
            for fd in 4..65536 {
                libc::close(fd);
            }
        }
    }
}

extern "C" fn worker_entry(ctx: *mut libc::c_void) -> c_int {
    // SAFETY: `ctx` is the shim's ChildContext, alive in the shared memory.
    unsafe { run_worker(&*(ctx as *const ChildContext)) }
}

/// The worker, from the shim's clone to `execve`.
///
/// It runs in the shim's memory (`CLONE_VM`) on its own stack. Signal
/// handlers, descriptors and the working directory are its own (no
/// `CLONE_SIGHAND`, `CLONE_FILES`, `CLONE_FS`), so changing them does not
/// touch the shim.
unsafe fn run_worker(ctx: &ChildContext) -> ! {
    unsafe {
        libc::setpgid(0, 0);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);

        // The PID as the host sees it: in a new PID namespace getpid() is
        // the namespace-local number, but /proc is still the host's here.
        let mut pid = libc::getpid();
        if ctx.namespaces {
            if let Some(host_pid) = read_proc_self_pid() {
                pid = host_pid;
            }
        }
        write_decimal(ctx.pid_slot, ctx.pid_slot_len, pid as u64);
        report(REPORT_FD, Report::WorkerPid(pid));

        if ctx.namespaces {
            let proc_ = b"proc\0";
            let target = b"/proc\0";
            if libc::mount(
                proc_.as_ptr().cast(),
                target.as_ptr().cast(),
                proc_.as_ptr().cast(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ) != 0
            {
                report(REPORT_FD, Report::NamespaceFailed(errno()));
                libc::_exit(127);
            }
        }

        // Give the program a clean signal state: exec keeps ignored
        // dispositions and the mask (the host may ignore SIGPIPE, as Rust
        // programs do).
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut action.sa_mask);
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::sigaction(sig, &action, std::ptr::null_mut());
            }
        }
        libc::sigaction(ctx.kill_tree_signal, &action, std::ptr::null_mut());
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());

        if !ctx.cwd.is_null() && libc::chdir(ctx.cwd) != 0 {
            report(REPORT_FD, Report::ChdirFailed(errno()));
            libc::_exit(127);
        }
        libc::execve(ctx.program, ctx.argv, ctx.envp);
        report(REPORT_FD, Report::ExecFailed(errno()));
        libc::_exit(127)
    }
}

/// The shim's life after the worker started: reap, forward, tear down.
unsafe fn supervise(ctx: &ChildContext, worker: pid_t) -> ! {
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        loop {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let sig = libc::sigwaitinfo(&all, &mut info);
            if sig < 0 {
                continue;
            }
            if sig == libc::SIGCHLD {
                let mut status = 0;
                let mut worker_status = None;
                loop {
                    let pid = libc::waitpid(-1, &mut status, libc::WNOHANG);
                    if pid <= 0 {
                        break;
                    }
                    if pid == worker {
                        worker_status = Some(status);
                    }
                }
                if let Some(status) = worker_status {
                    kill_tree(ctx, worker);
                    report(REPORT_FD, Report::WorkerExited(status));
                    libc::_exit(0);
                }
            } else if sig == ctx.kill_tree_signal {
                let status = kill_tree(ctx, worker).unwrap_or(libc::SIGKILL);
                report(REPORT_FD, Report::WorkerExited(status));
                libc::_exit(0);
            } else if FORWARDED.contains(&sig) {
                libc::kill(-worker, sig);
            }
        }
    }
}

/// SIGKILLs every descendant and reaps them all. Returns the worker's wait
/// status if the worker was reaped here.
unsafe fn kill_tree(ctx: &ChildContext, worker: pid_t) -> Option<c_int> {
    unsafe {
        let mut worker_status = None;
        if ctx.namespaces {
            // As init of its own PID namespace, -1 is exactly the tree.
            libc::kill(-1, libc::SIGKILL);
        } else {
            libc::kill(-worker, libc::SIGKILL);
        }
        loop {
            if !ctx.namespaces {
                // Orphans re-parent to the shim (a subreaper) whatever
                // their process group or session; kill each child we have.
                kill_children();
            }
            let mut status = 0;
            let pid = libc::waitpid(-1, &mut status, 0);
            if pid < 0 {
                if errno() == libc::EINTR {
                    continue;
                }
                break; // ECHILD: nothing left
            }
            if pid == worker {
                worker_status = Some(status);
            }
        }
        worker_status
    }
}

/// SIGKILLs every direct child listed in /proc/thread-self/children.
unsafe fn kill_children() {
    unsafe {
        let path = b"/proc/thread-self/children\0";
        let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return;
        }
        let mut buf = [0u8; 4096];
        let mut pid: i64 = 0;
        let mut in_number = false;
        loop {
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                break;
            }
            for &b in &buf[..n as usize] {
                if b.is_ascii_digit() {
                    pid = pid * 10 + i64::from(b - b'0');
                    in_number = true;
                } else if in_number {
                    libc::kill(pid as pid_t, libc::SIGKILL);
                    pid = 0;
                    in_number = false;
                }
            }
        }
        if in_number {
            libc::kill(pid as pid_t, libc::SIGKILL);
        }
        libc::close(fd);
    }
}

/// The PID `/proc/self` names, which is the PID in the namespace of the
/// /proc mount (the host's, before the worker mounts its own).
unsafe fn read_proc_self_pid() -> Option<pid_t> {
    unsafe {
        let path = b"/proc/self\0";
        let mut buf = [0u8; 32];
        let n = libc::readlink(path.as_ptr().cast(), buf.as_mut_ptr().cast(), buf.len());
        if n <= 0 {
            return None;
        }
        let mut pid: pid_t = 0;
        for &b in &buf[..n as usize] {
            if !b.is_ascii_digit() {
                return None;
            }
            pid = pid.checked_mul(10)?.checked_add(pid_t::from(b - b'0'))?;
        }
        Some(pid)
    }
}

/// Writes `value` in decimal plus a NUL into `slot` (of `len` bytes).
unsafe fn write_decimal(slot: *mut u8, len: usize, mut value: u64) {
    unsafe {
        let mut digits = [0u8; 20];
        let mut n = 0;
        loop {
            digits[n] = b'0' + (value % 10) as u8;
            n += 1;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        if n + 1 > len {
            return;
        }
        for i in 0..n {
            *slot.add(i) = digits[n - 1 - i];
        }
        *slot.add(n) = 0;
    }
}

/// `clone(2)` without a new stack: like `fork()`, but without glibc's atfork
/// handlers (which take locks another thread may hold) and with the flags
/// herd needs (`CLONE_PIDFD`, namespaces).
///
/// # Safety
/// The child must only run async-signal-safe code and end in `execve` or
/// `_exit`.
pub(crate) unsafe fn clone_process(flags: libc::c_ulong, pidfd: *mut c_int) -> libc::c_long {
    // Argument order (flags, stack, parent_tid, ...) is the same on x86_64
    // and aarch64 for the first three; the rest are unused (0).
    unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, pidfd, 0usize, 0usize) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        for r in [
            Report::WorkerPid(1234),
            Report::ExecFailed(libc::ENOENT),
            Report::WorkerExited(9),
            Report::CgroupJoinFailed(-1),
        ] {
            assert_eq!(Report::decode(r.encode()), Some(r));
        }
        assert_eq!(Report::decode([99, 0, 0, 0, 0, 0, 0, 0]), None);
    }

    #[test]
    fn decimal_slot() {
        let mut buf = [0xffu8; 8];
        unsafe { write_decimal(buf.as_mut_ptr(), buf.len(), 40321) };
        assert_eq!(&buf[..6], b"40321\0");
        let mut small = [0xffu8; 3];
        unsafe { write_decimal(small.as_mut_ptr(), small.len(), 40321) };
        assert_eq!(small, [0xff; 3], "too small a slot is left alone");
    }
}
