//! The gateway's request path: find the session, lease its worker, forward
//! the request, stream the response back.
//!
//! Per request this costs one session lookup (no runtime hop for a bound
//! session), a few header edits, and a pooled upstream connection: no
//! client, buffer or connection is built per request.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, request};
use hyper::body::Incoming;
use hyper::ext::ReasonPhrase;
use hyper::upgrade::OnUpgrade;

use super::body::ProxyBody;
use super::client::{Outgoing, ResponseHead, SendError, Upgraded};
use super::headers::{self, ClientInfo, RequestRewrite};
use super::metrics::{Metrics, Rejected};
use super::responses;
use super::server::{IoThread, StopSignal};
use super::session_id::{Rejection, Sources};
use super::timer::Timers;
use super::tunnel::{Closed, Tunnel};
use super::upstream::{Conn, Upstream};
use crate::pool::{Lease, Pool};

/// Everything the request path needs, shared by all connections.
pub(crate) struct Gateway {
    pub pool: Pool,
    pub sources: Sources,
    pub acquire_timeout: Duration,
    pub retry_after_secs: u64,
    pub preserve_host: bool,
    pub close_timeout: Duration,
    pub metrics: Arc<Metrics>,
    pub stop: StopSignal,
    pub timers: Timers,
}

impl Gateway {
    /// Serves one client request.
    pub(crate) async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        client: Arc<ClientInfo>,
        io: Arc<IoThread>,
    ) -> Result<Response<ProxyBody>, Infallible> {
        let started = Instant::now();
        let resp = self.route(req, &client, &io).await;
        io.metrics.response(resp.status().as_u16(), started.elapsed());
        Ok(resp)
    }

    async fn route(&self, req: Request<Incoming>, client: &ClientInfo, io: &IoThread) -> Response<ProxyBody> {
        let (mut parts, body) = req.into_parts();
        let (lease, forward_path) = {
            let found = match self.sources.find(&parts) {
                Ok(found) => found,
                Err(Rejection::Missing(message)) => {
                    return reject(
                        io,
                        Rejected::MissingSessionId,
                        responses::text(StatusCode::BAD_REQUEST, message),
                    );
                }
                Err(Rejection::Invalid(message)) => {
                    return reject(
                        io,
                        Rejected::InvalidSessionId,
                        responses::text(StatusCode::BAD_REQUEST, message),
                    );
                }
            };
            match self.pool.acquire_timeout(&found.id, self.acquire_timeout).await {
                Ok(lease) => (lease, found.forward_path),
                Err(error) => {
                    tracing::debug!(session = %found.id, "no worker for request: {error:#}");
                    let (resp, why) = responses::acquire_failed(&error, self.retry_after_secs);
                    return reject(io, why, resp);
                }
            }
        };
        let Some(address) = lease.address() else {
            tracing::warn!(worker = %lease.worker_id(), "the session's worker has no network address");
            return reject(io, Rejected::WorkerUnreachable, responses::worker_unreachable());
        };
        let upstream = io.upstreams.get(lease.worker_id(), address);

        let upgrade = headers::upgrade_of(&parts.headers);
        let client_upgrade = parts.extensions.remove::<OnUpgrade>();
        if let Some(path) = forward_path {
            parts.uri = Uri::from(path);
        } else if parts.uri.scheme().is_some() {
            // absolute-form (`GET http://host/path`): workers expect origin-form.
            let path = parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
            parts.uri = Uri::from(path);
        }

        let rewrite = Rewrite { client, preserve_host: self.preserve_host, upgrade: upgrade.as_ref() };
        let (head, conn) = match exchange(&upstream, &mut parts, rewrite, body).await {
            Ok(exchanged) => exchanged,
            Err(message) => {
                tracing::warn!(session = %lease.session_id(), client = %client.ip, "{message}");
                return reject(io, Rejected::WorkerUnreachable, responses::worker_unreachable());
            }
        };

        if head.status == StatusCode::SWITCHING_PROTOCOLS {
            let (Some(proto), Some(client_upgrade)) = (upgrade, client_upgrade) else {
                tracing::warn!(
                    session = %lease.session_id(),
                    worker = %upstream.worker,
                    "the worker switched protocols on a request that asked for no upgrade"
                );
                return reject(io, Rejected::WorkerUnreachable, responses::worker_unreachable());
            };
            let accepted = head.upgrade.unwrap_or(proto);
            let websocket = accepted.as_bytes().eq_ignore_ascii_case(b"websocket");
            let mut resp = Response::new(ProxyBody::empty());
            *resp.status_mut() = head.status;
            *resp.headers_mut() = head.headers;
            headers::restore_upgrade(resp.headers_mut(), accepted);
            self.spawn_tunnel(io, lease, websocket, client_upgrade, conn.into_upgraded());
            return resp;
        }

        let mut resp = Response::new(ProxyBody::upstream(conn, lease));
        *resp.status_mut() = head.status;
        *resp.headers_mut() = head.headers;
        if let Some(reason) = head.reason.and_then(|r| ReasonPhrase::try_from(r).ok()) {
            resp.extensions_mut().insert(reason);
        }
        resp
    }

    fn spawn_tunnel(
        &self,
        io: &IoThread,
        lease: Lease,
        websocket: bool,
        client: OnUpgrade,
        worker: Upgraded,
    ) {
        let tunnel = Tunnel {
            lease,
            websocket,
            stop: self.stop.clone(),
            close_timeout: self.close_timeout,
            timers: self.timers.clone(),
        };
        let guard = io.tracker.guard();
        let metrics = self.metrics.clone();
        let mut stop = self.stop.clone();
        tokio::spawn(async move {
            let _guard = guard;
            metrics.websockets.inc();
            let closed = tokio::select! {
                closed = tunnel.run(client, worker) => closed,
                _ = stop.closed() => Closed::ProxyStopping,
            };
            metrics.websockets.dec();
            metrics.websocket_closed(closed.as_str());
        });
    }
}

