//! The gateway from Rust: a pool of demo workers behind `Proxy`, three
//! requests through it, then a graceful stop.
//!
//! Run: `cargo run --release -p herd-examples --bin gateway`

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use herd_core::{Pool, PoolConfig, Proxy, ProxyConfig, SessionSource, demo};

/// `GET /` through the gateway as `session`; returns the worker's answer.
fn get(gateway: SocketAddr, session: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(gateway)?;
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {gateway}\r\nX-Session-ID: {session}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or(response))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // This binary doubles as the demo worker (`gateway demo-worker`).
    demo::run_if_requested();

    let pool = Pool::new(demo::embedded_factory()?, PoolConfig { min: 1, max: 4, ..Default::default() })?;
    pool.wait_ready_blocking(Duration::from_secs(10))?;
    let proxy = Proxy::start(
        &pool,
        ProxyConfig {
            listen: "127.0.0.1:0".parse()?,
            session_sources: vec![SessionSource::Header("X-Session-ID".into())],
            ..Default::default()
        },
    )?;
    println!("gateway on http://{}", proxy.local_addr());
    for session in ["alice", "bob", "alice"] {
        println!("{session:<6} → {}", get(proxy.local_addr(), session)?);
    }
    proxy.stop_blocking(Duration::from_secs(5));
    pool.shutdown_blocking(Duration::from_secs(5));
    println!("stopped: every worker process is gone.");
    Ok(())
}
