//! The sandbox and the leak-proof lifecycle, with real cgroups, real
//! namespaces and a real host process killed with SIGKILL.
//!
//! Tests that need root or a cgroup controller print `SKIP` and return
//! where it is missing; with `HERD_REQUIRE_SANDBOX_TESTS=1` (set by the
//! test command, so CI never skips) a missing privilege fails them instead.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use herd_core::{EndReason, ErrorKind, Pool, ProcessFactory, SandboxMode};

/// Returns false (and says why) when this test cannot run here.
fn sandbox_available(test: &str, needs: &[&str]) -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    let mut missing: Vec<String> = Vec::new();
    if !root {
        missing.push("root".into());
    }
    for controller in needs {
        let v1 = Path::new("/sys/fs/cgroup").join(controller);
        let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default();
        if !v1.is_dir() && !v2.split_whitespace().any(|c| c == *controller) {
            missing.push(format!("the {controller} cgroup controller"));
        }
    }
    if missing.is_empty() {
        eprintln!("RUN  {test}");
        return true;
    }
    let why = format!("{test} needs {}", missing.join(", "));
    if std::env::var_os("HERD_REQUIRE_SANDBOX_TESTS").is_some() {
        panic!("{why} (HERD_REQUIRE_SANDBOX_TESTS is set)");
    }
    eprintln!("SKIP {why}");
    false
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, r)| r.split(' ').collect()).unwrap_or_default();
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after ") ".
    fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

/// A file of the worker's cpu cgroup (v1 or v2), first word.
fn cpu_file(pid: u32, name: &str) -> Option<String> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    cgroups.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let dir = if controllers.split(',').any(|c| c == "cpu") {
            format!("/sys/fs/cgroup/cpu{path}")
        } else if controllers.is_empty() {
            format!("/sys/fs/cgroup{path}")
        } else {
            return None;
        };
        let text = std::fs::read_to_string(format!("{dir}/{name}")).ok()?;
        Some(if name.ends_with(".stat") { text } else { text.split_whitespace().next()?.to_string() })
    })
}

