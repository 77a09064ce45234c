//! The parent's handle on one started worker: its shim, the report pipe,
//! and the operations herd needs (wait for exit, signal, stop, reap).
//!
//! Exit is detected from the process itself — the report pipe reaches EOF
//! when the shim exits and the pidfd turns readable — never by polling.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::unix::AsyncFd;

use super::exit::ExitStatus;
use super::shim::Report;
use super::spawner::{Spawned, kill_tree_signal};

/// Something the shim told herd about the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProcessEvent {
    /// The worker process exists; its PID as the host sees it.
    Started(i32),
    /// The worker could not be set up or executed.
    SetupFailed(SetupFailure),
    /// The worker (and its tree) is gone and the shim reaped.
    Exited(ExitStatus),
}

/// Which step of starting a worker failed, with its errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetupFailure {
    Exec(i32),
    Chdir(i32),
    CgroupJoin(i32),
    Namespace(i32),
    Fork(i32),
}

impl SetupFailure {
    pub(crate) fn describe(self, program: &str, cwd: Option<&str>) -> String {
        let os = |errno: i32| io::Error::from_raw_os_error(errno);
        match self {
            SetupFailure::Exec(e) => format!("cannot execute {program}: {}", os(e)),
            SetupFailure::Chdir(e) => {
                format!("cannot enter working directory {}: {}", cwd.unwrap_or("?"), os(e))
            }
            SetupFailure::CgroupJoin(e) => format!("cannot join the worker's cgroup: {}", os(e)),
            SetupFailure::Namespace(e) => {
                format!("cannot set up the worker's namespaces: {}", os(e))
            }
            SetupFailure::Fork(e) => format!("cannot fork the worker process: {}", os(e)),
        }
    }
}

/// One worker process tree under its shim.
pub(crate) struct ProcessHandle {
    shim_pid: i32,
    pidfd: AsyncFd<OwnedFd>,
    report: Option<AsyncFd<OwnedFd>>,
    worker_pid: Option<i32>,
    last_status: Option<ExitStatus>,
    exited: Option<ExitStatus>,
}

impl ProcessHandle {
    pub(crate) fn new(spawned: Spawned) -> io::Result<(Self, OwnedFd, OwnedFd)> {
        let Spawned { shim_pid, pidfd, report, stdout, stderr } = spawned;
        // If the runtime cannot watch the shim, nobody will: kill its tree
        // and reap it in the background rather than leak it.
        let give_up = |pidfd: OwnedFd, error: io::Error| {
            send_signal(pidfd.as_raw_fd(), kill_tree_signal());
            reap_in_background(pidfd);
            error
        };
        let report = match super::watch_readable(report) {
            Ok(report) => report,
            Err(e) => return Err(give_up(pidfd, e)),
        };
        // SAFETY: an OwnedFd is valid and owned by the AsyncFd from here on.
        let pidfd = match unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) } {
            Ok(pidfd) => pidfd,
            Err(e) => {
                let (pidfd, error) = e.into_parts();
                return Err(give_up(pidfd, error));
            }
        };
        let handle = ProcessHandle {
            shim_pid,
            pidfd,
            report: Some(report),
            worker_pid: None,
            last_status: None,
            exited: None,
        };
        Ok((handle, stdout, stderr))
    }

    /// The next thing that happens to the worker. After `Exited` it keeps
    /// returning `Exited`.
    ///
    /// Cancel-safe: a report is consumed only when returned.
    pub(crate) async fn next_event(&mut self) -> ProcessEvent {
        if let Some(status) = self.exited {
            return ProcessEvent::Exited(status);
        }
        while let Some(report_fd) = self.report.as_ref() {
            match read_report(report_fd).await {
                Ok(Some(report)) => match report {
                    Report::WorkerPid(pid) => {
                        self.worker_pid = Some(pid);
                        return ProcessEvent::Started(pid);
                    }
                    Report::WorkerExited(raw) => self.last_status = Some(ExitStatus::from_raw(raw)),
                    Report::ExecFailed(e) => return ProcessEvent::SetupFailed(SetupFailure::Exec(e)),
                    Report::ChdirFailed(e) => {
                        return ProcessEvent::SetupFailed(SetupFailure::Chdir(e));
                    }
                    Report::CgroupJoinFailed(e) => {
                        return ProcessEvent::SetupFailed(SetupFailure::CgroupJoin(e));
                    }
                    Report::NamespaceFailed(e) => {
                        return ProcessEvent::SetupFailed(SetupFailure::Namespace(e));
                    }
                    Report::ForkFailed(e) => return ProcessEvent::SetupFailed(SetupFailure::Fork(e)),
                },
                // EOF (the shim is gone) or a broken pipe: wait for the exit.
                Ok(None) | Err(_) => self.report = None,
            }
        }
        let status = self.reap().await;
        ProcessEvent::Exited(status)
    }

    /// Waits until the worker has exited and the shim is reaped.
    pub(crate) async fn wait(&mut self) -> ExitStatus {
        loop {
            if let ProcessEvent::Exited(status) = self.next_event().await {
                return status;
            }
        }
    }

    async fn reap(&mut self) -> ExitStatus {
        loop {
            match waitid_nohang(self.pidfd.as_raw_fd()) {
                Ok(Some(shim_status)) => {
                    // The worker's own status if the shim reported one;
                    // otherwise the shim itself was killed (OOM, SIGKILL).
                    let status = self.last_status.unwrap_or(shim_status);
                    self.exited = Some(status);
                    return status;
                }
                Ok(None) => {}
                Err(err) => {
                    // ECHILD: someone else reaped it (a host that calls
                    // waitpid(-1)); report it as killed.
                    tracing::warn!(shim_pid = self.shim_pid, "cannot reap worker shim: {err}");
                    let status = self.last_status.unwrap_or(ExitStatus::from_raw(libc::SIGKILL));
                    self.exited = Some(status);
                    return status;
                }
            }
            match self.pidfd.readable().await {
                Ok(mut guard) => guard.clear_ready(),
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    /// Sends `signal` to the shim (which forwards catchable ones to the
    /// worker's process group). No effect once reaped.
    pub(crate) fn signal(&self, signal: i32) {
        if self.exited.is_some() {
            return;
        }
        send_signal(self.pidfd.as_raw_fd(), signal);
    }

    /// Stops the whole tree: SIGTERM to the worker's group, up to `grace`
    /// for it to exit, then SIGKILL to every descendant, then reap.
    pub(crate) async fn stop(&mut self, grace: Duration) -> ExitStatus {
        if let Some(status) = self.exited {
            return status;
        }
        if !grace.is_zero() {
            self.signal(libc::SIGTERM);
            if let Ok(status) = tokio::time::timeout(grace, self.wait()).await {
                return status;
            }
        }
        self.signal(kill_tree_signal());
        if let Ok(status) = tokio::time::timeout(Duration::from_secs(2), self.wait()).await {
            return status;
        }
        // The shim itself is stuck: kill it and the worker's group directly.
        tracing::warn!(shim_pid = self.shim_pid, "worker shim did not exit; sending SIGKILL");
        self.signal(libc::SIGKILL);
        if let Some(pid) = self.worker_pid {
            // SAFETY: kill(2) on a process group; harmless if gone.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        self.wait().await
    }
}

impl Drop for ProcessHandle {
    fn drop(&mut self) {
        if self.exited.is_some() {
            return;
        }
        // Dropped while running (pool torn down abruptly, start aborted):
        // kill the tree and let the reaper thread collect the shim.
        self.signal(kill_tree_signal());
        if let Ok(fd) = self.pidfd.get_ref().try_clone() {
            reap_in_background(fd);
        }
    }
}

/// `pidfd_send_signal`; errors (ESRCH: already gone) are ignored.
pub(crate) fn send_signal(pidfd: RawFd, signal: i32) {
    // SAFETY: pidfd_send_signal on an fd the caller owns.
    unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd, signal, std::ptr::null::<libc::siginfo_t>(), 0);
    }
}

fn waitid_nohang(pidfd: RawFd) -> io::Result<Option<ExitStatus>> {
    // SAFETY: waitid with P_PIDFD on an fd we own, into a zeroed siginfo.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(libc::P_PIDFD, pidfd as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG);
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                return Ok(None);
            }
            return Err(err);
        }
        if info.si_pid() == 0 {
            return Ok(None);
        }
        let code = info.si_status();
        let raw = match info.si_code {
            libc::CLD_EXITED => (code & 0xff) << 8,
            _ => code & 0x7f,
        };
        Ok(Some(ExitStatus::from_raw(raw)))
    }
}

