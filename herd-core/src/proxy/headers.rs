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

/// How a client's request head is rewritten for the worker, applied while
/// the head is written ([`write_fields`](RequestRewrite::write_fields) and
/// [`forwarded`](RequestRewrite::forwarded)), so the request's header map is
/// never edited:
///
/// * hop-by-hop headers are dropped, and so is every header `Connection`
///   names; an upgrade request gets `Connection: upgrade` and its
///   `Upgrade` value back;
/// * `X-Forwarded-For` lists whatever the client sent, then the client's
///   address; `X-Forwarded-Proto: http`; `X-Forwarded-Host` is the
///   client's `Host` (dropped when there is none);
/// * `Host` is the worker's address, unless `preserve_host` and the client
///   sent one;
/// * `Content-Length` and `Transfer-Encoding` are the writer's to set (the
///   body's framing to the worker).
pub(crate) struct RequestRewrite<'a> {
    headers: &'a HeaderMap,
    client: &'a ClientInfo,
    host: &'a HeaderValue,
    /// The client's `Host`, for `X-Forwarded-Host`.
    client_host: Option<&'a HeaderValue>,
    upgrade: Option<&'a HeaderValue>,
    /// The headers `Connection` names (rarely any).
    named: Vec<HeaderName>,
}

impl<'a> RequestRewrite<'a> {
    pub(crate) fn new(
        headers: &'a HeaderMap,
        client: &'a ClientInfo,
        worker_host: &'a HeaderValue,
        preserve_host: bool,
        upgrade: Option<&'a HeaderValue>,
    ) -> RequestRewrite<'a> {
        // `keep-alive`, `upgrade` (already dropped) and `close` (no header)
        // are the usual tokens: they cost no allocation.
        let named = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !["keep-alive", "upgrade", "close", ""].iter().any(|u| t.eq_ignore_ascii_case(u)))
            .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
            .collect();
        let client_host = headers.get(header::HOST);
        let host = match client_host {
            Some(host) if preserve_host => host,
            _ => worker_host,
        };
        RequestRewrite { headers, client, host, client_host, upgrade, named }
    }

    /// Whether the client's header `name` goes to the worker as it is.
    pub(crate) fn forwarded(&self, name: &HeaderName) -> bool {
        const REPLACED: [&HeaderName; 10] = [
            &header::CONNECTION,
            &header::TE,
            &header::TRAILER,
            &header::TRANSFER_ENCODING,
            &header::UPGRADE,
            &header::HOST,
            &header::CONTENT_LENGTH,
            &KEEP_ALIVE,
            &PROXY_CONNECTION,
            &X_FORWARDED_FOR,
        ];
        !(REPLACED.contains(&name)
            || *name == X_FORWARDED_PROTO
            || *name == X_FORWARDED_HOST
            || self.named.contains(name))
    }

    /// Writes the header lines herd sets (`Host` first): one `name: value`
    /// line each, CRLF-terminated.
    pub(crate) fn write_fields(&self, out: &mut Vec<u8>) {
        line(out, b"host", self.host.as_bytes());
        out.extend_from_slice(b"x-forwarded-for: ");
        for earlier in self.headers.get_all(&X_FORWARDED_FOR) {
            let earlier = earlier.as_bytes().trim_ascii();
            if !earlier.is_empty() {
                out.extend_from_slice(earlier);
                out.extend_from_slice(b", ");
            }
        }
        out.extend_from_slice(self.client.ip_header.as_bytes());
        out.extend_from_slice(b"\r\n");
        line(out, b"x-forwarded-proto", b"http");
        if let Some(host) = self.client_host {
            line(out, b"x-forwarded-host", host.as_bytes());
        }
        if let Some(upgrade) = self.upgrade {
            line(out, b"connection", b"upgrade");
            line(out, b"upgrade", upgrade.as_bytes());
        }
    }
}

/// Appends one `name: value` header line.
pub(crate) fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
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

    /// The head written for `pairs` (sent by a client at 10.0.0.7) to
    /// the worker at 127.0.0.1:4000.
    fn rewritten(pairs: &[(&str, &str)], preserve_host: bool) -> String {
        let headers = map(pairs);
        let client = ClientInfo::new("10.0.0.7".parse().unwrap());
        let worker = HeaderValue::from_static("127.0.0.1:4000");
        let upgrade = upgrade_of(&headers);
        let rewrite = RequestRewrite::new(&headers, &client, &worker, preserve_host, upgrade.as_ref());
        let mut out = Vec::new();
        rewrite.write_fields(&mut out);
        for (name, value) in &headers {
            if rewrite.forwarded(name) {
                line(&mut out, name.as_str().as_bytes(), value.as_bytes());
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let head = rewritten(
            &[
                ("connection", "keep-alive, X-Secret"),
                ("x-secret", "1"),
                ("keep-alive", "timeout=5"),
                ("te", "trailers"),
                ("transfer-encoding", "chunked"),
                ("content-length", "12"),
                ("proxy-connection", "keep-alive"),
                ("upgrade", "h2c"),
                ("trailer", "x"),
                ("x-kept", "yes"),
            ],
            false,
        );
        assert_eq!(
            head,
            "host: 127.0.0.1:4000\r\nx-forwarded-for: 10.0.0.7\r\nx-forwarded-proto: http\r\nx-kept: yes\r\n"
        );
    }

    #[test]
    fn recognises_upgrades() {
        assert!(
            upgrade_of(&map(&[("connection", "keep-alive, Upgrade"), ("upgrade", "websocket")])).is_some()
        );
        assert!(upgrade_of(&map(&[("upgrade", "websocket")])).is_none());
        assert!(upgrade_of(&map(&[("connection", "upgrade")])).is_none());
        let head = rewritten(&[("connection", "keep-alive, Upgrade"), ("upgrade", "websocket")], false);
        assert!(head.ends_with("connection: upgrade\r\nupgrade: websocket\r\n"), "{head}");
    }

    #[test]
    fn adds_forwarded_headers_and_points_host_at_the_worker() {
        let sent = [
            ("host", "gw.example"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "5.6.7.8"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "spoofed"),
        ];
        assert_eq!(
            rewritten(&sent, false),
            "host: 127.0.0.1:4000\r\nx-forwarded-for: 1.2.3.4, 5.6.7.8, 10.0.0.7\r\n\
             x-forwarded-proto: http\r\nx-forwarded-host: gw.example\r\n"
        );
        assert!(rewritten(&sent, true).starts_with("host: gw.example\r\n"), "preserve_host");
        assert_eq!(
            rewritten(&[("x-forwarded-host", "spoofed")], true),
            "host: 127.0.0.1:4000\r\nx-forwarded-for: 10.0.0.7\r\nx-forwarded-proto: http\r\n",
            "no Host: the worker's, and no X-Forwarded-Host"
        );
    }
}
