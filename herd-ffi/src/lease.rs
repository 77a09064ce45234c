//! `herd_lease_t`: one use of a session, and what it tells about the
//! worker.

use std::ffi::{CString, c_char};
use std::mem::ManuallyDrop;
use std::sync::OnceLock;

use herd_core::Lease;

use crate::boundary::value_call;

/// One open use of a session's worker, from `herd_acquire` until
/// `herd_release`. While any lease of a session is open, the session is
/// never ended for idleness.
///
/// Thread safety: a lease may be moved to and read from any thread, by
/// several at once; `herd_release` must be its last use.
pub struct herd_lease_t {
    /// Dropped by `herd_release`, except in a forked child (see below).
    lease: ManuallyDrop<Lease>,
    /// The fork generation it was acquired in.
    generation: u64,
    /// Made on first request, so that acquiring allocates nothing else.
    url: OnceLock<Option<CString>>,
    session_id: OnceLock<CString>,
}

impl herd_lease_t {
    pub(crate) fn boxed(lease: Lease, generation: u64) -> *mut herd_lease_t {
        Box::into_raw(Box::new(herd_lease_t {
            lease: ManuallyDrop::new(lease),
            generation,
            url: OnceLock::new(),
            session_id: OnceLock::new(),
        }))
    }
}

/// Reads from a lease; `fallback` for a NULL lease.
fn read<T: Copy>(
    function: &'static str,
    lease: *const herd_lease_t,
    fallback: T,
    f: impl FnOnce(&herd_lease_t) -> T,
) -> T {
    value_call(function, fallback, || {
        // SAFETY: the header requires NULL or a live lease.
        unsafe { lease.as_ref() }.map_or(fallback, f)
    })
}

/// The session ID, NUL-terminated; NULL if `lease` is NULL. Owned by the
/// lease: valid until `herd_release`.
///
/// # Safety
/// `lease` is NULL or a live lease.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_lease_session_id(lease: *const herd_lease_t) -> *const c_char {
    read("herd_lease_session_id", lease, std::ptr::null(), |l| {
        l.session_id.get_or_init(|| CString::new(l.lease.session_id()).unwrap_or_default()).as_ptr()
    })
}

/// The worker's base URL, `http://127.0.0.1:PORT`; NULL if `lease` is NULL
/// or the worker has no network address. Owned by the lease: valid until
/// `herd_release`.
///
/// # Safety
/// `lease` is NULL or a live lease.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_lease_url(lease: *const herd_lease_t) -> *const c_char {
    read("herd_lease_url", lease, std::ptr::null(), |l| {
        l.url
            .get_or_init(|| l.lease.url().and_then(|url| CString::new(url).ok()))
            .as_ref()
            .map_or(std::ptr::null(), |url| url.as_ptr())
    })
}

/// The worker's TCP port on 127.0.0.1; 0 if `lease` is NULL or the worker
/// has no network address.
///
/// # Safety
/// `lease` is NULL or a live lease.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_lease_port(lease: *const herd_lease_t) -> u16 {
    read("herd_lease_port", lease, 0, |l| l.lease.address().map_or(0, |a| a.port()))
}

/// The worker's process ID as this host sees it; 0 if `lease` is NULL or
/// the worker is not a process.
///
/// # Safety
/// `lease` is NULL or a live lease.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_lease_pid(lease: *const herd_lease_t) -> u32 {
    read("herd_lease_pid", lease, 0, |l| l.lease.pid().unwrap_or(0))
}

/// The worker's ID within its pool (the `N` of `wN` in herd's logs), stable
/// for the worker's life; 0 if `lease` is NULL (real IDs start at 1).
///
/// # Safety
/// `lease` is NULL or a live lease.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_lease_worker_id(lease: *const herd_lease_t) -> u64 {
    read("herd_lease_worker_id", lease, 0, |l| l.lease.worker_id().0)
}

/// Whether the session has ended since this lease was acquired (its worker
/// may be gone or serving another session: stop using it). True for a NULL
/// lease.
///
/// # Safety
/// `lease` is NULL or a live lease.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_lease_is_ended(lease: *const herd_lease_t) -> bool {
    read("herd_lease_is_ended", lease, true, |l| l.lease.is_ended())
}

/// Records activity now: the session's idle TTL counts from its last
/// activity (releasing a lease also counts). NULL is ignored.
///
/// # Safety
/// `lease` is NULL or a live lease.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_lease_touch(lease: *const herd_lease_t) {
    read("herd_lease_touch", lease, (), |l| l.lease.touch())
}

/// Releases a lease (the session stays bound to its worker). NULL is
/// ignored. In a forked child, releasing a lease acquired by the parent
/// only frees the child's copy of the handle.
///
/// # Safety
/// `lease` is NULL or a lease from `herd_acquire` not yet released; no
/// other thread uses it during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_release(lease: *mut herd_lease_t) {
    value_call("herd_release", (), || {
        if lease.is_null() {
            return;
        }
        // SAFETY: the caller's contract: ours, released once.
        let mut handle = unsafe { Box::from_raw(lease) };
        if !crate::fork::is_inherited(handle.generation) {
            // SAFETY: dropped once, here; the handle is freed just after.
            unsafe { ManuallyDrop::drop(&mut handle.lease) };
        }
        // A parent's lease in a forked child: releasing it would take the
        // pool's lock, which a thread that does not exist here may hold.
    })
}
