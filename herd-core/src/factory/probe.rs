//! Readiness and health probes: an HTTP GET that must answer 2xx, or a
//! plain TCP connect.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How herd decides a worker is ready (and, later, healthy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// `GET path` on the worker's port answers with any 2xx status.
    Http {
        /// Request path, starting with `/`. Default `/health`.
        path: String,
    },
    /// A TCP connection to the worker's port succeeds (non-HTTP workers).
    Tcp,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness::Http { path: "/health".to_string() }
    }
}

/// One probe, bounded by `timeout`. The error says what failed.
pub(crate) async fn probe(addr: SocketAddr, readiness: &Readiness, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, probe_once(addr, readiness)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer from {addr} within {timeout:?}")),
    }
}

async fn probe_once(addr: SocketAddr, readiness: &Readiness) -> Result<(), String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect to {addr}: {e}"))?;
    let path = match readiness {
        Readiness::Tcp => return Ok(()),
        Readiness::Http { path } => path,
    };
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = http::Request::get(path.as_str())
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("bad health path {path:?}: {e}"))?;
    let result = sender.send_request(request).await;
    conn.abort();
    let response = result.map_err(|e| format!("GET {path} on {addr}: {e}"))?;
    let status = response.status();
    if status.is_success() { Ok(()) } else { Err(format!("GET {path} on {addr} answered {status}")) }
}
