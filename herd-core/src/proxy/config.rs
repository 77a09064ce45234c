//! How the proxy listens, finds session IDs, and bounds what clients and
//! workers may cost it.

use std::net::SocketAddr;
use std::time::Duration;

use crate::error::Error;

/// Where a request carries its session ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionSource {
    /// A request header (the default: `X-Session-ID`). The header is
    /// forwarded to the worker unchanged.
    Header(String),
    /// A cookie of this name (the value is used as sent, without quotes).
    Cookie(String),
    /// A query parameter of this name (percent-decoded; `+` is a space).
    Query(String),
    /// The first path segment after this prefix: with `"/s/"`, a request for
    /// `/s/{id}/rest?q` is session `{id}` (percent-decoded) and reaches the
    /// worker as `/rest?q`.
    PathPrefix(String),
}

impl SessionSource {
    /// How the source is described in messages: `header X-Session-ID`.
    pub fn describe(&self) -> String {
        match self {
            SessionSource::Header(name) => format!("header {name}"),
            SessionSource::Cookie(name) => format!("cookie {name}"),
            SessionSource::Query(name) => format!("query parameter {name}"),
            SessionSource::PathPrefix(prefix) => format!("path prefix {prefix}{{id}}/"),
        }
    }
}

impl Default for SessionSource {
    fn default() -> Self {
        SessionSource::Header("X-Session-ID".to_string())
    }
}

/// How a [`crate::Proxy`] serves.
///
/// Build one with [`ProxyConfig::default`] and change the fields you need;
/// [`crate::Proxy::serve`] validates it and names the first bad field.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    /// Where clients connect. Default `127.0.0.1:8080`; port 0 picks a free
    /// port (see [`crate::Proxy::local_addr`]).
    pub listen: SocketAddr,
    /// Where the session ID is looked for, in order; the first source
    /// present in a request is used. Default: the `X-Session-ID` header.
    pub session_sources: Vec<SessionSource>,
    /// How long a request for a new session waits for a worker before the
    /// client gets `503`. `None`: the pool's `acquire_timeout`.
    pub acquire_timeout: Option<Duration>,
    /// Where the admin routes (`/stats`, `/metrics`, `DELETE
    /// /sessions/{id}`) listen. Default: none (no admin listener).
    pub admin_listen: Option<SocketAddr>,
    /// The largest request head (request line and headers) accepted, in
    /// bytes; larger ones get `431`. Default 64 KiB; at least 8 KiB.
    pub max_header_bytes: usize,
    /// How long a client may take to send a request head, and how long a
    /// kept-alive client connection may stay idle. Default 30 s. The
    /// deadline is kept on a coarse clock that ticks every quarter of this
    /// time (at most every second): a connection is closed no earlier than
    /// this, and at most three ticks later (30–33 s by default). At most 1
    /// day, like every timeout here.
    pub header_read_timeout: Duration,
    /// The `Retry-After` sent with `503` (rounded up to whole seconds).
    /// Default 1 s.
    pub retry_after: Duration,
    /// How long connecting to a worker may take before the client gets
    /// `502`. Default 5 s.
    pub upstream_connect_timeout: Duration,
    /// Idle connections to a worker are not reused after this long (shorter
    /// than common servers' keep-alive timeouts, so herd does not send a
    /// request on a connection the worker is closing). Default 2 s.
    pub upstream_idle_timeout: Duration,
    /// Most idle connections kept per worker. Default 128.
    pub upstream_max_idle: usize,
    /// Forward the client's `Host` header as is (`true`), or set it to the
    /// worker's address (`false`, default: servers such as Chrome's
    /// DevTools endpoint refuse other hosts). The client's `Host` is always
    /// sent as `X-Forwarded-Host`.
    pub preserve_host: bool,
    /// When herd closes an open WebSocket (the session ended, the proxy is
    /// stopping), how long the client gets to answer the close frame before
    /// the connection is dropped. Default 2 s.
    pub websocket_close_timeout: Duration,
    /// I/O threads serving clients, each with its own listening socket and
    /// upstream connections. 0 (default): one per core, at most 4.
    pub threads: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            session_sources: vec![SessionSource::default()],
            acquire_timeout: None,
            admin_listen: None,
            max_header_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(30),
            retry_after: Duration::from_secs(1),
            upstream_connect_timeout: Duration::from_secs(5),
            upstream_idle_timeout: Duration::from_secs(2),
            upstream_max_idle: 128,
            preserve_host: false,
            websocket_close_timeout: Duration::from_secs(2),
            threads: 0,
        }
    }
}

