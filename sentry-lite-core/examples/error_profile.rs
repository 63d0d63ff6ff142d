//! Runs `capture_error` (or one of its parts) in a loop, for `perf` / callgrind:
//! `cargo run --release -p sentry-lite-core --example error_profile -- {stack|nostack|unwind|unwind-libgcc} N`.
//! The error is the benchmark's 3-level chain; the transport is a no-op. A third
//! argument runs the loop that many calls deep (default 20, about the benchmark's).

use std::error::Error;
use std::fmt;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sentry_lite_core::{Client, ClientOptions, Hub, NoopTransport, RawBacktrace};

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
        .with_attach_stacktrace(workload == "stack")
        .with_queue_capacity(n as usize + 16);
    let client = Arc::new(Client::new(options, None));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    let err = RequestFailed(QueryFailed(IoLike));
    let start = Instant::now();
    Hub::run(hub, || nested(depth, &|| run(&workload, n, &err)));
    let took = start.elapsed();
    client.flush(Duration::from_secs(60));
    println!("{workload}: {:?}/op, {:?}", took / n, nested(depth, &RawBacktrace::capture));
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
