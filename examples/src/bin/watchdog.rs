//! The watchdog's three reports: an axum handler that blocks its worker (a stall),
//! two threads deadlocked on parking_lot mutexes, and a thread dump.
//!
//! ```sh
//! cargo run -p sentry-lite-examples --bin watchdog
//! ```

use std::sync::{Arc, Barrier};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use sentry_lite_core as sentry;
use sentry_lite_watchdog::{instrument_runtime, Watchdog, WatchdogLayer, WatchdogOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Synchronous work inside async code: the worker thread is stuck for 2 s.
async fn report() -> &'static str {
    build_report_synchronously();
    "report ready"
}

#[inline(never)]
fn build_report_synchronously() {
    std::thread::sleep(Duration::from_secs(2));
}

/// Takes `first`, then `second`: run against the opposite order, it deadlocks.
#[inline(never)]
fn transfer(first: &parking_lot::Mutex<u64>, second: &parking_lot::Mutex<u64>, meet: &Barrier) {
    let _from = first.lock();
    meet.wait();
    let _to = second.lock();
}

fn main() {
    let options = sentry_lite_examples::options_from_env().with_traces_sample_rate(1.0);
    let guard = match sentry::init(options) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let watchdog = Watchdog::start(
        WatchdogOptions::new()
            .with_threshold(Duration::from_millis(500))
            .with_deadlock_interval(Duration::from_millis(200)),
    );

    // 1. A stall: a request whose handler blocks its worker thread.
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    instrument_runtime(&mut builder, "api");
    let runtime = builder.build().expect("runtime");
    runtime.block_on(async {
        let app = Router::new()
            .route("/report", get(report))
            .layer(WatchdogLayer::new())
            .layer(sentry_lite_axum::SentryLayer::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(b"GET /report HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.expect("write");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response).await;
        println!("GET /report -> {}", response.lines().last().unwrap_or_default());
    });

    // 2. A deadlock: two threads take two locks in opposite orders.
    let locks = Arc::new((parking_lot::Mutex::new(100), parking_lot::Mutex::new(0)));
    let meet = Arc::new(Barrier::new(2));
    for (name, forward) in [("transfer-a-to-b", true), ("transfer-b-to-a", false)] {
        let (locks, meet) = (locks.clone(), meet.clone());
        // Never joined: deadlocked threads stay blocked until the process exits.
        std::thread::Builder::new()
            .name(name.into())
            .spawn(
                move || {
                    if forward {
                        transfer(&locks.0, &locks.1, &meet)
                    } else {
                        transfer(&locks.1, &locks.0, &meet)
                    }
                },
            )
            .expect("spawn");
    }
    std::thread::sleep(Duration::from_millis(800));

    // 3. A thread dump: every thread, including the two deadlocked ones.
    let id = sentry_lite_watchdog::capture_thread_dump();
    println!("thread dump: event {id}");

    drop(watchdog);
    if !sentry::flush(Duration::from_secs(5)) {
        eprintln!("flush timed out");
    }
    drop(guard);
    runtime.shutdown_timeout(Duration::from_secs(1));
}
