//! The proxy's worker-side HTTP/1.1 client against a fake worker that
//! speaks raw bytes over real sockets: response framing (Content-Length,
//! chunked with extensions and trailers, until close, HEAD, 204, 304, 1xx
//! before the final answer), request bodies (by length and chunked),
//! keep-alive reuse and a worker closing a kept-alive connection,
//! malformed or ambiguous answers (502, never a guess), a client leaving
//! mid-body (the worker connection closed, the lease released), and
//! upgrades.
//!
//! The worker is a thread of this test serving a real TCP listener,
//! plugged into a real pool through [`WorkerFactory`]: what it writes is
//! exactly what the proxy reads.

mod common;

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::wait_until;
use futures_util::future::BoxFuture;
use herd_core::{
    Error, ErrorKind, ExitStatus, Pool, PoolConfig, Proxy, ProxyConfig, SpawnContext, Worker, WorkerFactory,
};

/// What the fake worker has seen, shared with the test.
#[derive(Default)]
struct Seen {
    /// Connections accepted.
    connections: AtomicUsize,
    /// Requests read: (method, path, headers, body).
    requests: Mutex<Vec<Request>>,
    /// A write of an endless body failed: the proxy closed the connection.
    endless_cut: AtomicBool,
    /// Set by `/drop-next`: the next request on that connection gets no
    /// answer, the connection is closed instead.
    drop_next: AtomicBool,
}

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// Reads one request (head and body, by `Content-Length` or chunked);
/// `None` when the connection closed first.
fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut body = Vec::new();
    if headers.get("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16).map_err(io::Error::other)?;
            if size == 0 {
                line.clear();
                reader.read_line(&mut line)?;
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = headers.get("content-length") {
        body.resize(n.parse().map_err(io::Error::other)?, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(Some(Request { method, path, headers, body }))
}

/// Writes `pieces` one write at a time, pausing between them so they reach
/// the proxy as separate reads.
fn write_pieces(stream: &mut TcpStream, pieces: &[&[u8]]) -> io::Result<()> {
    for piece in pieces {
        stream.write_all(piece)?;
        stream.flush()?;
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Serves one connection; returns when it should close.
fn serve(stream: TcpStream, seen: &Seen) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    while let Some(req) = read_request(&mut reader)? {
        seen.requests.lock().unwrap().push(req.clone());
        if seen.drop_next.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        match req.path.as_str() {
            "/cl" => stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Worker: fake\r\n\r\nhello")?,
            "/chunked" => write_pieces(
                &mut stream,
                &[
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n",
                    b"5;ext=\"v\"\r\nhel",
                    b"lo\r\n",
                    b"6\r\n world\r\n0\r\nX-Sum: 11\r\n",
                    b"\r\n",
                ],
            )?,
            "/close" => {
                stream.write_all(b"HTTP/1.1 200 OK\r\n\r\nuntil ")?;
                stream.write_all(b"close")?;
                return Ok(());
            }
            "/head" => stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")?,
            "/204" => stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")?,
            "/304" => stream.write_all(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\nETag: \"e\"\r\n\r\n")?,
            "/interim" => write_pieces(
                &mut stream,
                &[
                    b"HTTP/1.1 100 Continue\r\n\r\n",
                    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                ],
            )?,
            "/then-close" => {
                stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye")?;
                return Ok(());
            }
            "/drop-next" => {
                seen.drop_next.store(true, Ordering::SeqCst);
                stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")?;
            }
            "/echo" => {
                let framing = if req.headers.contains_key("transfer-encoding") { "chunked" } else { "length" };
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Framing: {framing}\r\n\r\n",
                    req.body.len()
                )?;
                stream.write_all(&req.body)?;
            }
            "/garbage" => {
                stream.write_all(b"this is not HTTP\r\n\r\n")?;
                return Ok(());
            }
            "/te-cl" => stream.write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            )?,
            "/bad-chunk" => {
                stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")?;
                // Keep the connection open: the proxy must end it.
                let mut rest = Vec::new();
                let _ = reader.read_to_end(&mut rest);
                return Ok(());
            }
            "/short" => {
                stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")?;
                return Ok(());
            }
            "/unasked-101" => {
                stream.write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n")?;
            }
            "/endless" => {
                stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n")?;
                let block = vec![b'x'; 64 * 1024];
                loop {
                    if stream.write_all(&block).is_err() {
                        seen.endless_cut.store(true, Ordering::SeqCst);
                        return Ok(());
                    }
                }
            }
            "/upgrade" => {
                assert_eq!(req.headers.get("upgrade").map(String::as_str), Some("echo"));
                // The first tunnel bytes come in the same write as the head.
                stream.write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly",
                )?;
                let mut buf = [0u8; 1024];
                loop {
                    let n = reader.read(&mut buf)?;
                    if n == 0 {
                        return Ok(());
                    }
                    stream.write_all(&buf[..n])?;
                }
            }
            other => write!(stream, "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\n\r\n{other}", other.len())?,
        }
    }
    Ok(())
}

/// A worker that is a listener served by threads of this test.
struct FakeWorker {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl FakeWorker {
    fn start(seen: Arc<Seen>) -> io::Result<FakeWorker> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                seen.connections.fetch_add(1, Ordering::SeqCst);
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &seen);
                });
            }
        });
        Ok(FakeWorker { address, stop })
    }

    fn shut(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.address);
    }
}

