//! WebSocket round-trip load: N sockets, each sending one binary message and
//! waiting for its echo before sending the next (closed loop), for a fixed
//! time. Prints one JSON line: messages/s and round-trip percentiles.
//!
//! ```text
//! herd-ws-load --url ws://127.0.0.1:8080/ --header X-Session-ID:bench \
//!     [--sockets 64] [--duration 5] [--warmup 1] [--size 32] [--threads 2]
//! ```
//!
//! Any WebSocket echo server works as the target; `bench/run` points it at
//! the demo worker directly and through herd's gateway. Round trips that
//! start during the warm-up are not counted. Exits with status 1 (and an
//! error on stderr) when a socket cannot connect or a round trip fails.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

struct Options {
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    sockets: usize,
    duration: Duration,
    warmup: Duration,
    size: usize,
    threads: usize,
}

const USAGE: &str = "usage: herd-ws-load --url ws://HOST:PORT/PATH [--header NAME:VALUE]... [--sockets N] \
                     [--duration SECONDS] [--warmup SECONDS] [--size BYTES] [--threads N]";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut opts = Options {
        url: String::new(),
        headers: Vec::new(),
        sockets: 64,
        duration: Duration::from_secs(5),
        warmup: Duration::from_secs(1),
        size: 32,
        threads: 2,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--url" => opts.url = value()?,
            "--header" => {
                let raw = value()?;
                let (name, val) =
                    raw.split_once(':').ok_or_else(|| format!("--header {raw}: expected NAME:VALUE"))?;
                let name = HeaderName::try_from(name.trim()).map_err(|e| format!("--header {raw}: {e}"))?;
                let val = HeaderValue::try_from(val.trim()).map_err(|e| format!("--header {raw}: {e}"))?;
                opts.headers.push((name, val));
            }
            "--sockets" => opts.sockets = number(&flag, &value()?)?,
            "--duration" => opts.duration = seconds(&flag, &value()?)?,
            "--warmup" => opts.warmup = seconds(&flag, &value()?)?,
            "--size" => opts.size = number(&flag, &value()?)?,
            "--threads" => opts.threads = number(&flag, &value()?)?,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if opts.url.is_empty() {
        return Err(format!("--url is required\n{USAGE}"));
    }
    if opts.sockets == 0 || opts.threads == 0 {
        return Err("--sockets and --threads must be at least 1".to_string());
    }
    Ok(opts)
}

fn number(flag: &str, v: &str) -> Result<usize, String> {
    v.parse().map_err(|_| format!("{flag} {v}: expected a whole number"))
}

fn seconds(flag: &str, v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{flag} {v}: expected seconds (e.g. 5 or 0.5)"))
}

/// One socket's closed loop: round-trip times (ns) of the messages sent
/// between `measure_from` and `stop_at`.
async fn socket(
    opts: &Options,
    index: usize,
    start: &tokio::sync::Barrier,
    measure_from: &std::sync::OnceLock<(Instant, Instant)>,
) -> Result<Vec<u64>, String> {
    let mut request = opts
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("socket {index}: bad --url {}: {e}", opts.url))?;
    for (name, value) in &opts.headers {
        request.headers_mut().insert(name.clone(), value.clone());
    }
    let connected = tokio_tungstenite::connect_async(request).await;
    // Every socket reaches the barrier, connected or not, so none waits forever.
    start.wait().await;
    let (mut ws, _) =
        connected.map_err(|e| format!("socket {index}: cannot connect to {}: {e}", opts.url))?;
    let (warm_until, stop_at) = *measure_from.get_or_init(|| {
        let now = Instant::now();
        (now + opts.warmup, now + opts.warmup + opts.duration)
    });
    let payload = tokio_tungstenite::tungstenite::Bytes::from(vec![b'x'; opts.size]);
    let mut times = Vec::with_capacity(16 * 1024);
    loop {
        let sent = Instant::now();
        if sent >= stop_at {
            break;
        }
        ws.send(Message::Binary(payload.clone())).await.map_err(|e| format!("socket {index}: send: {e}"))?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(echo))) if echo.len() == opts.size => break,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => return Err(format!("socket {index}: expected the echo, got {other:?}")),
                Some(Err(e)) => return Err(format!("socket {index}: receive: {e}")),
                None => return Err(format!("socket {index}: the server closed the connection")),
            }
        }
        if sent >= warm_until {
            times.push(sent.elapsed().as_nanos() as u64);
        }
    }
    // A clean close; the figures are taken already, so a failure here is not one.
    let _ = ws.close(None).await;
    Ok(times)
}

fn percentile_us(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("herd-ws-load: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(opts.threads).enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("herd-ws-load: cannot start the async runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
    let opts = std::sync::Arc::new(opts);
    let results = runtime.block_on(async {
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(opts.sockets));
        let measure_from = std::sync::Arc::new(std::sync::OnceLock::new());
        let tasks: Vec<_> = (0..opts.sockets)
            .map(|i| {
                let (opts, start, measure_from) = (opts.clone(), start.clone(), measure_from.clone());
                tokio::spawn(async move { socket(&opts, i, &start, &measure_from).await })
            })
            .collect();
        let mut results = Vec::with_capacity(tasks.len());
        for t in tasks {
            results.push(t.await.unwrap_or_else(|e| Err(format!("a socket's task failed: {e}"))));
        }
        results
    });
    let mut all = Vec::new();
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(times) => all.extend(times),
            Err(e) => failures.push(e),
        }
    }
    if !failures.is_empty() {
        for e in failures.iter().take(5) {
            eprintln!("herd-ws-load: {e}");
        }
        eprintln!("herd-ws-load: {} of {} sockets failed", failures.len(), opts.sockets);
        return ExitCode::FAILURE;
    }
    all.sort_unstable();
    let secs = opts.duration.as_secs_f64();
    println!(
        "{{\"sockets\":{},\"size\":{},\"seconds\":{:.3},\"messages\":{},\"messages_per_s\":{:.1},\
         \"p50_us\":{:.1},\"p99_us\":{:.1},\"p999_us\":{:.1}}}",
        opts.sockets,
        opts.size,
        secs,
        all.len(),
        all.len() as f64 / secs,
        percentile_us(&all, 0.50),
        percentile_us(&all, 0.99),
        percentile_us(&all, 0.999),
    );
    ExitCode::SUCCESS
}
