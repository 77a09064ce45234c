//! Finding a request's session ID: in a header, a cookie, a query
//! parameter or a path prefix, tried in the configured order.
//!
//! The first source *present* in a request decides: a present but invalid
//! ID (empty, too long, control characters, not UTF-8) is rejected with
//! `400`, never skipped in favour of a later source, so a client cannot
//! reach another session by sending a broken ID next to a good one.

use std::borrow::Cow;

use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderName, header};
use percent_encoding::percent_decode_str;

use super::config::SessionSource;
use crate::session::validate_session_id;

/// A compiled [`SessionSource`]: header names parsed once.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Header(HeaderName),
    Cookie(String),
    Query(String),
    PathPrefix(String),
}

/// Why a request has no usable session ID.
#[derive(Debug)]
pub(crate) enum Rejection {
    /// No configured source is present; the text lists them.
    Missing(String),
    /// A source is present but its value is not a valid session ID.
    Invalid(String),
}

/// A request's session ID and, for a path prefix, the path to forward.
#[derive(Debug)]
pub(crate) struct Found<'a> {
    pub id: Cow<'a, str>,
    pub forward_path: Option<PathAndQuery>,
}

/// The configured sources, in order.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    sources: Vec<Source>,
    missing: String,
}

impl Sources {
    /// Compiles `sources` (already validated by `ProxyConfig::validate`).
    pub(crate) fn new(sources: &[SessionSource]) -> Sources {
        let compiled = sources
            .iter()
            .filter_map(|s| match s {
                SessionSource::Header(name) => {
                    HeaderName::from_bytes(name.as_bytes()).ok().map(Source::Header)
                }
                SessionSource::Cookie(name) => Some(Source::Cookie(name.clone())),
                SessionSource::Query(name) => Some(Source::Query(name.clone())),
                SessionSource::PathPrefix(prefix) => Some(Source::PathPrefix(prefix.clone())),
            })
            .collect();
        let listed: Vec<String> = sources.iter().map(SessionSource::describe).collect();
        Sources {
            sources: compiled,
            missing: format!("no session ID: send it in the {}", listed.join(" or the ")),
        }
    }

    /// Finds the session ID of a request.
    pub(crate) fn find<'a>(&self, req: &'a Parts) -> Result<Found<'a>, Rejection> {
        for source in &self.sources {
            if let Some(found) = lookup(source, req)? {
                if let Err(error) = validate_session_id(&found.id) {
                    return Err(Rejection::Invalid(format!("invalid session ID: {}", error.message())));
                }
                return Ok(found);
            }
        }
        Err(Rejection::Missing(self.missing.clone()))
    }
}

fn lookup<'a>(source: &Source, req: &'a Parts) -> Result<Option<Found<'a>>, Rejection> {
    let found = |id: Cow<'a, str>| Found { id, forward_path: None };
    match source {
        Source::Header(name) => match req.headers.get(name) {
            None => Ok(None),
            Some(value) => {
                std::str::from_utf8(value.as_bytes()).map(|id| Some(found(Cow::Borrowed(id)))).map_err(|_| {
                    Rejection::Invalid(format!("invalid session ID: the {name} header is not UTF-8"))
                })
            }
        },
        Source::Cookie(name) => {
            for value in req.headers.get_all(header::COOKIE) {
                let Ok(cookies) = std::str::from_utf8(value.as_bytes()) else { continue };
                if let Some(id) = cookie(cookies, name) {
                    return Ok(Some(found(Cow::Borrowed(id))));
                }
            }
            Ok(None)
        }
        Source::Query(name) => match req.uri.query().and_then(|q| query_param(q, name)) {
            None => Ok(None),
            Some(raw) => decode(raw, true).map(|id| Some(found(id))),
        },
        Source::PathPrefix(prefix) => {
            let Some(rest) = req.uri.path().strip_prefix(prefix.as_str()) else { return Ok(None) };
            let (raw, tail) = match rest.find('/') {
                Some(at) => rest.split_at(at),
                None => (rest, ""),
            };
            let id = decode(raw, false)?;
            let path = if tail.is_empty() { "/" } else { tail };
            let forward = match req.uri.query() {
                Some(q) => PathAndQuery::try_from(format!("{path}?{q}")),
                None => PathAndQuery::try_from(path),
            };
            let forward = forward.map_err(|e| Rejection::Invalid(format!("cannot rewrite the path: {e}")))?;
            Ok(Some(Found { id, forward_path: Some(forward) }))
        }
    }
}

