//! A hello-world axum server under a fixed number of keep-alive requests over
//! loopback, for whole-process instruction counts (callgrind) of the server with
//! and without the layer, including hyper, tokio and the SDK's worker:
//! `cargo run --release -p sentry-lite-axum --example request_load -- {bare|sampled|unsampled} N`.

use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use sentry_lite_core::Hub;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[path = "support/client.rs"]
mod client;
use client::profiling_client;

const CONNS: usize = 8;
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
const BODY: &[u8] = b"Hello, World!";

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "sampled".into());
    let n: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let client = profiling_client(&mode);
    // Server threads' hubs follow the main hub's client.
    Hub::main().bind_client(Some(client.clone()));

    let base = Router::new().route("/", get(|| async { "Hello, World!" }));
    let app = if mode == "bare" { base } else { base.layer(sentry_lite_axum::SentryLayer::new()) };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let took = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let start = Instant::now();
        let conns: Vec<_> = (0..CONNS)
            .map(|_| {
                tokio::spawn(async move {
                    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                    stream.set_nodelay(true).expect("nodelay");
                    let mut buf = vec![0u8; 4096];
                    for _ in 0..n / CONNS {
                        stream.write_all(REQUEST).await.expect("write");
                        let mut have = 0;
                        while !buf[..have].ends_with(BODY) {
                            let read = stream.read(&mut buf[have..]).await.expect("read");
                            assert!(read > 0, "server closed the connection");
                            have += read;
                        }
                    }
                })
            })
            .collect();
        for c in conns {
            c.await.expect("connection task");
        }
        start.elapsed()
    });
    client.flush(Duration::from_secs(30));
    println!("{mode}: {:?}/request", took / n as u32);
}
