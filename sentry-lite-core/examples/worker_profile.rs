//! Worker-side cost of error events without the network, for `perf` / callgrind:
//! `cargo run --release -p sentry-lite-core --example worker_profile -- 20000`.
//! Captures N error events (3-level chain, stack trace attached) into a client
//! with a no-op transport and prints the worker thread's CPU time per event.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sentry_lite_core::{Client, ClientOptions, Hub, NoopTransport};

#[derive(Debug)]
struct Inner;
impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection reset by peer")
    }
}
impl Error for Inner {}

#[derive(Debug)]
struct Middle(Inner);
impl fmt::Display for Middle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("query failed")
    }
}
impl Error for Middle {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.0)
    }
}

#[derive(Debug)]
struct Outer(Middle);
impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request /users/42 failed")
    }
}
impl Error for Outer {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.0)
    }
}

fn worker_cpu() -> Duration {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.starts_with("sentry-lite-wor") {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            ns += stat.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let options = ClientOptions::new().with_transport(NoopTransport).with_queue_capacity(1_000);
    let dsn = "https://public@127.0.0.1:9/1".parse().unwrap();
    let client = Arc::new(Client::new(options, Some(dsn)));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    let err = Outer(Middle(Inner));
    Hub::run(hub.clone(), || {
        for _ in 0..200 {
            sentry_lite_core::capture_error(&err);
        }
    });
    client.flush(Duration::from_secs(30));
    let before = worker_cpu();
    let mut sent = 0u32;
    Hub::run(hub, || {
        while sent < n {
            // Stay under the queue bound so that nothing is dropped.
            for _ in 0..500 {
                sentry_lite_core::capture_error(&err);
            }
            sent += 500;
            client.flush(Duration::from_secs(30));
        }
    });
    let cpu = worker_cpu() - before;
    println!("worker CPU per event: {:.2} µs ({sent} events)", cpu.as_secs_f64() * 1e6 / f64::from(sent));
}
