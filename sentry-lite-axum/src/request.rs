//! What the layer reads from an incoming request: the `request` interface of
//! events (PII-filtered), the route, the client address and the trace headers.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, OriginalUri};
use http::header::{HeaderMap, COOKIE, HOST};
use sentry_lite_core::is_sensitive_header;
use sentry_lite_core::protocol::Request;

/// The parts of a request the layer records. Path and route borrow from the
/// request: they are only copied where they are stored.
#[derive(Debug)]
pub(crate) struct Incoming<'a> {
    pub(crate) request: Request,
    pub(crate) path: &'a str,
    pub(crate) route: Option<&'a str>,
    pub(crate) client_ip: Option<String>,
}

impl<'a> Incoming<'a> {
    /// Reads `req`. Sensitive headers, cookies and the client address are only kept
    /// with `send_default_pii`. Bodies are never read.
    pub(crate) fn read<B>(req: &'a http::Request<B>, send_default_pii: bool) -> Self {
        let uri = req.extensions().get::<OriginalUri>().map_or(req.uri(), |o| &o.0);
        let path = uri.path();
        let headers = req.headers();
        let host = uri.authority().map(|a| a.as_str()).or_else(|| header_str(headers, HOST.as_str()));
        let url = match host {
            Some(host) => {
                let scheme = uri.scheme_str().or_else(|| header_str(headers, "x-forwarded-proto")).unwrap_or("http");
                let mut url = String::with_capacity(scheme.len() + 3 + host.len() + path.len());
                url.push_str(scheme);
                url.push_str("://");
                url.push_str(host);
                url.push_str(path);
                url
            }
            None => path.to_owned(),
        };

        let mut request = Request {
            url: Some(url),
            method: Some(req.method().as_str().to_owned()),
            query_string: uri.query().filter(|q| !q.is_empty()).map(str::to_owned),
            ..Request::default()
        };
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        for name in headers.keys() {
            let key = name.as_str();
            if *name == COOKIE {
                if send_default_pii {
                    request.cookies = join_values(headers, key, "; ");
                }
                continue;
            }
            if !send_default_pii && is_sensitive_header(key) {
                continue;
            }
            if let Some(v) = join_values(headers, key, ", ") {
                out.insert(canonical_header_name(key), v);
            }
        }
        request.headers = out;

        let client_ip = if send_default_pii { client_ip(req) } else { None };
        if let Some(ip) = &client_ip {
            request.env.insert("REMOTE_ADDR".to_owned(), ip.clone());
        }
        let route = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
        Self { request, path, route, client_ip }
    }
}

/// The incoming `sentry-trace`, `baggage` and `traceparent` headers (several
/// `baggage` headers are joined, as W3C allows).
pub(crate) fn trace_headers(headers: &HeaderMap) -> Vec<(&'static str, String)> {
    ["sentry-trace", "baggage", "traceparent"]
        .into_iter()
        .filter_map(|name| join_values(headers, name, ",").map(|v| (name, v)))
        .collect()
}

fn client_ip<B>(req: &http::Request<B>) -> Option<String> {
    let headers = req.headers();
    let forwarded = header_str(headers, "x-forwarded-for")
        .and_then(|v| v.split(',').next().map(str::trim))
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    forwarded
        .or_else(|| header_str(headers, "x-real-ip").map(|s| s.trim().to_owned()))
        .or_else(|| req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn join_values(headers: &HeaderMap, name: &str, sep: &str) -> Option<String> {
    let mut out: Option<String> = None;
    for v in headers.get_all(name) {
        let v = String::from_utf8_lossy(v.as_bytes());
        match &mut out {
            Some(s) => {
                s.push_str(sep);
                s.push_str(&v);
            }
            None => out = Some(v.into_owned()),
        }
    }
    out
}

/// `content-type` → `Content-Type`, as Sentry shows headers.
fn canonical_header_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        upper = c == '-';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> http::Request<()> {
        http::Request::builder()
            .method("POST")
            .uri("/users/7?x=1")
            .header("host", "example.com")
            .header("authorization", "Bearer abc")
            .header("cookie", "a=1")
            .header("x-forwarded-for", "203.0.113.9, 10.0.0.1")
            .header("user-agent", "test")
            .body(())
            .unwrap()
    }

    #[test]
    fn without_pii_drops_sensitive_data() {
        let req = req();
        let inc = Incoming::read(&req, false);
        assert_eq!(inc.request.url.as_deref(), Some("http://example.com/users/7"));
        assert_eq!(inc.request.query_string.as_deref(), Some("x=1"));
        assert_eq!(inc.request.headers.get("User-Agent").map(String::as_str), Some("test"));
        assert!(!inc.request.headers.contains_key("Authorization"));
        assert!(!inc.request.headers.contains_key("X-Forwarded-For"));
        assert!(inc.request.cookies.is_none());
        assert!(inc.request.env.is_empty());
        assert!(inc.client_ip.is_none());
    }

    #[test]
    fn with_pii_keeps_it() {
        let req = req();
        let inc = Incoming::read(&req, true);
        assert_eq!(inc.request.headers.get("Authorization").map(String::as_str), Some("Bearer abc"));
        assert_eq!(inc.request.cookies.as_deref(), Some("a=1"));
        assert_eq!(inc.client_ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(inc.request.env.get("REMOTE_ADDR").map(String::as_str), Some("203.0.113.9"));
    }
}
