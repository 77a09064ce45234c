//! The Ollama gateway example, run against the demo worker (ollama cannot
//! be installed here): the same X-Agent-ID always reaches the same worker,
//! different agents reach different workers, SIGTERM stops everything.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

fn pid_for(gateway: SocketAddr, agent: &str) -> u64 {
    let mut s = TcpStream::connect(gateway).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET / HTTP/1.1\r\nHost: {gateway}\r\nX-Agent-ID: {agent}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let body = raw.split_once("\r\n\r\n").unwrap().1;
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {raw}"));
    json["pid"].as_u64().unwrap()
}

/// Kills the gateway if the test fails half-way.
struct Gateway(std::process::Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn each_agent_keeps_its_own_worker() {
    let mut gateway = Gateway(
        Command::new(env!("CARGO_BIN_EXE_ollama_gateway"))
            .args(["--demo", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut gateway.0;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr: SocketAddr = first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .parse()
        .unwrap();
    let a = pid_for(addr, "agent-1");
    let b = pid_for(addr, "agent-2");
    assert_ne!(a, b);
    assert_eq!(pid_for(addr, "agent-1"), a);
    assert_eq!(pid_for(addr, "agent-2"), b);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("every worker is gone")), "{rest:?}");
    for pid in [a, b] {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "worker {pid} is left");
    }
}
