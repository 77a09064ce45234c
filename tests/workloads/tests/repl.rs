//! A per-session Python REPL (examples/repl/repl_worker.py): variables
//! live as long as the session, in that session only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use herd_core::{Pool, PoolConfig, ProcessFactory};

fn eval(addr: SocketAddr, source: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST /eval HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{source}",
        source.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn repl_pool() -> Pool {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/repl/repl_worker.py");
    let factory = ProcessFactory::new("python3", [script]).health_path("/health");
    Pool::new(factory, PoolConfig { min: 0, max: 3, reuse: false, ..Default::default() }).unwrap()
}

#[test]
fn variables_persist_within_a_session_only_and_vanish_when_it_ends() {
    let pool = repl_pool();
    let alice = pool.acquire_blocking("alice", None).unwrap();
    assert_eq!(
        eval(alice.address().unwrap(), "x = 41\ndef greet(n):\n    return f'hi {n}'"),
        (200, String::new())
    );
    assert_eq!(eval(alice.address().unwrap(), "x + 1"), (200, "42\n".into()));
    drop(alice);

    // Later, the same session: still there.
    let alice = pool.acquire_blocking("alice", None).unwrap();
    assert_eq!(eval(alice.address().unwrap(), "greet('alice')").1, "'hi alice'\n");

    // Another session has its own, empty namespace.
    let bob = pool.acquire_blocking("bob", None).unwrap();
    let (status, body) = eval(bob.address().unwrap(), "x");
    assert_eq!(status, 400);
    assert!(body.contains("NameError"), "{body}");
    drop((alice, bob));

    // With reuse = false, ending the session ends the interpreter.
    assert!(pool.end_session("alice").unwrap());
    let alice = pool.acquire_blocking("alice", None).unwrap();
    let (status, body) = eval(alice.address().unwrap(), "x");
    assert_eq!(status, 400, "x vanished with the old session: {body}");
    drop(alice);
    pool.shutdown_blocking(Duration::from_secs(5));
}
