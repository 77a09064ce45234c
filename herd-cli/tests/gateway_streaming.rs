//! Bodies stream through the gateway both ways, never buffered whole, and
//! a request's lease lives exactly as long as the exchange.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

const MB: usize = 1 << 20;

/// Reads a response head; returns the reader positioned at the body.
fn read_head(stream: TcpStream) -> (String, BufReader<TcpStream>) {
    let mut reader = BufReader::with_capacity(256 * 1024, stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("response head");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    (head, reader)
}

/// Reads a chunked body to its end, counting bytes and checking each is `byte`.
fn drain_chunked(reader: &mut BufReader<TcpStream>, byte: Option<u8>) -> usize {
    let mut total = 0;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).expect("chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            let mut end = String::new();
            reader.read_line(&mut end).expect("last CRLF");
            return total;
        }
        let mut left = size;
        while left > 0 {
            let want = left.min(buf.len());
            let n = reader.read(&mut buf[..want]).expect("chunk data");
            assert!(n > 0, "connection closed mid-chunk after {total} bytes");
            if let Some(b) = byte {
                assert!(buf[..n].iter().all(|&x| x == b), "corrupted body");
            }
            total += n;
            left -= n;
        }
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).expect("chunk CRLF");
    }
}

/// Reads a body of `expected` bytes, each `byte`, framed as `head` says.
fn drain_body(head: &str, reader: &mut BufReader<TcpStream>, expected: usize, byte: u8) -> usize {
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return drain_chunked(reader, Some(byte));
    }
    let mut total = 0;
    let mut buf = vec![0u8; 256 * 1024];
    while total < expected {
        let n = reader.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed after {total} bytes");
        assert!(buf[..n].iter().all(|&x| x == byte), "corrupted body");
        total += n;
    }
    total
}

#[test]
fn a_hundred_megabytes_stream_down_and_up_in_bounded_gateway_memory() {
    let gw = Gateway::demo(&["--min", "1"]);
    assert_eq!(gw.get("big", "/").status, 200);
    let rss_before = status_kb(gw.pid(), "VmRSS");

    // Down: the worker streams 100 MB.
    let mut s = TcpStream::connect(gw.addr).unwrap();
    write!(s, "GET /bytes?n={} HTTP/1.1\r\nHost: x\r\nX-Session-ID: big\r\n\r\n", 100 * MB).unwrap();
    let (head, mut reader) = read_head(s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let received = drain_body(&head, &mut reader, 100 * MB, b'x');
    assert_eq!(received, 100 * MB);

    // Up and back down at once: 100 MB through /echo, read while writing.
    let s = TcpStream::connect(gw.addr).unwrap();
    let mut writer = s.try_clone().unwrap();
    let uploader = std::thread::spawn(move || {
        write!(
            writer,
            "POST /echo HTTP/1.1\r\nHost: x\r\nX-Session-ID: big\r\nContent-Length: {}\r\n\r\n",
            100 * MB
        )
        .unwrap();
        let chunk = vec![b'u'; MB];
        for _ in 0..100 {
            writer.write_all(&chunk).unwrap();
        }
    });
    let (head, mut reader) = read_head(s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let echoed = drain_body(&head, &mut reader, 100 * MB, b'u');
    uploader.join().unwrap();
    assert_eq!(echoed, 100 * MB);

    // 200 MB went through; the gateway's peak memory grew far less.
    let peak = status_kb(gw.pid(), "VmHWM");
    let grew_mb = peak.saturating_sub(rss_before) / 1024;
    eprintln!("gateway RSS before {rss_before} kB, peak {peak} kB");
    assert!(grew_mb < 40, "the gateway's memory grew by {grew_mb} MB while streaming 100 MB");
    wait_until("leases released", Duration::from_secs(5), || gw.open_leases() == 0);
}

#[test]
fn a_client_that_leaves_mid_download_frees_its_lease() {
    let gw = Gateway::demo(&["--min", "1"]);
    let mut s = TcpStream::connect(gw.addr).unwrap();
    write!(s, "GET /bytes?n={} HTTP/1.1\r\nHost: x\r\nX-Session-ID: quitter\r\n\r\n", 1024 * MB).unwrap();
    let (head, mut reader) = read_head(s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut buf = vec![0u8; MB];
    reader.read_exact(&mut buf).unwrap();
    assert_eq!(gw.open_leases(), 1, "the download holds its lease while it runs");
    drop(reader);
    wait_until("the lease is released", Duration::from_secs(10), || gw.open_leases() == 0);
    // The session stays bound and keeps working.
    assert_eq!(gw.get("quitter", "/").status, 200);
}

#[test]
fn a_client_that_leaves_mid_upload_frees_its_lease() {
    let gw = Gateway::demo(&["--min", "1"]);
    let mut s = TcpStream::connect(gw.addr).unwrap();
    write!(
        s,
        "PUT /kv/blob HTTP/1.1\r\nHost: x\r\nX-Session-ID: uploader\r\nContent-Length: {}\r\n\r\n",
        1024 * MB
    )
    .unwrap();
    s.write_all(&vec![b'z'; MB]).unwrap();
    wait_until("the upload holds a lease", Duration::from_secs(10), || gw.open_leases() == 1);
    drop(s);
    wait_until("the lease is released", Duration::from_secs(10), || gw.open_leases() == 0);
    assert_eq!(gw.get("uploader", "/kv/blob").status, 404, "the cut upload stored nothing");
}

#[test]
fn a_client_that_leaves_before_the_answer_frees_its_lease() {
    let gw = Gateway::demo(&["--min", "1"]);
    let mut s = TcpStream::connect(gw.addr).unwrap();
    write!(s, "GET /sleep?ms=30000 HTTP/1.1\r\nHost: x\r\nX-Session-ID: impatient\r\n\r\n").unwrap();
    wait_until("the request holds a lease", Duration::from_secs(10), || gw.open_leases() == 1);
    drop(s);
    wait_until("the lease is released", Duration::from_secs(10), || gw.open_leases() == 0);
}

#[test]
fn keep_alive_clients_reuse_connections_through_the_gateway() {
    let gw = Gateway::demo(&["--min", "1"]);
    let mut s = TcpStream::connect(gw.addr).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    for i in 0..50 {
        write!(s, "GET / HTTP/1.1\r\nHost: x\r\nX-Session-ID: steady\r\n\r\n").unwrap();
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        assert!(head.starts_with("HTTP/1.1 200"), "request {i}: {head}");
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["requests"], i + 1);
    }
    let metrics = request(gw.admin, "GET", "/metrics", &[], b"").text();
    let connects: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("herd_proxy_upstream_connects_total "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(connects <= 2, "50 requests on one client connection used {connects} worker connections");
}
