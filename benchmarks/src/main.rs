//! sentry-lite side-by-side benchmarks.
//!
//! ```text
//! cargo run --release -p sentry-lite-benchmarks -- [--quick] [--only <case-substring>]
//! ```
//!
//! Runs the same workloads through sentry-lite ("ours"), the official
//! `sentry` SDK and OpenTelemetry in one process, alternating contenders round
//! by round, and prints the median ns/op per contender plus one line per peer:
//!
//! ```text
//! RATIO <case> <ours_ns> <peer> <peer_ns> <ours/peer>
//! ```
//!
//! (memory and wire cases use bytes instead of ns, throughput cases ns per
//! request.)

mod alloc;
mod axum_load;
mod baseline;
mod harness;
mod loopback;
mod ours;
mod peer_otel;
mod peer_sentry;
mod watchdog;

use std::io::Write as _;
use std::time::{Duration, Instant};

use harness::{run_case, Case, Settings, Stat, OURS};

#[global_allocator]
static GLOBAL: alloc::CountingAlloc = alloc::CountingAlloc;

/// Memory-case contender: `f(n_spans, checkpoint)`; see `ours::memory_trace`.
pub(crate) type MemFn = Box<dyn FnMut(u64, &mut dyn FnMut())>;

/// Length of `data` after gzip (default level), as an HTTP transport would send it.
pub(crate) fn gzip_len(data: &[u8]) -> u64 {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip").len() as u64
}

struct Cli {
    quick: bool,
    list: bool,
    only: Option<String>,
}

fn parse_cli() -> Cli {
    let mut cli = Cli { quick: false, list: false, only: None };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => cli.quick = true,
            "--list" => cli.list = true,
            "--only" => cli.only = Some(args.next().unwrap_or_else(|| usage("--only needs a value"))),
            "-h" | "--help" => usage(""),
            // `cargo bench` passes --bench; ignore it.
            "--bench" => {}
            other => usage(&format!("unknown argument {other}")),
        }
    }
    cli
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("error: {msg}");
    }
    eprintln!("usage: sentry-lite-benchmarks [--quick] [--only <case-substring>] [--list]");
    std::process::exit(if msg.is_empty() { 0 } else { 2 })
}

