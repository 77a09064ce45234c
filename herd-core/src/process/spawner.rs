//! The spawner thread: the one long-lived thread that forks every worker.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked a child exits, not
//! when the process does. A child forked from a short-lived thread (a tokio
//! blocking thread, a Python thread) would be killed the moment that thread
//! ends. So all shims are cloned from this thread, which lives as long as
//! the process. It also keeps every signal blocked, so a freshly cloned
//! child never runs a host signal handler before it takes over its own
//! signal state.
//!
//! # Fork safety of the host
//! The thread is tied to the PID that started it: a process created by
//! `fork()` from the host has no such thread (threads do not survive fork),
//! so it gets a new one of its own on first use.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, mpsc};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::shim::{self, ChildContext};

/// What to start: everything resolved and converted in the caller's thread.
pub(crate) struct SpawnPlan {
    /// Absolute path of the program.
    pub program: CString,
    /// `argv`, including `argv[0]`.
    pub argv: Vec<CString>,
    /// `KEY=value` entries; herd adds `HERD_WORKER_PID`.
    pub env: Vec<CString>,
    pub cwd: Option<CString>,
    /// Open `cgroup.procs` files the shim writes itself into.
    pub cgroup_procs: Vec<OwnedFd>,
}

/// A started shim: its PID and the parent's ends of its descriptors.
pub(crate) struct Spawned {
    pub shim_pid: i32,
    pub pidfd: OwnedFd,
    pub report: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// One spawn request: the plan (shared, so the caller may go away at any
/// time), whether to ask for namespaces, and where to reply.
struct Job {
    plan: Arc<SpawnPlan>,
    namespaces: bool,
    reply: oneshot::Sender<io::Result<Spawned>>,
}

struct Spawner {
    pid: u32,
    jobs: mpsc::Sender<Job>,
}

static SPAWNER: Mutex<Option<Spawner>> = Mutex::new(None);

/// The real-time signal herd sends a shim to kill its worker's whole tree
/// at once; also the shim's parent-death signal outside a PID namespace.
pub(crate) fn kill_tree_signal() -> i32 {
    libc::SIGRTMIN() + 3
}

/// Starts a shim (and through it the worker) from the spawner thread, with
/// or without new namespaces (a caller retries without them if refused).
///
/// # Race window
/// The caller may drop this future at any point (its pool shut down). The
/// plan is shared, so the spawner never reads freed memory; a shim started
/// for a caller that is gone must still be killed and reaped. The oneshot
/// channel decides who does it: if the reply was sent before the receiver
/// closed, [`PendingReply`]'s drop finds it and abandons the shim; if not,
/// the spawner's send fails and the spawner abandons it. A request whose
/// caller left before the spawner took it is skipped without forking.
pub(crate) async fn spawn_with(plan: &Arc<SpawnPlan>, namespaces: bool) -> io::Result<Spawned> {
    let (reply, rx) = oneshot::channel();
    submit(Job { plan: plan.clone(), namespaces, reply })?;
    let mut pending = PendingReply(rx);
    match (&mut pending.0).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::other("the herd spawner thread stopped")),
    }
}

/// The waiting end of a spawn request; see [`spawn_with`].
struct PendingReply(oneshot::Receiver<io::Result<Spawned>>);

impl Drop for PendingReply {
    fn drop(&mut self) {
        self.0.close();
        if let Ok(Ok(orphan)) = self.0.try_recv() {
            abandon(orphan);
        }
    }
}

/// Kills and reaps a shim nobody will watch.
fn abandon(orphan: Spawned) {
    super::handle::send_signal(orphan.pidfd.as_raw_fd(), kill_tree_signal());
    super::handle::reap_in_background(orphan.pidfd);
}

fn submit(job: Job) -> io::Result<()> {
    let mut guard = SPAWNER.lock();
    let pid = std::process::id();
    if guard.as_ref().is_none_or(|s| s.pid != pid) {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("herd-spawner".into())
            .spawn(move || spawner_main(rx))
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start the herd spawner thread: {e}")))?;
        *guard = Some(Spawner { pid, jobs: tx });
    }
    let spawner = guard.as_ref().expect("the spawner was installed just above");
    spawner.jobs.send(job).map_err(|_| io::Error::other("the herd spawner thread stopped"))
}

