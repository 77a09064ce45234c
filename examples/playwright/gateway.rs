//! Browser isolation: one headless Chromium per session behind herd's
//! gateway — the reference's Playwright quick start, in Rust.
//!
//! Run (from the repository root; needs Debian's chromium and
//! `npm install` in examples/playwright):
//!   cargo run --release -p herd-examples --bin playwright_gateway -- [--listen 127.0.0.1:8080]
//! Then connect clients with `X-Session-ID` (examples/playwright/client.py,
//! client.mjs). Ctrl-C stops it: every browser process is gone afterwards.

use std::time::Duration;

use herd_core::{Pool, PoolConfig, ProcessFactory, Proxy, ProxyConfig, SessionSource};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = listen_arg()?;

    // 1. One Playwright browser server per session, on a port herd picks.
    let factory = ProcessFactory::new("node", ["examples/playwright/browser_worker.mjs"])
        .health_path("/")
        .start_timeout(Duration::from_secs(60))
        .pids_limit(None) // Chromium runs many processes and threads,
        .memory_limit(2 << 30); // so cap each browser's memory instead (2 GiB)

    // 2. Never reuse a browser: no state leaks between tenants.
    let pool = Pool::new(
        factory,
        PoolConfig { min: 1, max: 5, ttl: Duration::from_secs(15 * 60), reuse: false, ..Default::default() },
    )?;

    // 3. Route WebSocket connections by X-Session-ID.
    let config = ProxyConfig {
        listen,
        session_sources: vec![SessionSource::Header("X-Session-ID".into())],
        ..Default::default()
    };
    let proxy = Proxy::serve(pool.clone(), config).await?;
    println!("gateway listening on http://{} (Playwright: ws://{}/)", proxy.local_addr(), proxy.local_addr());

    wait_for_signal().await;
    proxy.stop(Duration::from_secs(10)).await;
    pool.shutdown(Duration::from_secs(10)).await;
    println!("stopped: every browser is gone.");
    Ok(())
}

fn listen_arg() -> Result<std::net::SocketAddr, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let value = args.iter().position(|a| a == "--listen").and_then(|i| args.get(i + 1));
    Ok(value.map(String::as_str).unwrap_or("127.0.0.1:8080").parse()?)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