/// How many CFS periods the worker's cgroup was throttled in so far.
fn throttled(pid: u32) -> u64 {
    let stat = cpu_file(pid, "cpu.stat").unwrap_or_default();
    stat.lines()
        .find_map(|l| l.strip_prefix("nr_throttled ").and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

#[test]
fn a_worker_past_its_memory_limit_is_oom_killed_alone() {
    if !sandbox_available("oom", &["memory"]) {
        return;
    }
    let factory = demo_factory().sandbox(SandboxMode::Required).memory_limit(64 << 20);
    let (pool, ends) = pool_with_ends(factory, config(0, 2));
    let hog = pool.acquire_blocking("hog", None).unwrap();
    let bystander = pool.acquire_blocking("bystander", None).unwrap();
    // 32 MiB fits; 256 MiB more does not.
    assert_eq!(get(hog.address().unwrap(), "/alloc?mb=32").0, 200);
    let _ = http(hog.address().unwrap(), "GET", "/alloc?mb=256", b"");
    let end = ends.recv_timeout(Duration::from_secs(10)).expect("the hog's session ended");
    assert_eq!(&*end.session, "hog");
    match end.reason {
        EndReason::Crashed { status } => assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}"),
        other => panic!("expected crashed, got {other}"),
    }
    // The other worker is untouched.
    assert!(running(bystander.pid().unwrap()));
    assert_eq!(identity(bystander.address().unwrap()).0, bystander.pid().unwrap());
    drop((hog, bystander));
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit_and_the_host_is_fine() {
    if !sandbox_available("fork bomb", &["pids"]) {
        return;
    }
    let factory = demo_factory().sandbox(SandboxMode::Required).pids_limit(Some(40));
    let pool = Pool::new(factory, config(0, 1)).unwrap();
    let lease = pool.acquire_blocking("bomber", None).unwrap();
    let (status, body) = get(lease.address().unwrap(), "/forkbomb");
    assert_eq!(status, 200, "{body}");
    let forked = serde_json::from_str::<serde_json::Value>(&body).unwrap()["forked"].as_u64().unwrap();
    assert!(forked > 0 && forked < 40, "forked {forked} processes under a limit of 40");
    // The host can still start processes.
    assert!(Command::new("true").status().unwrap().success());
    let tree = descendants(lease.pid().unwrap());
    assert!(tree.len() as u64 >= forked);
    drop(lease);
    pool.shutdown_blocking(Duration::from_secs(2));
    for pid in tree {
        assert!(!alive(pid), "fork-bomb child {pid} survived");
    }
}

#[test]
fn a_cpu_bound_worker_with_half_a_core_uses_about_half_a_core() {
    if !sandbox_available("cpu limit", &["cpu"]) {
        return;
    }
    let factory = demo_factory().sandbox(SandboxMode::Required).cpu_limit(0.5);
    let pool = Pool::new(factory, config(0, 1)).unwrap();
    let lease = pool.acquire_blocking("spinner", None).unwrap();
    let (addr, pid) = (lease.address().unwrap(), lease.pid().unwrap());
    let spin = std::thread::spawn(move || get(addr, "/spin?ms=4000&threads=2"));
    // Measure over a window inside the spin.
    wait_until("spinning", Duration::from_secs(5), || cpu_ticks(pid) > 0);
    let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let (t0, c0, th0) = (Instant::now(), cpu_ticks(pid), throttled(pid));
    std::thread::sleep(Duration::from_millis(2500)); // the measurement window itself
    let (t1, c1, th1) = (Instant::now(), cpu_ticks(pid), throttled(pid));
    let cores = (c1 - c0) as f64 / ticks_per_sec / (t1 - t0).as_secs_f64();
    eprintln!("worker used {cores:.2} cores with a limit of 0.5; throttled {} times", th1 - th0);
    // Never more than the limit (with tick-accounting slack); the kernel
    // throttled it to get there. (Less than 0.5 happens on a busy machine.)
    assert!(cores <= 0.65, "used {cores:.2} cores");
    assert!(cores >= 0.1, "the worker barely ran: {cores:.2} cores");
    assert_eq!(cpu_file(pid, "cpu.cfs_quota_us").or(cpu_file(pid, "cpu.max")).as_deref(), Some("50000"));
    // Two spinning threads want two cores: unless the machine itself was
    // too busy to give the worker even its half core, the quota throttled it.
    assert!(th1 > th0 || cores < 0.45, "used {cores:.2} cores without ever being throttled");
    assert_eq!(spin.join().unwrap().0, 200);
    drop(lease);
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn without_any_sandbox_a_stopped_worker_still_takes_its_whole_tree() {
    let factory = ProcessFactory::new(demo_worker(), ["--ignore-sigterm"]).sandbox(SandboxMode::Off);
    let mut cfg = config(0, 1);
    cfg.stop_grace = Duration::from_millis(200);
    let pool = Pool::new(factory, cfg).unwrap();
    let lease = pool.acquire_blocking("plain", None).unwrap();
    let pid = lease.pid().unwrap();
    get(lease.address().unwrap(), "/children?n=2&ignore_term=1");
    get(lease.address().unwrap(), "/children?n=1&ignore_term=1&detach=1");
    let mut tree = descendants(pid);
    assert_eq!(tree.len(), 3);
    tree.push(pid);
    drop(lease);
    pool.shutdown_blocking(Duration::from_millis(200));
    for p in tree {
        assert!(!alive(p), "process {p} survived");
    }
}

#[test]
fn a_worker_sees_only_its_own_process_tree() {
    if !sandbox_available("namespaces", &[]) {
        return;
    }
    let pool = Pool::new(demo_factory().sandbox(SandboxMode::Required), config(0, 1)).unwrap();
    let lease = pool.acquire_blocking("isolated", None).unwrap();
    get(lease.address().unwrap(), "/children?n=2");
    let (_, body) = get(lease.address().unwrap(), "/ns");
    let ns: serde_json::Value = serde_json::from_str(&body).unwrap();
    let visible: Vec<u64> =
        ns["visible_pids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    // The shim (PID 1), the worker and its two children: nothing of the host.
    assert_eq!(visible.len(), 4, "the worker sees {visible:?}");
    assert_ne!(ns["pid_in_namespace"].as_u64(), Some(u64::from(lease.pid().unwrap())));
    assert_eq!(ns["host_pid"].as_u64(), Some(u64::from(lease.pid().unwrap())));
    let own = |kind: &str| std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap().display().to_string();
    for kind in ["pid", "ipc", "mnt"] {
        assert_ne!(ns[format!("{kind}_ns")].as_str().unwrap(), own(kind), "{kind} namespace is shared");
    }
    drop(lease);
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn a_worker_is_in_its_cgroups_before_it_runs_and_they_are_removed_after() {
    if !sandbox_available("cgroup membership", &["pids"]) {
        return;
    }
    let pool = Pool::new(demo_factory().sandbox(SandboxMode::Required), config(0, 1)).unwrap();
    let lease = pool.acquire_blocking("member", None).unwrap();
    let pid = lease.pid().unwrap();
    get(lease.address().unwrap(), "/children?n=1");
    let child = descendants(pid)[0];
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let suffix = format!("/herd-{}-", std::process::id());
    let mut dirs = Vec::new();
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        if !path.contains(&suffix) {
            continue;
        }
        // The child inherited the very same cgroup.
        assert!(std::fs::read_to_string(format!("/proc/{child}/cgroup")).unwrap().contains(path));
        let mount = if controllers.is_empty() {
            if Path::new("/sys/fs/cgroup/unified").is_dir() {
                "/sys/fs/cgroup/unified".to_string()
            } else {
                "/sys/fs/cgroup".to_string()
            }
        } else {
            format!("/sys/fs/cgroup/{}", controllers.split(',').next().unwrap())
        };
        let mut dir = PathBuf::from(&mount);
        // v1 memory nests under our own cgroup; the path in /proc is absolute within the hierarchy.
        dir.push(path.trim_start_matches('/'));
        dirs.push(dir);
    }
    assert!(dirs.len() >= 2, "in the pids (v1 or v2) and a v2 cgroup: {cgroups}");
    assert!(dirs.iter().any(|d| d.starts_with("/sys/fs/cgroup/unified") || !Path::new("/sys/fs/cgroup/unified").exists()),
        "also tracked in the cgroup2 hierarchy: {dirs:?}");
    for d in &dirs {
        assert!(d.is_dir(), "{}", d.display());
    }
    drop(lease);
    pool.shutdown_blocking(Duration::from_secs(2));
    for d in &dirs {
        assert!(!d.exists(), "{} was removed", d.display());
    }
}

/// Cgroup directories of pools of the host process `pid`.
fn pool_cgroups_of(pid: u32) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for base in ["/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        let mut stack = vec![PathBuf::from(base)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for e in entries.flatten() {
                let path = e.path();
                if !path.is_dir() {
                    continue;
                }
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&format!("herd-{pid}-")) {
                    found.push(path);
                } else if !name.starts_with("herd-") && stack.len() < 64 && path.components().count() < 9 {
                    stack.push(path);
                }
            }
        }
    }
    found
}

