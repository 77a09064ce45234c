//! A multi-agent LLM gateway: every agent (`X-Agent-ID`) gets its own
//! `ollama serve` process, so context windows and KV caches never mix —
//! the reference's Ollama quick start, in Rust.
//!
//! Run (from the repository root):
//!   cargo run --release -p herd-examples --bin ollama_gateway -- [--listen 127.0.0.1:8080] [--demo]
//! Without `ollama` in PATH (or with --demo) the workers are herd's demo
//! worker, so the gateway can be tried anywhere. Then:
//!   curl -X POST http://127.0.0.1:8080/api/chat -H "X-Agent-ID: agent-42" \
//!        -d '{"model": "llama3", "messages": [{"role": "user", "content": "Hello!"}]}'

use std::time::Duration;

use herd_core::{Pool, PoolConfig, ProcessFactory, Proxy, ProxyConfig, SessionSource, demo};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // This binary doubles as the demo worker (`ollama_gateway demo-worker`);
    // that must happen before this process starts a runtime of its own.
    demo::run_if_requested();
    tokio::runtime::Runtime::new()?.block_on(serve())
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let listen = args.iter().position(|a| a == "--listen").and_then(|i| args.get(i + 1));
    let listen = listen.map(String::as_str).unwrap_or("127.0.0.1:8080").parse()?;
    let use_ollama = !args.iter().any(|a| a == "--demo") && in_path("ollama");

    // 1. One worker per agent, on a port herd picks.
    let factory = if use_ollama {
        ProcessFactory::new("ollama", ["serve"])
            .env("OLLAMA_HOST", "127.0.0.1:{{.Port}}")
            .health_path("/")
            .start_timeout(Duration::from_secs(120))
    } else {
        demo::embedded_factory()?
    };

    // 2. Auto-scale between 1 and 10 agents; idle agents end after 10 minutes.
    let config =
        PoolConfig { min: 1, max: 10, ttl: Duration::from_secs(600), reuse: true, ..Default::default() };
    let pool = Pool::new(factory, config)?;

    // 3. Pin each agent to its worker by X-Agent-ID.
    let proxy = Proxy::serve(
        pool.clone(),
        ProxyConfig {
            listen,
            session_sources: vec![SessionSource::Header("X-Agent-ID".into())],
            ..Default::default()
        },
    )
    .await?;
    let workers = if use_ollama { "ollama serve" } else { "the demo worker (no ollama here)" };
    println!("gateway listening on http://{} — one {workers} per X-Agent-ID", proxy.local_addr());

    wait_for_signal().await;
    proxy.stop(Duration::from_secs(10)).await;
    pool.shutdown(Duration::from_secs(10)).await;
    println!("stopped: every worker is gone.");
    Ok(())
}

fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
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
