//! Runs the `gateway` example and checks what it prints: alice twice on
//! one worker process, bob on another.

#[test]
fn the_gateway_example_shows_affinity() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gateway")).output().expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let pid_of =
        |line: &str| line.split("\"pid\":").nth(1).and_then(|r| r.split(',').next()).map(str::to_string);
    let pids: Vec<(String, String)> = stdout
        .lines()
        .filter(|l| l.contains('→'))
        .map(|l| (l.split_whitespace().next().unwrap_or("").to_string(), pid_of(l).unwrap_or_default()))
        .collect();
    assert_eq!(pids.len(), 3, "{stdout}");
    assert_eq!(pids[0].1, pids[2].1, "alice reaches the same worker both times: {stdout}");
    assert_ne!(pids[0].1, pids[1].1, "bob reaches another worker: {stdout}");
    assert!(stdout.contains("every worker process is gone"), "{stdout}");
}
