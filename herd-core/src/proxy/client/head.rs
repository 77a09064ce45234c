//! Heads on the worker side: the request head herd writes, and the
//! worker's response head, parsed with `httparse` in one pass that also
//! works out the body's framing (RFC 9112 §6.3) and whether the
//! connection stays open.

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, request};

use super::framing::Framing;
use crate::proxy::headers::{self, RequestRewrite};

/// The most header lines a response head may have (hyper's default).
pub(crate) const MAX_HEADERS: usize = 100;

/// The most bytes a response head may take.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;

/// A response head that cannot be used; the text says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeadError(pub &'static str);

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A worker's response head, hop-by-hop headers removed.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub status: StatusCode,
    /// The reason phrase, when it is not the status code's usual one.
    pub reason: Option<Bytes>,
    /// End-to-end headers only (RFC 9110 §7.6.1).
    pub headers: HeaderMap,
    /// The `Upgrade` value the worker sent (for a `101`).
    pub upgrade: Option<HeaderValue>,
    /// How the body is delimited, given the request it answers.
    pub framing: Framing,
    /// Whether the worker allows another request on the connection.
    pub keep_alive: bool,
}

/// What a header line means to the client side of the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Connection,
    ContentLength,
    TransferEncoding,
    Upgrade,
    /// Another hop-by-hop header: never forwarded.
    HopByHop,
    Other,
}

impl Known {
    fn of(name: &str) -> Known {
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        match name.len() {
            2 if is("te") => Known::HopByHop,
            7 if is("upgrade") => Known::Upgrade,
            7 if is("trailer") => Known::HopByHop,
            10 if is("connection") => Known::Connection,
            10 if is("keep-alive") => Known::HopByHop,
            14 if is("content-length") => Known::ContentLength,
            16 if is("proxy-connection") => Known::HopByHop,
            17 if is("transfer-encoding") => Known::TransferEncoding,
            _ => Known::Other,
        }
    }
}

/// Calls `f` with each token of a comma-separated value, trimmed.
fn for_each_token(value: &[u8], mut f: impl FnMut(&[u8])) {
    for token in value.split(|&b| b == b',') {
        let token = token.trim_ascii();
        if !token.is_empty() {
            f(token);
        }
    }
}

fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

/// Where a byte slice lies inside `base`.
fn range_in(base: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - base.as_ptr() as usize;
    start..start + part.len()
}

