//! Readiness and health probes: an HTTP GET that must answer 2xx, or a
//! plain TCP connect.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    let mut stream = TcpStream::connect(addr).await.map_err(|e| format!("connect to {addr}: {e}"))?;
    let path = match readiness {
        Readiness::Tcp => return Ok(()),
        Readiness::Http { path } => path,
    };
    let _ = stream.set_nodelay(true);
    // One small request on a fresh connection: cheaper than a client with
    // a connection task, and this runs every few hundred microseconds
    // while a worker starts.
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: herd-probe\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| format!("GET {path} on {addr}: {e}"))?;
    let mut buf = [0u8; 1024];
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).await.map_err(|e| format!("GET {path} on {addr}: {e}"))?;
        if n == 0 {
            return Err(format!("GET {path} on {addr}: connection closed before a response"));
        }
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf[..filled]) {
            Ok(httparse::Status::Complete(_)) | Ok(httparse::Status::Partial) if response.code.is_some() => {
                let code = response.code.unwrap_or(0);
                return if (200..300).contains(&code) {
                    Ok(())
                } else {
                    Err(format!("GET {path} on {addr} answered {code}"))
                };
            }
            Ok(_) if filled < buf.len() => continue,
            Ok(_) => return Err(format!("GET {path} on {addr}: response head too large")),
            Err(e) => return Err(format!("GET {path} on {addr}: malformed response: {e}")),
        }
    }
}
