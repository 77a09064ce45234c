//! `herd_version`. The `HERD_VERSION*` macros in the header are generated
//! from the same Cargo metadata (see `tests/header.rs`).

use std::ffi::c_char;

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// herd's version as `"MAJOR.MINOR.PATCH"`, from the library actually
/// loaded (compare with `HERD_VERSION`, the header's). Static. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn herd_version() -> *const c_char {
    VERSION.as_ptr().cast()
}