impl Worker for FakeWorker {
    fn address(&self) -> Option<SocketAddr> {
        Some(self.address)
    }

    fn pid(&self) -> Option<u32> {
        None
    }

    fn health_check(&self, _timeout: Duration) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn exited(&mut self) -> BoxFuture<'_, ExitStatus> {
        Box::pin(std::future::pending())
    }

    fn stop(&mut self, _grace: Duration) -> BoxFuture<'_, ExitStatus> {
        self.shut();
        Box::pin(async { ExitStatus::from_raw(0) })
    }
}

impl Drop for FakeWorker {
    fn drop(&mut self) {
        self.shut();
    }
}

struct FakeFactory(Arc<Seen>);

impl WorkerFactory for FakeFactory {
    fn spawn(&self, _ctx: SpawnContext) -> BoxFuture<'static, Result<Box<dyn Worker>, Error>> {
        let seen = self.0.clone();
        Box::pin(async move {
            let worker = FakeWorker::start(seen).map_err(|e| {
                Error::new(ErrorKind::SpawnFailed, "cannot start the fake worker").with_source(e)
            })?;
            Ok(Box::new(worker) as Box<dyn Worker>)
        })
    }
}

/// A pool of one fake worker and a proxy on one I/O thread (so every
/// request shares the same upstream connections).
struct Setup {
    pool: Pool,
    proxy: Proxy,
    seen: Arc<Seen>,
}