/// One RATIO line per peer (none when the case has no "ours" figure).
fn ratio_lines(case: &str, ours: Option<f64>, peers: &[(String, f64)], out: &mut Vec<String>) {
    let Some(o) = ours else { return };
    for (peer, v) in peers {
        out.push(format!("RATIO {case} {o:.1} {peer} {v:.1} {:.3}", o / v));
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn print_stats(case: &Case, stats: &[Stat], ratios: &mut Vec<String>) {
    println!(
        "\n== {} {}",
        case.name,
        if case.ops_per_iter > 1 { format!("(per op, {} ops/iter)", case.ops_per_iter) } else { String::new() }
    );
    println!("   {:<16} {:>12} {:>12} {:>12} {:>10}  note", "contender", "median", "min", "max", "iters");
    for s in stats {
        println!(
            "   {:<16} {:>12} {:>12} {:>12} {:>10}  {}",
            s.name,
            fmt_ns(s.median_ns),
            fmt_ns(s.min_ns),
            fmt_ns(s.max_ns),
            s.iters,
            s.note.as_deref().unwrap_or("")
        );
    }
    let ours = stats.iter().find(|s| s.name == OURS).map(|s| s.median_ns);
    let peers: Vec<_> = stats.iter().filter(|s| s.name != OURS).map(|s| (s.name.clone(), s.median_ns)).collect();
    ratio_lines(&case.name, ours, &peers, ratios);
}

/// A case's name and how to build it.
type LazyCase = (&'static str, Box<dyn Fn() -> Case>);

/// All per-op cases, built lazily so `--only` does not create unused clients.
fn per_op_cases() -> Vec<LazyCase> {
    vec![
        (
            "event/capture_message",
            Box::new(|| {
                Case::new("event/capture_message").ours(ours::capture_message()).peer(peer_sentry::capture_message())
            }),
        ),
        (
            "event/capture_error_chain3",
            Box::new(|| {
                Case::new("event/capture_error_chain3")
                    .ours(ours::capture_error(false))
                    .peer(peer_sentry::capture_error(false))
            }),
        ),
        (
            "event/capture_error_chain3_stacktrace",
            Box::new(|| {
                Case::new("event/capture_error_chain3_stacktrace")
                    .ours(ours::capture_error(true))
                    .peer(peer_sentry::capture_error(true))
            }),
        ),
        ("scope/set_tag", Box::new(|| Case::new("scope/set_tag").ours(ours::set_tag()).peer(peer_sentry::set_tag()))),
        (
            "scope/add_breadcrumb",
            Box::new(|| {
                Case::new("scope/add_breadcrumb").ours(ours::add_breadcrumb()).peer(peer_sentry::add_breadcrumb())
            }),
        ),
        (
            // ours = a plain `tokio::spawn` task (its hub found by task id), the
            // peer = the same in a task bound with `.bind_hub`: RATIO = unbound / bound.
            "scope/task_write_capture",
            Box::new(|| {
                Case::new("scope/task_write_capture")
                    .ours(ours::task_write_capture(false))
                    .peer(ours::task_write_capture(true))
            }),
        ),
        (
            "span/root_sampled",
            Box::new(|| {
                Case::new("span/root_sampled")
                    .ours(ours::span_root(true))
                    .peer(peer_sentry::span_root(true))
                    .peer(peer_otel::span_root(true))
            }),
        ),
        (
            "span/child_sampled",
            Box::new(|| {
                Case::new("span/child_sampled")
                    .ours(ours::span_child(true))
                    .peer(peer_sentry::span_child(true))
                    .peer(peer_otel::span_child(true))
            }),
        ),
        (
            "span/child_sampled_kept",
            Box::new(|| {
                Case::new("span/child_sampled_kept")
                    .ours(ours::span_child_kept())
                    .peer(peer_sentry::span_child_kept())
                    .peer(peer_otel::span_child_kept())
            }),
        ),
        (
            "span/root_unsampled",
            Box::new(|| {
                Case::new("span/root_unsampled")
                    .ours(ours::span_root(false))
                    .peer(peer_sentry::span_root(false))
                    .peer(peer_otel::span_root(false))
            }),
        ),
        (
            "span/child_unsampled",
            Box::new(|| {
                Case::new("span/child_unsampled")
                    .ours(ours::span_child(false))
                    .peer(peer_sentry::span_child(false))
                    .peer(peer_otel::span_child(false))
            }),
        ),
        (
            "span/trace_10_children",
            Box::new(|| {
                Case::new("span/trace_10_children")
                    .ops_per_iter(11)
                    .ours(ours::trace_n(10))
                    .peer(peer_sentry::trace_n(10))
                    .peer(peer_otel::trace_n(10))
            }),
        ),
        (
            "span/trace_1000_children",
            Box::new(|| {
                Case::new("span/trace_1000_children")
                    .ops_per_iter(1001)
                    .ours(ours::trace_n(1000))
                    .peer(peer_sentry::trace_n(1000))
                    .peer(peer_otel::trace_n(1000))
            }),
        ),
        (
            "tracing/span",
            Box::new(|| {
                Case::new("tracing/span")
                    .ours(ours::tracing_span())
                    .peer(baseline::span())
                    .peer(peer_sentry::tracing_span())
                    .peer(peer_otel::tracing_span())
            }),
        ),
        (
            "tracing/child_span",
            Box::new(|| {
                Case::new("tracing/child_span")
                    .ours(ours::tracing_child_span())
                    .peer(baseline::child_span())
                    .peer(peer_sentry::tracing_child_span())
                    .peer(peer_otel::tracing_child_span())
            }),
        ),
        (
            "tracing/event",
            Box::new(|| {
                Case::new("tracing/event")
                    .ours(ours::tracing_event())
                    .peer(baseline::event())
                    .peer(peer_sentry::tracing_event())
                    .peer(peer_otel::tracing_event())
            }),
        ),
        (
            "tracing/event_in_span",
            Box::new(|| {
                Case::new("tracing/event_in_span")
                    .ours(ours::tracing_event_in_span())
                    .peer(baseline::event_in_span())
                    .peer(peer_sentry::tracing_event_in_span())
                    .peer(peer_otel::tracing_event_in_span())
            }),
        ),
    ]
}

/// Cases that are not per-op timings (listed for `--list`).
const NON_PER_OP_CASES: &[&str] = &[
    "axum/hello_sampled",
    "axum/hello_unsampled",
    "memory/trace_100k_spans",
    "wire/bytes_per_span_gzip",
    "wire/bytes_per_error_event_gzip",
    "e2e/loopback_throughput",
    "span/sustained_200k_per_s",
    "watchdog/axum_overhead",
    "watchdog/detection_latency",
];

/// The lines of one loopback run.
fn print_loopback(t: &loopback::Throughput) {
    println!(
        "     captured={} received={} ({:.1}%) dropped: queue={} network={}; requests={} (gzip {}), {:.0} wire B/event",
        t.sent,
        t.received,
        100.0 * t.received as f64 / t.sent.max(1) as f64,
        t.dropped_queue,
        t.dropped_network,
        t.requests,
        t.gzipped,
        t.wire_bytes as f64 / t.received.max(1) as f64
    );
    println!(
        "     capture rate {:.0}/s over {:.2}s{}; delivered {:.0} events/s over {:.2}s (incl. final flush)",
        t.sent as f64 / t.produce.as_secs_f64(),
        t.produce.as_secs_f64(),
        if t.kept_pace { "" } else { " (fell behind the offered rate)" },
        t.delivered_per_s(),
        t.elapsed.as_secs_f64()
    );
    println!(
        "     CPU per delivered event: worker {:.1} µs, receiver {:.1} µs, producer {:.1} µs",
        t.per_event_us(t.worker_cpu),
        t.per_event_us(t.receiver_cpu),
        t.per_event_us(t.producer_cpu)
    );
}

/// The delivery case: ours and sentry (its own reqwest transport) unpaced and
/// paced into the same loopback receiver, then the bare-reqwest floor.
fn loopback_case(case: &str, s: &Settings, ratios: &mut Vec<String>) {
    println!(
        "\n== {case} (error events from one producer through each SDK's worker and real HTTP transport into a loopback receiver, {:?} per run)",
        s.load_duration
    );
    let receiver = loopback::Receiver::start();
    let rates = [500u64, 1_000, 2_500, 5_000, 7_500, 10_000, 12_500, 15_000, 17_500, 20_000, 25_000, 30_000, 40_000];
    let mut best = Vec::new();
    for name in [OURS, peer_sentry::NAME] {
        let sdk: Box<dyn loopback::Sdk> = if name == OURS {
            Box::new(ours::LoopbackSdk::new(&receiver))
        } else {
            Box::new(peer_sentry::LoopbackSdk::new(&receiver))
        };
        println!("   {name}, unpaced (the producer captures as fast as it can, keeping one core busy):");
        let t = loopback::run(&receiver, sdk.as_ref(), s.load_duration, None);
        print_loopback(&t);
        println!("THROUGHPUT {case} {name} {:.0} events/s", t.delivered_per_s());
        println!("   {name}, paced (offered rate in 10 ms slots, increasing until one is not delivered in full):");
        let runs = loopback::paced(&receiver, sdk.as_ref(), s.load_duration, &rates);
        for (rate, t) in &runs {
            println!("   offered {rate}/s:");
            print_loopback(t);
        }
        let max = runs.iter().filter(|(_, t)| t.complete()).map(|(r, _)| *r).max().unwrap_or(0);
        println!("   {name}: highest offered rate delivered in full: {max} events/s");
        println!("THROUGHPUT {case}_paced_max {name} {max} events/s");
        best.push((name.to_string(), max as f64));
    }
    // Higher is better here: ours/peer > 1 means we deliver more.
    let ours = best.iter().find(|b| b.0 == OURS).map(|b| b.1);
    let peers: Vec<_> = best.into_iter().filter(|b| b.0 != OURS).collect();
    ratio_lines(&format!("{case}_paced_max_events_per_s"), ours, &peers, ratios);

    let body = ours::error_envelope_gzip();
    let floor = loopback::reqwest_floor(&receiver, body.clone(), 8, s.load_duration);
    println!(
        "   floor: bare reqwest, our {} B gzipped error envelope, 8 in flight, no SDK: {:.0} requests/s; CPU per request: sender {:.1} µs, receiver {:.1} µs",
        body.len(),
        floor.per_s(),
        floor.per_request_us(floor.sender_cpu),
        floor.per_request_us(floor.receiver_cpu)
    );
    println!("THROUGHPUT {case}_reqwest_floor {:.0} requests/s", floor.per_s());
}

fn selected(name: &str, cli: &Cli) -> bool {
    cli.only.as_deref().is_none_or(|o| name.contains(o))
}

// ------------------------------------------------------------------ axum --

fn axum_cases(cli: &Cli, s: &Settings, ratios: &mut Vec<String>) {
    for (case, rate) in [("axum/hello_sampled", 1.0f32), ("axum/hello_unsampled", 0.0f32)] {
        if !selected(case, cli) {
            continue;
        }
        eprintln!("running {case} …");
        let rt = axum_load::runtime();
        let mut servers: Vec<(String, std::net::SocketAddr)> = Vec::new();
        let mut keep: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
        let (router, guard) = ours::axum_app(axum_load::hello_router(), rate);
        servers.push((OURS.into(), axum_load::serve(&rt, router)));
        keep.push(guard);
        let (router, transport) = peer_sentry::axum_app(axum_load::hello_router(), rate);
        servers.push(("sentry-tower".into(), axum_load::serve(&rt, router)));
        servers.push(("axum-bare".into(), axum_load::serve(&rt, axum_load::hello_router())));

        // warmup
        for (_, addr) in &servers {
            axum_load::load(&rt, *addr, s.load_connections, Duration::from_millis(100));
        }
        let n = servers.len();
        let mut res: Vec<Vec<axum_load::LoadResult>> = vec![Vec::new(); n];
        for round in 0..s.load_rounds {
            for k in 0..n {
                let i = (k + round) % n;
                res[i].push(axum_load::load(&rt, servers[i].1, s.load_connections, s.load_duration));
            }
        }
        println!(
            "\n== {case} ({} conns, {:?} x {} rounds per contender, medians)",
            s.load_connections, s.load_duration, s.load_rounds
        );
        println!("   {:<16} {:>12} {:>12} {:>12} {:>10} {:>8}", "contender", "req/s", "ns/req", "p50", "p99", "errors");
        let mut meds = Vec::new();
        for (i, (name, _)) in servers.iter().enumerate() {
            let m =
                |f: fn(&axum_load::LoadResult) -> f64| harness::median(&mut res[i].iter().map(f).collect::<Vec<_>>());
            let rps = m(|r| r.rps);
            let p50 = m(|r| r.p50_us);
            let p99 = m(|r| r.p99_us);
            let errors: u64 = res[i].iter().map(|r| r.errors).sum();
            println!("   {:<16} {:>12.0} {:>12.0} {:>9.1} µs {:>7.1} µs {:>8}", name, rps, 1e9 / rps, p50, p99, errors);
            meds.push((name.clone(), 1e9 / rps, p99));
        }
        println!(
            "   (sentry-tower envelopes sent: {})",
            transport.envelopes.load(std::sync::atomic::Ordering::Relaxed)
        );
        let ours_ns = meds.iter().find(|m| m.0 == OURS).map(|m| m.1);
        let peers: Vec<_> = meds.iter().filter(|m| m.0 != OURS).map(|m| (m.0.clone(), m.1)).collect();
        ratio_lines(&format!("{case}_ns_per_req"), ours_ns, &peers, ratios);
        let ours_p99 = meds.iter().find(|m| m.0 == OURS).map(|m| m.2 * 1e3);
        let peers99: Vec<_> = meds.iter().filter(|m| m.0 != OURS).map(|m| (m.0.clone(), m.2 * 1e3)).collect();
        ratio_lines(&format!("{case}_p99_ns"), ours_p99, &peers99, ratios);
        drop(keep);
        rt.shutdown_timeout(Duration::from_secs(1));
    }
}

// ---------------------------------------------------------------- memory --

fn memory_case(cli: &Cli, quick: bool, ratios: &mut Vec<String>) {
    let case = "memory/trace_100k_spans";
    if !selected(case, cli) {
        return;
    }
    eprintln!("running {case} …");
    let n: u64 = 100_000;
    let mut contenders: Vec<(String, MemFn)> = vec![
        (OURS.into(), ours::memory_trace()),
        (peer_sentry::NAME.into(), peer_sentry::memory_trace()),
        (peer_otel::NAME.into(), peer_otel::memory_trace()),
    ];
    let reps = if quick { 3 } else { 5 };
    println!("\n== {case} (one root + {n} children; live heap bytes via counting allocator, median of {reps})");
    println!("   {:<16} {:>14} {:>14} {:>12} {:>14}", "contender", "retained", "peak", "B/span", "RSS growth");
    let mut peaks = Vec::new();
    for (name, f) in contenders.iter_mut() {
        let (mut ret, mut pk, mut rss) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..reps {
            let rss0 = alloc::rss_bytes();
            let mut at_checkpoint = (0i64, 0u64);
            alloc::start();
            f(n, &mut || at_checkpoint = (alloc::current(), alloc::rss_bytes()));
            alloc::stop();
            ret.push(at_checkpoint.0 as f64);
            pk.push(alloc::peak() as f64);
            rss.push(at_checkpoint.1.saturating_sub(rss0) as f64);
        }
        let (r, p, g) = (harness::median(&mut ret), harness::median(&mut pk), harness::median(&mut rss));
        println!("   {:<16} {:>14.0} {:>14.0} {:>12.1} {:>14.0}", name, r, p, r / n as f64, g);
        peaks.push((name.clone(), p));
    }
    println!("   note: sentry 0.49.5 keeps at most 1 000 spans per transaction (MAX_SPANS) and drops the rest;");
    println!("         otel's BatchSpanProcessor exports as spans end (queue 2 048, drops when full).");
    let ours = peaks.iter().find(|p| p.0 == OURS).map(|p| p.1);
    let peers: Vec<_> = peaks.iter().filter(|p| p.0 != OURS).cloned().collect();
    ratio_lines("memory/trace_100k_spans_peak_bytes", ours, &peers, ratios);
}

// ------------------------------------------------------------------ wire --

fn wire_cases(cli: &Cli, s: &Settings, quick: bool, ratios: &mut Vec<String>) {
    let case = "wire/bytes_per_span_gzip";
    if selected(case, cli) {
        let n = 100u64; // below sentry's 1 000-span cap
        println!("\n== {case} (one root + {n} children, serialized envelope, gzip default level)");
        println!("   {:<16} {:>10} {:>10} {:>12} {:>12}", "contender", "raw B", "gzip B", "raw B/span", "gzip B/span");
        let per = |(raw, gz): (u64, u64)| (raw as f64 / (n + 1) as f64, gz as f64 / (n + 1) as f64);
        let rows =
            [(OURS.to_string(), ours::wire_bytes(n)), (peer_sentry::NAME.to_string(), peer_sentry::wire_bytes(n))];
        for (name, v) in &rows {
            let (r, g) = per(*v);
            println!("   {:<16} {:>10} {:>10} {:>12.1} {:>12.1}", name, v.0, v.1, r, g);
        }
        let ours = rows.iter().find(|r| r.0 == OURS).map(|r| per(r.1).1);
        let peers: Vec<_> = rows.iter().filter(|r| r.0 != OURS).map(|r| (r.0.clone(), per(r.1).1)).collect();
        ratio_lines("wire/bytes_per_span_gzip", ours, &peers, ratios);
    }
    let case = "wire/bytes_per_error_event_gzip";
    if selected(case, cli) {
        println!("\n== {case} (one error event: 3-level chain, attach_stacktrace on, serialized envelope, gzip default level)");
        println!("   {:<16} {:>10} {:>10}", "contender", "raw B", "gzip B");
        let rows = [
            (OURS.to_string(), ours::wire_error_event()),
            (peer_sentry::NAME.to_string(), peer_sentry::wire_error_event()),
        ];
        for (name, v) in &rows {
            println!("   {:<16} {:>10} {:>10}", name, v.0, v.1);
        }
        let ours = rows.iter().find(|r| r.0 == OURS).map(|r| r.1 .1 as f64);
        let peers: Vec<_> = rows.iter().filter(|r| r.0 != OURS).map(|r| (r.0.clone(), r.1 .1 as f64)).collect();
        ratio_lines(case, ours, &peers, ratios);
    }
    let case = "e2e/loopback_throughput";
    if selected(case, cli) {
        loopback_case(case, s, ratios);
    }
    let case = "span/sustained_200k_per_s";
    if selected(case, cli) {
        let rate = 200_000u64;
        let dur = if quick { Duration::from_secs(1) } else { Duration::from_secs(5) };
        println!("\n== {case} (ours only: one producer, {rate} spans/s paced in 10 ms slots for {dur:?}, default options, NoopTransport)");
        for children in [99u64, 999, 9] {
            let r = ours::span_sustained(rate, dur, children);
            println!(
                "   traces of 1 root + {children:>3} children: spans={} in {:.2}s ({:.0}/s, late slots {}), dropped: queue={} buffer={}",
                r.spans,
                r.elapsed.as_secs_f64(),
                r.spans as f64 / r.elapsed.as_secs_f64(),
                r.late_slots,
                r.dropped_queue,
                r.dropped_buffer
            );
            println!(
                "SUSTAINED {case} children={children} spans={} dropped={}",
                r.spans,
                r.dropped_queue + r.dropped_buffer
            );
        }
    }
}

fn main() {
    let cli = parse_cli();
    let s = if cli.quick { Settings::quick() } else { Settings::full() };
    if cli.list {
        let names = per_op_cases().into_iter().map(|c| c.0).chain(NON_PER_OP_CASES.iter().copied());
        for n in names.filter(|n| selected(n, &cli)) {
            println!("{n}");
        }
        return;
    }
    let t0 = Instant::now();
    println!(
        "sentry-lite benchmarks ({} mode: {} rounds x ~{:?} batches, contenders alternate each round)",
        if cli.quick { "quick" } else { "full" },
        s.rounds,
        s.batch_target
    );
    let mut ratios = Vec::new();
    for (name, build) in per_op_cases() {
        if !selected(name, &cli) {
            continue;
        }
        eprintln!("running {name} …");
        let mut case = build();
        let stats = run_case(&mut case, &s);
        print_stats(&case, &stats, &mut ratios);
    }
    axum_cases(&cli, &s, &mut ratios);
    memory_case(&cli, cli.quick, &mut ratios);
    wire_cases(&cli, &s, cli.quick, &mut ratios);
    if selected("watchdog/axum_overhead", &cli) {
        eprintln!("running watchdog/axum_overhead …");
        watchdog::axum_overhead(&s, &mut ratios);
    }
    if selected("watchdog/detection_latency", &cli) {
        eprintln!("running watchdog/detection_latency …");
        watchdog::detection_latency(cli.quick, &mut ratios);
    }

    println!("\n# machine-readable: RATIO <case> <ours> <peer> <peer_value> <ours/peer>");
    for r in &ratios {
        println!("{r}");
    }
    println!("# total wall time {:.1}s", t0.elapsed().as_secs_f64());
}