/// Spawns this test binary as a pool host; returns it and the PIDs of its
/// workers and their descendants.
fn spawn_host(sandbox: &str) -> (std::process::Child, Vec<u32>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "host_process_helper", "--nocapture", "--test-threads=1"])
        .env("HERD_TEST_HOST", sandbox)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // The harness prints "test host_process_helper ... " before our line.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((_, rest)) = l.split_once("PIDS ") {
                let _ = tx.send(rest.to_string());
                return;
            }
        }
    });
    let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the host process never reported its workers");
    };
    let pids: Vec<u32> = line.split_whitespace().filter_map(|p| p.parse().ok()).collect();
    assert!(pids.len() >= 6, "the host reported its processes: {pids:?}");
    (child, pids)
}

/// Not a test on its own: the body of the host process `spawn_host` runs.
#[test]
fn host_process_helper() {
    let Ok(mode) = std::env::var("HERD_TEST_HOST") else { return };
    let factory = demo_factory().sandbox(mode.parse().unwrap());
    let pool = Pool::new(factory, config(0, 3)).unwrap();
    let mut pids = Vec::new();
    let mut leases = Vec::new();
    for i in 0..3 {
        let lease = pool.acquire_blocking(&format!("s{i}"), None).unwrap();
        get(lease.address().unwrap(), "/children?n=1&ignore_term=1&detach=1");
        pids.push(lease.pid().unwrap());
        pids.extend(descendants(lease.pid().unwrap()));
        leases.push(lease);
    }
    println!("PIDS {}", pids.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" "));
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

