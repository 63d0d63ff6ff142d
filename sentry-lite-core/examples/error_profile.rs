//! Runs `capture_error` (or one of its parts) in a loop, for `perf` / callgrind:
//! `cargo run --release -p sentry-lite-core --example error_profile -- {stack|nostack|unwind|unwind-libgcc|worker} N`.
//! The error is the benchmark's 3-level chain; the transport is a no-op. A third
//! argument runs the loop that many calls deep (default 20, about the benchmark's).
//! `worker` measures the other side: the worker thread's CPU time per event (stack
//! trace attached), flushing every 500 captures so that nothing is dropped.

use std::error::Error;
use std::fmt;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sentry_lite_core::{Client, ClientOptions, Hub, NoopTransport, RawBacktrace};

#[path = "support/cpu.rs"]
mod cpu;
use cpu::thread_cpu_ns;

#[derive(Debug)]
struct IoLike;
impl fmt::Display for IoLike {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection reset by peer")
    }
}
impl Error for IoLike {}

#[derive(Debug)]
struct QueryFailed(IoLike);
impl fmt::Display for QueryFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("query `select 1` failed")
    }
}
impl Error for QueryFailed {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.0)
    }
}

#[derive(Debug)]
struct RequestFailed(QueryFailed);
impl fmt::Display for RequestFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request /users/42 failed")
    }
}
impl Error for RequestFailed {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.0)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let workload = args.next().unwrap_or_else(|| "stack".into());
    let n: u32 = args.next().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let depth: u32 = args.next().and_then(|v| v.parse().ok()).unwrap_or(20);
    let options = ClientOptions::new()
        .with_transport(NoopTransport)
        .with_attach_stacktrace(workload == "stack" || workload == "worker")
        .with_queue_capacity(n as usize + 16);
    let dsn = "https://public@127.0.0.1:9/1".parse().ok();
    let client = Arc::new(Client::new(options, dsn));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    let err = RequestFailed(QueryFailed(IoLike));
    if workload == "worker" {
        return worker(&client, hub, n, &err);
    }
    let start = Instant::now();
    let cpu_start = thread_cpu_ns();
    Hub::run(hub, || nested(depth, &|| run(&workload, n, &err)));
    let took = start.elapsed();
    let cpu = cpu_start.zip(thread_cpu_ns()).map(|(a, b)| (b - a) / u64::from(n));
    client.flush(Duration::from_secs(60));
    let frames = nested(depth, &RawBacktrace::capture);
    match cpu {
        Some(cpu) => println!("{workload}: {:?}/op wall, {cpu} ns/op on-CPU, {frames:?}", took / n),
        None => println!("{workload}: {:?}/op, {frames:?}", took / n),
    }
}

#[inline(never)]
fn nested<R>(depth: u32, f: &dyn Fn() -> R) -> R {
    if depth == 0 {
        f()
    } else {
        black_box(nested(black_box(depth - 1), f))
    }
}

fn run(workload: &str, n: u32, err: &RequestFailed) {
    match workload {
        "stack" | "nostack" => {
            for _ in 0..n {
                black_box(sentry_lite_core::capture_error(err));
            }
        }
        "unwind" => {
            for _ in 0..n {
                black_box(RawBacktrace::capture());
            }
        }
        "unwind-libgcc" => {
            for _ in 0..n {
                let mut ips = Vec::with_capacity(48);
                backtrace::trace(|f| {
                    ips.push(f.ip() as usize);
                    true
                });
                black_box(ips);
            }
        }
        other => eprintln!("unknown workload {other}"),
    }
}

/// Worker CPU per captured event (after a warm-up that fills the symbol cache).
fn worker(client: &Client, hub: Arc<Hub>, n: u32, err: &RequestFailed) {
    Hub::run(hub.clone(), || {
        (0..200).for_each(|_| {
            black_box(sentry_lite_core::capture_error(err));
        })
    });
    client.flush(Duration::from_secs(30));
    let before = worker_cpu();
    let mut sent = 0u32;
    Hub::run(hub, || {
        while sent < n {
            (0..500).for_each(|_| {
                black_box(sentry_lite_core::capture_error(err));
            });
            sent += 500;
            client.flush(Duration::from_secs(30));
        }
    });
    let cpu = worker_cpu() - before;
    println!("worker CPU per event: {:.2} µs ({sent} events)", cpu.as_secs_f64() * 1e6 / f64::from(sent));
}

/// CPU time of the client's worker thread (Linux schedstat).
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
