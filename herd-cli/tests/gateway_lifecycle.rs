//! The `herd` command's life: bad flags and config files are refused with
//! exit code 2 and a message naming the field; SIGTERM and SIGINT stop it
//! gracefully and leave no process behind.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// Runs `herd ARGS` to its end; returns (exit code, stderr).
fn run_herd(args: &[&str]) -> (i32, String) {
    let out = herd().args(args).output().expect("run herd");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn config_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("herd-test-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    for (args, named) in [
        (vec!["serve", "--demo", "--min", "lots"], "--min"),
        (vec!["serve", "--demo", "--ttl", "10 parsecs"], "--ttl"),
        (vec!["serve", "--demo", "--listen", "nowhere"], "--listen"),
        (vec!["serve", "--demo", "--no-such-flag"], "--no-such-flag"),
        (vec!["serve", "--demo", "--min", "5", "--max", "2"], "min (5) must not exceed max (2)"),
        (vec!["serve", "--demo", "--session-header", "bad header"], "header name"),
        (vec!["serve", "--demo", "--max-header-bytes", "10"], "max_header_bytes"),
        (vec!["serve"], "no worker command"),
        (vec!["serve", "--", "/no/such/program"], "/no/such/program"),
        (vec!["serve", "--demo", "--", "python3"], "--demo"),
        (vec!["serve", "--demo", "--sandbox", "sometimes"], "--sandbox"),
        (vec!["serve", "--demo", "--memory-limit", "12 parsecs"], "--memory-limit"),
        (vec!["serve", "--demo", "--pids-limit", "few"], "--pids-limit"),
        (vec!["serve", "--demo", "--cpu-limit", "0"], "cpu"),
    ] {
        let (code, stderr) = run_herd(&args);
        assert_eq!(code, 2, "{args:?} should exit 2; stderr: {stderr}");
        assert!(stderr.contains(named), "{args:?}: stderr should name {named:?}: {stderr}");
    }
    let (code, _) = run_herd(&[]);
    assert_eq!(code, 2, "no subcommand");
    let (code, stdout_or_err) = run_herd(&["serve", "--help"]);
    assert_eq!(code, 0, "{stdout_or_err}");
}

