//! Peer: the official `sentry` SDK (0.49.5), with a no-op transport (its own
//! reqwest transport in the end-to-end loopback case, see `loopback.rs`).
//!
//! Every contender gets its own [`Hub`] bound to a [`Client`](sentry::Client) built like
//! `sentry::init` does (`apply_defaults`: backtrace, contexts and panic
//! integrations), a dummy DSN (the client is disabled without one) and a
//! transport that drops envelopes in the caller thread. The measured loop runs
//! inside [`Hub::run`], so the free functions (`sentry::capture_message`, …)
//! act on that hub exactly as they would on an initialised SDK.

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sentry::protocol::Envelope;
use sentry::{ClientOptions, Hub, Level, Scope, TransactionContext, Transport};
use tracing_subscriber::layer::SubscriberExt;

use crate::harness::{time_chunked, time_chunked_settled, time_loop, BatchFn, Contender};

/// Contender name used in the report.
pub(crate) const NAME: &str = "sentry";

const DSN: &str = "https://public@127.0.0.1:9/1";

/// Transport that counts and drops envelopes.
#[derive(Default)]
pub(crate) struct NoopTransport {
    pub(crate) envelopes: AtomicU64,
}

impl Transport for NoopTransport {
    fn send_envelope(&self, envelope: Envelope) {
        self.envelopes.fetch_add(1, Ordering::Relaxed);
        drop(std::hint::black_box(envelope));
    }
}

/// Transport that keeps envelopes (for the wire-size case).
#[derive(Default)]
struct CapturingTransport {
    envelopes: Mutex<Vec<Envelope>>,
}

impl Transport for CapturingTransport {
    fn send_envelope(&self, envelope: Envelope) {
        self.envelopes.lock().unwrap().push(envelope);
    }
}

/// Options shared by all sentry contenders.
#[derive(Clone, Copy)]
pub(crate) struct Opts {
    pub(crate) traces_sample_rate: f32,
    pub(crate) attach_stacktrace: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Self { traces_sample_rate: 1.0, attach_stacktrace: false }
    }
}

fn client_options(o: Opts, transport: Arc<dyn sentry::TransportFactory>) -> ClientOptions {
    let mut opts =
        ClientOptions::new().dsn(DSN).traces_sample_rate(o.traces_sample_rate).attach_stacktrace(o.attach_stacktrace);
    opts.transport = Some(transport);
    sentry::apply_defaults(opts)
}

/// A hub with its own client and a counting no-op transport.
pub(crate) fn hub(o: Opts) -> (Arc<Hub>, Arc<NoopTransport>) {
    let t = Arc::new(NoopTransport::default());
    let client = sentry::Client::with_options(client_options(o, Arc::new(t.clone())));
    assert!(client.is_enabled(), "sentry client must be enabled");
    let hub = Arc::new(Hub::new(Some(Arc::new(client)), Arc::new(Scope::default())));
    (hub, t)
}

fn contender(name: &str, o: Opts, mut body: impl FnMut(u64) -> std::time::Duration + 'static) -> Contender {
    let (hub, t) = hub(o);
    let run: BatchFn = Box::new(move |iters| Hub::run(hub.clone(), || body(iters)));
    Contender::new(name, run).with_note(Box::new(move || format!("envelopes={}", t.envelopes.load(Ordering::Relaxed))))
}

// ---------------------------------------------------------------- errors --

/// Innermost error of the 3-level chain.
#[derive(Debug)]
pub(crate) struct IoLike;
impl fmt::Display for IoLike {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection reset by peer")
    }
}
impl Error for IoLike {}

/// Middle error.
#[derive(Debug)]
pub(crate) struct QueryFailed(IoLike);
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

/// Outer error: `RequestFailed -> QueryFailed -> IoLike`.
#[derive(Debug)]
pub(crate) struct RequestFailed(QueryFailed);
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

/// Build the shared 3-level error chain (also usable by `ours.rs`).
pub(crate) fn error_chain() -> RequestFailed {
    RequestFailed(QueryFailed(IoLike))
}

// ----------------------------------------------------------- workloads ----

pub(crate) fn capture_message() -> Contender {
    contender(NAME, Opts::default(), |iters| {
        time_loop(iters, |_| sentry::capture_message("hello from the benchmark", Level::Info))
    })
}

pub(crate) fn capture_error(stacktrace: bool) -> Contender {
    let o = Opts { attach_stacktrace: stacktrace, ..Opts::default() };
    contender(NAME, o, |iters| {
        let err = error_chain();
        time_loop(iters, |_| sentry::capture_error(&err))
    })
}

pub(crate) fn set_tag() -> Contender {
    contender(NAME, Opts::default(), |iters| {
        time_loop(iters, |i| sentry::configure_scope(|s| s.set_tag("shard", i & 7)))
    })
}

