//! `pool.serve({...})` options: every `ProxyConfig` field in JavaScript's
//! terms (camelCase, durations in milliseconds, addresses as strings),
//! checked here so errors name the option the caller wrote.

use std::net::SocketAddr;

use herd_core::{ProxyConfig, SessionSource};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::options::{count, millis};

/// Options of `pool.serve(options)`. All optional; durations are in
/// milliseconds.
///
/// The session ID is looked for in the session options given
/// (`sessionHeader`, `sessionCookie`, `sessionQuery`, `sessionPathPrefix`;
/// each takes one name or a list), in the order they are written in the
/// object; the first one a request carries is used. With none of them,
/// the `X-Session-ID` header.
#[napi(object, object_to_js = false)]
pub struct ServeOptions {
    /// Where clients connect: an IP address and a port. Default
    /// `'127.0.0.1:8080'`; port 0 picks a free port (`proxy.address` tells
    /// which).
    pub listen: Option<String>,
    /// Take the session ID from this request header (forwarded to the
    /// worker unchanged).
    #[napi(ts_type = "string | string[]")]
    pub session_header: Option<Either<String, Vec<String>>>,
    /// Take the session ID from this cookie.
    #[napi(ts_type = "string | string[]")]
    pub session_cookie: Option<Either<String, Vec<String>>>,
    /// Take the session ID from this query parameter.
    #[napi(ts_type = "string | string[]")]
    pub session_query: Option<Either<String, Vec<String>>>,
    /// Take the session ID from the path: with `'/s/'`, a request for
    /// `/s/{id}/rest` is session `{id}` and reaches the worker as `/rest`.
    #[napi(ts_type = "string | string[]")]
    pub session_path_prefix: Option<Either<String, Vec<String>>>,
    /// How long a request for a new session waits for a worker before the
    /// client gets `503` with `Retry-After`. Default: the pool's
    /// `acquireTimeoutMs`.
    pub acquire_timeout_ms: Option<f64>,
    /// Where the admin routes listen (`GET /stats`, `GET /metrics`,
    /// `DELETE /sessions/{id}`), as `'127.0.0.1:9090'`. Default: none.
    pub admin_listen: Option<String>,
    /// I/O threads serving clients. Default 0: one per core, at most 4.
    pub threads: Option<f64>,
    /// The largest request head accepted, in bytes; larger ones get `431`.
    /// Default 65536; at least 8192.
    pub max_header_bytes: Option<f64>,
    /// How long a client may take to send a request head, and stay idle
    /// between requests. Default 30000.
    pub header_read_timeout_ms: Option<f64>,
    /// The `Retry-After` sent with `503`, rounded up to whole seconds.
    /// Default 1000.
    pub retry_after_ms: Option<f64>,
    /// How long connecting to a worker may take before the client gets
    /// `502`. Default 5000.
    pub upstream_connect_timeout_ms: Option<f64>,
    /// Idle connections to a worker are not reused after this long.
    /// Default 2000.
    pub upstream_idle_timeout_ms: Option<f64>,
    /// Most idle connections kept per worker. Default 128.
    pub upstream_max_idle: Option<f64>,
    /// Forward the client's `Host` header (`true`), or set it to the
    /// worker's address (`false`, the default). The client's `Host` is
    /// always sent as `X-Forwarded-Host`.
    pub preserve_host: Option<bool>,
    /// When herd closes an open WebSocket (its session ended, the proxy is
    /// closing), how long the client gets to answer the close frame.
    /// Default 2000.
    pub websocket_close_timeout_ms: Option<f64>,
}

/// Options of `proxy.close(options)`.
#[napi(object, object_to_js = false)]
pub struct ProxyCloseOptions {
    /// How long requests in flight get to finish before their connections
    /// are dropped. Default 10000.
    pub grace_ms: Option<f64>,
}

/// A session option's value: one name or a list.
type Names = Option<Either<String, Vec<String>>>;

/// The four session options, by their JavaScript names.
const SESSION_OPTIONS: [&str; 4] = ["sessionHeader", "sessionCookie", "sessionQuery", "sessionPathPrefix"];

