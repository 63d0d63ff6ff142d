//! Axum hello-world server + in-process keep-alive load generator.
//!
//! All servers and the load generator share one 2-worker tokio runtime on
//! this 2-core box (so numbers include client cost; they are only meaningful
//! relative to each other). Every contender gets its own server bound to
//! 127.0.0.1:0; rounds alternate between the servers. Traffic never leaves
//! loopback, and each run is bounded by a fixed duration.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;

/// The base application every variant wraps.
pub(crate) fn hello_router() -> Router {
    Router::new().route("/", get(|| async { "Hello, World!" }))
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

/// Spawn `router` on `rt`, return its address.
pub(crate) fn serve(rt: &tokio::runtime::Runtime, router: Router) -> SocketAddr {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        addr
    })
}

/// Result of one load run.
#[derive(Clone, Debug, Default)]
pub(crate) struct LoadResult {
    pub(crate) errors: u64,
    pub(crate) rps: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
}

async fn one_connection(addr: SocketAddr, deadline: Instant) -> (Vec<u32>, u64) {
    let mut lat = Vec::with_capacity(1 << 14);
    let mut errors = 0;
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        return (lat, 1);
    };
    let _ = stream.set_nodelay(true);
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await
    else {
        return (lat, 1);
    };
    tokio::spawn(conn);
    while Instant::now() < deadline {
        if sender.ready().await.is_err() {
            errors += 1;
            break;
        }
        let req = http::Request::get("/")
            .header(http::header::HOST, "127.0.0.1")
            .body(Empty::<Bytes>::new())
            .expect("request");
        let t0 = Instant::now();
        match sender.send_request(req).await {
            Ok(resp) => {
                let ok = resp.status().is_success();
                let body = resp.into_body().collect().await;
                if ok && body.is_ok() {
                    lat.push(t0.elapsed().as_nanos().min(u32::MAX as u128) as u32);
                } else {
                    errors += 1;
                }
            }
            Err(_) => {
                errors += 1;
                break;
            }
        }
    }
    (lat, errors)
}

/// Drive `addr` with `conns` keep-alive connections for `duration`.
pub(crate) fn load(rt: &tokio::runtime::Runtime, addr: SocketAddr, conns: usize, duration: Duration) -> LoadResult {
    rt.block_on(async move {
        let start = Instant::now();
        let deadline = start + duration;
        let tasks: Vec<_> = (0..conns).map(|_| tokio::spawn(one_connection(addr, deadline))).collect();
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            if let Ok((lat, e)) = t.await {
                all.extend(lat);
                errors += e;
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        all.sort_unstable();
        let pct = |p: f64| {
            if all.is_empty() {
                f64::NAN
            } else {
                all[((all.len() - 1) as f64 * p).round() as usize] as f64 / 1e3
            }
        };
        LoadResult { errors, rps: all.len() as f64 / elapsed, p50_us: pct(0.50), p99_us: pct(0.99) }
    })
}
