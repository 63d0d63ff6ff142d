//! Outgoing HTTP calls (reqwest) in `http.client` child spans, with the trace
//! headers (`sentry-trace`, `baggage`, `traceparent`) attached so the callee
//! continues the trace.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use sentry_lite_core::protocol::SpanStatus;

/// Sends `request` in an `http.client` span, a child of the current span, named
/// `{METHOD} {url}`, with the trace headers added when the URL is one of
/// [`ClientOptions::trace_propagation_targets`](sentry_lite_core::ClientOptions::trace_propagation_targets)
/// (`traceparent` too with `propagate_traceparent`). The span records
/// `http.request.method`, `url.full` and `http.response.status_code`; a 4xx or 5xx
/// answer sets the matching error status, a transport error marks it as failed.
///
/// # Examples
/// ```no_run
/// # async fn run() -> Result<(), reqwest::Error> {
/// let client = reqwest::Client::new();
/// let response = sentry_lite_axum::outgoing::traced_send(client.get("http://127.0.0.1:3000/")).await?;
/// # drop(response); Ok(()) }
/// ```
pub async fn traced_send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, reqwest::Error> {
    let (client, request) = request.build_split();
    let mut request = request?;
    let method = request.method().as_str().to_owned();
    let url = request.url().clone();
    let mut shown = url.clone();
    // Never put credentials or the query in a span name.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);

    let span = sentry_lite_core::start_span(format!("{method} {shown}"), "http.client");
    span.set_origin("auto.http.reqwest");
    span.set_attribute("http.request.method", method.as_str());
    span.set_attribute("url.full", shown.as_str());
    if let Some(host) = url.host_str() {
        span.set_attribute("server.address", host);
    }
    add_trace_headers(request.headers_mut(), span.trace_headers_for(url.as_str()));

    let result = client.execute(request).await;
    match &result {
        Ok(response) => {
            let status = response.status().as_u16();
            span.set_attribute("http.response.status_code", i64::from(status));
            if status >= 400 {
                span.set_status(SpanStatus::from_http_status(status));
            }
        }
        Err(e) => {
            span.set_status(if e.is_timeout() { SpanStatus::DeadlineExceeded } else { SpanStatus::InternalError });
        }
    }
    span.finish();
    result
}

/// Sets `sentry-trace` and `traceparent`; merges `baggage`, keeping other
/// vendors' entries and replacing any `sentry-` ones.
fn add_trace_headers(headers: &mut HeaderMap, trace: Vec<(&'static str, String)>) {
    for (name, value) in trace {
        let value = if name == "baggage" {
            let others: Vec<String> = headers
                .get_all("baggage")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|e| !e.is_empty() && !e.starts_with("sentry-"))
                .map(str::to_owned)
                .collect();
            if others.is_empty() {
                value
            } else {
                format!("{},{value}", others.join(","))
            }
        } else {
            value
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baggage_keeps_other_vendors() {
        let mut h = HeaderMap::new();
        h.insert("baggage", HeaderValue::from_static("other=1, sentry-trace_id=old"));
        add_trace_headers(
            &mut h,
            vec![("baggage", "sentry-trace_id=new".to_owned()), ("sentry-trace", "a-b-1".to_owned())],
        );
        assert_eq!(h.get("baggage").unwrap(), "other=1,sentry-trace_id=new");
        assert_eq!(h.get("sentry-trace").unwrap(), "a-b-1");
    }
}
