//! Drives a hello-world router through `SentryLayer` in a loop, without sockets,
//! for `perf stat` / `perf record` / callgrind:
//! `cargo run --release -p sentry-lite-axum --example request_profile -- {bare|sampled|unsampled} N`.
//! `bare` is the router without the layer, the baseline of the per-request cost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt as _;
use sentry_lite_core::{FutureExt as _, Hub};
use tower::ServiceExt as _;

#[path = "support/client.rs"]
mod client;
use client::profiling_client;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "sampled".into());
    let n: u32 = args.next().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let client = profiling_client(&mode);
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));

    let base = Router::new().route("/", get(|| async { "Hello, World!" }));
    let app = if mode == "bare" { base } else { base.layer(sentry_lite_axum::SentryLayer::new()) };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let start = Instant::now();
    rt.block_on(
        async move {
            for _ in 0..n {
                let req = http::Request::get("/")
                    .header(http::header::HOST, "127.0.0.1")
                    .body(axum::body::Body::empty())
                    .expect("request");
                let resp = app.clone().oneshot(req).await.expect("infallible");
                let body = resp.into_body().collect().await.expect("body");
                assert_eq!(body.to_bytes().len(), 13);
            }
        }
        .bind_hub(hub),
    );
    let took = start.elapsed();
    client.flush(Duration::from_secs(30));
    println!("{mode}: {:?}/request", took / n);
}