impl Setup {
    fn new() -> Setup {
        let seen = Arc::new(Seen::default());
        let pool = Pool::builder(FakeFactory(seen.clone()))
            .config(PoolConfig { min: 0, max: 1, stop_grace: Duration::from_secs(1), ..Default::default() })
            .build()
            .unwrap();
        let proxy = Proxy::start(
            &pool,
            ProxyConfig { listen: "127.0.0.1:0".parse().unwrap(), threads: 1, ..Default::default() },
        )
        .unwrap();
        Setup { pool, proxy, seen }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.proxy.local_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// Sends `head` (request line and headers, no final CRLF) and `body`
    /// with `Connection: close`; returns the whole raw response.
    fn raw(&self, head: &str, body: &[u8]) -> String {
        let mut s = self.connect();
        write!(s, "{head}\r\nHost: gw\r\nX-Session-ID: s1\r\nConnection: close\r\n\r\n").unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        String::from_utf8_lossy(&raw).into_owned()
    }

    fn get(&self, path: &str) -> Response {
        Response::parse(&self.raw(&format!("GET {path} HTTP/1.1"), b""))
    }

    fn open_leases(&self) -> u64 {
        self.pool.stats().open_leases
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.proxy.stop_blocking(Duration::from_secs(1));
        self.pool.shutdown_blocking(Duration::from_secs(1));
    }
}

/// A response as the client got it.
#[derive(Debug)]
struct Response {
    status: u16,
    head: String,
    body: String,
    /// A chunked body ended with its last chunk.
    complete: bool,
}

impl Response {
    fn parse(raw: &str) -> Response {
        let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
        let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let head = head.to_ascii_lowercase();
        if !head.contains("transfer-encoding: chunked") {
            return Response { status, head, body: rest.to_string(), complete: true };
        }
        let (mut body, mut rest, mut complete) = (String::new(), rest, false);
        while let Some((size, after)) = rest.split_once("\r\n") {
            let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
            if n == 0 {
                complete = true;
                break;
            }
            body.push_str(&after[..n.min(after.len())]);
            rest = after.get(n + 2..).unwrap_or("");
        }
        Response { status, head, body, complete }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")))
    }
}

#[test]
fn content_length_bodies_reuse_one_connection() {
    let t = Setup::new();
    for _ in 0..3 {
        let r = t.get("/cl");
        assert_eq!((r.status, r.body.as_str()), (200, "hello"), "{r:?}");
        assert_eq!(r.header("x-worker"), Some("fake"));
        assert_eq!(r.header("content-length"), Some("5"));
    }
    assert_eq!(t.seen.connections.load(Ordering::SeqCst), 1, "one kept-alive worker connection");
    let req = t.seen.requests.lock().unwrap()[0].clone();
    assert_eq!((req.method.as_str(), req.path.as_str()), ("GET", "/cl"));
    assert!(!req.headers.contains_key("content-length") && !req.headers.contains_key("transfer-encoding"));
    assert_eq!(req.headers.get("x-forwarded-host").map(String::as_str), Some("gw"));
    assert!(!req.headers.contains_key("connection") || req.headers["connection"] != "close");
    wait_until("lease released", Duration::from_secs(5), || t.open_leases() == 0);
}

#[test]
fn chunked_bodies_with_extensions_and_trailers_keep_the_connection_in_step() {
    let t = Setup::new();
    let r = t.get("/chunked");
    assert_eq!(r.status, 200);
    assert!(r.complete, "{r:?}");
    assert_eq!(r.body, "hello world");
    assert_eq!(r.header("trailer"), None, "hop-by-hop");
    // The trailer section was read to its end: the next answer on the same
    // worker connection is whole.
    let r = t.get("/cl");
    assert_eq!((r.status, r.body.as_str()), (200, "hello"));
    assert_eq!(t.seen.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn bodies_until_close_end_with_the_connection() {
    let t = Setup::new();
    let r = t.get("/close");
    assert_eq!((r.status, r.body.as_str()), (200, "until close"), "{r:?}");
    let r = t.get("/cl");
    assert_eq!((r.status, r.body.as_str()), (200, "hello"));
    assert_eq!(t.seen.connections.load(Ordering::SeqCst), 2, "a body until close is never reused");
}

#[test]
fn head_204_304_and_interim_answers_have_no_body() {
    let t = Setup::new();
    let r = Response::parse(&t.raw("HEAD /head HTTP/1.1", b""));
    assert_eq!((r.status, r.body.as_str()), (200, ""), "{r:?}");
    assert_eq!(r.header("content-length"), Some("1234"), "HEAD keeps the worker's length");
    let r = t.get("/204");
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    let r = t.get("/304");
    assert_eq!((r.status, r.body.as_str()), (304, ""));
    assert_eq!(r.header("etag"), Some("\"e\""));
    let raw = t.raw("GET /interim HTTP/1.1", b"");
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "interim answers are not forwarded: {raw:?}");
    assert_eq!(Response::parse(&raw).body, "ok");
    // None of them left body bytes behind on the worker connection.
    let r = t.get("/cl");
    assert_eq!((r.status, r.body.as_str()), (200, "hello"));
    assert_eq!(t.seen.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn an_answer_carries_the_worker_headers_and_none_of_the_request() {
    // The proxy parses each answer's headers into the request's emptied
    // header map: nothing of the request may come back with the answer,
    // after interim answers or a retry on a new connection either.
    let t = Setup::new();
    let get =
        |path: &str| Response::parse(&t.raw(&format!("GET {path} HTTP/1.1\r\nX-Request-Only: secret"), b""));
    let mut answers = vec![("/cl", get("/cl")), ("/interim", get("/interim")), ("/204", get("/204"))];
    answers.push(("/drop-next", get("/drop-next")));
    answers.push(("/cl after a dropped request", get("/cl")));
    for (what, r) in &answers {
        assert!(r.status == 200 || r.status == 204, "{what}: {r:?}");
        assert!(!r.head.contains("secret") && !r.head.contains("x-request-only"), "{what}: {}", r.head);
        assert!(!r.head.contains("x-session-id") && !r.head.contains("host: gw"), "{what}: {}", r.head);
    }
    assert_eq!(answers[0].1.header("x-worker"), Some("fake"));
    let sent = t.seen.requests.lock().unwrap().clone();
    assert!(sent.iter().all(|r| r.headers.get("x-request-only").map(String::as_str) == Some("secret")));
    // The last `/cl` was sent twice: once on the dropped connection, once on a new one.
    assert_eq!(sent.iter().filter(|r| r.path == "/cl").count(), 3, "{sent:?}");
}

#[test]
fn request_bodies_go_by_length_or_chunked() {
    let t = Setup::new();
    let r = Response::parse(&t.raw("POST /echo HTTP/1.1\r\nContent-Length: 5", b"hello"));
    assert_eq!((r.status, r.body.as_str(), r.header("x-framing")), (200, "hello", Some("length")));
    let r = Response::parse(&t.raw(
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked",
        b"3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\nX-T: 1\r\n\r\n",
    ));
    assert_eq!((r.status, r.body.as_str(), r.header("x-framing")), (200, "abcdefg", Some("chunked")));
    let r = Response::parse(&t.raw("POST /echo HTTP/1.1\r\nContent-Length: 0", b""));
    assert_eq!((r.status, r.body.as_str(), r.header("x-framing")), (200, "", Some("length")));
    let sent = t.seen.requests.lock().unwrap().clone();
    assert_eq!(sent[1].headers.get("transfer-encoding").map(String::as_str), Some("chunked"));
    assert!(!sent[1].headers.contains_key("content-length"));
    assert_eq!(sent[2].headers.get("content-length").map(String::as_str), Some("0"));
}

#[test]
fn a_worker_closing_a_kept_alive_connection_costs_no_request() {
    let t = Setup::new();
    // Closed right after the answer: noticed at the next checkout, or the
    // request is sent again on a new connection.
    for _ in 0..3 {
        let r = t.get("/then-close");
        assert_eq!((r.status, r.body.as_str()), (200, "bye"));
        let r = t.get("/cl");
        assert_eq!((r.status, r.body.as_str()), (200, "hello"), "{r:?}");
    }
    // Closed after reading the next request, without answering: a GET on a
    // reused connection is sent once more, on a new connection.
    let r = t.get("/drop-next");
    assert_eq!((r.status, r.body.as_str()), (200, "next"));
    let before = t.seen.connections.load(Ordering::SeqCst);
    let r = t.get("/cl");
    assert_eq!((r.status, r.body.as_str()), (200, "hello"), "{r:?}");
    assert_eq!(t.seen.connections.load(Ordering::SeqCst), before + 1);
    let paths: Vec<String> = t.seen.requests.lock().unwrap().iter().map(|r| r.path.clone()).collect();
    assert_eq!(&paths[paths.len() - 2..], ["/cl", "/cl"], "sent twice: {paths:?}");
    // A POST is not sent twice: the client gets a 502.
    t.get("/drop-next");
    let r = Response::parse(&t.raw("POST /echo HTTP/1.1\r\nContent-Length: 2", b"hi"));
    assert_eq!(r.status, 502, "{r:?}");
    wait_until("leases released", Duration::from_secs(5), || t.open_leases() == 0);
}

#[test]
fn malformed_or_ambiguous_answers_are_refused() {
    let t = Setup::new();
    for path in ["/garbage", "/te-cl", "/unasked-101"] {
        let r = t.get(path);
        assert_eq!(r.status, 502, "{path}: {r:?}");
        assert_eq!(r.body, "the worker for this session did not answer\n");
    }
    // Broken framing inside a body: the head may be out already, so the
    // client's response ends early (or never starts, when hyper's server
    // had not flushed the head yet) instead of being completed by a guess.
    let r = t.get("/bad-chunk");
    assert!(r.status == 0 || (r.status == 200 && !r.complete && r.body == "hello"), "{r:?}");
    let r = t.get("/short");
    let cut =
        r.status == 0 || (r.status == 200 && r.header("content-length") == Some("10") && r.body == "half");
    assert!(cut, "cut short: {r:?}");
    wait_until("leases released", Duration::from_secs(5), || t.open_leases() == 0);
    // The proxy still serves the session.
    let r = t.get("/cl");
    assert_eq!((r.status, r.body.as_str()), (200, "hello"));
}

#[test]
fn a_client_leaving_mid_body_cancels_the_worker_request_and_releases_the_lease() {
    let t = Setup::new();
    let mut s = t.connect();
    write!(s, "GET /endless HTTP/1.1\r\nHost: gw\r\nX-Session-ID: s1\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < 200_000 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the body stopped early");
        got += n;
    }
    assert_eq!(t.open_leases(), 1, "the lease is held while the body streams");
    drop(s);
    wait_until("the worker connection closed", Duration::from_secs(10), || {
        t.seen.endless_cut.load(Ordering::SeqCst)
    });
    wait_until("lease released", Duration::from_secs(5), || t.open_leases() == 0);
}

#[test]
fn upgrades_become_tunnels_with_the_bytes_sent_after_the_101() {
    let t = Setup::new();
    let mut s = t.connect();
    write!(s, "GET /upgrade HTTP/1.1\r\nHost: gw\r\nX-Session-ID: s1\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let lower = head.to_ascii_lowercase();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(lower.contains("upgrade: echo") && lower.contains("connection: upgrade"), "{head}");
    let mut early = [0u8; 5];
    reader.read_exact(&mut early).unwrap();
    assert_eq!(&early, b"early");
    s.write_all(b"ping").unwrap();
    let mut echoed = [0u8; 4];
    reader.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"ping");
    assert_eq!(t.open_leases(), 1, "the tunnel holds the lease");
    s.shutdown(Shutdown::Both).unwrap();
    drop((s, reader));
    wait_until("lease released", Duration::from_secs(10), || t.open_leases() == 0);
}