pub(crate) fn add_breadcrumb() -> Contender {
    contender(NAME, Opts::default(), |iters| {
        time_loop(iters, |_| {
            sentry::add_breadcrumb(sentry::Breadcrumb {
                category: Some("http".into()),
                message: Some("GET /users/42".into()),
                level: Level::Info,
                ..Default::default()
            })
        })
    })
}

fn tx_ctx() -> TransactionContext {
    TransactionContext::new("GET /users/{id}", "http.server")
}

/// Root span start+finish (a transaction); `sampled` picks rate 1.0 / 0.0.
pub(crate) fn span_root(sampled: bool) -> Contender {
    let o = Opts { traces_sample_rate: if sampled { 1.0 } else { 0.0 }, ..Opts::default() };
    contender(NAME, o, |iters| time_loop(iters, |_| sentry::start_transaction(tx_ctx()).finish()))
}

/// Child span start+finish under a root recycled every 100 children.
pub(crate) fn span_child(sampled: bool) -> Contender {
    let o = Opts { traces_sample_rate: if sampled { 1.0 } else { 0.0 }, ..Opts::default() };
    contender(NAME, o, |iters| {
        time_chunked(
            iters,
            100,
            || sentry::start_transaction(tx_ctx()),
            |tx, _| tx.start_child("db.sql.query", "select 1").finish(),
            |tx| tx.finish(),
        )
    })
}

/// [`span_child`] with the client flushed (untimed) after every 1 000 children,
/// as the other contenders of `span/child_sampled_kept`.
pub(crate) fn span_child_kept() -> Contender {
    contender(NAME, Opts::default(), |iters| {
        time_chunked_settled(
            iters,
            100,
            10,
            || sentry::start_transaction(tx_ctx()),
            |tx, _| tx.start_child("db.sql.query", "select 1").finish(),
            |tx| tx.finish(),
            || {
                if let Some(client) = Hub::current().client() {
                    client.flush(None);
                }
            },
        )
    })
}

/// One iteration = root + `n` children (per-span cost: divide by n + 1).
pub(crate) fn trace_n(n: u64) -> Contender {
    contender(NAME, Opts::default(), move |iters| {
        time_loop(iters, |_| {
            let tx = sentry::start_transaction(tx_ctx());
            for _ in 0..n {
                tx.start_child("db.sql.query", "select 1").finish();
            }
            tx.finish();
        })
    })
}

// ------------------------------------------------------ tracing layer ----

fn tracing_contender(o: Opts, body: impl Fn(u64) -> std::time::Duration + 'static) -> Contender {
    // The recommended (non-deprecated) equivalent of the legacy default
    // `sentry_tracing::layer()` without structured logs: INFO+ spans become
    // transactions/spans, WARN/INFO events breadcrumbs, ERROR events events.
    use tracing_subscriber::filter::{filter_fn, LevelFilter};
    use tracing_subscriber::Layer as _;
    let subscriber = tracing_subscriber::registry()
        .with(sentry_tracing::SpanLayer::new().with_filter(LevelFilter::INFO))
        .with(
            sentry_tracing::BreadcrumbLayer::new()
                .with_filter(filter_fn(|m| matches!(*m.level(), tracing::Level::WARN | tracing::Level::INFO))),
        )
        .with(sentry_tracing::ErrorLayer::new().with_filter(LevelFilter::ERROR));
    let dispatch = tracing::Dispatch::new(subscriber);
    contender("sentry-tracing", o, move |iters| tracing::dispatcher::with_default(&dispatch, || body(iters)))
}

pub(crate) fn tracing_span() -> Contender {
    tracing_contender(Opts::default(), |iters| time_loop(iters, crate::baseline::one_span))
}

pub(crate) fn tracing_child_span() -> Contender {
    tracing_contender(Opts::default(), crate::baseline::child_spans)
}

pub(crate) fn tracing_event() -> Contender {
    tracing_contender(Opts::default(), |iters| time_loop(iters, crate::baseline::one_event))
}

pub(crate) fn tracing_event_in_span() -> Contender {
    tracing_contender(Opts::default(), crate::baseline::events_in_span)
}

// ------------------------------------------------------------- memory ----

/// Memory case: one transaction with `n` children; `checkpoint` is called
/// when every child has finished but the root has not.
pub(crate) fn memory_trace() -> crate::MemFn {
    let (hub, _t) = hub(Opts::default());
    Box::new(move |n, checkpoint| {
        Hub::run(hub.clone(), || {
            let tx = sentry::start_transaction(tx_ctx());
            for _ in 0..n {
                tx.start_child("db.sql.query", "select 1").finish();
            }
            checkpoint();
            tx.finish();
        })
    })
}

// ---------------------------------------------------------- wire size ----

