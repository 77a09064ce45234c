//! `herd_proxy_t`: the HTTP/WebSocket gateway of the `herd` command, in
//! front of a pool: each request reaches its session's worker.

use std::ffi::{CString, c_char};
use std::net::SocketAddr;

use herd_core::{Proxy, ProxyConfig, SessionSource};
use parking_lot::Mutex;

use crate::boundary::{Out, arg_ref, arg_str, edit_config as edit, status_call, value_call};
use crate::config::millis;
use crate::pool::herd_pool_t;
use crate::status::{Failure, herd_status_t};

/// Gateway options: where to listen, where requests carry their session
/// ID, timeouts. Create with `herd_proxy_config_new`, change with
/// `herd_proxy_config_*`, pass to `herd_proxy_start` (which copies it), free
/// with `herd_proxy_config_free`.
///
/// Thread safety: not thread-safe. Use one config from one thread at a
/// time; `herd_proxy_start` only reads it.
pub struct herd_proxy_config_t {
    config: ProxyConfig,
    /// Whether `session_sources` still holds the default, which the first
    /// `herd_proxy_config_add_*` replaces.
    default_sources: bool,
}

/// A running gateway, from `herd_proxy_start` until `herd_proxy_stop`;
/// freed by `herd_proxy_free`.
///
/// Thread safety: thread-safe; `herd_proxy_free` must be the last call.
pub struct herd_proxy_t {
    running: Mutex<Option<Proxy>>,
    address: CString,
    admin_address: Option<CString>,
    /// The fork generation it was started in; another is a forked child.
    generation: u64,
}

fn socket_addr(text: &str, name: &str) -> Result<SocketAddr, Failure> {
    text.parse().map_err(|_| {
        Failure::invalid_argument(format!(
            "{name} {text:?} is not an IP address and port like 127.0.0.1:8080"
        ))
    })
}

/// Creates gateway options with herd's defaults: listen on
/// `127.0.0.1:8080`, session ID from the `X-Session-ID` header, the pool's
/// acquire timeout, no admin listener.
///
/// Errors: `HERD_STATUS_INVALID_ARGUMENT` if `config_out` is NULL.
///
/// # Safety
/// `config_out` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_proxy_config_new(config_out: *mut *mut herd_proxy_config_t) -> herd_status_t {
    status_call("herd_proxy_config_new", || {
        let out = Out::new(config_out, "config_out")?;
        let config = Box::new(herd_proxy_config_t { config: ProxyConfig::default(), default_sources: true });
        // SAFETY: checked non-NULL; the caller's contract.
        unsafe { out.write(Box::into_raw(config)) };
        Ok(())
    })
}

/// Frees gateway options. NULL is ignored.
///
/// # Safety
/// `config` is NULL or a config from `herd_proxy_config_new` not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_proxy_config_free(config: *mut herd_proxy_config_t) {
    value_call("herd_proxy_config_free", (), || {
        if !config.is_null() {
            // SAFETY: the caller's contract: ours, freed once.
            drop(unsafe { Box::from_raw(config) });
        }
    })
}

/// Where clients connect: an IP address and port, `"127.0.0.1:8080"` or
/// `"[::1]:8080"`. Port 0 picks a free port (see `herd_proxy_address`).
///
/// Errors: `HERD_STATUS_INVALID_ARGUMENT` for NULL, non-UTF-8 or an address
/// that does not parse.
///
/// # Safety
/// `address` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_proxy_config_set_listen(
    config: *mut herd_proxy_config_t,
    address: *const c_char,
) -> herd_status_t {
    edit("herd_proxy_config_set_listen", config, |config| {
        // SAFETY: the caller's contract.
        config.config.listen = socket_addr(unsafe { arg_str(address, "address") }?, "address")?;
        Ok(())
    })
}

/// Where the admin routes (`GET /stats`, `GET /metrics`, `DELETE
/// /sessions/{id}`) listen, like `herd_proxy_config_set_listen`. Default:
/// no admin listener.
///
/// # Safety
/// `address` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_proxy_config_set_admin_listen(
    config: *mut herd_proxy_config_t,
    address: *const c_char,
) -> herd_status_t {
    edit("herd_proxy_config_set_admin_listen", config, |config| {
        // SAFETY: the caller's contract.
        config.config.admin_listen = Some(socket_addr(unsafe { arg_str(address, "address") }?, "address")?);
        Ok(())
    })
}

fn add_source(
    function: &'static str,
    config: *mut herd_proxy_config_t,
    name: *const c_char,
    source: fn(String) -> SessionSource,
) -> herd_status_t {
    edit(function, config, |config| {
        // SAFETY: the header requires NULL or a NUL-terminated string.
        let name = unsafe { arg_str(name, "name") }?.to_string();
        if std::mem::take(&mut config.default_sources) {
            config.config.session_sources.clear();
        }
        config.config.session_sources.push(source(name));
        Ok(())
    })
}

