//! Reading a session ID `str` without copying it.
//!
//! The hot path (`acquire` of a bound session) must not allocate for the
//! ID. PyO3's `PyString::to_cow` under the abi3-py39 limited API encodes to
//! a new `bytes` object and copies it into a `String`.
//! `PyUnicode_AsUTF8AndSize` returns the UTF-8 form that CPython caches
//! inside the `str` object instead; it is part of the stable ABI since
//! 3.10 and exported by every CPython 3 shared library and executable, so
//! declaring it here also works on 3.9.

use pyo3::prelude::*;
use pyo3::types::PyString;
use pyo3::{PyErr, ffi};

unsafe extern "C" {
    fn PyUnicode_AsUTF8AndSize(unicode: *mut ffi::PyObject, size: *mut ffi::Py_ssize_t) -> *const u8;
}

/// The UTF-8 text of `s`, borrowed from the `str` object itself.
/// Fails (`UnicodeEncodeError`) for strings with lone surrogates.
pub(crate) fn as_str<'a>(s: &'a Bound<'_, PyString>) -> PyResult<&'a str> {
    let mut size: ffi::Py_ssize_t = 0;
    // SAFETY: `s` is a live `str`; the returned buffer is owned by it and
    // lives as long as it does, which `'a` ties to the borrow of `s`.
    unsafe {
        let data = PyUnicode_AsUTF8AndSize(s.as_ptr(), &mut size);
        if data.is_null() {
            return Err(PyErr::fetch(s.py()));
        }
        // CPython guarantees valid UTF-8 on success.
        Ok(std::str::from_utf8_unchecked(std::slice::from_raw_parts(data, size as usize)))
    }
}
