//! One HTTP/1.1 connection to a worker, and the exchange on it: the
//! request written straight from a buffer, the response head parsed in
//! place, the response body handed out in pieces of the read buffer.
//!
//! Everything is driven by whoever polls: [`Connection::send`] while the
//! response head is awaited, [`Connection::poll_data`] while the body is
//! read. Both also push the rest of the request body, so a worker that
//! answers while it still reads its request (an echo, an early error) is
//! served both ways at once, as with hyper's client.

use std::future::poll_fn;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, Method, header, request};
use hyper::body::{Body, Incoming};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use super::framing::{Decoder, Framing};
use super::head::{self, RequestFraming, ResponseHead};
use crate::proxy::headers::RequestRewrite;

/// How much room a read is given at least.
const READ_CHUNK: usize = 16 * 1024;

/// A request on its way to a worker.
pub(crate) struct Outgoing {
    /// Bytes to write, from `written` on: the head, then each piece of
    /// the body (with chunk framing) in turn.
    out: Vec<u8>,
    written: usize,
    /// The part of the body not taken from the client yet.
    body: Option<Incoming>,
    framing: RequestFraming,
    /// Some of the body was taken from the client: the request can no
    /// longer be sent again.
    body_started: bool,
    head: bool,
    idempotent: bool,
}

impl Outgoing {
    /// Serializes the head of `parts` as `rewrite` has it for the worker;
    /// `body` follows as the client sends it.
    ///
    /// The body's framing follows what hyper's server decoded from the
    /// client: a known length is sent with `Content-Length`, anything else
    /// chunked, no body with neither header (an empty body the client
    /// announced with `Content-Length: 0` keeps it).
    /// `out` is a buffer to write into (see [`Connection::take_buffer`]).
    pub(crate) fn new(
        parts: &request::Parts,
        rewrite: &RequestRewrite<'_>,
        body: Incoming,
        mut out: Vec<u8>,
    ) -> Outgoing {
        let (framing, length) = match body.size_hint().exact() {
            Some(0) if body.is_end_stream() => {
                (RequestFraming::None, parts.headers.contains_key(header::CONTENT_LENGTH).then_some(0))
            }
            Some(n) => (RequestFraming::Length, Some(n)),
            None => (RequestFraming::Chunked, None),
        };
        out.clear();
        head::write_request(&mut out, parts, rewrite, framing, length);
        let body = (framing != RequestFraming::None).then_some(body);
        Outgoing {
            out,
            written: 0,
            body,
            framing,
            body_started: false,
            head: parts.method == Method::HEAD,
            idempotent: matches!(
                parts.method,
                Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
            ),
        }
    }

    fn is_sent(&self) -> bool {
        self.body.is_none() && self.written == self.out.len()
    }

    /// Takes the next piece of the body from the client into `out`, once
    /// `out` is written. `Ready(Ok(()))` once everything is written.
    fn poll_write(&mut self, cx: &mut Context<'_>, stream: &mut TcpStream) -> Poll<Result<(), PushError>> {
        loop {
            while self.written < self.out.len() {
                let n = match ready!(Pin::new(&mut *stream).poll_write(cx, &self.out[self.written..])) {
                    Ok(0) => return Poll::Ready(Err(PushError::Worker(io::ErrorKind::WriteZero.into()))),
                    Ok(n) => n,
                    Err(e) => return Poll::Ready(Err(PushError::Worker(e))),
                };
                self.written += n;
            }
            let Some(body) = self.body.as_mut() else { return Poll::Ready(Ok(())) };
            let frame = ready!(Pin::new(body).poll_frame(cx));
            self.body_started = true;
            self.out.clear();
            self.written = 0;
            match frame {
                Some(Ok(frame)) => {
                    // Request trailers are dropped (`TE` and `Trailer` are
                    // hop-by-hop: the worker was promised none).
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        match self.framing {
                            RequestFraming::Chunked => head::write_chunk(&mut self.out, data),
                            _ => self.out.extend_from_slice(&data),
                        }
                    }
                }
                Some(Err(e)) => {
                    self.body = None;
                    return Poll::Ready(Err(PushError::Client(format!(
                        "the client's request body failed: {e}"
                    ))));
                }
                None => {
                    self.body = None;
                    if self.framing == RequestFraming::Chunked {
                        self.out.extend_from_slice(b"0\r\n\r\n");
                    }
                }
            }
        }
    }
}

/// Why a request could not be pushed on.
enum PushError {
    /// Writing to the worker failed: it may still answer.
    Worker(io::Error),
    /// The client's body failed (the client went away, or broke its
    /// framing): the exchange is over.
    Client(String),
}

/// Why an exchange failed.
pub(crate) enum SendError {
    /// Nothing reached the worker, or the connection was a kept-alive one
    /// that closed under an idempotent request without a body before any
    /// answer: the request may be sent again, on a new connection.
    Unsent(Box<Outgoing>),
    /// The exchange failed; the text says how.
    Failed(String),
}

