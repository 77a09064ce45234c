//! Which process a handle belongs to.
//!
//! A child forked after a pool was created inherits the handles but none of
//! the threads behind them; herd-core answers `Forked` for the calls it
//! checks. The C layer also needs the answer where herd-core does not ask,
//! and on the hot path (`herd_release` of a parent's lease in the child must
//! not touch the pool, whose lock another thread may have held at the
//! fork): a generation counter bumped by a `pthread_atfork` child handler,
//! read with one relaxed load.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

static GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();

extern "C" fn after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The current generation; registers the fork handler on first use (call
/// it when creating a handle, before any fork can matter).
pub(crate) fn generation() -> u64 {
    REGISTER.call_once(|| {
        // SAFETY: registers a handler that only bumps an atomic.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
    GENERATION.load(Ordering::Relaxed)
}

/// Whether a handle made in generation `made_in` belongs to a parent of
/// this process.
#[inline]
pub(crate) fn is_inherited(made_in: u64) -> bool {
    GENERATION.load(Ordering::Relaxed) != made_in
}
