//! Profiling aid: runs the benchmark workloads (`tracing/span`, `tracing/event`, …)
//! through registry + this layer in a loop, for `perf record` / callgrind.
//!
//! ```text
//! cargo run --release -p sentry-lite-tracing --example layer_profile -- span 2000000
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use sentry_lite_core::{Client, ClientOptions, Hub, NoopTransport};
use tracing_subscriber::layer::SubscriberExt as _;

fn one_span(i: u64) {
    let span = tracing::info_span!("handle_request", request.id = i);
    let _g = span.enter();
}

fn one_event(i: u64) {
    tracing::info!(user.id = i, "cache miss for user {}", 42);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "span".to_owned());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let options =
        ClientOptions::new().with_transport(NoopTransport).with_traces_sample_rate(1.0).with_queue_capacity(1_000_000);
    let client = Arc::new(Client::new(options, Some("https://public@127.0.0.1:9/1".parse().expect("dsn"))));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    // `registry:<workload>` runs the workload under the plain registry (the baseline).
    let (what, dispatch) = match what.strip_prefix("registry:") {
        Some(w) => (w.to_owned(), tracing::Dispatch::new(tracing_subscriber::registry())),
        None => (what, tracing::Dispatch::new(tracing_subscriber::registry().with(sentry_lite_tracing::layer()))),
    };
    Hub::run(hub, || {
        tracing::dispatcher::with_default(&dispatch, || {
            let chunk = 10_000;
            let mut done = 0;
            let mut spent = Duration::ZERO;
            let mut on_cpu = 0;
            while done < n {
                let t = Instant::now();
                let cpu = thread_cpu_ns();
                match what.as_str() {
                    "span" => (done..done + chunk).for_each(one_span),
                    "child" => {
                        for c in (done..done + chunk).collect::<Vec<_>>().chunks(100) {
                            let _p = tracing::info_span!("parent").entered();
                            c.iter().copied().for_each(one_span);
                        }
                    }
                    "event" => (done..done + chunk).for_each(one_event),
                    "event_in_span" => {
                        for c in (done..done + chunk).collect::<Vec<_>>().chunks(100) {
                            let _p = tracing::info_span!("parent").entered();
                            c.iter().copied().for_each(one_event);
                        }
                    }
                    other => panic!("unknown workload {other}"),
                }
                spent += t.elapsed();
                on_cpu += thread_cpu_ns() - cpu;
                done += chunk;
                client.flush(Duration::from_secs(30));
            }
            println!(
                "{what}: {:.1} ns/op wall, {:.1} ns/op on-CPU",
                spent.as_nanos() as f64 / n as f64,
                on_cpu as f64 / n as f64
            );
        });
    });
}

/// Time this thread spent on a CPU (Linux schedstat; 0 elsewhere): unlike wall
/// time, it does not grow while other processes hold the cores.
fn thread_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    s.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0)
}