/// The value of cookie `name` in a `Cookie` header (`a=1; b="2"`).
fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        if k.trim() != name {
            return None;
        }
        let v = v.trim();
        Some(v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v))
    })
}

/// The raw value of parameter `name` in a query string.
fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

/// Percent-decodes `raw` (and `+` as a space in query strings).
fn decode(raw: &str, plus_is_space: bool) -> Result<Cow<'_, str>, Rejection> {
    let spaced: Cow<'_, str> = if plus_is_space && raw.contains('+') {
        Cow::Owned(raw.replace('+', " "))
    } else {
        Cow::Borrowed(raw)
    };
    let decoded = match percent_decode_str(&spaced).decode_utf8() {
        Ok(Cow::Borrowed(_)) => spaced,
        Ok(Cow::Owned(s)) => Cow::Owned(s),
        Err(_) => {
            return Err(Rejection::Invalid("invalid session ID: not UTF-8 once percent-decoded".into()));
        }
    };
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::builder().uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn sources(list: &[SessionSource]) -> Sources {
        Sources::new(list)
    }

    #[test]
    fn header_cookie_query_and_path_prefix() {
        let all = sources(&[
            SessionSource::Header("X-Session-ID".into()),
            SessionSource::Cookie("sid".into()),
            SessionSource::Query("session".into()),
            SessionSource::PathPrefix("/s/".into()),
        ]);
        let p = parts("/x", &[("x-session-id", "h1")]);
        assert_eq!(all.find(&p).unwrap().id, "h1");
        let p = parts("/x", &[("cookie", "a=1; sid=\"c 1\"; b=2")]);
        assert_eq!(all.find(&p).unwrap().id, "c 1");
        let p = parts("/x?a=1&session=q%2F1+x", &[]);
        assert_eq!(all.find(&p).unwrap().id, "q/1 x");
        let p = parts("/s/p%201/rest/of?q=1", &[]);
        let found = all.find(&p).unwrap();
        assert_eq!(found.id, "p 1");
        assert_eq!(found.forward_path.unwrap().as_str(), "/rest/of?q=1");
        let p = parts("/s/bare", &[]);
        assert_eq!(all.find(&p).unwrap().forward_path.unwrap().as_str(), "/");
    }

    #[test]
    fn the_first_present_source_wins() {
        let list = sources(&[SessionSource::Query("s".into()), SessionSource::Header("X-Session-ID".into())]);
        let p = parts("/?s=from-query", &[("x-session-id", "from-header")]);
        assert_eq!(list.find(&p).unwrap().id, "from-query");
    }

    #[test]
    fn missing_and_invalid_ids_are_rejected() {
        let list = sources(&[SessionSource::Header("X-Session-ID".into()), SessionSource::Query("s".into())]);
        match list.find(&parts("/", &[])) {
            Err(Rejection::Missing(m)) => {
                assert!(m.contains("header X-Session-ID") && m.contains("query"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        let long = "x".repeat(300);
        for bad in [
            parts("/", &[("x-session-id", "")]),
            parts("/", &[("x-session-id", &long)]),
            parts("/?s=a%0Ab", &[]),
        ] {
            assert!(matches!(list.find(&bad), Err(Rejection::Invalid(_))), "{bad:?}");
        }
        // An invalid ID in the first source is not skipped for a later one.
        let p = parts("/?s=good", &[("x-session-id", "")]);
        assert!(matches!(list.find(&p), Err(Rejection::Invalid(_))));
    }
}