#[test]
fn bad_config_files_exit_2_naming_the_key() {
    let cases = [
        ("duration", "ttl = \"10x\"\n", "ttl"),
        ("unknown", "tll = \"10m\"\n", "tll"),
        ("type", "max = \"many\"\n", "max"),
        ("relation", "min = 3\nmax = 2\n", "min (3) must not exceed max (2)"),
        ("source", "session_sources = [\"header:X-Session-ID\", \"smoke:signal\"]\n", "session_sources"),
        ("syntax", "min = \n", "line 2"),
        ("sandbox", "sandbox = \"sometimes\"\n", "sandbox"),
        ("memory", "memory_limit = \"12 parsecs\"\n", "memory_limit"),
    ];
    for (name, text, named) in cases {
        let path = config_file(name, &format!("demo = true\n{text}"));
        let (code, stderr) = run_herd(&["serve", "--config", path.to_str().unwrap()]);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(stderr.contains(named), "{name}: stderr should name {named:?}: {stderr}");
    }
    let (code, stderr) = run_herd(&["serve", "--demo", "--config", "/no/such/herd.toml"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/no/such/herd.toml"), "{stderr}");
}

#[test]
fn a_config_file_sets_options_and_flags_override_it() {
    let path = config_file(
        "good",
        "demo = true\nmin = 2\nmax = 3\nttl = \"10m\"\nreuse = false\n\
         session_sources = [\"query:who\"]\n[env]\nGREETING = \"hi {{.WorkerId}}\"\n",
    );
    let gw = Gateway::start(&["serve", "--config", path.to_str().unwrap(), "--max", "5"]);
    std::fs::remove_file(&path).unwrap();
    wait_until("min workers", Duration::from_secs(10), || gw.stats()["workers"]["idle"] == 2);
    let stats = gw.stats();
    assert_eq!(stats["min"], 2, "from the file");
    assert_eq!(stats["max"], 5, "the flag wins");
    let resp = request(gw.addr, "GET", "/?who=configured", &[], b"");
    assert_eq!(resp.status, 200, "the session comes from the query, as configured: {}", resp.text());
}

#[test]
fn sandbox_flags_reach_the_workers() {
    let gw = Gateway::demo(&[
        "--min",
        "0",
        "--sandbox",
        "required",
        "--memory-limit",
        "64MiB",
        "--pids-limit",
        "50",
    ]);
    let first = gw.get("greedy", "/").json()["pid"].as_u64().unwrap();
    // Past its memory limit the worker is killed: its request gets 502,
    // its session a new worker.
    let resp = gw.get("greedy", "/alloc?mb=200");
    assert_eq!(resp.status, 502, "{}", resp.text());
    wait_until("the kill is noticed", Duration::from_secs(10), || {
        gw.stats()["counters"]["sessions_ended"]["crashed"] == 1
    });
    let next = gw.get("greedy", "/").json()["pid"].as_u64().unwrap();
    assert_ne!(next, first);
}

#[test]
fn sigterm_finishes_requests_in_flight_then_leaves_no_process() {
    let mut gw = Gateway::demo(&["--min", "1", "--max", "4", "--shutdown-grace", "10s"]);
    for session in ["a", "b", "c"] {
        assert_eq!(gw.get(session, "/").status, 200);
    }
    let herd_pid = gw.pid();
    let workers = gw.worker_pids();
    assert_eq!(workers.len(), 3);
    let tree = descendants(herd_pid);
    assert!(tree.len() >= 3, "workers run under herd: {tree:?}");

    // A request in flight when the signal arrives still gets its answer.
    let mut slow = TcpStream::connect(gw.addr).unwrap();
    write!(slow, "GET /sleep?ms=1500 HTTP/1.1\r\nHost: x\r\nX-Session-ID: a\r\n\r\n").unwrap();
    wait_until("the slow request is in flight", Duration::from_secs(10), || gw.open_leases() == 1);
    gw.signal(libc::SIGTERM);
    let mut status_line = String::new();
    BufReader::new(slow).read_line(&mut status_line).unwrap();
    assert!(status_line.starts_with("HTTP/1.1 200"), "in-flight request: {status_line:?}");

    let status = gw.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", gw.log());
    for pid in tree {
        assert!(!alive(pid), "process {pid} outlived herd");
    }
}

#[test]
fn sigint_stops_the_gateway_too() {
    let mut gw = Gateway::demo(&["--min", "1"]);
    let workers = gw.worker_pids();
    gw.signal(libc::SIGINT);
    assert_eq!(gw.wait_exit(Duration::from_secs(30)).code(), Some(0));
    assert!(workers.iter().all(|&p| !alive(p)));
    assert!(TcpStream::connect(gw.addr).is_err(), "nothing listens any more");
}

#[test]
fn a_second_gateway_on_a_taken_port_exits_1() {
    let gw = Gateway::demo(&["--min", "0"]);
    let out =
        herd().args(["serve", "--demo", "--min", "0", "--listen", &gw.addr.to_string()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("cannot listen on {}", gw.addr)), "{stderr}");
}

#[test]
fn workers_that_cannot_start_make_herd_exit_1_with_their_output() {
    let out = herd()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--start-timeout",
            "5s",
            "--",
            "sh",
            "-c",
            "echo broken >&2; exit 3",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("did not start") && stderr.contains("broken"), "{stderr}");
}

#[test]
fn demo_worker_subcommand_serves_on_the_given_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = herd().args(["demo-worker", "--port", &port.to_string()]).spawn().unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_until("the demo worker listens", Duration::from_secs(10), || {
        try_request(addr, "GET", "/health", &[], b"").is_ok_and(|r| r.status == 200)
    });
    let _ = child.kill();
    let _ = child.wait();
}
