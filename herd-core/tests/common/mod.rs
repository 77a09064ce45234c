//! Helpers shared by herd-core's integration tests: the demo worker, a tiny
//! HTTP client, waiting for conditions, and /proc checks.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use herd_core::{Event, EventKind, Pool, PoolConfig, ProcessFactory, SessionEnd};

/// The demo worker binary built with this crate.
pub fn demo_worker() -> &'static str {
    env!("CARGO_BIN_EXE_herd-demo-worker")
}

pub fn demo_factory() -> ProcessFactory {
    ProcessFactory::new(demo_worker(), Vec::<String>::new())
}

/// A config for tests: small, quick to check health, short grace.
pub fn config(min: usize, max: usize) -> PoolConfig {
    PoolConfig {
        min,
        max,
        health_interval: Duration::from_millis(200),
        stop_grace: Duration::from_secs(2),
        acquire_timeout: Duration::from_secs(20),
        ..Default::default()
    }
}

/// A pool whose session-end events arrive on the returned channel.
pub fn pool_with_ends(factory: ProcessFactory, config: PoolConfig) -> (Pool, mpsc::Receiver<SessionEnd>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let pool = Pool::builder(factory)
        .config(config)
        .on_session_end(move |end| {
            let _ = tx.lock().unwrap().send(end.clone());
        })
        .build()
        .expect("pool");
    (pool, rx)
}

/// A pool whose events all arrive on the returned channel.
pub fn pool_with_events(factory: ProcessFactory, config: PoolConfig) -> (Pool, mpsc::Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let pool = Pool::builder(factory)
        .config(config)
        .lease_events(true)
        .on_event(move |e| {
            let _ = tx.lock().unwrap().send(e.clone());
        })
        .build()
        .expect("pool");
    (pool, rx)
}

/// Waits for an event matching `pred`, up to `timeout`.
pub fn wait_event(rx: &mpsc::Receiver<Event>, timeout: Duration, pred: impl Fn(&EventKind) -> bool) -> Event {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(e) if pred(&e.kind) => return e,
            Ok(_) => {}
            Err(_) => panic!("no matching event within {timeout:?}"),
        }
    }
}

/// Polls `cond` every 5 ms until it holds; panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A minimal HTTP/1.1 request; returns (status, body).
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {text:?}")))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    // Strip chunked framing if present (small bodies only).
    let body = if text.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = String::new();
        let mut rest = body.as_str();
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&after[..n.min(after.len())]);
            rest = after.get(n + 2..).unwrap_or("");
        }
        out
    } else {
        body
    };
    Ok((status, body))
}

pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(addr, "GET", path, b"").unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"))
}

/// The demo worker's identity: (pid it reports, worker id).
pub fn identity(addr: SocketAddr) -> (u32, String) {
    let (status, body) = get(addr, "/");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    (v["pid"].as_u64().unwrap() as u32, v["worker_id"].as_str().unwrap().to_string())
}

/// Whether a process exists at all (a zombie counts as existing).
pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether a process exists and is not a zombie.
pub fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')).unwrap_or(false),
        Err(_) => false,
    }
}

pub fn kill(pid: u32, signal: i32) {
    unsafe { libc::kill(pid as i32, signal) };
}

/// Every PID whose parent chain includes `root` (root excluded).
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            let Some((_, rest)) = stat.rsplit_once(") ") else { continue };
            let ppid: u32 = rest.split(' ').nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
            parents.push((pid, ppid));
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid) in &parents {
            if ppid == p && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}
