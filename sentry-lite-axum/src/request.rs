//! What the layer reads from an incoming request: the route, the client address,
//! the trace headers, and a compact copy of the request from which the `request`
//! interface of events is built, PII-filtered, only when an event is captured.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, OriginalUri};
use http::header::{HeaderMap, HeaderName, COOKIE, HOST};
use sentry_lite_core::protocol::Request;
use sentry_lite_core::{is_harmless_header, scrub_query};

static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static SENTRY_TRACE: HeaderName = HeaderName::from_static("sentry-trace");
static BAGGAGE: HeaderName = HeaderName::from_static("baggage");
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// What the layer needs right away. Path and route borrow from the request.
#[derive(Debug)]
pub(crate) struct Incoming<'a> {
    pub(crate) path: &'a str,
    pub(crate) route: Option<&'a str>,
    pub(crate) client_ip: Option<String>,
}

impl<'a> Incoming<'a> {
    /// Reads `req`; the client address only with `send_default_pii`.
    pub(crate) fn read<B>(req: &'a http::Request<B>, send_default_pii: bool) -> Self {
        let path = original_uri(req).path();
        let route = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
        let client_ip = if send_default_pii { client_ip(req) } else { None };
        Self { path, route, client_ip }
    }
}

fn original_uri<B>(req: &http::Request<B>) -> &http::Uri {
    req.extensions().get::<OriginalUri>().map_or(req.uri(), |o| &o.0)
}

/// The incoming `sentry-trace`, `baggage` and `traceparent` headers, borrowed
/// unless a header repeats (several `baggage` headers are joined, as W3C allows).
pub(crate) type TraceHeaders<'h> = [Option<(&'static str, Cow<'h, str>)>; 3];

/// The request as the layer saw it, PII-filtered already: without
/// `send_default_pii` only headers on the allowlist of harmless ones
/// ([`is_harmless_header`]) are copied, and query values under secret-looking keys
/// are replaced by `[Filtered]` ([`scrub_query`]); cookies, other headers and the
/// client address only with `send_default_pii`; bodies never. Everything textual sits in one buffer, so the copy is two allocations
/// whatever the number of headers; the Sentry interface (canonical header names,
/// joined values, a map) is built by [`RawRequest::build`], only for events.
#[derive(Debug)]
pub(crate) struct RawRequest {
    method: http::Method,
    /// `name \n value \n` per kept header value, then `url \n query \n` (header
    /// names and values, the URI and the host cannot contain a newline).
    text: String,
    /// Where the URL starts in `text`.
    url_at: usize,
    client_ip: Option<String>,
    /// `send_default_pii` when the request was read.
    pii: bool,
}

impl RawRequest {
    /// Copies what the `request` interface needs from `req` and returns the trace
    /// headers found on the way: one pass over the headers, no lookups.
    pub(crate) fn read<'h, B>(
        req: &'h http::Request<B>,
        send_default_pii: bool,
        client_ip: Option<String>,
    ) -> (Self, TraceHeaders<'h>) {
        let uri = original_uri(req);
        let mut text = String::with_capacity(128);
        let mut trace: TraceHeaders<'h> = [None, None, None];
        let (mut host, mut proto) = (None, None);
        for (name, value) in req.headers() {
            if *name == HOST {
                host = host.or_else(|| value.to_str().ok());
            } else if *name == X_FORWARDED_PROTO {
                proto = proto.or_else(|| value.to_str().ok());
            } else if let Some(i) = trace_slot(name) {
                let key = TRACE_KEYS[i];
                let v = String::from_utf8_lossy(value.as_bytes());
                trace[i] = Some(match trace[i].take() {
                    Some((_, mut joined)) => {
                        let s = joined.to_mut();
                        s.push(',');
                        s.push_str(&v);
                        (key, joined)
                    }
                    None => (key, v),
                });
            }
            // `Host` (in every request) is harmless: skip the name check.
            if !send_default_pii && *name != HOST && !is_harmless_header(name.as_str()) {
                continue;
            }
            text.push_str(name.as_str());
            text.push('\n');
            match value.to_str() {
                // Visible ASCII: no newline.
                Ok(v) => text.push_str(v),
                Err(_) => text.push_str(&String::from_utf8_lossy(value.as_bytes()).replace('\n', " ")),
            }
            text.push('\n');
        }
        let url_at = text.len();
        if let Some(host) = uri.authority().map(|a| a.as_str()).or(host) {
            text.push_str(uri.scheme_str().or(proto).unwrap_or("http"));
            text.push_str("://");
            text.push_str(host);
        }
        text.push_str(uri.path());
        text.push('\n');
        text.push_str(uri.query().unwrap_or(""));
        let raw = Self { method: req.method().clone(), text, url_at, client_ip, pii: send_default_pii };
        (raw, trace)
    }

    /// The `request` interface of an event.
    pub(crate) fn build(&self) -> Request {
        let (headers_text, url_text) = self.text.split_at(self.url_at);
        let (url, query) = url_text.split_once('\n').unwrap_or((url_text, ""));
        let mut request = Request {
            url: Some(url.to_owned()),
            method: Some(self.method.as_str().to_owned()),
            query_string: (!query.is_empty())
                .then(|| if self.pii { query.to_owned() } else { scrub_query(query, false) }),
            ..Request::default()
        };
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        let mut lines = headers_text.split('\n');
        while let (Some(name), Some(value)) = (lines.next(), lines.next()) {
            if name == COOKIE.as_str() {
                append(&mut request.cookies, value, "; ");
                continue;
            }
            let key = canonical_header_name(name);
            match headers.get_mut(&key) {
                Some(joined) => {
                    joined.push_str(", ");
                    joined.push_str(value);
                }
                None => {
                    headers.insert(key, value.to_owned());
                }
            }
        }
        request.headers = headers;
        if let Some(ip) = &self.client_ip {
            request.env.insert("REMOTE_ADDR".to_owned(), ip.clone());
        }
        request
    }
}

