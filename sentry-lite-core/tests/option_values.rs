//! Extreme option and argument values (zero, `Duration::MAX`, `usize::MAX`, NaN):
//! starting a client, capturing, spans, flush and close never panic, and flush and
//! close with an unbounded timeout still return once the work is done.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use sentry_lite_core::{self as sentry, Client, ClientOptions, Hub, Level, TestTransport};

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::MAX),
        Just(Duration::from_nanos(1)),
        Just(Duration::from_secs(u64::MAX)),
        (0u64..2_000).prop_map(Duration::from_millis),
    ]
}

fn count() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0), Just(1), Just(usize::MAX), Just(usize::MAX / 2), 0usize..5_000]
}

fn rate() -> impl Strategy<Value = f64> {
    prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-1.0), Just(0.0), Just(1.0), Just(2.0), 0.0f64..1.0]
}

/// Waits that must still end: the work before them is quick.
fn finite_wait() -> impl Strategy<Value = Duration> {
    prop_oneof![Just(Duration::MAX), Just(Duration::from_secs(u64::MAX)), Just(Duration::from_secs(10))]
}

#[derive(Debug, Clone)]
struct Values {
    shutdown_timeout: Duration,
    request_timeout: Duration,
    queue_capacity: usize,
    max_buffered_spans: usize,
    max_breadcrumbs: usize,
    spool_max_files: usize,
    spool_max_bytes: u64,
    sample_rate: f64,
    traces_sample_rate: f64,
    http: bool,
    spool: bool,
    flush: Duration,
    close: Duration,
}

fn values() -> impl Strategy<Value = Values> {
    (
        (duration(), duration(), count(), count(), count(), count()),
        (prop_oneof![Just(0u64), Just(u64::MAX), 0u64..100_000], rate(), rate(), any::<bool>(), any::<bool>()),
        (finite_wait(), finite_wait()),
    )
        .prop_map(|((st, rt, qc, mbs, mb, smf), (smb, sr, tsr, http, spool), (flush, close))| Values {
            shutdown_timeout: st,
            request_timeout: rt,
            queue_capacity: qc,
            max_buffered_spans: mbs,
            max_breadcrumbs: mb,
            spool_max_files: smf,
            spool_max_bytes: smb,
            sample_rate: sr,
            traces_sample_rate: tsr,
            http,
            spool,
            flush,
            close,
        })
}

/// A DSN whose port refuses connections at once.
fn refused_dsn() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://key@127.0.0.1:{port}/1")
}

fn exercise(v: &Values) {
    // Fields set directly, bypassing the setters' clamping.
    let mut options = ClientOptions::new();
    options.shutdown_timeout = v.shutdown_timeout;
    options.request_timeout = v.request_timeout;
    options.queue_capacity = v.queue_capacity;
    options.max_buffered_spans = v.max_buffered_spans;
    options.max_breadcrumbs = v.max_breadcrumbs;
    options.spool_max_files = v.spool_max_files;
    options.spool_max_bytes = v.spool_max_bytes;
    options.sample_rate = v.sample_rate as f32;
    options.traces_sample_rate = Some(v.traces_sample_rate);
    if v.spool {
        options.spool_dir = Some(std::env::temp_dir().join(format!("sl-option-values-{}", std::process::id())));
    }
    let dsn = if v.http { Some(refused_dsn().parse().unwrap()) } else { None };
    if !v.http {
        options.transport = Some(Arc::new(TestTransport::new()));
    }
    let client = Arc::new(Client::new(options, dsn));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    Hub::run(hub, || {
        sentry::add_breadcrumb("crumb");
        sentry::capture_message("extreme options", Level::Error);
        let root = sentry::start_root_span("job", "task");
        let entered = sentry::enter_span(&root);
        sentry::start_span("step", "db").finish();
        drop(entered);
        root.finish();
    });
    client.flush(v.flush);
    client.close(v.close);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn extreme_option_values_never_panic(v in values()) {
        exercise(&v);
    }
}

#[test]
fn unbounded_timeouts_return_once_the_work_is_done() {
    let transport = TestTransport::new();
    let options = ClientOptions::new()
        .with_transport(transport.clone())
        .with_shutdown_timeout(Duration::MAX)
        .with_request_timeout(Duration::MAX);
    let guard = sentry::init(options).unwrap();
    sentry::capture_message("one", Level::Error);
    assert!(sentry::flush(Duration::MAX));
    assert!(sentry::flush(Duration::from_secs(u64::MAX)));
    // The guard's drop closes with `shutdown_timeout = Duration::MAX`.
    drop(guard);
    assert_eq!(transport.take().len(), 1);
}
