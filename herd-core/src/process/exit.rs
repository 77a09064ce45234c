//! How a worker process ended.

use std::fmt;

/// The exit status of a worker process: an exit code or a signal.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitStatus {
    raw: i32,
}

impl ExitStatus {
    /// From a raw `wait(2)` status word.
    pub fn from_raw(raw: i32) -> Self {
        ExitStatus { raw }
    }

    /// The raw `wait(2)` status word.
    pub fn raw(self) -> i32 {
        self.raw
    }

    /// The exit code, if the process exited normally.
    pub fn code(self) -> Option<i32> {
        libc::WIFEXITED(self.raw).then(|| libc::WEXITSTATUS(self.raw))
    }

    /// The signal that killed the process, if one did.
    pub fn signal(self) -> Option<i32> {
        libc::WIFSIGNALED(self.raw).then(|| libc::WTERMSIG(self.raw))
    }

    /// Exited with code 0.
    pub fn success(self) -> bool {
        self.code() == Some(0)
    }
}

/// The conventional name of a signal number (`SIGKILL`), or `signal N`.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {signal}"),
    };
    name.to_string()
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code(), self.signal()) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(sig)) => write!(f, "killed by {} ({sig})", signal_name(sig)),
            _ => write!(f, "wait status {:#x}", self.raw),
        }
    }
}

impl fmt::Debug for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExitStatus({self})")
    }
}