/// Serialized envelope size (raw, gzip) of one transaction with `n` children.
pub(crate) fn wire_bytes(n: u64) -> (u64, u64) {
    let t = Arc::new(CapturingTransport::default());
    let client = sentry::Client::with_options(client_options(Opts::default(), Arc::new(t.clone())));
    let hub = Arc::new(Hub::new(Some(Arc::new(client)), Arc::new(Scope::default())));
    Hub::run(hub, || {
        let tx = sentry::start_transaction(tx_ctx());
        for _ in 0..n {
            tx.start_child("db.sql.query", "select 1").finish();
        }
        tx.finish();
    });
    let envs = std::mem::take(&mut *t.envelopes.lock().unwrap());
    let mut raw = Vec::new();
    for e in &envs {
        e.to_writer(&mut raw).expect("serialize envelope");
    }
    (raw.len() as u64, crate::gzip_len(&raw))
}

/// Serialized envelope size (raw, gzip) of one error event (3-level chain,
/// `attach_stacktrace` on).
pub(crate) fn wire_error_event() -> (u64, u64) {
    let t = Arc::new(CapturingTransport::default());
    let o = Opts { attach_stacktrace: true, ..Opts::default() };
    let client = sentry::Client::with_options(client_options(o, Arc::new(t.clone())));
    let hub = Arc::new(Hub::new(Some(Arc::new(client)), Arc::new(Scope::default())));
    Hub::run(hub, || {
        sentry::capture_error(&error_chain());
    });
    let envs = std::mem::take(&mut *t.envelopes.lock().unwrap());
    assert_eq!(envs.len(), 1, "one error envelope");
    let mut raw = Vec::new();
    for e in &envs {
        e.to_writer(&mut raw).expect("serialize envelope");
    }
    (raw.len() as u64, crate::gzip_len(&raw))
}

// --------------------------------------------------------------- axum ----

/// Wrap `base` in sentry-tower's `NewSentryLayer` + `SentryHttpLayer`
/// (transactions enabled) bound to a fresh client with the given sample rate.
pub(crate) fn axum_app(base: axum::Router, traces_sample_rate: f32) -> (axum::Router, Arc<NoopTransport>) {
    let (hub, t) = hub(Opts { traces_sample_rate, ..Opts::default() });
    let new_hub =
        sentry_tower::SentryLayer::<_, Arc<Hub>, axum::extract::Request>::new(move |_: &axum::extract::Request| {
            Arc::new(Hub::new_from_top(&hub))
        });
    let router = base.layer(sentry_tower::SentryHttpLayer::new().enable_transaction()).layer(new_hub);
    (router, t)
}

// -------------------------------------------------------------- loopback --

/// sentry with its own reqwest transport (the `sentry::init` default: one
/// request at a time, uncompressed, queue of 30) sending to a loopback
/// receiver. `attach_stacktrace` is on so the event matches ours.
pub(crate) struct LoopbackSdk {
    hub: Arc<Hub>,
    err: RequestFailed,
}

impl LoopbackSdk {
    pub(crate) fn new(receiver: &crate::loopback::Receiver) -> Self {
        // sentry's reqwest is built without a crypto provider of its own.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let opts = ClientOptions::new().dsn(receiver.dsn().as_str()).attach_stacktrace(true);
        // `apply_defaults` installs the default (reqwest) transport factory.
        let client = sentry::Client::with_options(sentry::apply_defaults(opts));
        assert!(client.is_enabled(), "sentry client must be enabled");
        let hub = Arc::new(Hub::new(Some(Arc::new(client)), Arc::new(Scope::default())));
        let sdk = LoopbackSdk { hub, err: error_chain() };
        // warm up: connection, symbol cache
        Hub::run(sdk.hub.clone(), || {
            (0..20).for_each(|_| {
                sentry::capture_error(&sdk.err);
            })
        });
        crate::loopback::Sdk::flush(&sdk);
        sdk
    }
}

impl crate::loopback::Sdk for LoopbackSdk {
    fn bound(&self, f: &mut dyn FnMut()) {
        Hub::run(self.hub.clone(), f)
    }

    fn capture(&self) {
        sentry::capture_error(&self.err);
    }

    fn flush(&self) {
        if let Some(client) = self.hub.client() {
            client.flush(Some(std::time::Duration::from_secs(30)));
        }
    }

    fn dropped(&self) -> (u64, u64) {
        // sentry keeps its client-report counts private: delivery is judged
        // by the receiver's count alone.
        (0, 0)
    }

    fn worker_thread(&self) -> &'static str {
        "sentry-transpor"
    }
}

impl Drop for LoopbackSdk {
    fn drop(&mut self) {
        if let Some(client) = self.hub.client() {
            client.close(Some(std::time::Duration::from_secs(2)));
        }
    }
}