fn spawner_main(jobs: mpsc::Receiver<Job>) {
    // SAFETY: plain libc calls on this thread's own signal mask.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
    }
    let parent_pid = unsafe { libc::getpid() };
    // SAFETY: pidfd_open on our own PID; failure leaves -1, checked later.
    let parent_pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, parent_pid, 0) } as RawFd;
    if parent_pidfd >= 0 {
        unsafe { libc::fcntl(parent_pidfd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    let kill_tree = kill_tree_signal();
    while let Ok(Job { plan, namespaces, reply }) = jobs.recv() {
        if reply.is_closed() {
            continue; // the caller left before its turn: no fork needed
        }
        let result = spawn_now(&plan, namespaces, parent_pid, parent_pidfd, kill_tree);
        drop(plan);
        if let Err(Ok(orphan)) = reply.send(result) {
            // The caller gave up while this shim was being started.
            abandon(orphan);
        }
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

const PID_VAR: &[u8] = b"HERD_WORKER_PID=";

/// Stack for the worker between clone and exec (a few small frames).
const WORKER_STACK: usize = 64 * 1024;

fn spawn_now(
    plan: &SpawnPlan,
    namespaces: bool,
    parent_pid: libc::pid_t,
    parent_pidfd: RawFd,
    kill_tree_signal: i32,
) -> io::Result<Spawned> {
    let devnull = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let (report_r, report_w) = pipe()?;

    // Everything the child touches is allocated here, before the clone.
    let mut pid_entry = PID_VAR.to_vec();
    let slot_offset = pid_entry.len();
    pid_entry.extend_from_slice(&[0u8; 24]);
    let argv: Vec<*const libc::c_char> =
        plan.argv.iter().map(|a| a.as_ptr()).chain([std::ptr::null()]).collect();
    let mut envp: Vec<*const libc::c_char> =
        plan.env.iter().filter(|e| !e.as_bytes().starts_with(PID_VAR)).map(|e| e.as_ptr()).collect();
    envp.push(pid_entry.as_ptr().cast());
    envp.push(std::ptr::null());
    let cgroup_fds: Vec<RawFd> = plan.cgroup_procs.iter().map(|f| f.as_raw_fd()).collect();
    let mut worker_stack = vec![0u8; WORKER_STACK];

    let ctx = ChildContext {
        program: plan.program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        // SAFETY: the offset is within pid_entry, which outlives the clone.
        pid_slot: unsafe { pid_entry.as_mut_ptr().add(slot_offset) },
        pid_slot_len: pid_entry.len() - slot_offset,
        cwd: plan.cwd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
        namespaces,
        cgroup_fds: cgroup_fds.as_ptr(),
        cgroup_fd_count: cgroup_fds.len(),
        parent_pid,
        parent_pidfd,
        kill_tree_signal,
        devnull: devnull.as_raw_fd(),
        stdout_w: stdout_w.as_raw_fd(),
        stderr_w: stderr_w.as_raw_fd(),
        report_w: report_w.as_raw_fd(),
        worker_stack: worker_stack.as_mut_ptr(),
        worker_stack_len: worker_stack.len(),
    };

    let mut flags = (libc::SIGCHLD | libc::CLONE_PIDFD) as libc::c_ulong;
    if namespaces {
        flags |= (libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWIPC) as libc::c_ulong;
    }
    let mut pidfd: libc::c_int = -1;
    // SAFETY: the child branch runs only async-signal-safe code (see
    // shim.rs) and never returns.
    let pid = unsafe { shim::clone_process(flags, &mut pidfd) };
    if pid == 0 {
        unsafe { shim::run_shim(&ctx) }
    }
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: CLONE_PIDFD stored a new fd we now own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    drop((stdout_w, stderr_w, report_w, devnull));
    for fd in [&stdout_r, &stderr_r, &report_r, &pidfd] {
        set_nonblocking(fd)?;
    }
    Ok(Spawned { shim_pid: pid as i32, pidfd, report: report_r, stdout: stdout_r, stderr: stderr_r })
}