async fn read_report(fd: &AsyncFd<OwnedFd>) -> io::Result<Option<Report>> {
    loop {
        let mut guard = fd.readable().await?;
        let mut buf = [0u8; Report::SIZE];
        // SAFETY: read into a stack buffer from a nonblocking fd we own.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                guard.clear_ready();
                continue;
            }
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n == 0 {
            return Ok(None);
        }
        if n as usize != Report::SIZE {
            // Messages are written atomically; a short one means the shim
            // died mid-write. Treat it like EOF.
            return Ok(None);
        }
        if let Some(report) = Report::decode(buf) {
            return Ok(Some(report));
        }
    }
}

static REAPER: Mutex<Option<(u32, mpsc::Sender<OwnedFd>)>> = Mutex::new(None);
static BACKGROUND_REAPS: AtomicUsize = AtomicUsize::new(0);

/// Waits (up to `limit`) until every shim handed to the background reaper
/// has been reaped, so a shutdown can promise that no child is left.
pub(crate) async fn wait_background_reaps(limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while BACKGROUND_REAPS.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Reaps a shim on a background thread (for handles dropped outside async
/// code): a killed shim exits within milliseconds, and nobody else would
/// ever collect it.
pub(crate) fn reap_in_background(pidfd: OwnedFd) {
    let mut guard = REAPER.lock();
    let pid = std::process::id();
    if guard.as_ref().is_none_or(|(owner, _)| *owner != pid) {
        let (tx, rx) = mpsc::channel::<OwnedFd>();
        let started = std::thread::Builder::new().name("herd-reaper".into()).spawn(move || {
            while let Ok(fd) = rx.recv() {
                // SAFETY: blocking waitid on a pidfd we own.
                unsafe {
                    let mut info: libc::siginfo_t = std::mem::zeroed();
                    while libc::waitid(libc::P_PIDFD, fd.as_raw_fd() as libc::id_t, &mut info, libc::WEXITED)
                        != 0
                    {
                        match io::Error::last_os_error().raw_os_error() {
                            Some(libc::EINTR) => {}
                            // The pidfd is non-blocking (it was registered
                            // with the runtime): waitid answers EAGAIN until
                            // the shim exits. Wait for that, then reap.
                            Some(libc::EAGAIN) => {
                                let mut pfd =
                                    libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                                libc::poll(&mut pfd, 1, -1);
                            }
                            _ => break,
                        }
                    }
                }
                BACKGROUND_REAPS.fetch_sub(1, Ordering::SeqCst);
            }
        });
        if started.is_err() {
            return;
        }
        *guard = Some((pid, tx));
    }
    if let Some((_, tx)) = guard.as_ref() {
        BACKGROUND_REAPS.fetch_add(1, Ordering::SeqCst);
        if tx.send(pidfd).is_err() {
            BACKGROUND_REAPS.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