/// hyper's floor for its read buffer, and so for the header limit.
pub(crate) const MIN_HEADER_BYTES: usize = 8 * 1024;

/// The longest timeout a proxy accepts (a day).
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

impl ProxyConfig {
    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<(), Error> {
        if self.session_sources.is_empty() {
            return Err(Error::invalid_config("session_sources must name at least one source"));
        }
        for source in &self.session_sources {
            match source {
                SessionSource::Header(name) => {
                    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        return Err(Error::invalid_config(format!(
                            "session_sources: {name:?} is not a valid header name"
                        )));
                    }
                }
                SessionSource::Cookie(name) | SessionSource::Query(name) => {
                    if name.is_empty() || name.chars().any(|c| c.is_control() || " ;=&".contains(c)) {
                        return Err(Error::invalid_config(format!(
                            "session_sources: {} needs a name without spaces, control characters, ';', '=' or '&'",
                            source.describe()
                        )));
                    }
                }
                SessionSource::PathPrefix(prefix) => {
                    if !prefix.starts_with('/')
                        || !prefix.ends_with('/')
                        || prefix.chars().any(char::is_control)
                    {
                        return Err(Error::invalid_config(format!(
                            "session_sources: path prefix {prefix:?} must start and end with '/'"
                        )));
                    }
                }
            }
        }
        if self.max_header_bytes < MIN_HEADER_BYTES {
            return Err(Error::invalid_config(format!(
                "max_header_bytes ({}) must be at least {MIN_HEADER_BYTES}",
                self.max_header_bytes
            )));
        }
        let positive = [
            ("header_read_timeout", self.header_read_timeout),
            ("upstream_connect_timeout", self.upstream_connect_timeout),
            ("upstream_idle_timeout", self.upstream_idle_timeout),
            ("websocket_close_timeout", self.websocket_close_timeout),
        ];
        for (name, value) in positive {
            if value.is_zero() {
                return Err(Error::invalid_config(format!("{name} must be greater than zero")));
            }
            // Deadlines are `Instant`s: an absurd timeout must be a clear
            // error here, not an overflow later.
            if value > MAX_TIMEOUT {
                return Err(Error::invalid_config(format!("{name} ({value:?}) must be at most 1 day")));
            }
        }
        if self.threads > 64 {
            return Err(Error::invalid_config(format!("threads ({}) must be at most 64", self.threads)));
        }
        if self.acquire_timeout.is_some_and(|d| d.is_zero()) {
            return Err(Error::invalid_config("acquire_timeout must be greater than zero when set"));
        }
        if self.admin_listen.is_some_and(|admin| admin == self.listen && admin.port() != 0) {
            return Err(Error::invalid_config(format!(
                "admin_listen ({}) must differ from listen",
                self.listen
            )));
        }
        Ok(())
    }

    /// The I/O threads to start.
    pub(crate) fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 4)
    }

    /// `Retry-After` in whole seconds, at least 1.
    pub(crate) fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        ProxyConfig::default().validate().unwrap();
    }

    #[test]
    fn names_the_bad_field() {
        let cases: Vec<(ProxyConfig, &str)> = vec![
            (ProxyConfig { session_sources: vec![], ..Default::default() }, "session_sources"),
            (
                ProxyConfig {
                    session_sources: vec![SessionSource::Header("bad header".into())],
                    ..Default::default()
                },
                "header name",
            ),
            (
                ProxyConfig {
                    session_sources: vec![SessionSource::PathPrefix("s/".into())],
                    ..Default::default()
                },
                "path prefix",
            ),
            (ProxyConfig { max_header_bytes: 100, ..Default::default() }, "max_header_bytes"),
            (
                ProxyConfig { header_read_timeout: Duration::ZERO, ..Default::default() },
                "header_read_timeout",
            ),
            (ProxyConfig { acquire_timeout: Some(Duration::ZERO), ..Default::default() }, "acquire_timeout"),
            (
                ProxyConfig { header_read_timeout: Duration::from_secs(u64::MAX), ..Default::default() },
                "header_read_timeout (",
            ),
            (
                ProxyConfig { upstream_idle_timeout: Duration::from_secs(86_401), ..Default::default() },
                "upstream_idle_timeout (86401s) must be at most 1 day",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err();
            assert!(err.message().contains(field), "{} should name {field}", err.message());
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let secs = |d| ProxyConfig { retry_after: d, ..Default::default() }.retry_after_secs();
        assert_eq!(secs(Duration::ZERO), 1);
        assert_eq!(secs(Duration::from_millis(1500)), 2);
        assert_eq!(secs(Duration::from_secs(3)), 3);
    }
}