/// Looks for the session ID in request header `name`. Sources are tried
/// in the order they were added; the first one added replaces the default
/// (`X-Session-ID`). Names are checked by `herd_proxy_start`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_proxy_config_add_session_header(
    config: *mut herd_proxy_config_t,
    name: *const c_char,
) -> herd_status_t {
    add_source("herd_proxy_config_add_session_header", config, name, SessionSource::Header)
}

/// Looks for the session ID in cookie `name` (see
/// `herd_proxy_config_add_session_header` for the order).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_proxy_config_add_session_cookie(
    config: *mut herd_proxy_config_t,
    name: *const c_char,
) -> herd_status_t {
    add_source("herd_proxy_config_add_session_cookie", config, name, SessionSource::Cookie)
}

/// Looks for the session ID in query parameter `name` (see
/// `herd_proxy_config_add_session_header` for the order).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_proxy_config_add_session_query(
    config: *mut herd_proxy_config_t,
    name: *const c_char,
) -> herd_status_t {
    add_source("herd_proxy_config_add_session_query", config, name, SessionSource::Query)
}

/// Takes the session ID from the path: with prefix `"/s/"`, a request for
/// `/s/{id}/rest` is session `{id}` and reaches the worker as `/rest` (see
/// `herd_proxy_config_add_session_header` for the order).
///
/// # Safety
/// `prefix` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_proxy_config_add_session_path_prefix(
    config: *mut herd_proxy_config_t,
    prefix: *const c_char,
) -> herd_status_t {
    add_source("herd_proxy_config_add_session_path_prefix", config, prefix, SessionSource::PathPrefix)
}

/// How long a request for a new session waits for a worker before the
/// client gets `503` with `Retry-After`. Default: the pool's acquire
/// timeout.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_proxy_config_set_acquire_timeout_ms(
    config: *mut herd_proxy_config_t,
    ms: u64,
) -> herd_status_t {
    edit("herd_proxy_config_set_acquire_timeout_ms", config, |config| {
        config.config.acquire_timeout = Some(millis(ms, "ms")?);
        Ok(())
    })
}

/// I/O threads serving clients; 0 (the default) is one per core, at most 4.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_proxy_config_set_threads(
    config: *mut herd_proxy_config_t,
    threads: usize,
) -> herd_status_t {
    edit("herd_proxy_config_set_threads", config, |config| {
        config.config.threads = threads;
        Ok(())
    })
}

/// Forward the client's `Host` header as is (true), or set it to the
/// worker's address (false, the default).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_proxy_config_set_preserve_host(
    config: *mut herd_proxy_config_t,
    preserve: bool,
) -> herd_status_t {
    edit("herd_proxy_config_set_preserve_host", config, |config| {
        config.config.preserve_host = preserve;
        Ok(())
    })
}

/// Starts the gateway in front of `pool`: binds the listeners (so a taken
/// address fails here) and serves on herd's threads until
/// `herd_proxy_stop`. Each request is a lease on its session's worker,
/// released when the response has been sent; WebSocket upgrades are
/// tunnelled both ways. A missing or invalid session ID gets `400`, no
/// worker in time `503`, an unreachable worker `502`.
///
/// Stop and free every proxy of a pool before freeing the pool.
///
/// Errors: `HERD_STATUS_INVALID_ARGUMENT`, `HERD_STATUS_INVALID_CONFIG` (a
/// bad option, named), `HERD_STATUS_IO` (an address cannot be bound),
/// `HERD_STATUS_POOL_CLOSED`, `HERD_STATUS_FORKED`.
///
/// # Safety
/// `pool` is NULL or a live pool; `config` is NULL or a live config;
/// `proxy_out` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_proxy_start(
    pool: *mut herd_pool_t,
    config: *const herd_proxy_config_t,
    proxy_out: *mut *mut herd_proxy_t,
) -> herd_status_t {
    status_call("herd_proxy_start", || {
        // SAFETY: the caller's contract.
        let (pool, config) = unsafe { (arg_ref(pool, "pool")?.checked()?, arg_ref(config, "config")?) };
        let out = Out::new(proxy_out, "proxy_out")?;
        let proxy = Proxy::start(pool, config.config.clone())?;
        let text = |addr: SocketAddr| CString::new(addr.to_string()).unwrap_or_default();
        let handle = Box::new(herd_proxy_t {
            address: text(proxy.local_addr()),
            admin_address: proxy.admin_addr().map(text),
            running: Mutex::new(Some(proxy)),
            generation: crate::fork::generation(),
        });
        // SAFETY: checked non-NULL; the caller's contract.
        unsafe { out.write(Box::into_raw(handle)) };
        Ok(())
    })
}

