//! # herd-ffi
//!
//! herd's C ABI: `libherd.so`, `libherd.a` and `include/herd.h` (generated
//! from this crate by cbindgen; `tests/header.rs` fails when the committed
//! header is stale).
//!
//! Conventions, stated once in the header and kept by every function:
//! opaque handles with `_new`/`_free`; fallible calls return
//! [`herd_status_t`] and write out-parameters only on success; every body
//! runs inside the panic boundary (`boundary.rs`); pointers are checked for
//! NULL and strings for UTF-8; durations are `uint64_t` milliseconds.
//!
//! * [`status`]: status codes and the per-thread error message.
//! * [`config`]: `herd_config_t` and its setters.
//! * [`pool`]: `herd_pool_t`, acquiring and ending sessions.
//! * [`lease`]: `herd_lease_t` and what it tells about the worker.
//! * [`events`]: session-end callbacks.
//! * [`stats`]: pool and per-worker snapshots.
//! * [`proxy`]: the HTTP/WebSocket gateway in front of a pool.

// The exported names are C names.
#![allow(non_camel_case_types)]

mod boundary;
pub mod config;
pub mod events;
mod fork;
pub mod lease;
pub mod pool;
pub mod proxy;
pub mod stats;
pub mod status;
pub mod version;

pub use config::*;
pub use events::*;
pub use lease::*;
pub use pool::*;
pub use proxy::*;
pub use stats::*;
pub use status::*;
pub use version::*;
