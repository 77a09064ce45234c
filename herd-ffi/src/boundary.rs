//! The C boundary: every exported body runs inside [`status_call`] or
//! [`value_call`], which catch panics (a panic unwinding into C is undefined
//! behaviour), and takes its arguments through the checks below, which
//! turn NULL pointers and non-UTF-8 strings into
//! `HERD_STATUS_INVALID_ARGUMENT` with a message naming the argument.

use std::any::Any;
use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

use crate::status::{Failure, finish, herd_status_t, set_last_error};

/// Runs the body of a function that returns a status. A failure's message
/// and a caught panic are recorded for `herd_last_error_message`, prefixed
/// with `function`.
#[inline(always)]
pub(crate) fn status_call(
    function: &'static str,
    body: impl FnOnce() -> Result<(), Failure>,
) -> herd_status_t {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(outcome) => finish(function, outcome),
        Err(payload) => {
            record_panic(function, payload);
            herd_status_t::HERD_STATUS_PANIC
        }
    }
}

/// Runs the body of a function that returns a plain value (a getter, a
/// `_free`); a caught panic returns `fallback` and is recorded for
/// `herd_last_error_message`.
#[inline(always)]
pub(crate) fn value_call<T>(function: &'static str, fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            record_panic(function, payload);
            fallback
        }
    }
}

#[cold]
fn record_panic(function: &str, payload: Box<dyn Any + Send>) {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string());
    set_last_error(format!("{function}: herd panicked (a bug in herd; please report it): {detail}"));
    // Dropping a payload can itself panic; leak it instead.
    std::mem::forget(payload);
}

/// Runs a setter's `change` on the config behind `config`.
pub(crate) fn edit_config<T>(
    function: &'static str,
    config: *mut T,
    change: impl FnOnce(&mut T) -> Result<(), Failure>,
) -> herd_status_t {
    status_call(function, || {
        // SAFETY: the header requires NULL or a live config used from one
        // thread at a time.
        change(unsafe { arg_mut(config, "config") }?)
    })
}

/// A required string argument: not NULL, valid UTF-8.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and
/// unchanged for `'a`.
pub(crate) unsafe fn arg_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::invalid_argument(format!("{name} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes.to_str().map_err(|e| {
        Failure::invalid_argument(format!(
            "{name} is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// A required pointer to a herd object.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` that is not mutated for `'a`.
pub(crate) unsafe fn arg_ref<'a, T>(ptr: *const T, name: &str) -> Result<&'a T, Failure> {
    // SAFETY: the caller's contract.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::invalid_argument(format!("{name} is NULL")))
}

/// A required pointer to a herd object the call changes.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` not otherwise accessed for `'a`.
pub(crate) unsafe fn arg_mut<'a, T>(ptr: *mut T, name: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: the caller's contract.
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::invalid_argument(format!("{name} is NULL")))
}

/// An out-parameter, checked for NULL up front and written only once the
/// call has succeeded.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    pub(crate) fn new(ptr: *mut T, name: &str) -> Result<Out<T>, Failure> {
        NonNull::new(ptr).map(Out).ok_or_else(|| Failure::invalid_argument(format!("{name} is NULL")))
    }

    /// Writes the result.
    ///
    /// # Safety
    /// The pointer given to [`Out::new`] is valid for a write of `T`.
    pub(crate) unsafe fn write(self, value: T) {
        // SAFETY: the caller's contract; `write` does not read or drop the
        // (possibly uninitialised) old value.
        unsafe { self.0.as_ptr().write(value) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::herd_last_error_message;

    fn last_error() -> String {
        unsafe { CStr::from_ptr(herd_last_error_message()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let status = status_call("herd_test", || panic!("boom"));
        assert_eq!(status, herd_status_t::HERD_STATUS_PANIC);
        let message = last_error();
        assert!(message.starts_with("herd_test: herd panicked"), "{message}");
        assert!(message.contains("boom"), "{message}");
        assert_eq!(value_call("herd_test", 7u32, || panic!("again")), 7);
    }

    #[test]
    fn success_clears_the_message() {
        let _ = status_call("herd_test", || Err(Failure::invalid_argument("x is NULL")));
        assert_eq!(last_error(), "herd_test: x is NULL");
        assert_eq!(status_call("herd_test", || Ok(())), herd_status_t::HERD_STATUS_OK);
        assert_eq!(last_error(), "");
    }

    #[test]
    fn strings_must_be_utf8_and_not_null() {
        let bad = c"ab\xffcd";
        let err = unsafe { arg_str(bad.as_ptr(), "session_id") }.unwrap_err();
        assert_eq!(err.status, herd_status_t::HERD_STATUS_INVALID_ARGUMENT);
        assert!(err.message.contains("offset 2"), "{}", err.message);
        let err = unsafe { arg_str(std::ptr::null(), "session_id") }.unwrap_err();
        assert_eq!(err.message, "session_id is NULL");
        assert_eq!(unsafe { arg_str(c"ok".as_ptr(), "s") }.unwrap(), "ok");
    }
}