impl herd_proxy_t {
    /// The proxy while it runs; `HERD_STATUS_PROXY_STOPPED` after
    /// `herd_proxy_stop`, `HERD_STATUS_FORKED` in a forked child.
    fn check_running(&self) -> Result<(), Failure> {
        if crate::fork::is_inherited(self.generation) {
            return Err(Failure::new(
                herd_status_t::HERD_STATUS_FORKED,
                "this proxy was started before fork(); it belongs to the parent process",
            ));
        }
        if self.running.lock().is_none() {
            return Err(stopped());
        }
        Ok(())
    }
}

fn stopped() -> Failure {
    Failure::new(
        herd_status_t::HERD_STATUS_PROXY_STOPPED,
        "the proxy was stopped with herd_proxy_stop; only herd_proxy_free may be called on it now",
    )
}

/// Sets `*address_out` to the address the gateway listens on,
/// `"127.0.0.1:PORT"` (the port actually bound when 0 was asked for). The
/// string is owned by the proxy and valid until `herd_proxy_free`.
///
/// Errors: `HERD_STATUS_INVALID_ARGUMENT`, `HERD_STATUS_PROXY_STOPPED`,
/// `HERD_STATUS_FORKED`.
///
/// # Safety
/// `proxy` is NULL or a live proxy; `address_out` is NULL or valid for
/// writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_proxy_address(
    proxy: *const herd_proxy_t,
    address_out: *mut *const c_char,
) -> herd_status_t {
    status_call("herd_proxy_address", || {
        // SAFETY: the caller's contract.
        let proxy = unsafe { arg_ref(proxy, "proxy") }?;
        let out = Out::new(address_out, "address_out")?;
        proxy.check_running()?;
        // SAFETY: checked non-NULL; the caller's contract.
        unsafe { out.write(proxy.address.as_ptr()) };
        Ok(())
    })
}

/// Sets `*address_out` to the address of the admin routes, owned by the
/// proxy like `herd_proxy_address`'s; NULL if no admin listener was
/// configured.
///
/// Errors: `HERD_STATUS_INVALID_ARGUMENT`, `HERD_STATUS_PROXY_STOPPED`,
/// `HERD_STATUS_FORKED`.
///
/// # Safety
/// `proxy` is NULL or a live proxy; `address_out` is NULL or valid for
/// writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_proxy_admin_address(
    proxy: *const herd_proxy_t,
    address_out: *mut *const c_char,
) -> herd_status_t {
    status_call("herd_proxy_admin_address", || {
        // SAFETY: the caller's contract.
        let proxy = unsafe { arg_ref(proxy, "proxy") }?;
        let out = Out::new(address_out, "address_out")?;
        proxy.check_running()?;
        let address = proxy.admin_address.as_ref().map_or(std::ptr::null(), |a| a.as_ptr());
        // SAFETY: checked non-NULL; the caller's contract.
        unsafe { out.write(address) };
        Ok(())
    })
}

/// Stops the gateway: no new connections; requests in flight get up to
/// `grace_ms` to finish and open WebSockets a close frame; what is left
/// then is dropped. Returns when the proxy is stopped. The pool keeps
/// running. Afterwards every call on the proxy but `herd_proxy_free`
/// returns `HERD_STATUS_PROXY_STOPPED` (a second `herd_proxy_stop`
/// included).
///
/// Errors: `HERD_STATUS_INVALID_ARGUMENT`, `HERD_STATUS_PROXY_STOPPED`,
/// `HERD_STATUS_FORKED`.
///
/// # Safety
/// `proxy` is NULL or a live proxy.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_proxy_stop(proxy: *mut herd_proxy_t, grace_ms: u64) -> herd_status_t {
    status_call("herd_proxy_stop", || {
        // SAFETY: the caller's contract.
        let proxy = unsafe { arg_ref(proxy, "proxy") }?;
        let grace = millis(grace_ms, "grace_ms")?;
        proxy.check_running()?;
        let running = proxy.running.lock().take().ok_or_else(stopped)?;
        running.stop_blocking(grace);
        Ok(())
    })
}

/// Frees a proxy, stopping it at once if `herd_proxy_stop` was not called.
/// NULL is ignored.
///
/// # Safety
/// `proxy` is NULL or a proxy from `herd_proxy_start` not yet freed, and no
/// other thread uses it during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn herd_proxy_free(proxy: *mut herd_proxy_t) {
    value_call("herd_proxy_free", (), || {
        if proxy.is_null() {
            return;
        }
        // SAFETY: the caller's contract: ours, freed once, no other user.
        let proxy = unsafe { Box::from_raw(proxy) };
        if crate::fork::is_inherited(proxy.generation) {
            // The proxy's threads belong to the parent: leave them alone.
            std::mem::forget(proxy);
            return;
        }
        drop(proxy);
    })
}
