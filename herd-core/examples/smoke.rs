use herd_core::{Pool, PoolConfig, ProcessFactory};
use std::time::Duration;

fn main() {
    tracing_subscriber::fmt().with_env_filter("debug").init();
    let exe = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("herd-demo-worker");
    let factory = ProcessFactory::new(exe.to_str().unwrap(), Vec::<String>::new());
    let pool = Pool::new(factory, PoolConfig { min: 1, max: 3, ..Default::default() }).unwrap();
    pool.wait_ready_blocking(Duration::from_secs(5)).unwrap();
    let t = std::time::Instant::now();
    let a = pool.acquire_blocking("alice", None).unwrap();
    println!("alice -> {:?} in {:?}", a, t.elapsed());
    let t = std::time::Instant::now();
    let b = pool.acquire_blocking("bob", None).unwrap();
    println!("bob -> {:?} in {:?}", b, t.elapsed());
    let a2 = pool.acquire_blocking("alice", None).unwrap();
    assert_eq!(a.pid(), a2.pid());
    println!("{}", serde_json::to_string_pretty(&pool.stats()).unwrap());
    drop((a, a2, b));
    pool.shutdown_blocking(Duration::from_secs(2));
    println!("{:?}", pool.stats().workers);
}
