//! Response bodies sent to clients: a worker's body, streamed, holding the
//! request's lease; or a short body herd writes itself.
//!
//! The lease of a request is released when its response body has been
//! handed to the client connection completely — not when the head goes
//! out — or when the client goes away: hyper then drops the body, which
//! drops the half-read worker connection with it (closing it cancels the
//! request at the worker).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::client::BodyError;
use super::upstream::Conn;
use crate::pool::Lease;

/// The body of every response the proxy sends.
pub(crate) enum ProxyBody {
    /// A worker's response, streamed (three words: no allocation per
    /// response).
    Upstream(Streamed),
    /// A body herd writes itself (errors, admin routes).
    Full(Option<Bytes>),
}

/// A worker's response body with what it holds until it ends.
pub(crate) struct Streamed {
    /// The connection the body is read from; given back for reuse only if
    /// the body was read to its end.
    conn: Option<Conn>,
    /// Released when the body ends or is dropped.
    lease: Option<Lease>,
}

impl ProxyBody {
    pub(crate) fn upstream(conn: Conn, lease: Lease) -> ProxyBody {
        ProxyBody::Upstream(Streamed { conn: Some(conn), lease: Some(lease) })
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
    fn finish(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.give_back();
        }
        self.lease = None;
    }

    fn is_done(&self) -> bool {
        self.conn.as_ref().is_none_or(Conn::is_body_done)
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        // hyper does not poll a body that reports its end up front (no
        // body, or one fully read): that counts as complete.
        if self.conn.as_ref().is_some_and(Conn::is_body_done) {
            self.finish();
        }
        // Otherwise `conn` drops unreturned, closing the connection.
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ProxyBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Upstream(s) => {
                let Some(conn) = s.conn.as_mut() else { return Poll::Ready(None) };
                match conn.poll_data(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Ok(Some(data))) => {
                        if conn.is_body_done() {
                            s.finish();
                        }
                        Poll::Ready(Some(Ok(Frame::data(data))))
                    }
                    Poll::Ready(Ok(None)) => {
                        s.finish();
                        Poll::Ready(None)
                    }
                    Poll::Ready(Err(e)) => {
                        s.conn = None;
                        s.lease = None;
                        Poll::Ready(Some(Err(e)))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(bytes) => bytes.is_none(),
            ProxyBody::Upstream(s) => s.is_done(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ProxyBody::Full(None) => SizeHint::with_exact(0),
            ProxyBody::Upstream(s) => match s.conn.as_ref().map_or(Some(0), Conn::remaining) {
                Some(n) => SizeHint::with_exact(n),
                None => SizeHint::default(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// hyper moves the response body around several times per request.
    #[test]
    fn a_body_is_a_few_words() {
        assert!(std::mem::size_of::<ProxyBody>() <= 48, "{}", std::mem::size_of::<ProxyBody>());
    }
}
