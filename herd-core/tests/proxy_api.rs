//! The proxy's Rust API: `Proxy::serve` inside an async runtime,
//! `Proxy::start` and `stop_blocking` from plain threads (as the C, Python
//! and Node bindings call them), graceful stops, and configuration errors.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use herd_core::{ErrorKind, Pool, Proxy, ProxyConfig, SessionSource};

fn free_config() -> ProxyConfig {
    ProxyConfig { listen: "127.0.0.1:0".parse().unwrap(), ..Default::default() }
}

/// GET `path` through the proxy with a session header; (status, body).
fn through(proxy: &Proxy, session: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(proxy.local_addr()).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nX-Session-ID: {session}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

#[test]
fn start_and_stop_blocking_from_plain_threads() {
    let pool = Pool::new(demo_factory(), config(1, 4)).unwrap();
    let proxy = Proxy::start(&pool, free_config()).unwrap();
    assert_ne!(proxy.local_addr().port(), 0);
    assert_eq!(proxy.admin_addr(), None);
    let (status, body) = through(&proxy, "alice", "/");
    assert_eq!(status, 200, "{body}");
    let lease = pool.acquire_blocking("alice", None).unwrap();
    assert!(body.contains(&format!("\"pid\":{}", lease.pid().unwrap())), "{body}");
    drop(lease);
    proxy.stop_blocking(Duration::from_secs(1));
    assert!(TcpStream::connect(proxy.local_addr()).is_err(), "stopped: nothing listens");
    assert!(!pool.is_closed(), "stopping the proxy leaves the pool running");
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn serve_in_an_async_runtime_and_stop_gracefully() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let pool = Pool::new(demo_factory(), config(1, 2)).unwrap();
        let proxy = Proxy::serve(
            pool.clone(),
            ProxyConfig {
                session_sources: vec![SessionSource::Query("s".into())],
                admin_listen: Some("127.0.0.1:0".parse().unwrap()),
                ..free_config()
            },
        )
        .await
        .unwrap();
        assert!(proxy.admin_addr().is_some());
        let addr = proxy.local_addr();
        // A slow request in flight when the stop begins still completes.
        let slow = tokio::task::spawn_blocking(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            write!(s, "GET /sleep?ms=500&s=bob HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut head = [0u8; 12];
            s.read_exact(&mut head).unwrap();
            String::from_utf8_lossy(&head).into_owned()
        });
        let watcher = pool.clone();
        tokio::task::spawn_blocking(move || {
            wait_until("the slow request holds a lease", Duration::from_secs(10), || {
                watcher.stats().open_leases == 1
            })
        })
        .await
        .unwrap();
        proxy.stop(Duration::from_secs(5)).await;
        assert_eq!(slow.await.unwrap(), "HTTP/1.1 200");
        assert!(TcpStream::connect(addr).is_err());
        pool.shutdown(Duration::from_secs(2)).await;
    });
}

#[test]
fn bad_configs_and_busy_addresses_are_reported() {
    let pool = Pool::new(demo_factory(), config(0, 1)).unwrap();
    let err = Proxy::start(&pool, ProxyConfig { session_sources: vec![], ..free_config() }).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.message().contains("session_sources"), "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = Proxy::start(&pool, ProxyConfig { listen: taken.local_addr().unwrap(), ..free_config() })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().contains(&taken.local_addr().unwrap().to_string()), "{err}");

    pool.shutdown_blocking(Duration::from_secs(2));
    let err = Proxy::start(&pool, free_config()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PoolClosed);
}

#[test]
fn dropping_the_proxy_stops_it() {
    let pool = Pool::new(demo_factory(), config(0, 1)).unwrap();
    let proxy = Proxy::start(&pool, ProxyConfig { threads: 2, ..free_config() }).unwrap();
    let addr = proxy.local_addr();
    assert_eq!(through(&proxy, "x", "/").0, 200);
    drop(proxy);
    wait_until("nothing listens", Duration::from_secs(5), || TcpStream::connect(addr).is_err());
    pool.shutdown_blocking(Duration::from_secs(2));
}