/// A broken response body; the text says how.
#[derive(Debug)]
pub(crate) struct BodyError(pub String);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BodyError {}

/// One connection to a worker.
pub(crate) struct Connection {
    stream: TcpStream,
    /// Bytes read and not used yet.
    read: BytesMut,
    /// The request of the exchange in progress.
    request: Option<Outgoing>,
    /// Writing the request failed after part of it went out; the worker
    /// may still answer, but the connection is not reused.
    write_failed: Option<io::Error>,
    /// The response body's framing.
    decoder: Decoder,
    keep_alive: bool,
    /// The response body has been read to its end.
    body_done: bool,
    /// Exchanges completed on this connection.
    exchanges: u64,
    /// The last request's buffer, for the next one.
    spare: Vec<u8>,
    /// Room to note where a response's headers lie.
    scratch: Vec<(Range<usize>, Range<usize>)>,
    /// Room for the response's headers (see [`Connection::send`]).
    headers: HeaderMap,
}

/// A request buffer larger than this is not kept for the next request.
const MAX_SPARE: usize = 16 * 1024;

impl Connection {
    pub(crate) fn new(stream: TcpStream) -> Connection {
        Connection {
            stream,
            read: BytesMut::with_capacity(READ_CHUNK),
            request: None,
            write_failed: None,
            decoder: Decoder::new(Framing::None),
            keep_alive: false,
            body_done: true,
            exchanges: 0,
            spare: Vec::with_capacity(512),
            scratch: Vec::with_capacity(16),
            headers: HeaderMap::new(),
        }
    }