fn host_killed_leaves_nothing(sandbox: &str) {
    let (mut host, pids) = spawn_host(sandbox);
    let host_pid = host.id();
    unsafe { libc::kill(host_pid as i32, libc::SIGKILL) };
    host.wait().unwrap();
    // The spec: within 1 s no worker and no descendant exists (not even a zombie).
    let deadline = Instant::now() + Duration::from_secs(1);
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let left: Vec<_> = pids.iter().filter(|p| alive(**p)).collect();
    assert!(left.is_empty(), "processes left 1 s after the host died: {left:?}");

    // Its cgroups are leftovers now; the next pool removes them.
    if sandbox != "off" && unsafe { libc::geteuid() } == 0 {
        assert!(!pool_cgroups_of(host_pid).is_empty(), "the dead host left cgroups to clean");
        let pool = Pool::new(demo_factory(), config(0, 1)).unwrap();
        assert!(pool_cgroups_of(host_pid).is_empty(), "leftover cgroups of {host_pid} were removed");
        pool.shutdown_blocking(Duration::from_secs(1));
    }
}

#[test]
fn killing_the_host_with_sigkill_kills_every_worker_tree_in_namespaces() {
    if !sandbox_available("host SIGKILL (namespaces)", &["pids"]) {
        return;
    }
    host_killed_leaves_nothing("required");
}

#[test]
fn killing_the_host_with_sigkill_kills_every_worker_tree_without_sandbox() {
    host_killed_leaves_nothing("off");
}

#[test]
fn a_leftover_cgroup_with_a_live_process_is_cleaned_by_the_next_pool() {
    if !sandbox_available("leftover cleanup", &["pids"]) {
        return;
    }
    // A pool directory of a "dead" herd (PID above pid_max), still holding a process.
    let dir = PathBuf::from("/sys/fs/cgroup/pids/herd-99999999-7/w1");
    std::fs::create_dir_all(&dir).unwrap();
    let mut sleeper = Command::new("sleep").arg("1000").spawn().unwrap();
    std::fs::write(dir.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    let pool = Pool::new(demo_factory(), config(0, 1)).unwrap();
    let status = sleeper.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL));
    assert!(!dir.exists() && !dir.parent().unwrap().exists(), "the leftover cgroup was removed");
    pool.shutdown_blocking(Duration::from_secs(1));
}

#[test]
fn required_mode_fails_clearly_when_the_sandbox_is_missing() {
    // A cgroup root that cannot be created: what a host without the
    // controller (or without delegation) looks like.
    let factory = demo_factory().sandbox(SandboxMode::Required).cgroup_root("/no/such/parent/herd");
    let err = Pool::new(factory, config(0, 1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Sandbox, "{err}");
    let text = err.to_string();
    assert!(text.contains("sandbox is required") && text.contains("/no/such/parent/herd"), "{text}");
}

#[test]
fn unprivileged_required_fails_and_best_effort_runs_and_warns_once() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP unprivileged: needs root to drop privileges");
        return;
    }
    eprintln!("RUN  unprivileged");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "unprivileged_helper", "--nocapture", "--test-threads=1"])
        .env("HERD_TEST_UNPRIVILEGED", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "helper failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("REQUIRED-REFUSED"), "{stdout}");
    assert!(stdout.contains("BEST-EFFORT-RAN"), "{stdout}");
    assert_eq!(stderr.matches("sandbox (best_effort)").count(), 1, "warned exactly once:\n{stderr}");
}

/// Not a test on its own: runs as user `nobody` for the test above.
#[test]
fn unprivileged_helper() {
    if std::env::var_os("HERD_TEST_UNPRIVILEGED").is_none() {
        return;
    }
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter("herd_core=warn").init();
    unsafe {
        assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
        assert_eq!(libc::setgid(65534), 0);
        assert_eq!(libc::setuid(65534), 0);
    }
    let err = Pool::new(demo_factory().sandbox(SandboxMode::Required), config(0, 1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Sandbox);
    assert!(err.to_string().contains("not running as root"), "{err}");
    println!("REQUIRED-REFUSED: {err}");
    let pool = Pool::new(demo_factory(), config(0, 3)).unwrap();
    for i in 0..3 {
        let lease = pool.acquire_blocking(&format!("u{i}"), None).unwrap();
        assert_eq!(identity(lease.address().unwrap()).0, lease.pid().unwrap());
    }
    pool.shutdown_blocking(Duration::from_secs(2));
    println!("BEST-EFFORT-RAN");
}
