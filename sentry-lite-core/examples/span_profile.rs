//! Runs one hot-path workload in a loop, for `perf record` / callgrind:
//! `cargo run --release -p sentry-lite-core --example span_profile -- child 1000000`
//! (workloads: child, child100, rounds (flushed every 1 000), shared (two
//! threads, one segment), unsampled, root, message, tag;
//! `MAX_BUFFERED=n` sets the span buffer bound).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sentry_lite_core::{Client, ClientOptions, Hub, Level, NoopTransport};

#[path = "support/cpu.rs"]
mod cpu;
use cpu::thread_cpu_ns;

fn main() {
    let mut args = std::env::args().skip(1);
    let workload = args.next().unwrap_or_else(|| "child".into());
    let n: u32 = args.next().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let mut options = ClientOptions::new()
        .with_transport(NoopTransport)
        .with_traces_sample_rate(if workload == "unsampled" { 0.0 } else { 1.0 })
        .with_attach_stacktrace(false)
        .with_queue_capacity(100_000);
    if let Some(bound) = std::env::var("MAX_BUFFERED").ok().and_then(|v| v.parse().ok()) {
        options.max_buffered_spans = bound;
    }
    let client = Arc::new(Client::new(options, None));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    // The worker calibrates the span clock when it starts: wait for it, so that
    // short runs (callgrind) measure spans that read the counter.
    client.flush(Duration::from_secs(30));
    let start = Instant::now();
    let cpu_start = thread_cpu_ns();
    Hub::run(hub, || match workload.as_str() {
        "child" | "unsampled" => {
            let root = sentry_lite_core::start_root_span("root", "task");
            for _ in 0..n {
                root.start_child("child", "db.query").finish();
            }
        }
        "child100" => {
            // As the benchmark's child span case: a new root every 100 children.
            for _ in 0..n / 100 {
                let root = sentry_lite_core::start_root_span("root", "task");
                for _ in 0..100 {
                    root.start_child("child", "db.query").finish();
                }
                root.finish();
            }
        }
        "rounds" => {
            // Rounds of 1 000 children (as the benchmark's kept case), flushed
            // untimed: the cost of a child when the worker keeps up.
            let mut spent = Duration::ZERO;
            for _ in 0..n / 1_000 {
                let t = Instant::now();
                for _ in 0..10 {
                    let root = sentry_lite_core::start_root_span("root", "task");
                    for _ in 0..100 {
                        root.start_child("child", "db.query").finish();
                    }
                    root.finish();
                }
                spent += t.elapsed();
                client.flush(Duration::from_secs(30));
            }
            eprintln!("rounds: {:?}/op in spans", spent / n);
        }
        "shared" => {
            // Two threads making children of one segment at once: the
            // segment's lock under contention.
            let root = sentry_lite_core::start_root_span("root", "task");
            std::thread::scope(|s| {
                for _ in 0..2 {
                    let root = root.clone();
                    s.spawn(move || {
                        for _ in 0..n / 2 {
                            root.start_child("child", "db.query").finish();
                        }
                    });
                }
            });
            root.finish();
        }
        "root" => {
            for _ in 0..n {
                sentry_lite_core::start_root_span("root", "task").finish();
            }
        }
        "message" => {
            for _ in 0..n {
                sentry_lite_core::capture_message("hello", Level::Info);
            }
        }
        "tag" => {
            for i in 0..n {
                sentry_lite_core::configure_scope(|s| s.set_tag("k", i));
            }
        }
        other => eprintln!("unknown workload {other}"),
    });
    let took = start.elapsed();
    let cpu = thread_cpu_ns().zip(cpu_start).map(|(end, start)| (end - start) / u64::from(n.max(1)));
    client.flush(Duration::from_secs(30));
    match cpu {
        Some(cpu) => println!(
            "{workload}: {:?}/op wall, {cpu} ns/op on-CPU, dropped {}",
            took / n,
            client.discarded(
                sentry_lite_core::protocol::DiscardReason::BufferOverflow,
                sentry_lite_core::protocol::DataCategory::Span
            )
        ),
        None => println!("{workload}: {:?}/op", took / n),
    }
}
