//! One redis-server per session, through the acquire API (no proxy):
//! herd is not tied to HTTP.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use herd_core::{Pool, PoolConfig, ProcessFactory};

/// Sends one command in RESP and returns the reply's first line.
fn redis(addr: SocketAddr, args: &[&str]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to redis");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = format!("*{}\r\n", args.len());
    for a in args {
        request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    if let Some(len) = line.strip_prefix('$') {
        let len: i64 = len.trim().parse().unwrap();
        if len < 0 {
            return "(nil)".to_string();
        }
        let mut value = String::new();
        reader.read_line(&mut value).unwrap();
        return value.trim_end().to_string();
    }
    line.trim_end().to_string()
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn each_session_gets_its_own_redis_and_loses_it_when_the_session_ends() {
    let factory = ProcessFactory::new(
        "redis-server",
        ["--port", "{{.Port}}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    )
    .tcp_readiness();
    let config = PoolConfig { min: 0, max: 4, reuse: false, ..Default::default() };
    let pool = Pool::new(factory, config).expect("pool of redis servers");

    let alice = pool.acquire_blocking("alice", None).unwrap();
    let bob = pool.acquire_blocking("bob", None).unwrap();
    assert_ne!(alice.pid(), bob.pid());
    assert_eq!(redis(alice.address().unwrap(), &["SET", "cart", "3 apples"]), "+OK");
    assert_eq!(redis(alice.address().unwrap(), &["GET", "cart"]), "3 apples");
    assert_eq!(redis(bob.address().unwrap(), &["GET", "cart"]), "(nil)", "bob never sees alice's keys");

    // The same session reaches the same server again.
    let alice_pid = alice.pid().unwrap();
    drop(alice);
    let again = pool.acquire_blocking("alice", None).unwrap();
    assert_eq!(again.pid(), Some(alice_pid));
    assert_eq!(redis(again.address().unwrap(), &["GET", "cart"]), "3 apples");
    drop(again);

    // Ending the session (reuse = false) stops that redis-server.
    assert!(pool.end_session("alice").unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while alive(alice_pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(alice_pid), "alice's redis-server is gone");
    let fresh = pool.acquire_blocking("alice", None).unwrap();
    assert_ne!(fresh.pid(), Some(alice_pid));
    assert_eq!(redis(fresh.address().unwrap(), &["GET", "cart"]), "(nil)", "a new session starts empty");

    drop((fresh, bob));
    pool.shutdown_blocking(Duration::from_secs(5));
}