/// The proxy configuration `options` describe. `written` is the options
/// object itself, for the order its session options are written in.
pub(crate) fn build(options: ServeOptions, written: &Object<'_>) -> std::result::Result<ProxyConfig, String> {
    let mut c = ProxyConfig::default();
    if let Some(listen) = &options.listen {
        c.listen = address("listen", listen)?;
    }
    if let Some(admin) = &options.admin_listen {
        c.admin_listen = Some(address("adminListen", admin)?);
    }
    let sources = session_sources(&options, written)?;
    if !sources.is_empty() {
        c.session_sources = sources;
    }
    c.acquire_timeout = millis("acquireTimeoutMs", options.acquire_timeout_ms)?;
    for (name, value, field) in [
        ("headerReadTimeoutMs", options.header_read_timeout_ms, &mut c.header_read_timeout),
        ("retryAfterMs", options.retry_after_ms, &mut c.retry_after),
        ("upstreamConnectTimeoutMs", options.upstream_connect_timeout_ms, &mut c.upstream_connect_timeout),
        ("upstreamIdleTimeoutMs", options.upstream_idle_timeout_ms, &mut c.upstream_idle_timeout),
        ("websocketCloseTimeoutMs", options.websocket_close_timeout_ms, &mut c.websocket_close_timeout),
    ] {
        if let Some(d) = millis(name, value)? {
            *field = d;
        }
    }
    for (name, value, field) in [
        ("threads", options.threads, &mut c.threads),
        ("maxHeaderBytes", options.max_header_bytes, &mut c.max_header_bytes),
        ("upstreamMaxIdle", options.upstream_max_idle, &mut c.upstream_max_idle),
    ] {
        if let Some(n) = count(name, value)? {
            *field = n;
        }
    }
    if let Some(preserve) = options.preserve_host {
        c.preserve_host = preserve;
    }
    Ok(c)
}

/// `'127.0.0.1:8080'` as a socket address.
fn address(name: &str, text: &str) -> std::result::Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("{name} must be an IP address and a port, such as '127.0.0.1:8080', got {text:?}")
    })
}

/// The session sources, in the order the options are written, each
/// checked on its own so an error names its option.
fn session_sources(
    options: &ServeOptions,
    written: &Object<'_>,
) -> std::result::Result<Vec<SessionSource>, String> {
    let keys = written.get_property_names().and_then(|names| {
        let len = names.get_array_length()?;
        (0..len).map(|i| names.get_element::<String>(i)).collect::<Result<Vec<String>>>()
    });
    let keys = keys.map_err(|e| format!("cannot read the serve options: {}", e.reason))?;
    let mut sources = Vec::new();
    for key in keys.iter().filter(|k| SESSION_OPTIONS.contains(&k.as_str())) {
        let (given, make): (&Names, fn(String) -> SessionSource) = match key.as_str() {
            "sessionHeader" => (&options.session_header, SessionSource::Header),
            "sessionCookie" => (&options.session_cookie, SessionSource::Cookie),
            "sessionQuery" => (&options.session_query, SessionSource::Query),
            _ => (&options.session_path_prefix, SessionSource::PathPrefix),
        };
        let names = match given {
            None => continue,
            Some(Either::A(one)) => vec![one.clone()],
            Some(Either::B(list)) if list.is_empty() => {
                return Err(format!("{key} must name at least one {}", what(key)));
            }
            Some(Either::B(list)) => list.clone(),
        };
        for name in names {
            let source = make(name);
            let alone = ProxyConfig { session_sources: vec![source.clone()], ..ProxyConfig::default() };
            alone.validate().map_err(|e| e.message().replace("session_sources", key))?;
            sources.push(source);
        }
    }
    Ok(sources)
}

fn what(key: &str) -> &'static str {
    match key {
        "sessionHeader" => "header",
        "sessionCookie" => "cookie",
        "sessionQuery" => "query parameter",
        _ => "path prefix",
    }
}