/// Parses the response head at the front of `buf`, the answer to a `HEAD`
/// request or not. `Ok(None)` while it is incomplete; once complete its
/// bytes are taken off `buf`, and header values share them (no copy).
///
/// `scratch` is room for notes and `headers` room for the headers (the
/// head takes the map, emptied first): both are reused between
/// exchanges, so a response head costs no allocation.
///
/// Framing that two readers could understand differently is refused, never
/// guessed: `Transfer-Encoding` together with `Content-Length`,
/// `Transfer-Encoding` in an HTTP/1.0 response, an invalid or repeated
/// different `Content-Length`.
pub(crate) fn parse_response(
    buf: &mut BytesMut,
    request_was_head: bool,
    scratch: &mut Vec<(Range<usize>, Range<usize>)>,
    headers: &mut HeaderMap,
) -> Result<Option<ResponseHead>, HeadError> {
    let bytes: &[u8] = &buf[..];
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, bytes, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if bytes.len() >= MAX_HEAD_BYTES => {
            return Err(HeadError("response head larger than 64 KiB"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError("more than 100 header lines")),
        Err(_) => return Err(HeadError("malformed response head")),
    };
    if len > MAX_HEAD_BYTES {
        return Err(HeadError("response head larger than 64 KiB"));
    }
    let (Some(version), Some(code)) = (resp.version, resp.code) else {
        return Err(HeadError("malformed status line"));
    };
    let status = StatusCode::from_u16(code).map_err(|_| HeadError("invalid status code"))?;
    let reason =
        resp.reason.filter(|r| Some(*r) != status.canonical_reason()).map(|r| range_in(bytes, r.as_bytes()));

    let (mut close, mut keep_alive, mut named) = (false, false, Vec::new());
    let (mut content_length, mut bad_length, mut encoding, mut chunked_last) = (None, false, false, false);
    let mut upgrade = None;
    let kept = scratch;
    kept.clear();
    for h in resp.headers.iter() {
        let known = Known::of(h.name);
        match known {
            Known::Connection => for_each_token(h.value, |token| {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                } else if !token.eq_ignore_ascii_case(b"upgrade") {
                    named.push(token.to_vec());
                }
            }),
            Known::ContentLength => {
                // `Content-Length: 5, 5` and repeated equal lines are one length.
                for_each_token(h.value, |token| match parse_length(token) {
                    Some(n) if content_length.is_none_or(|m| m == n) => content_length = Some(n),
                    _ => bad_length = true,
                });
                if h.value.trim_ascii().is_empty() {
                    bad_length = true;
                }
            }
            Known::TransferEncoding => {
                encoding = true;
                // The last coding of the last line decides (RFC 9112 §6.3).
                for_each_token(h.value, |token| chunked_last = token.eq_ignore_ascii_case(b"chunked"));
            }
            Known::Upgrade => upgrade = Some(range_in(bytes, h.value)),
            Known::HopByHop | Known::Other => {}
        }
        if matches!(known, Known::Other | Known::ContentLength) {
            kept.push((range_in(bytes, h.name.as_bytes()), range_in(bytes, h.value)));
        }
    }
    let http10 = version == 0;
    if encoding && (content_length.is_some() || bad_length) {
        return Err(HeadError("both Transfer-Encoding and Content-Length"));
    }
    if encoding && http10 {
        return Err(HeadError("Transfer-Encoding in an HTTP/1.0 response"));
    }
    if bad_length {
        return Err(HeadError("invalid Content-Length"));
    }
    let no_body = request_was_head || status.is_informational() || code == 204 || code == 304;
    let framing = if no_body {
        Framing::None
    } else if encoding {
        if chunked_last { Framing::Chunked } else { Framing::UntilClose }
    } else {
        match content_length {
            Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    let keep_alive = if http10 { keep_alive && !close } else { !close };

    let head = buf.split_to(len).freeze();
    let mut headers = std::mem::take(headers);
    headers.clear();
    headers.reserve(kept.len());
    for (name, value) in kept.drain(..) {
        let name = HeaderName::from_bytes(&head[name]).map_err(|_| HeadError("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(value))
            .map_err(|_| HeadError("invalid header value"))?;
        headers.append(name, value);
    }
    for name in named {
        // Headers the worker listed in `Connection` are hop-by-hop too.
        if let Ok(name) = HeaderName::from_bytes(&name) {
            headers.remove(name);
        }
    }
    let upgrade = upgrade.and_then(|range| HeaderValue::from_maybe_shared(head.slice(range)).ok());
    Ok(Some(ResponseHead {
        status,
        reason: reason.map(|range| head.slice(range)),
        headers,
        upgrade,
        framing,
        keep_alive: keep_alive && framing != Framing::UntilClose,
    }))
}

/// How a request body is sent to the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestFraming {
    /// No body.
    None,
    /// `Content-Length` bytes, written as they come.
    Length,
    /// `Transfer-Encoding: chunked`: each piece the client sends becomes a
    /// chunk.
    Chunked,
}

/// Writes the head of a request for a worker into `out`: request line in
/// origin-form, the headers as `rewrite` has them, `Content-Length` when
/// given, and `Transfer-Encoding: chunked` for [`RequestFraming::Chunked`]. Values
/// come from `http` types, which hold no CR or LF: nothing here can split
/// the head.
pub(crate) fn write_request(
    out: &mut Vec<u8>,
    parts: &request::Parts,
    rewrite: &RequestRewrite<'_>,
    framing: RequestFraming,
    content_length: Option<u64>,
) {
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(if target.is_empty() { b"/" } else { target.as_bytes() });
    out.extend_from_slice(b" HTTP/1.1\r\n");
    rewrite.write_fields(out);
    for (name, value) in &parts.headers {
        if rewrite.forwarded(name) {
            headers::line(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if let Some(length) = content_length {
        use std::io::Write;
        let _ = write!(out, "content-length: {length}\r\n");
    }
    if framing == RequestFraming::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one chunk of a chunked body (`data` not empty).
pub(crate) fn write_chunk(out: &mut Vec<u8>, mut data: Bytes) {
    use std::io::Write;
    let _ = write!(out, "{:x}\r\n", data.len());
    while data.has_remaining() {
        let piece = data.chunk();
        out.extend_from_slice(piece);
        let n = piece.len();
        data.advance(n);
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(raw: &str, head: bool) -> Result<Option<ResponseHead>, HeadError> {
        let mut buf = BytesMut::from(raw.as_bytes());
        parse_response(&mut buf, head, &mut Vec::new(), &mut HeaderMap::new())
    }

    fn meaning(raw: &str, head: bool) -> (Framing, bool) {
        let r = response(raw, head).unwrap().unwrap();
        (r.framing, r.keep_alive)
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        assert_eq!(
            meaning("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false),
            (Framing::Length(5), true)
        );
        assert_eq!(meaning("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true).0, Framing::None, "HEAD");
        assert_eq!(meaning("HTTP/1.1 204 No Content\r\n\r\n", false).0, Framing::None);
        assert_eq!(meaning("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", false).0, Framing::None);
        assert_eq!(meaning("HTTP/1.1 100 Continue\r\n\r\n", false).0, Framing::None);
        assert_eq!(meaning("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false).0, Framing::None);
        assert_eq!(meaning("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n", false).0, Framing::Length(7));
        assert_eq!(
            meaning("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false),
            (Framing::Chunked, true)
        );
        assert_eq!(
            meaning("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false),
            (Framing::UntilClose, false)
        );
        assert_eq!(meaning("HTTP/1.1 200 OK\r\n\r\n", false), (Framing::UntilClose, false));
        assert!(!meaning("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", false).1);
        assert!(!meaning("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false).1);
        assert!(meaning("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", false).1);
        assert!(response("HTTP/1.1 200 OK\r\n", false).unwrap().is_none(), "incomplete");
    }

    #[test]
    fn ambiguous_or_broken_heads_are_refused() {
        for raw in [
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "garbage\r\n\r\n",
        ] {
            assert!(response(raw, false).is_err(), "{raw:?}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: y\r\n")).collect();
        assert_eq!(
            response(&format!("HTTP/1.1 200 OK\r\n{many}\r\n"), false).unwrap_err().0,
            "more than 100 header lines"
        );
        let huge = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD_BYTES));
        assert!(response(&huge, false).is_err());
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_and_the_head_taken_off_the_buffer() {
        let raw = "HTTP/1.1 200 Fine\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\n\
                   Trailer: x\r\nUpgrade: h2c\r\nX-Kept: 1\r\nx-kept: 2\r\nContent-Length: 4\r\n\r\nbody";
        let mut buf = BytesMut::from(raw.as_bytes());
        let head = parse_response(&mut buf, false, &mut Vec::new(), &mut HeaderMap::new()).unwrap().unwrap();
        assert_eq!(&buf[..], b"body");
        assert_eq!(head.status, 200);
        assert_eq!(head.reason.as_deref(), Some(&b"Fine"[..]));
        assert_eq!(head.headers.len(), 3, "{:?}", head.headers);
        assert_eq!(head.headers.get_all("x-kept").iter().count(), 2);
        assert_eq!(head.headers["content-length"], "4");
        assert_eq!(head.upgrade.as_ref().map(|v| v.as_bytes()), Some(&b"h2c"[..]));
        let plain = response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false).unwrap().unwrap();
        assert_eq!(plain.reason, None, "the usual reason phrase is not kept");
    }

    #[test]
    fn a_head_fills_the_map_it_is_given_and_keeps_its_room() {
        // What a request left: a map with room, and stale entries.
        let mut room = HeaderMap::with_capacity(32);
        room.insert("x-from-the-request", HeaderValue::from_static("stale"));
        let capacity = room.capacity();
        let mut buf = BytesMut::from(&b"HTTP/1.1 204 No Content\r\nX-Answer: 42\r\n\r\n"[..]);
        let head = parse_response(&mut buf, false, &mut Vec::new(), &mut room).unwrap().unwrap();
        assert_eq!(head.headers.len(), 1, "{:?}", head.headers);
        assert_eq!(head.headers["x-answer"], "42");
        assert!(head.headers.capacity() >= capacity, "the map's room was not reused");
        assert!(room.is_empty(), "the head took the map");
    }

    #[test]
    fn request_heads_are_written_in_origin_form() {
        use crate::proxy::headers::ClientInfo;
        let (mut parts, ()) = http::Request::builder()
            .method("POST")
            .uri("/a?b=1")
            .header("host", "gw")
            .header("x-one", "1")
            .header("content-length", "99")
            .body(())
            .unwrap()
            .into_parts();
        let client = ClientInfo::new("10.0.0.7".parse().unwrap());
        let worker = HeaderValue::from_static("127.0.0.1:4000");
        let write = |parts: &request::Parts, framing, length| {
            let rewrite = RequestRewrite::new(&parts.headers, &client, &worker, false, None);
            let mut out = Vec::new();
            write_request(&mut out, parts, &rewrite, framing, length);
            String::from_utf8(out).unwrap()
        };
        let fields = "x-forwarded-for: 10.0.0.7\r\nx-forwarded-proto: http\r\n";
        assert_eq!(
            write(&parts, RequestFraming::Chunked, None),
            format!(
                "POST /a?b=1 HTTP/1.1\r\nhost: 127.0.0.1:4000\r\n{fields}x-forwarded-host: gw\r\nx-one: 1\r\ntransfer-encoding: chunked\r\n\r\n"
            )
        );
        assert_eq!(
            write(&parts, RequestFraming::Length, Some(12)),
            format!(
                "POST /a?b=1 HTTP/1.1\r\nhost: 127.0.0.1:4000\r\n{fields}x-forwarded-host: gw\r\nx-one: 1\r\ncontent-length: 12\r\n\r\n"
            )
        );
        parts.uri = http::Uri::from_static("*");
        parts.method = http::Method::OPTIONS;
        parts.headers.clear();
        assert_eq!(
            write(&parts, RequestFraming::None, None),
            format!("OPTIONS * HTTP/1.1\r\nhost: 127.0.0.1:4000\r\n{fields}\r\n")
        );
        let mut out = Vec::new();
        write_chunk(&mut out, Bytes::from_static(b"0123456789abcdefg"));
        assert_eq!(out, b"11\r\n0123456789abcdefg\r\n");
    }
}
