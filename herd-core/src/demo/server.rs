//! The demo worker's HTTP server.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

struct DemoState {
    worker_id: String,
    pid: u32,
    requests: AtomicU64,
    healthy: AtomicBool,
    kv: Mutex<HashMap<String, Bytes>>,
    hoard: Mutex<Vec<Vec<u8>>>,
    children: Mutex<Vec<i32>>,
}

struct Options {
    port: Option<u16>,
    host: String,
    threads: usize,
    ignore_sigterm: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut opts = Options { port: None, host: "127.0.0.1".into(), threads: 1, ignore_sigterm: false };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => opts.port = Some(value("--port")?.parse().map_err(|e| format!("--port: {e}"))?),
            "--host" => opts.host = value("--host")?,
            "--threads" => {
                opts.threads = value("--threads")?.parse().map_err(|e| format!("--threads: {e}"))?
            }
            "--ignore-sigterm" => opts.ignore_sigterm = true,
            "-h" | "--help" => {
                return Err(
                    "usage: herd-demo-worker [--port N] [--host ADDR] [--threads N] [--ignore-sigterm]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if opts.port.is_none() {
        opts.port = std::env::var("PORT").ok().and_then(|p| p.parse().ok());
    }
    Ok(opts)
}

/// Runs the demo worker with command-line `args` (without the program
/// name). Returns the process exit code.
pub fn run(args: Vec<String>) -> i32 {
    let opts = match parse(&args) {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("herd-demo-worker: {message}");
            return 2;
        }
    };
    if opts.ignore_sigterm {
        // SAFETY: setting a signal disposition at start, before threads.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    }
    let Some(port) = opts.port else {
        eprintln!("herd-demo-worker: no port: pass --port N or set PORT");
        return 2;
    };
    let addr: SocketAddr = match format!("{}:{port}", opts.host).parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("herd-demo-worker: bad address {}:{port}: {e}", opts.host);
            return 2;
        }
    };
    let pid =
        std::env::var("HERD_WORKER_PID").ok().and_then(|p| p.parse().ok()).unwrap_or_else(std::process::id);
    let state = Arc::new(DemoState {
        worker_id: std::env::var("HERD_WORKER_ID").unwrap_or_else(|_| format!("pid-{pid}")),
        pid,
        requests: AtomicU64::new(0),
        healthy: AtomicBool::new(true),
        kv: Mutex::new(HashMap::new()),
        hoard: Mutex::new(Vec::new()),
        children: Mutex::new(Vec::new()),
    });
    let runtime = if opts.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(opts.threads).enable_all().build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("herd-demo-worker: cannot start runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(serve(addr, state)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("herd-demo-worker: {e}");
            1
        }
    }
}

async fn serve(addr: SocketAddr, state: Arc<DemoState>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    eprintln!("demo worker {} (pid {}) listening on {addr}", state.worker_id, state.pid);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, state.clone()));
            let _ =
                http1::Builder::new().serve_connection(TokioIo::new(stream), service).with_upgrades().await;
        });
    }
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).map_err(|never: Infallible| match never {}).boxed()
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain"));
    resp
}

fn json(value: serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(full(value.to_string()));
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    resp
}

fn query(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| v.to_string())
    })
}

