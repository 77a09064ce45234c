//! The pool's own tokio runtime, and fork detection.
//!
//! Callers in C, Python and Node never see tokio: each pool builds a
//! multi-threaded runtime and keeps it behind its handle. Foreign threads
//! hand work to it and wait on a channel; nothing calls `block_on` from a
//! runtime thread.
//!
//! A process that forks after creating a pool (Python multiprocessing)
//! inherits the pool's memory but none of its threads: the runtime, the
//! spawner and the event thread are gone in the child. Every public call
//! compares the fork generation recorded at creation with the current one
//! (a relaxed atomic load, bumped by a `pthread_atfork` child handler) and
//! fails with `ErrorKind::Forked` instead of hanging.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, ErrorKind};

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The current fork generation (registers the atfork handler on first use).
pub(crate) fn fork_generation() -> u64 {
    ATFORK.call_once(|| {
        // SAFETY: registers a handler that only bumps an atomic.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// Fails with `Forked` if this process is a fork of the one that made the pool.
#[inline]
pub(crate) fn check_fork(created_in: u64) -> Result<(), Error> {
    if FORK_GENERATION.load(Ordering::Relaxed) != created_in {
        return Err(Error::new(
            ErrorKind::Forked,
            "this pool was created before fork(); a forked child cannot use it \
             (its threads and workers belong to the parent) — create a new pool in the child",
        ));
    }
    Ok(())
}

thread_local! {
    static ON_POOL_RUNTIME: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the current thread is one of a pool's runtime threads (where
/// blocking on the pool would stall or deadlock it).
pub(crate) fn on_pool_runtime() -> bool {
    ON_POOL_RUNTIME.with(|c| c.get())
}

/// Builds the runtime a pool owns.
pub(crate) fn build(threads: usize, pool_name: &str) -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .max_blocking_threads(8)
        .thread_name(format!("herd-rt-{pool_name}"))
        .on_thread_start(|| ON_POOL_RUNTIME.with(|c| c.set(true)))
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the pool's runtime threads", e))
}

/// Raises the soft limit on open files to the hard limit, once: each
/// worker holds four descriptors in the host (pidfd, report pipe, stdout,
/// stderr), and the common soft limit of 1024 would cap a pool at ~250
/// workers. (Go's runtime does the same at start-up.)
pub(crate) fn raise_fd_limit() {
    static RAISED: Once = Once::new();
    RAISED.call_once(|| {
        // SAFETY: getrlimit/setrlimit on a stack struct.
        unsafe {
            let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
                let wanted = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                    tracing::debug!(from = lim.rlim_cur, to = lim.rlim_max, "raised the open-file limit");
                }
            }
        }
    });
}