/// Counts a request herd answered itself.
fn reject(io: &IoThread, why: Rejected, resp: Response<ProxyBody>) -> Response<ProxyBody> {
    io.metrics.rejected(why);
    resp
}

/// How a request's head is rewritten for the worker (besides its headers).
struct Rewrite<'a> {
    client: &'a ClientInfo,
    preserve_host: bool,
    upgrade: Option<&'a HeaderValue>,
}

/// Sends the request of `parts` to the worker on a pooled connection; a
/// request that may be sent again (it never reached the worker, or a
/// kept-alive connection closed under it: see [`SendError::Unsent`]) is
/// sent once more on a new connection.
///
/// Once the head is serialized, the request's header map is emptied and
/// holds the response's headers: `parts.headers` is left empty.
async fn exchange(
    upstream: &Arc<Upstream>,
    parts: &mut request::Parts,
    rewrite: Rewrite<'_>,
    body: Incoming,
) -> Result<(ResponseHead, Conn), String> {
    let mut conn = upstream.checkout().await.map_err(|e| e.message)?;
    let req = {
        let Rewrite { client, preserve_host, upgrade } = rewrite;
        let rewrite = RequestRewrite::new(&parts.headers, client, &upstream.host, preserve_host, upgrade);
        Outgoing::new(parts, &rewrite, body, conn.take_buffer())
    };
    let mut headers = std::mem::take(&mut parts.headers);
    headers.clear();
    let req = match conn.send(req, headers).await {
        Ok(head) => return Ok((head, conn)),
        Err(SendError::Failed(message)) => return Err(message),
        Err(SendError::Unsent(req)) => *req,
    };
    let mut conn = upstream.connect().await.map_err(|e| e.message)?;
    match conn.send(req, HeaderMap::new()).await {
        Ok(head) => Ok((head, conn)),
        Err(SendError::Failed(message)) => Err(message),
        Err(SendError::Unsent(_)) => {
            Err(format!("worker {} at {}: the connection closed at once", upstream.worker, upstream.address))
        }
    }
}
