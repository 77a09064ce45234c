//! The admin listener's routes, on their own address so they are never
//! exposed with the gateway by accident.
//!
//! | route | answer |
//! |---|---|
//! | `GET /stats` | the pool's [`crate::Stats`] as JSON |
//! | `GET /metrics` | Prometheus text format (proxy and pool metrics) |
//! | `DELETE /sessions/{id}` | ends the session (`204`; `404` if it was not bound) |
//! | `GET /health` | `200 ok` while the proxy runs |

use std::sync::Arc;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;

use super::body::ProxyBody;
use super::metrics::Metrics;
use super::responses::text;
use crate::error::ErrorKind;
use crate::pool::Pool;

/// What the admin routes read and act on.
pub(crate) struct Admin {
    pub pool: Pool,
    pub metrics: Arc<Metrics>,
}

impl Admin {
    pub(crate) fn handle(&self, req: &Request<Incoming>) -> Response<ProxyBody> {
        let path = req.uri().path();
        match (req.method(), path) {
            (&Method::GET, "/health") => text(StatusCode::OK, "ok"),
            (&Method::GET, "/stats") => match serde_json::to_vec(&self.pool.stats()) {
                Ok(json) => with_type(Response::new(ProxyBody::full(json)), "application/json"),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode stats: {e}")),
            },
            (&Method::GET, "/metrics") => {
                let mut out = String::with_capacity(4096);
                let registry = self.metrics.registry(&self.pool);
                match prometheus_client::encoding::prometheus_text::encode(&mut out, &registry) {
                    Ok(()) => with_type(
                        Response::new(ProxyBody::full(out)),
                        prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                    ),
                    Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode metrics: {e}")),
                }
            }
            (method, path) if path.starts_with("/sessions/") => {
                if method != Method::DELETE {
                    let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "use DELETE /sessions/{id}");
                    resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("DELETE"));
                    return resp;
                }
                self.end_session(&path["/sessions/".len()..])
            }
            (_, "/health" | "/stats" | "/metrics") => {
                let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "use GET");
                resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET"));
                resp
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "no such route: try GET /stats, GET /metrics or DELETE /sessions/{id}",
            ),
        }
    }

    fn end_session(&self, raw: &str) -> Response<ProxyBody> {
        let Ok(id) = percent_decode_str(raw).decode_utf8() else {
            return text(StatusCode::BAD_REQUEST, "invalid session ID: not UTF-8 once percent-decoded");
        };
        match self.pool.end_session(&id) {
            Ok(true) => {
                let mut resp = Response::new(ProxyBody::empty());
                *resp.status_mut() = StatusCode::NO_CONTENT;
                resp
            }
            Ok(false) => text(StatusCode::NOT_FOUND, "no such session"),
            Err(e) if e.kind() == ErrorKind::InvalidSessionId => {
                text(StatusCode::BAD_REQUEST, format!("invalid session ID: {}", e.message()))
            }
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, e.message().to_string()),
        }
    }
}

fn with_type(mut resp: Response<ProxyBody>, content_type: &'static str) -> Response<ProxyBody> {
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