fn query_num(req: &Request<Incoming>, name: &str, default: u64) -> u64 {
    query(req, name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn handle(mut req: Request<Incoming>, state: Arc<DemoState>) -> Result<Response<Body>, Infallible> {
    if is_websocket(&req) {
        return Ok(upgrade_websocket(&mut req));
    }
    let path = req.uri().path().to_string();
    let resp = match (req.method().clone(), path.as_str()) {
        (Method::GET, "/health") => {
            if state.healthy.load(Ordering::Relaxed) {
                text(StatusCode::OK, "ok")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "failing on request")
            }
        }
        (Method::POST, "/health/fail") => {
            state.healthy.store(false, Ordering::Relaxed);
            text(StatusCode::OK, "health checks will fail")
        }
        (Method::POST, "/health/ok") => {
            state.healthy.store(true, Ordering::Relaxed);
            text(StatusCode::OK, "health checks will pass")
        }
        (Method::GET, "/") => {
            let n = state.requests.fetch_add(1, Ordering::Relaxed) + 1;
            let session = req.headers().get("x-session-id").and_then(|v| v.to_str().ok());
            json(serde_json::json!({
                "worker_id": state.worker_id,
                "pid": state.pid,
                "requests": n,
                "session": session,
                "path": path,
            }))
        }
        (Method::GET, "/headers") => {
            let headers: serde_json::Map<String, serde_json::Value> = req
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect();
            json(serde_json::json!({ "path": req.uri().to_string(), "headers": headers }))
        }
        (Method::GET, "/sleep") => {
            tokio::time::sleep(Duration::from_millis(query_num(&req, "ms", 100))).await;
            text(StatusCode::OK, "slept")
        }
        (Method::POST, "/echo") | (Method::PUT, "/echo") => {
            let body = req.into_body().map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
            Response::new(body.boxed())
        }
        (Method::GET, "/bytes") => stream_bytes(query_num(&req, "n", 1024)),
        (Method::GET, "/crash") => {
            let code = query_num(&req, "code", 3) as i32;
            std::process::exit(code);
        }
        (Method::GET, "/abort") => std::process::abort(),
        (Method::GET, "/children") => spawn_children(&req, &state),
        (Method::GET, "/ns") => {
            // What this process can see: its PID in its own namespace and
            // the PIDs /proc lists (its namespace's, if /proc is private).
            let visible: Vec<u32> = std::fs::read_dir("/proc")
                .map(|d| d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
                .unwrap_or_default();
            let link = |p: &str| std::fs::read_link(p).map(|l| l.display().to_string()).unwrap_or_default();
            json(serde_json::json!({
                "pid_in_namespace": std::process::id(),
                "host_pid": state.pid,
                "visible_pids": visible,
                "pid_ns": link("/proc/self/ns/pid"),
                "ipc_ns": link("/proc/self/ns/ipc"),
                "mnt_ns": link("/proc/self/ns/mnt"),
            }))
        }
        (Method::GET, "/alloc") => {
            let mb = query_num(&req, "mb", 10) as usize;
            let mut block = vec![0u8; mb << 20];
            for i in (0..block.len()).step_by(4096) {
                block[i] = 1;
            }
            let mut hoard = state.hoard.lock();
            hoard.push(block);
            let total: usize = hoard.iter().map(Vec::len).sum();
            json(serde_json::json!({ "allocated_mb": total >> 20 }))
        }
        (Method::GET, "/spin") => {
            let ms = query_num(&req, "ms", 1000);
            let threads = query_num(&req, "threads", 1).clamp(1, 64);
            let started = Instant::now();
            let work = tokio::task::spawn_blocking(move || {
                let deadline = Instant::now() + Duration::from_millis(ms);
                let handles: Vec<_> = (0..threads)
                    .map(|_| {
                        std::thread::spawn(move || {
                            let mut x = 0u64;
                            while Instant::now() < deadline {
                                for i in 0..10_000u64 {
                                    x = x.wrapping_mul(31).wrapping_add(i);
                                }
                                std::hint::black_box(x);
                            }
                        })
                    })
                    .collect();
                for h in handles {
                    let _ = h.join();
                }
            });
            let _ = work.await;
            json(serde_json::json!({ "spun_ms": started.elapsed().as_millis() as u64 }))
        }
        (Method::GET, "/forkbomb") => {
            let mut made = 0u64;
            loop {
                // SAFETY: the child only calls pause() forever.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    loop {
                        unsafe { libc::pause() };
                    }
                }
                if pid < 0 {
                    break;
                }
                made += 1;
                if made >= 100_000 {
                    break;
                }
            }
            json(serde_json::json!({ "forked": made }))
        }
        (method, path) if path.starts_with("/kv/") => {
            let key = path["/kv/".len()..].to_string();
            match method {
                Method::GET => match state.kv.lock().get(&key) {
                    Some(value) => Response::new(full(value.clone())),
                    None => text(StatusCode::NOT_FOUND, "no such key"),
                },
                Method::PUT | Method::POST => match req.into_body().collect().await {
                    Ok(body) => {
                        state.kv.lock().insert(key, body.to_bytes());
                        text(StatusCode::OK, "stored")
                    }
                    Err(e) => text(StatusCode::BAD_REQUEST, format!("cannot read body: {e}")),
                },
                Method::DELETE => {
                    state.kv.lock().remove(&key);
                    text(StatusCode::OK, "deleted")
                }
                _ => text(StatusCode::METHOD_NOT_ALLOWED, "use GET, PUT or DELETE"),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    };
    Ok(resp)
}

fn stream_bytes(n: u64) -> Response<Body> {
    const CHUNK: u64 = 64 * 1024;
    let chunk = Bytes::from(vec![b'x'; CHUNK as usize]);
    let stream = futures_util::stream::unfold(n, move |left| {
        let chunk = chunk.clone();
        async move {
            if left == 0 {
                return None;
            }
            let take = left.min(CHUNK);
            Some((
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Frame::data(chunk.slice(..take as usize))),
                left - take,
            ))
        }
    });
    let mut resp = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    resp.headers_mut().insert(header::CONTENT_LENGTH, header::HeaderValue::from(n));
    resp
}

fn spawn_children(req: &Request<Incoming>, state: &DemoState) -> Response<Body> {
    let n = query_num(req, "n", 1).min(64);
    let ignore_term = query(req, "ignore_term").is_some_and(|v| v == "1");
    let detach = query(req, "detach").is_some_and(|v| v == "1");
    let mut pids = Vec::new();
    for _ in 0..n {
        // SAFETY: the child only makes async-signal-safe calls, forever.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                if ignore_term {
                    libc::signal(libc::SIGTERM, libc::SIG_IGN);
                }
                if detach {
                    libc::setsid();
                }
                loop {
                    libc::pause();
                }
            }
        }
        if pid < 0 {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("fork: {}", std::io::Error::last_os_error()),
            );
        }
        pids.push(pid);
    }
    state.children.lock().extend(pids.iter().copied());
    json(serde_json::json!({ "pids": pids }))
}

fn is_websocket(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && req.headers().contains_key(header::SEC_WEBSOCKET_KEY)
}

fn upgrade_websocket(req: &mut Request<Incoming>) -> Response<Body> {
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_text() || msg.is_binary() {
                if ws.send(msg).await.is_err() {
                    break;
                }
            } else if msg.is_close() {
                break;
            }
        }
    });
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, header::HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, header::HeaderValue::from_static("Upgrade"));
    if let Ok(v) = header::HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}
