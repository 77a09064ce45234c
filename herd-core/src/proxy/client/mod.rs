//! herd's HTTP/1.1 client for the worker side of the proxy.
//!
//! The client-facing side stays on hyper's server: it faces untrusted
//! input (request parsing, smuggling defences, limits). Towards workers
//! herd speaks HTTP/1.1 itself, because hyper's client machinery — a
//! channel and a one-shot callback per request, `want` signalling, a
//! second channel for the body — cost more CPU per request than all of
//! herd's own code (see BENCHMARKS.md, "Gateway"). Here a request head is
//! written straight from one buffer, the response head is parsed in place
//! with `httparse` ([`head`]), and the body is framed by herd
//! ([`framing`]) and handed on as slices of the read buffer, without a
//! copy ([`conn`]).
//!
//! # Why a small client is safe here
//!
//! * Requests reaching this code were parsed and validated by hyper's
//!   server; their heads are written back from `http` types, which cannot
//!   hold CR or LF, and their bodies are re-framed from what hyper decoded
//!   (a known length, or chunked), never copied through with the client's
//!   framing.
//! * Upstream connections belong to one worker, and a worker serves one
//!   session. A worker that answers malformed HTTP can only spoil its own
//!   session's responses — never another session's, and never the client
//!   connection's framing, which hyper's server writes.
//! * Still, nothing ambiguous is guessed at: `Transfer-Encoding` together
//!   with `Content-Length`, a `Transfer-Encoding` in an HTTP/1.0 response,
//!   an invalid `Content-Length`, bad chunk lines, oversized heads or
//!   chunk overhead are refused. Before the response head that is a `502`;
//!   inside a body it ends the client's response early (hyper's server
//!   closes that connection), and the worker connection is closed, never
//!   reused.

pub(crate) mod conn;
pub(crate) mod framing;
pub(crate) mod head;

pub(crate) use conn::{BodyError, Connection, Outgoing, SendError, Upgraded};
pub(crate) use head::ResponseHead;
