//! `herd_cli::run_until_stopped`: `herd serve` embedded in a host program
//! that owns the process's signals, as the Node and Python packages do. It
//! installs no SIGINT/SIGTERM handler; the first `Stopper::stop` stops it
//! gracefully, a second one at once, and dropping every `Stopper` stops it
//! too; it exits 0 and leaves no process behind.
//!
//! The host is this test program run again with the argument `host`: it
//! serves with `run_until_stopped` and turns each line `stop` on its stdin
//! into a `stopper.stop(..)`, and the end of its stdin into dropping the
//! stopper. (`harness = false`: the host needs its own `main`.)

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{ChildStdin, Command, Stdio};
use std::time::Duration;

use common::*;

fn main() {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("host") {
        std::process::exit(host(args.collect()));
    }
    let tests: [(&str, fn()); 3] = [
        (
            "installs_no_signal_handler_and_stops_gracefully_when_asked",
            installs_no_signal_handler_and_stops_gracefully_when_asked,
        ),
        (
            "a_second_stop_request_skips_the_wait_for_requests",
            a_second_stop_request_skips_the_wait_for_requests,
        ),
        ("dropping_every_stopper_stops_it", dropping_every_stopper_stops_it),
    ];
    for (name, test) in tests {
        println!("test {name} ...");
        test();
        println!("test {name} ... ok");
    }
}

/// The embedding host: `herd ARGS` on a thread, stop requests from stdin.
fn host(args: Vec<String>) -> i32 {
    let (stopper, stops) = herd_cli::stop_channel();
    let self_command = vec![env!("CARGO_BIN_EXE_herd").to_string()];
    let serving = std::thread::spawn(move || herd_cli::run_until_stopped(args, self_command, stops));
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            match line {
                Ok(line) if line.trim() == "stop" => stopper.stop("stop line on stdin"),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        drop(stopper);
    });
    serving.join().unwrap_or(101)
}

/// A host serving `herd serve --demo ARGS`, and its stdin.
fn start_host(args: &[&str]) -> (Gateway, ChildStdin) {
    let mut cmd = Command::new(std::env::current_exe().expect("this test program"));
    cmd.arg("host").env("HERD_LOG", "info,herd::worker=warn").stdin(Stdio::piped());
    let mut all = vec!["serve", "--demo"];
    all.extend_from_slice(args);
    let mut gw = Gateway::start_with(cmd, &all);
    let stdin = gw.child.as_mut().and_then(|c| c.stdin.take()).expect("the host's stdin");
    (gw, stdin)
}

/// The signals a process has handlers for (`SigCgt` in /proc/PID/status).
fn caught_signals(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:")).expect("SigCgt line");
    u64::from_str_radix(mask.trim(), 16).expect("SigCgt mask")
}

fn catches(pid: u32, signal: i32) -> bool {
    caught_signals(pid) & (1 << (signal - 1)) != 0
}

/// Sends a slow request for session `a`; returns its connection once the
/// gateway holds its lease.
fn request_in_flight(gw: &Gateway, ms: u64) -> TcpStream {
    let mut slow = TcpStream::connect(gw.addr).expect("connect to the gateway");
    write!(slow, "GET /sleep?ms={ms} HTTP/1.1\r\nHost: x\r\nX-Session-ID: a\r\n\r\n").expect("send");
    wait_until("the slow request is in flight", Duration::from_secs(10), || gw.open_leases() == 1);
    slow
}

fn stop(stdin: &mut ChildStdin) {
    stdin.write_all(b"stop\n").and_then(|()| stdin.flush()).expect("write to the host's stdin");
}

fn installs_no_signal_handler_and_stops_gracefully_when_asked() {
    // The check below can fail: the `herd` binary does catch both signals.
    let binary = Gateway::demo(&["--min", "0"]);
    assert!(catches(binary.pid(), libc::SIGTERM) && catches(binary.pid(), libc::SIGINT));
    drop(binary);

    let (mut gw, mut stdin) = start_host(&["--min", "1", "--max", "2", "--shutdown-grace", "30s"]);
    assert!(!catches(gw.pid(), libc::SIGTERM), "embedded herd must not handle SIGTERM");
    assert!(!catches(gw.pid(), libc::SIGINT), "embedded herd must not handle SIGINT");
    assert_eq!(gw.get("b", "/").status, 200);
    let tree = descendants(gw.pid());
    assert!(!tree.is_empty(), "workers run under the host");

    let slow = request_in_flight(&gw, 1500);
    stop(&mut stdin);
    let mut status_line = String::new();
    BufReader::new(slow).read_line(&mut status_line).expect("the answer to the request in flight");
    assert!(status_line.starts_with("HTTP/1.1 200"), "in-flight request: {status_line:?}");

    let status = gw.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", gw.log());
    assert!(gw.log().contains("stop line on stdin: stopping"), "{}", gw.log());
    for pid in tree {
        assert!(!alive(pid), "process {pid} outlived herd");
    }
}

fn a_second_stop_request_skips_the_wait_for_requests() {
    let (mut gw, mut stdin) = start_host(&["--min", "1", "--shutdown-grace", "10m"]);
    let tree = descendants(gw.pid());
    let mut slow = request_in_flight(&gw, 600_000);
    stop(&mut stdin);
    wait_until("the gateway to stop accepting", Duration::from_secs(10), || {
        TcpStream::connect(gw.addr).is_err()
    });
    assert!(gw.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None))), "waits for the request");

    stop(&mut stdin);
    // Far less than the 10 minutes of grace and the request's 10 minutes.
    let status = gw.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{}", gw.log());
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "the request was cut, not answered");
    for pid in tree {
        assert!(!alive(pid), "process {pid} outlived herd");
    }
}

fn dropping_every_stopper_stops_it() {
    let (mut gw, stdin) = start_host(&["--min", "1"]);
    let tree = descendants(gw.pid());
    assert!(!tree.is_empty(), "workers run under the host");
    drop(stdin);
    let status = gw.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", gw.log());
    assert!(gw.log().contains("every stop handle dropped: stopping"), "{}", gw.log());
    for pid in tree {
        assert!(!alive(pid), "process {pid} outlived herd");
    }
}