const TRACE_KEYS: [&str; 3] = ["sentry-trace", "baggage", "traceparent"];

fn trace_slot(name: &HeaderName) -> Option<usize> {
    if *name == SENTRY_TRACE {
        Some(0)
    } else if *name == BAGGAGE {
        Some(1)
    } else if *name == TRACEPARENT {
        Some(2)
    } else {
        None
    }
}

fn append(slot: &mut Option<String>, value: &str, sep: &str) {
    match slot {
        Some(s) => {
            s.push_str(sep);
            s.push_str(value);
        }
        None => *slot = Some(value.to_owned()),
    }
}

fn client_ip<B>(req: &http::Request<B>) -> Option<String> {
    let headers = req.headers();
    let forwarded = header_str(headers, &X_FORWARDED_FOR)
        .and_then(|v| v.split(',').next().map(str::trim))
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    forwarded
        .or_else(|| header_str(headers, &X_REAL_IP).map(|s| s.trim().to_owned()))
        .or_else(|| req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
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
            .uri("/users/7?x=1&token=t0k&Password=hunter2")
            .header("host", "example.com")
            .header("authorization", "Bearer abc")
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .header("x-forwarded-for", "203.0.113.9, 10.0.0.1")
            .header("user-agent", "test")
            .header("accept", "text/html")
            .header("accept", "application/json")
            .header("cf-connecting-ip", "203.0.113.10")
            .header("true-client-ip", "203.0.113.11")
            .header("x-authorization", "Bearer x")
            .header("authentication", "Basic y")
            .header("x-auth", "z")
            .header("x-access-key", "ak")
            .header("x-signature", "sig")
            .header("x-forwarded-user", "alice")
            .header("x-auth-request-email", "alice@example.com")
            .header("referer", "https://example.com/reset?token=abc")
            .body(())
            .unwrap()
    }

    fn read(req: &http::Request<()>, pii: bool) -> (Incoming<'_>, Request) {
        let inc = Incoming::read(req, pii);
        let (raw, _) = RawRequest::read(req, pii, inc.client_ip.clone());
        (inc, raw.build())
    }

    #[test]
    fn without_pii_drops_sensitive_data() {
        let req = req();
        let (inc, r) = read(&req, false);
        assert_eq!(inc.path, "/users/7");
        assert_eq!(r.url.as_deref(), Some("http://example.com/users/7"));
        assert_eq!(r.method.as_deref(), Some("POST"));
        assert_eq!(r.query_string.as_deref(), Some("x=1&token=[Filtered]&Password=[Filtered]"));
        assert_eq!(r.headers.get("User-Agent").map(String::as_str), Some("test"));
        assert_eq!(r.headers.get("Accept").map(String::as_str), Some("text/html, application/json"));
        assert!(!r.headers.contains_key("Authorization"));
        assert!(!r.headers.contains_key("X-Forwarded-For"));
        assert!(!r.headers.contains_key("Cookie"));
        assert!(r.cookies.is_none());
        assert!(r.env.is_empty());
        assert!(inc.client_ip.is_none());
        // Only allowlisted headers: no client address, credential, identity or referrer.
        let mut kept: Vec<&str> = r.headers.keys().map(String::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["Accept", "Host", "User-Agent"]);
    }

    #[test]
    fn with_pii_keeps_it() {
        let req = req();
        let (inc, r) = read(&req, true);
        assert_eq!(r.headers.get("Authorization").map(String::as_str), Some("Bearer abc"));
        assert_eq!(r.headers.get("Cf-Connecting-Ip").map(String::as_str), Some("203.0.113.10"));
        assert_eq!(r.query_string.as_deref(), Some("x=1&token=t0k&Password=hunter2"));
        assert_eq!(r.cookies.as_deref(), Some("a=1; b=2"));
        assert!(!r.headers.contains_key("Cookie"));
        assert_eq!(inc.client_ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(r.env.get("REMOTE_ADDR").map(String::as_str), Some("203.0.113.9"));
    }

    #[test]
    fn no_host_no_query() {
        let req = http::Request::get("/a").body(()).unwrap();
        let (_, r) = read(&req, false);
        assert_eq!(r.url.as_deref(), Some("/a"));
        assert!(r.query_string.is_none());
        assert!(r.headers.is_empty());
    }

    #[test]
    fn trace_headers_join_repeats() {
        let req = http::Request::get("/")
            .header("baggage", "a=1")
            .header("sentry-trace", "x")
            .header("baggage", "b=2")
            .body(())
            .unwrap();
        let (_, trace) = RawRequest::read(&req, false, None);
        let got: Vec<_> = trace.into_iter().flatten().map(|(k, v)| (k, v.into_owned())).collect();
        assert_eq!(got, [("sentry-trace", "x".to_owned()), ("baggage", "a=1,b=2".to_owned())]);
    }
}
