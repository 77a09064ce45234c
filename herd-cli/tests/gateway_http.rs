//! The gateway over plain HTTP: affinity, where session IDs come from,
//! header rewriting, error statuses and the admin routes — against a real
//! `herd serve` process and real demo workers.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn the_same_session_reaches_the_same_worker_and_other_sessions_other_workers() {
    let gw = Gateway::demo(&["--min", "0", "--max", "4"]);
    let alice = gw.get("alice", "/").json();
    let bob = gw.get("bob", "/").json();
    assert_eq!(gw.get("alice", "/").json()["pid"], alice["pid"]);
    assert_eq!(gw.get("bob", "/").json()["pid"], bob["pid"]);
    assert_ne!(alice["pid"], bob["pid"]);
    // State stays with its session and never leaks to another.
    let put = request(gw.addr, "PUT", "/kv/secret", &[("X-Session-ID", "alice")], b"alice's");
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(gw.get("alice", "/kv/secret").text(), "alice's");
    assert_eq!(gw.get("bob", "/kv/secret").status, 404);
}

#[test]
fn each_session_source_finds_the_session_in_the_order_given() {
    let gw = Gateway::demo(&[
        "--min",
        "0",
        "--session-query",
        "session",
        "--session-header",
        "X-Tenant",
        "--session-cookie",
        "sid",
        "--session-path-prefix",
    ]);
    let by_header = request(gw.addr, "GET", "/", &[("X-Tenant", "t1")], b"").json();
    let by_cookie = request(gw.addr, "GET", "/", &[("Cookie", "theme=dark; sid=t1")], b"").json();
    let by_query = request(gw.addr, "GET", "/?session=t1", &[], b"").json();
    let by_path = request(gw.addr, "GET", "/s/t1/", &[], b"").json();
    for other in [&by_cookie, &by_query, &by_path] {
        assert_eq!(other["pid"], by_header["pid"], "every source names session t1");
    }
    // The path prefix is stripped before forwarding; the query is kept.
    let seen = request(gw.addr, "GET", "/s/t1/headers?x=1", &[], b"").json();
    assert_eq!(seen["path"], "/headers?x=1");
    // The query parameter comes first on the command line, so it wins.
    let other = request(gw.addr, "GET", "/?session=t2", &[("X-Tenant", "t1")], b"").json();
    assert_ne!(other["pid"], by_header["pid"]);
    // Percent-encoding is decoded: the same session as t1.
    assert_eq!(request(gw.addr, "GET", "/?session=%741", &[], b"").json()["pid"], by_header["pid"]);
}

