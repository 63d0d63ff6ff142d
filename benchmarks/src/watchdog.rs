//! The watchdog's cost on a busy axum service (the same service with the watchdog
//! layer and thread, and without), and how soon after the threshold a stall is
//! reported.

use std::sync::Arc;
use std::time::Duration;

use sentry_lite_core::protocol::ItemType;
use sentry_lite_core::{Client, ClientOptions, Hub, TestTransport};
use sentry_lite_watchdog::{WatchExt, Watchdog, WatchdogLayer, WatchdogOptions};

use crate::harness::{self, Settings};
use crate::{axum_load, ours, ratio_lines};

/// Throughput with the watchdog on against off, alternating rounds; the sentry
/// layer (unsampled) is on in both.
pub(crate) fn axum_overhead(s: &Settings, ratios: &mut Vec<String>) {
    let case = "watchdog/axum_overhead";
    let rt = axum_load::runtime();
    let (off_router, off_guard) = ours::axum_app(axum_load::hello_router(), 0.0);
    let (on_router, on_guard) = ours::axum_app(axum_load::hello_router().layer(WatchdogLayer::new()), 0.0);
    let servers =
        [("watchdog-on", axum_load::serve(&rt, on_router)), ("watchdog-off", axum_load::serve(&rt, off_router))];
    for (_, addr) in &servers {
        axum_load::load(&rt, *addr, s.load_connections, Duration::from_millis(100));
    }
    let mut res: Vec<Vec<axum_load::LoadResult>> = vec![Vec::new(); servers.len()];
    for round in 0..s.load_rounds {
        for k in 0..servers.len() {
            let i = (k + round) % servers.len();
            // The watchdog thread runs only while its server is measured.
            let watchdog = (i == 0).then(|| Watchdog::start(WatchdogOptions::new()));
            res[i].push(axum_load::load(&rt, servers[i].1, s.load_connections, s.load_duration));
            drop(watchdog);
        }
    }
    println!(
        "\n== {case} ({} conns, {:?} x {} rounds per contender, medians; sentry layer unsampled in both)",
        s.load_connections, s.load_duration, s.load_rounds
    );
    println!("   {:<16} {:>12} {:>12} {:>12} {:>10}", "contender", "req/s", "ns/req", "p50", "p99");
    let mut ns = Vec::new();
    for (i, (name, _)) in servers.iter().enumerate() {
        let m = |f: fn(&axum_load::LoadResult) -> f64| harness::median(&mut res[i].iter().map(f).collect::<Vec<_>>());
        let (rps, p50, p99) = (m(|r| r.rps), m(|r| r.p50_us), m(|r| r.p99_us));
        println!("   {:<16} {:>12.0} {:>12.0} {:>9.1} µs {:>7.1} µs", name, rps, 1e9 / rps, p50, p99);
        ns.push(1e9 / rps);
    }
    ratio_lines(&format!("{case}_ns_per_req"), Some(ns[0]), &[("watchdog-off".into(), ns[1])], ratios);
    drop((on_guard, off_guard));
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// Stalls of `threshold + 400 ms`, each under a fresh watchdog; the latency is how
/// long past the threshold the stall had lasted when it was reported.
pub(crate) fn detection_latency(quick: bool, ratios: &mut Vec<String>) {
    let case = "watchdog/detection_latency";
    let threshold = Duration::from_secs(1);
    let reps = if quick { 3 } else { 10 };
    let transport = TestTransport::new();
    let client = Arc::new(Client::new(ClientOptions::new().with_transport(transport.clone()), None));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut latencies = Vec::new();
    for _ in 0..reps {
        let watchdog = Hub::run(hub.clone(), || Watchdog::start(WatchdogOptions::new().with_threshold(threshold)));
        runtime.block_on(async { std::thread::sleep(threshold + Duration::from_millis(400)) }.watched());
        drop(watchdog);
        client.flush(Duration::from_secs(10));
        for event in transport.items_of(&ItemType::Event) {
            if let Some(ms) = event["contexts"]["watchdog"]["stall_duration_ms"].as_u64() {
                latencies.push(ms as f64 - threshold.as_millis() as f64);
            }
        }
        transport.take();
    }
    let reported = latencies.len();
    let max = latencies.iter().copied().fold(0.0, f64::max);
    let median = harness::median(&mut latencies);
    println!("\n== {case} (threshold {threshold:?}, {reps} stalls of threshold + 400 ms, each under a fresh watchdog)");
    println!("   reported {reported} of {reps}; past the threshold: median {median:.0} ms, max {max:.0} ms (target ≤ 100 ms)");
    ratio_lines(&format!("{case}_max_ms_past_threshold"), Some(max), &[("target".into(), 100.0)], ratios);
}
