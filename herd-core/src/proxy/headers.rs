//! Header rewriting between client and worker: hop-by-hop headers are
//! removed in both directions (RFC 9110 §7.6.1: `Connection` and every
//! header it names, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`,
//! `Transfer-Encoding`, `Upgrade`), and requests get `X-Forwarded-For`,
//! `-Proto` and `-Host`.
//!
//! An upgrade request keeps its meaning: `Connection: upgrade` and its
//! `Upgrade` value are put back after stripping, so the worker sees a
//! plain upgrade request.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue, header};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Removes hop-by-hop headers, including those `Connection` names.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
        headers.remove(header::CONNECTION);
    }
    for name in [
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
    ] {
        if headers.contains_key(name) {
            headers.remove(name);
        }
    }
}

/// The `Upgrade` value of an HTTP/1.1 upgrade request (`Connection:
/// upgrade` plus `Upgrade: proto`), if it is one.
pub(crate) fn upgrade_of(headers: &HeaderMap) -> Option<HeaderValue> {
    let upgrade = headers.get(header::UPGRADE)?;
    let wants = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    wants.then(|| upgrade.clone())
}

/// Puts an upgrade back after [`strip_hop_by_hop`].
pub(crate) fn restore_upgrade(headers: &mut HeaderMap, upgrade: HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, upgrade);
}

/// What the proxy knows about the client connection a request came on.
#[derive(Debug, Clone)]
pub(crate) struct ClientInfo {
    pub ip: IpAddr,
    /// `ip` as a header value, made once per connection.
    pub ip_header: HeaderValue,
}

impl ClientInfo {
    pub(crate) fn new(ip: IpAddr) -> ClientInfo {
        let ip_header = HeaderValue::from_str(&ip.to_string()).unwrap_or(HeaderValue::from_static("unknown"));
        ClientInfo { ip, ip_header }
    }
}

/// Adds `X-Forwarded-For` (appended to any list the client sent),
/// `X-Forwarded-Proto: http` and `X-Forwarded-Host` (the client's `Host`),
/// then points `Host` at the worker unless `preserve_host`.
pub(crate) fn add_forwarded(
    headers: &mut HeaderMap,
    client: &ClientInfo,
    worker_host: &HeaderValue,
    preserve_host: bool,
) {
    let forwarded_for = match headers.get(&X_FORWARDED_FOR).map(|v| v.as_bytes()) {
        Some(earlier) if !earlier.is_empty() => {
            let mut list = Vec::with_capacity(earlier.len() + 2 + client.ip_header.len());
            list.extend_from_slice(earlier);
            list.extend_from_slice(b", ");
            list.extend_from_slice(client.ip_header.as_bytes());
            HeaderValue::from_bytes(&list).unwrap_or_else(|_| client.ip_header.clone())
        }
        _ => client.ip_header.clone(),
    };
    headers.insert(X_FORWARDED_FOR.clone(), forwarded_for);
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    match headers.get(header::HOST).cloned() {
        Some(host) => {
            headers.insert(X_FORWARDED_HOST.clone(), host);
        }
        None => {
            headers.remove(&X_FORWARDED_HOST);
        }
    }
    if !preserve_host || !headers.contains_key(header::HOST) {
        headers.insert(header::HOST, worker_host.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("proxy-connection", "keep-alive"),
            ("upgrade", "h2c"),
            ("trailer", "x"),
            ("x-kept", "yes"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-kept"], "yes");
    }

    #[test]
    fn recognises_upgrades() {
        assert!(
            upgrade_of(&map(&[("connection", "keep-alive, Upgrade"), ("upgrade", "websocket")])).is_some()
        );
        assert!(upgrade_of(&map(&[("upgrade", "websocket")])).is_none());
        assert!(upgrade_of(&map(&[("connection", "upgrade")])).is_none());
    }

    #[test]
    fn adds_forwarded_headers_and_points_host_at_the_worker() {
        let client = ClientInfo::new("10.0.0.7".parse().unwrap());
        let worker = HeaderValue::from_static("127.0.0.1:4000");
        let mut h = map(&[("host", "gw.example"), ("x-forwarded-for", "1.2.3.4")]);
        add_forwarded(&mut h, &client, &worker, false);
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.0.0.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "gw.example");
        assert_eq!(h["host"], "127.0.0.1:4000");
        let mut h = map(&[("host", "gw.example")]);
        add_forwarded(&mut h, &client, &worker, true);
        assert_eq!(h["host"], "gw.example");
        assert_eq!(h["x-forwarded-for"], "10.0.0.7");
    }
}
