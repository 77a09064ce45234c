//! Response bodies sent to clients: a worker's body, streamed, holding the
//! request's lease; or a short body herd writes itself.
//!
//! The lease of a request is released when its response body has been
//! handed to the client connection completely — not when the head goes
//! out — or when the client goes away: hyper then drops the body, which
//! drops the worker's half-read response and so closes that upstream
//! connection, cancelling the request at the worker.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::upstream::Conn;
use crate::pool::Lease;

/// The body of every response the proxy sends.
pub(crate) enum ProxyBody {
    /// A worker's response, streamed.
    Upstream(Box<Streamed>),
    /// A body herd writes itself (errors, admin routes).
    Full(Option<Bytes>),
}

/// A worker's response body with what it holds until it ends.
pub(crate) struct Streamed {
    body: Incoming,
    /// Released when the body ends or is dropped.
    lease: Option<Lease>,
    /// Given back for reuse only if the body was read to its end.
    conn: Option<Conn>,
    finished: bool,
}

impl ProxyBody {
    pub(crate) fn upstream(body: Incoming, lease: Lease, conn: Option<Conn>) -> ProxyBody {
        ProxyBody::Upstream(Box::new(Streamed { body, lease: Some(lease), conn, finished: false }))
    }

    pub(crate) fn full(bytes: impl Into<Bytes>) -> ProxyBody {
        ProxyBody::Full(Some(bytes.into()))
    }

    pub(crate) fn empty() -> ProxyBody {
        ProxyBody::Full(None)
    }
}

impl Streamed {
    /// The body reached its end: the connection may serve the next request.
    fn finish(&mut self, cx: &mut Context<'_>) {
        self.finished = true;
        if let Some(conn) = self.conn.take() {
            conn.give_back(cx);
        }
        self.lease = None;
    }

    /// Polls the worker's body, driving its connection (see `upstream`).
    fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.conn.as_mut() {
            Some(conn) => {
                // Either outcome may have fed the body: look again.
                let _ = conn.poll_connection(cx);
                Pin::new(&mut self.body).poll_frame(cx)
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        // hyper does not poll a body that reports its end up front (a
        // `Content-Length: 0` or fully read body): that counts as complete.
        if !self.finished && self.body.is_end_stream() {
            self.finish(&mut Context::from_waker(std::task::Waker::noop()));
        }
        // Otherwise `conn` drops unreturned, closing the connection.
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Upstream(s) => {
                let polled = s.poll_body(cx);
                match &polled {
                    Poll::Ready(None) => s.finish(cx),
                    Poll::Ready(Some(Ok(_))) if s.body.is_end_stream() => s.finish(cx),
                    Poll::Ready(Some(Err(_))) => {
                        s.conn = None;
                        s.lease = None;
                    }
                    _ => {}
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(bytes) => bytes.is_none(),
            ProxyBody::Upstream(s) => s.finished || s.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ProxyBody::Full(None) => SizeHint::with_exact(0),
            ProxyBody::Upstream(s) => s.body.size_hint(),
        }
    }
}
