//! Starting, watching and stopping worker process trees.
//!
//! * [`spawner`]: the long-lived thread every worker is cloned from.
//! * [`shim`]: the code of the forked child — herd's tiny init that joins
//!   the cgroup, reaps, forwards signals and kills the whole tree.
//! * [`handle`]: the parent's async handle on a running tree.
//! * [`logs`]: worker stdout/stderr into `tracing`.

pub(crate) mod exit;
pub(crate) mod handle;
pub(crate) mod logs;
pub(crate) mod shim;
pub(crate) mod spawner;

pub use exit::{ExitStatus, signal_name};
pub(crate) use handle::wait_background_reaps;
pub(crate) use shim::clone_process;

/// Registers `fd` with the current runtime for readability.
pub(crate) fn watch_readable(
    fd: std::os::fd::OwnedFd,
) -> std::io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    // SAFETY: an OwnedFd is a valid open descriptor that the AsyncFd owns
    // (and so keeps open and unchanged) for its whole life.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(std::io::Error::from)
}
