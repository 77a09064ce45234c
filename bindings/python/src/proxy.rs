//! `pool.serve(...)` → `Proxy`: herd's HTTP/WebSocket gateway in front of a
//! pool, running on herd's own threads.

use std::net::{SocketAddr, ToSocketAddrs};

use herd_core::{ProxyConfig, SessionSource};
use parking_lot::Mutex;
use pyo3::prelude::*;

use crate::config::{opt_seconds, seconds};
use crate::errors::{IntoPyResult, invalid_config};

/// A running gateway, from ``pool.serve(...)``.
///
/// Each request's session ID (a header, a cookie, a query parameter or a
/// path prefix) selects its worker; the request is a lease until its
/// response body has been sent, and a WebSocket is one while it is open.
/// The proxy is a context manager: leaving the block stops it (the pool
/// keeps running). Stop the proxy before shutting the pool down.
#[pyclass(frozen, module = "herd._herd")]
pub struct Proxy {
    proxy: Mutex<Option<herd_core::Proxy>>,
    address: SocketAddr,
    admin: Option<SocketAddr>,
}

/// The settings of `Pool.serve`, in Python units.
pub(crate) struct ServeOptions {
    pub listen: String,
    pub session_header: Option<String>,
    pub session_cookie: Option<String>,
    pub session_query: Option<String>,
    pub session_path_prefix: Option<String>,
    pub acquire_timeout: Option<f64>,
    pub admin_listen: Option<String>,
    pub preserve_host: bool,
    pub threads: usize,
    pub max_header_bytes: usize,
    pub header_read_timeout: f64,
    pub retry_after: f64,
    pub upstream_connect_timeout: f64,
    pub upstream_idle_timeout: f64,
    pub upstream_max_idle: usize,
    pub websocket_close_timeout: f64,
}

fn address(py: Python<'_>, name: &str, value: &str) -> PyResult<SocketAddr> {
    let mut addrs = value.to_socket_addrs().map_err(|e| {
        invalid_config(py, format!("{name} {value:?} is not an address like 127.0.0.1:8080 ({e})"))
    })?;
    addrs.next().ok_or_else(|| invalid_config(py, format!("{name} {value:?} resolves to no address")))
}

impl ServeOptions {
    fn build(self, py: Python<'_>) -> PyResult<ProxyConfig> {
        let sources = [
            self.session_header.map(SessionSource::Header),
            self.session_cookie.map(SessionSource::Cookie),
            self.session_query.map(SessionSource::Query),
            self.session_path_prefix.map(SessionSource::PathPrefix),
        ];
        Ok(ProxyConfig {
            listen: address(py, "listen", &self.listen)?,
            session_sources: sources.into_iter().flatten().collect(),
            acquire_timeout: opt_seconds(py, "acquire_timeout", self.acquire_timeout)?,
            admin_listen: self.admin_listen.map(|a| address(py, "admin_listen", &a)).transpose()?,
            max_header_bytes: self.max_header_bytes,
            header_read_timeout: seconds(py, "header_read_timeout", self.header_read_timeout)?,
            retry_after: seconds(py, "retry_after", self.retry_after)?,
            upstream_connect_timeout: seconds(py, "upstream_connect_timeout", self.upstream_connect_timeout)?,
            upstream_idle_timeout: seconds(py, "upstream_idle_timeout", self.upstream_idle_timeout)?,
            upstream_max_idle: self.upstream_max_idle,
            preserve_host: self.preserve_host,
            websocket_close_timeout: seconds(py, "websocket_close_timeout", self.websocket_close_timeout)?,
            threads: self.threads,
        })
    }
}

/// Starts a gateway in front of `pool`.
pub(crate) fn start(py: Python<'_>, pool: &herd_core::Pool, options: ServeOptions) -> PyResult<Proxy> {
    let config = options.build(py)?;
    let proxy = py.detach(|| herd_core::Proxy::start(pool, config)).py_result(py)?;
    Ok(Proxy { address: proxy.local_addr(), admin: proxy.admin_addr(), proxy: Mutex::new(Some(proxy)) })
}

#[pymethods]
impl Proxy {
    /// Where clients connect: ``"127.0.0.1:PORT"``.
    #[getter]
    fn address(&self) -> String {
        self.address.to_string()
    }

    /// The port clients connect to (useful with ``listen="127.0.0.1:0"``).
    #[getter]
    fn port(&self) -> u16 {
        self.address.port()
    }

    /// ``"http://127.0.0.1:PORT"``.
    #[getter]
    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Where the admin routes listen (``GET /stats``, ``GET /metrics``,
    /// ``DELETE /sessions/{id}``), if ``admin_listen`` was given.
    #[getter]
    fn admin_address(&self) -> Option<String> {
        self.admin.map(|a| a.to_string())
    }

    /// Whether ``stop()`` was called.
    #[getter]
    fn stopped(&self) -> bool {
        self.proxy.lock().is_none()
    }

    /// Stops accepting connections; requests in flight get up to ``grace``
    /// seconds to finish and open WebSockets get a close frame; the rest is
    /// dropped. Returns when the proxy is stopped. The pool keeps running.
    /// Calling it again does nothing.
    #[pyo3(signature = (grace = 5.0))]
    fn stop(&self, py: Python<'_>, grace: f64) -> PyResult<()> {
        let grace = seconds(py, "grace", grace)?;
        let Some(proxy) = self.proxy.lock().take() else { return Ok(()) };
        py.detach(move || {
            proxy.stop_blocking(grace);
            drop(proxy);
        });
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        self.stop(py, 5.0)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("<herd.Proxy {}{}>", self.url(), if self.stopped() { " stopped" } else { "" })
    }
}

impl Drop for Proxy {
    /// An unstopped proxy is stopped at once when garbage collected.
    fn drop(&mut self) {
        if let Some(proxy) = self.proxy.get_mut().take() {
            Python::attach(|py| py.detach(move || drop(proxy)));
        }
    }
}