    /// Whether an idle connection is still open and quiet: a worker that
    /// closed it (or sent bytes nobody asked for) makes it unusable. Costs
    /// no system call unless the socket became readable.
    pub(crate) fn is_idle_alive(&mut self) -> bool {
        if !self.read.is_empty() {
            return false;
        }
        self.read.reserve(1);
        matches!(self.stream.try_read_buf(&mut self.read), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends `req` and waits for the final response head (interim `1xx`
    /// answers other than `101` are skipped). The head's headers go into
    /// `headers`' room: the request's own map, serialized and emptied,
    /// so that with hyper (which reuses each response's map for the next
    /// request) no exchange allocates a header map.
    pub(crate) async fn send(
        &mut self,
        req: Outgoing,
        headers: HeaderMap,
    ) -> Result<ResponseHead, SendError> {
        self.request = Some(req);
        self.headers = headers;
        self.write_failed = None;
        self.body_done = false;
        let outcome = poll_fn(|cx| self.poll_head(cx)).await;
        if outcome.is_ok() {
            self.exchanges += 1;
        }
        outcome
    }

    fn poll_head(&mut self, cx: &mut Context<'_>) -> Poll<Result<ResponseHead, SendError>> {
        match self.poll_write(cx) {
            Poll::Ready(Err(PushError::Worker(e))) => {
                let untouched = self.request.as_ref().is_some_and(|r| r.written == 0 && !r.body_started);
                if untouched && self.read.is_empty() {
                    return Poll::Ready(self.unsent(|| format!("cannot send the request: {e}")));
                }
                self.write_failed = Some(e);
            }
            Poll::Ready(Err(PushError::Client(why))) => return Poll::Ready(Err(SendError::Failed(why))),
            _ => {}
        }
        loop {
            if !self.read.is_empty() {
                let request_was_head = self.request.as_ref().is_some_and(|r| r.head);
                match head::parse_response(
                    &mut self.read,
                    request_was_head,
                    &mut self.scratch,
                    &mut self.headers,
                ) {
                    Ok(Some(head)) if head.status.is_informational() && head.status != 101 => continue,
                    Ok(Some(head)) => {
                        self.decoder = Decoder::new(head.framing);
                        self.body_done = head.framing == Framing::None;
                        self.keep_alive = head.keep_alive;
                        return Poll::Ready(Ok(head));
                    }
                    Ok(None) => {}
                    Err(e) => return Poll::Ready(Err(SendError::Failed(format!("invalid response: {e}")))),
                }
            }
            match ready!(self.poll_fill(cx)) {
                Ok(n) if n > 0 => continue,
                Ok(_) => {
                    return Poll::Ready(self.unsent(|| "the connection closed before a response".into()));
                }
                Err(e) => {
                    return Poll::Ready(
                        self.unsent(|| format!("the connection failed before a response: {e}")),
                    );
                }
            }
        }
    }

    /// The exchange failed before any response: `Unsent` when sending the
    /// request again is harmless (see [`SendError::Unsent`]).
    fn unsent(&mut self, why: impl FnOnce() -> String) -> Result<ResponseHead, SendError> {
        let reused = self.exchanges > 0;
        let again = self.read.is_empty()
            && self.request.as_ref().is_some_and(|r| {
                !r.body_started && (r.written == 0 || (reused && r.idempotent && r.body.is_none()))
            });
        match self.request.take() {
            Some(mut req) if again => {
                req.written = 0;
                Err(SendError::Unsent(Box::new(req)))
            }
            _ => {
                let mut why = why();
                if let Some(e) = &self.write_failed {
                    why.push_str(&format!(" (writing the request failed: {e})"));
                }
                Err(SendError::Failed(why))
            }
        }
    }

    /// Pushes what is left of the request; a failure is kept, not
    /// returned twice.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), PushError>> {
        if self.write_failed.is_some() {
            return Poll::Ready(Ok(()));
        }
        match self.request.as_mut() {
            Some(req) if !req.is_sent() => req.poll_write(cx, &mut self.stream),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Reads once into the read buffer: `Ok(0)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.read.capacity() - self.read.len() < READ_CHUNK / 4 {
            self.read.reserve(READ_CHUNK);
        }
        let room = self.read.capacity() - self.read.len();
        loop {
            match self.stream.try_read_buf(&mut self.read) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready!(self.stream.poll_read_ready(cx))?,
                Ok(n) if n > 0 && n < room => {
                    // A short read drained the socket: forget its readiness
                    // (as tokio's own `poll_read` does), so the next read
                    // or idle check waits for the next readiness event
                    // instead of paying a system call that finds nothing.
                    let _ = self
                        .stream
                        .try_io(Interest::READABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
                    return Poll::Ready(Ok(n));
                }
                done => return Poll::Ready(done),
            }
        }
    }

    /// The next piece of the response body; `None` at its end. Also pushes
    /// the rest of the request body.
    pub(crate) fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, BodyError>> {
        match self.poll_write(cx) {
            Poll::Ready(Err(PushError::Worker(e))) => {
                // The worker stopped reading its request; its answer may
                // still be whole. The connection is not reused.
                self.write_failed = Some(e);
            }
            Poll::Ready(Err(PushError::Client(why))) => {
                self.body_done = true;
                self.keep_alive = false;
                return Poll::Ready(Err(BodyError(why)));
            }
            _ => {}
        }
        loop {
            if self.body_done {
                return Poll::Ready(Ok(None));
            }
            if !self.read.is_empty() {
                let span = self
                    .decoder
                    .decode(&self.read)
                    .map_err(|e| BodyError(format!("invalid response body: {e}")))?;
                self.read.advance(span.framing);
                self.body_done = span.end;
                if span.data > 0 {
                    return Poll::Ready(Ok(Some(self.read.split_to(span.data).freeze())));
                }
                if span.end {
                    return Poll::Ready(Ok(None));
                }
            } else if self.decoder.is_done() {
                self.body_done = true;
                return Poll::Ready(Ok(None));
            }
            match ready!(self.poll_fill(cx)) {
                Ok(0) => {
                    self.keep_alive = false;
                    self.decoder.closed().map_err(|e| BodyError(format!("invalid response body: {e}")))?;
                    self.body_done = true;
                    return Poll::Ready(Ok(None));
                }
                Ok(_) => {}
                Err(e) => {
                    return Poll::Ready(Err(BodyError(format!("reading the response body failed: {e}"))));
                }
            }
        }
    }

    /// Whether the response body has been read to its end.
    pub(crate) fn is_body_done(&self) -> bool {
        self.body_done
    }

    /// Body bytes still to come, when known.
    pub(crate) fn remaining(&self) -> Option<u64> {
        if self.body_done { Some(0) } else { self.decoder.remaining() }
    }

    /// Whether the connection can carry another exchange: the request was
    /// sent whole, the response read to its end with nothing after it,
    /// and the worker keeps the connection open.
    pub(crate) fn is_reusable(&self) -> bool {
        self.body_done
            && self.keep_alive
            && self.write_failed.is_none()
            && self.read.is_empty()
            && self.request.as_ref().is_none_or(Outgoing::is_sent)
    }

    /// Ends the exchange (the connection goes back to the pool).
    pub(crate) fn finish(&mut self) {
        if let Some(req) = self.request.take()
            && req.out.capacity() <= MAX_SPARE
        {
            self.spare = req.out;
        }
    }

    /// A buffer for the next request's head (the last one's, reused).
    pub(crate) fn take_buffer(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.spare)
    }

    /// The raw connection after a `101`, with the bytes the worker sent
    /// after its response head.
    pub(crate) fn into_upgraded(mut self) -> Upgraded {
        Upgraded { early: self.read.split().freeze(), stream: self.stream }
    }
}

/// A worker connection after a protocol switch: bytes already read are
/// returned first.
pub(crate) struct Upgraded {
    early: Bytes,
    stream: TcpStream,
}

impl AsyncRead for Upgraded {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.early.is_empty() {
            let n = this.early.len().min(buf.remaining());
            buf.put_slice(&this.early[..n]);
            this.early.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
