//! Spans: concurrent requests under `join!`, nesting across `spawn`, a big trace.
//!
//! Run with `cargo run -p sentry-lite-examples --bin spans` (set `SENTRY_DSN` to
//! send to Sentry; otherwise envelopes go to the local inbox).

use std::time::Duration;

use sentry_lite_core::{current_span, start_root_span, start_span, trace, SpanId};

/// An outgoing call: opens a child of whatever span is current, across awaits.
async fn fetch(url: &str) -> Option<SpanId> {
    let span = start_span(format!("GET {url}"), "http.client");
    span.set_attribute("http.request.method", "GET");
    let _headers = span.trace_headers(); // what an HTTP client would send
    tokio::time::sleep(Duration::from_millis(20)).await;
    tokio::task::yield_now().await;
    span.set_attribute("http.response.status_code", 200);
    span.finish();
    span.parent_span_id()
}

async fn handler(name: &'static str, url: &'static str) -> bool {
    trace(name, "http.server", async move {
        let root = current_span().expect("root span is current");
        let parent = fetch(url).await;
        let ok = parent == Some(root.span_id());
        println!(
            "{name}: child `GET {url}` has parent {parent:?}, root is {:?}: {}",
            root.span_id(),
            if ok { "ok" } else { "WRONG" }
        );
        ok
    })
    .await
}

#[tokio::main]
async fn main() {
    let options = sentry_lite_examples::options_from_env().with_traces_sample_rate(1.0);
    let guard = sentry_lite_core::init(options).expect("valid SENTRY_DSN");

    // (a) Two concurrent roots: each child must attach to its own root.
    let (a, b) = tokio::join!(handler("t1", "https://example.com/f1"), handler("t2", "https://example.com/f2"));

    // (b) Three levels across spawn.
    let nested_ok = trace("level1", "task", async {
        let l1 = current_span().unwrap().span_id();
        sentry_lite_core::spawn(async move {
            trace("level2", "task", async move {
                let l2 = current_span().unwrap();
                let l3 = sentry_lite_core::spawn(async {
                    trace("level3", "task", async { current_span().unwrap().parent_span_id() }).await
                })
                .await
                .unwrap();
                println!(
                    "level2 parent {:?} (level1 {l1:?}); level3 parent {l3:?} (level2 {:?})",
                    l2.parent_span_id(),
                    l2.span_id()
                );
                l2.parent_span_id() == Some(l1) && l3 == Some(l2.span_id())
            })
            .await
        })
        .await
        .unwrap()
    })
    .await;

    // (c) One trace of 5 000 spans, finished as they go: memory stays bounded.
    let root = start_root_span("batch import", "task");
    for i in 0..4_999 {
        let child = root.start_child(format!("row {}", i % 50), "db.insert");
        child.set_attribute("row", i as i64);
        child.finish();
    }
    root.finish();
    println!("big trace {} sent in batches of at most 1000 spans", root.trace_id());

    let flushed = sentry_lite_core::flush(Duration::from_secs(10));
    drop(guard);
    let ok = a && b && nested_ok && flushed;
    println!("{}", if ok { "all parents correct" } else { "FAILED" });
    std::process::exit(if ok { 0 } else { 1 });
}