#[test]
fn hop_by_hop_headers_are_dropped_and_forwarded_headers_added() {
    let gw = Gateway::demo(&["--min", "1"]);
    let seen = request(
        gw.addr,
        "GET",
        "/headers",
        &[
            ("X-Session-ID", "h"),
            ("Connection", "close, X-Private"),
            ("X-Private", "hop"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("X-Forwarded-For", "10.1.2.3"),
            ("X-Kept", "end-to-end"),
        ],
        b"",
    )
    .json();
    let h = &seen["headers"];
    for gone in ["x-private", "keep-alive", "proxy-connection"] {
        assert!(h.get(gone).is_none(), "{gone} must not reach the worker: {h}");
    }
    assert_eq!(h["x-kept"], "end-to-end");
    assert_eq!(h["x-forwarded-for"], "10.1.2.3, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], gw.addr.to_string());
    assert_ne!(h["host"], gw.addr.to_string(), "Host points at the worker");
}

#[test]
fn missing_or_invalid_session_ids_get_400() {
    let gw = Gateway::demo(&["--min", "0", "--session-header", "X-Session-ID", "--session-query", "s"]);
    let missing = request(gw.addr, "GET", "/", &[], b"");
    assert_eq!(missing.status, 400);
    assert!(missing.text().contains("X-Session-ID"), "{}", missing.text());
    let long = "x".repeat(257);
    for (path, headers) in [
        ("/", vec![("X-Session-ID", "")]),
        ("/", vec![("X-Session-ID", long.as_str())]),
        ("/?s=a%0Ab", vec![]),
        ("/?s=%FF", vec![]),
    ] {
        let resp = request(gw.addr, "GET", path, &headers, b"");
        assert_eq!(resp.status, 400, "{path} {headers:?}: {}", resp.text());
        assert!(resp.text().starts_with("invalid session ID"), "{}", resp.text());
    }
    assert_eq!(gw.stats()["counters"]["sessions_bound"], 0, "no worker was bound for a bad request");
}

#[test]
fn no_worker_in_time_or_a_full_queue_gets_503_with_retry_after() {
    let gw =
        Gateway::demo(&["--min", "0", "--max", "1", "--acquire-timeout", "300ms", "--retry-after", "3s"]);
    assert_eq!(gw.get("holder", "/").status, 200);
    let late = gw.get("latecomer", "/");
    assert_eq!(late.status, 503, "{}", late.text());
    assert_eq!(late.header("retry-after"), Some("3"));
    assert_eq!(gw.stats()["counters"]["acquire_timeouts"], 1);

    let full = Gateway::demo(&["--min", "0", "--max", "1", "--max-queue", "0"]);
    assert_eq!(full.get("holder", "/").status, 200);
    let refused = full.get("latecomer", "/");
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.header("retry-after").is_some());
    assert!(refused.text().contains("queue is full"), "{}", refused.text());
}

#[test]
fn a_worker_that_dies_mid_request_gets_502_and_the_session_a_new_worker() {
    let gw = Gateway::demo(&["--min", "0"]);
    let first = gw.get("fragile", "/").json()["pid"].as_u64().unwrap();
    let crashed = gw.get("fragile", "/crash?code=9");
    assert_eq!(crashed.status, 502, "{}", crashed.text());
    // The pool ends the crashed session; the next request gets a fresh worker.
    wait_until("the crash is noticed", Duration::from_secs(10), || {
        gw.stats()["counters"]["sessions_ended"]["crashed"] == 1
    });
    let next = gw.get("fragile", "/");
    assert_eq!(next.status, 200, "{}", next.text());
    assert_ne!(next.json()["pid"].as_u64().unwrap(), first);
}

#[test]
fn a_worker_that_refuses_connections_gets_502() {
    // A "worker" whose readiness is a TCP connect to a port it then closes.
    let gw = Gateway::start(&[
        "serve",
        "--min",
        "0",
        "--readiness",
        "tcp",
        "--upstream-connect-timeout",
        "2s",
        "--",
        "python3",
        "-c",
        "import socket,os,sys,time\n\
         s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('127.0.0.1', int(os.environ['PORT']))); s.listen(1)\n\
         c,_=s.accept(); c.close(); s.close()\n\
         time.sleep(600)",
    ]);
    let resp = gw.get("nobody-home", "/");
    assert_eq!(resp.status, 502, "{}", resp.text());
}

#[test]
fn oversized_request_heads_get_431_and_slow_heads_are_cut_off() {
    let gw = Gateway::demo(&["--min", "0", "--max-header-bytes", "16384", "--header-read-timeout", "500ms"]);
    let big = "y".repeat(20_000);
    let resp = request(gw.addr, "GET", "/", &[("X-Session-ID", "a"), ("X-Big", &big)], b"");
    assert_eq!(resp.status, 431);
    // A client that never finishes its head is disconnected, and not
    // before its 500 ms are up (the deadline is kept on a coarse clock).
    let started = Instant::now();
    let mut slow = TcpStream::connect(gw.addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nX-Session-ID: slow\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let closed = slow.read_to_end(&mut buf);
    assert!(closed.is_ok(), "herd must close a connection whose head never completes: {closed:?}");
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"), "{}", String::from_utf8_lossy(&buf));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(500), "cut off after {waited:?}, before the 500 ms timeout");
}

#[test]
fn admin_routes_report_stats_and_metrics_and_end_sessions() {
    let gw = Gateway::demo(&["--min", "0"]);
    let pid = gw.get("secret-session-name", "/").json()["pid"].as_u64().unwrap();
    assert_eq!(gw.get("nobody", "/nope").status, 404);

    let stats = gw.stats();
    assert_eq!(stats["sessions"], 2);
    let row = stats["worker_rows"].as_array().unwrap().iter().find(|r| r["pid"] == pid).unwrap().clone();
    assert_eq!(row["session"], "secret-session-name");

    let metrics = request(gw.admin, "GET", "/metrics", &[], b"");
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = metrics.text();
    for line in [
        "herd_proxy_responses_total{code=\"200\"} 1",
        "herd_proxy_responses_total{code=\"404\"} 1",
        "herd_sessions 2",
        "herd_workers{state=\"bound\"} 2",
        "herd_sessions_bound_total 2",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
    }
    assert!(!text.contains("secret-session-name"), "session IDs are never labels");

    let ended = request(gw.admin, "DELETE", "/sessions/secret-session-name", &[], b"");
    assert_eq!(ended.status, 204);
    assert_eq!(gw.stats()["counters"]["sessions_ended"]["ended"], 1);
    assert_eq!(request(gw.admin, "DELETE", "/sessions/secret-session-name", &[], b"").status, 404);
    assert_eq!(request(gw.admin, "GET", "/sessions/x", &[], b"").status, 405);
    assert_eq!(request(gw.admin, "GET", "/nope", &[], b"").status, 404);
}

#[test]
fn many_new_sessions_at_once_each_get_their_own_worker() {
    let gw = Gateway::demo(&["--min", "0", "--max", "40"]);
    let addr = gw.addr;
    let clients: Vec<_> = (0..40)
        .map(|i| {
            std::thread::spawn(move || {
                let session = format!("crowd-{i}");
                request(addr, "GET", "/", &[("X-Session-ID", &session)], b"")
            })
        })
        .collect();
    let mut pids = std::collections::HashSet::new();
    for client in clients {
        let resp = client.join().unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        pids.insert(resp.json()["pid"].as_u64().unwrap());
    }
    assert_eq!(pids.len(), 40, "40 sessions, 40 worker processes");
}
