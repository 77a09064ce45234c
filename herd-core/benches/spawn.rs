//! Cold acquire (a new session that must start a worker) next to the demo
//! worker's own exec-to-ready time, and N concurrent new sessions with
//! max = N (total time, errors, herd's own RSS).
//!
//! Run: `cargo bench -p herd-core --bench spawn` (`-- --scale 1000,300,100 --cold 50`;
//! `--cold 0` skips the cold start, `--scale ''` the scale runs).
//! Goals: cold acquire within 1 ms of exec-to-ready; 1,000 sessions with
//! 0 errors and herd's RSS ≤ 20 MB.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use herd_core::{Pool, PoolConfig, ProcessFactory, SandboxMode};

const DEMO: &str = env!("CARGO_BIN_EXE_herd-demo-worker");

fn main() {
    let mut scales = vec![100, 300, 1000];
    let mut cold_runs = 40;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--scale" => {
                scales = args.next().unwrap_or_default().split(',').filter_map(|s| s.parse().ok()).collect()
            }
            "--cold" => cold_runs = args.next().and_then(|s| s.parse().ok()).unwrap_or(cold_runs),
            _ => {} // cargo bench passes --bench
        }
    }
    raise_fd_limit();
    if cold_runs > 0 {
        cold_start(cold_runs);
    }
    for n in scales {
        scale(n);
    }
}

/// The cold-start section: exec-to-ready, then cold acquires without and
/// with the sandbox, `cold_runs` each.
fn cold_start(cold_runs: usize) {
    let exec = exec_to_ready(cold_runs);
    let cold = cold_acquire(cold_runs, SandboxMode::Off);
    let sandboxed = cold_acquire(cold_runs, SandboxMode::BestEffort);
    println!("\n== cold start (median of {cold_runs})");
    println!("demo worker exec-to-ready (spawn → GET /health 200): {:>8.3} ms", ms(exec));
    println!("herd cold acquire, sandbox off:                      {:>8.3} ms", ms(cold));
    println!(
        "difference:                                          {:>8.3} ms (goal ≤ 1 ms)",
        ms(cold) - ms(exec)
    );
    println!("herd cold acquire, default sandbox (best_effort):    {:>8.3} ms", ms(sandboxed));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn health_ok(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_nodelay(true);
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && &buf[9..12] == b"200")
}

/// The worker's own start time: spawn it directly and poll as fast as possible.
fn exec_to_ready(runs: usize) -> Duration {
    let mut times = Vec::new();
    for _ in 0..runs {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let start = Instant::now();
        let mut child = std::process::Command::new(DEMO)
            .env("PORT", port.to_string())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn demo worker");
        while !health_ok(port) {
            std::hint::spin_loop();
            if start.elapsed() > Duration::from_secs(10) {
                panic!("demo worker did not start");
            }
        }
        times.push(start.elapsed());
        let _ = child.kill();
        let _ = child.wait();
    }
    median(times)
}

fn cold_acquire(runs: usize, sandbox: SandboxMode) -> Duration {
    let factory = ProcessFactory::new(DEMO, Vec::<String>::new()).sandbox(sandbox);
    let config = PoolConfig { min: 0, max: 1, reuse: false, ..Default::default() };
    let pool = Pool::new(factory, config).expect("pool");
    let mut times = Vec::new();
    for i in 0..runs {
        let id = format!("cold-{i}");
        let start = Instant::now();
        let lease = pool.acquire_blocking(&id, None).expect("acquire");
        times.push(start.elapsed());
        drop(lease);
        pool.end_session(&id).unwrap();
        while pool.stats().workers.total > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    pool.shutdown_blocking(Duration::from_secs(5));
    median(times)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn scale(n: usize) {
    let factory = ProcessFactory::new(DEMO, Vec::<String>::new())
        .start_timeout(Duration::from_secs(120))
        .sandbox(SandboxMode::Off);
    let config =
        PoolConfig { min: 0, max: n, acquire_timeout: Duration::from_secs(120), ..Default::default() };
    let rss_before = rss_kib();
    let pool = Pool::new(factory, config).expect("pool");
    let start = Instant::now();
    // The callers are tasks on a small runtime of the bench's own, so the
    // host's RSS is herd's plus a few KiB, not a thread stack per caller.
    let callers = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let results = callers.block_on(async {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.acquire(&format!("user-{i}")).await.map(|l| (l.pid(), l)) })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let mut errors = 0;
    let mut pids = std::collections::HashSet::new();
    let mut leases = Vec::new();
    for r in results {
        match r {
            Ok((pid, lease)) => {
                pids.insert(pid);
                leases.push(lease);
            }
            Err(e) => {
                errors += 1;
                eprintln!("acquire failed: {e:#}");
            }
        }
    }
    let elapsed = start.elapsed();
    let rss_after = rss_kib();
    let stats = pool.stats();
    println!("\n== {n} concurrent new sessions, max = {n}");
    println!("total time:           {:>9.1} ms", ms(elapsed));
    println!("errors:               {errors:>9}");
    println!("distinct worker PIDs: {:>9}", pids.len());
    println!("workers bound:        {:>9}", stats.workers.bound);
    println!(
        "herd RSS (host proc): {:>9.1} MiB (before pool: {:.1} MiB)",
        rss_after as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
    println!("per-worker overhead:  {:>9.1} KiB", (rss_after.saturating_sub(rss_before)) as f64 / n as f64);
    drop(leases);
    let t = Instant::now();
    pool.shutdown_blocking(Duration::from_secs(10));
    println!("shutdown:             {:>9.1} ms", ms(t.elapsed()));
}

fn raise_fd_limit() {
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
