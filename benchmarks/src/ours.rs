//! The sentry-lite ("ours") side of every workload.
//!
//! Every contender gets its own [`Client`] (no-op transport, a dummy DSN, the
//! same sample settings as the peer) bound to its own [`Hub`] forked from the
//! main hub; the measured loop runs inside [`Hub::run`], so the free functions
//! (`sentry_lite_core::capture_message`, …) act on that hub exactly as they
//! would after `init`. The global `init` is never used, so contenders never
//! share a client.
//!
//! Rules so the comparison stays fair:
//! * a `BatchFn` runs the workload exactly `iters` times and returns only the
//!   time of the measured part (use `harness::time_loop` / `time_chunked`);
//!   one-time setup (client, transport, subscriber) happens outside the
//!   closure, per-batch setup (binding a hub, `dispatcher::with_default`)
//!   inside it but before the timer starts;
//! * sentry-lite hands every capture to its worker thread (symbolication,
//!   scopes, serialization happen there, concurrently with the timed loop on
//!   the other core). The transport is [`NoopTransport`] (drops on the worker).
//!   The queue is made big enough for one batch (`queue_capacity` 1 000 000)
//!   and the client is flushed after every batch *outside* the timed part, so
//!   no backlog carries over; drops (queue / span buffer overflow) are counted
//!   by the client and shown in the note;
//! * the tracing cases run the shared bodies from `baseline.rs` under
//!   `tracing::dispatcher::with_default(&dispatch, …)` with
//!   `tracing_subscriber::registry().with(sentry_lite_tracing::layer())`;
//! * the error cases capture `peer_sentry::error_chain()` (3-level source chain).

use std::any::Any;
use std::io::Write as _;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use sentry_lite_core::protocol::{DataCategory, DiscardReason};
use sentry_lite_core::{Breadcrumb, Client, ClientOptions, Dsn, Hub, Level, NoopTransport, TestTransport};
use tracing_subscriber::layer::SubscriberExt as _;

use crate::harness::{time_chunked, time_chunked_settled, time_loop, BatchFn, Contender};
use crate::loopback::{Receiver, Sdk};
use crate::peer_sentry::error_chain;
use crate::MemFn;

/// Same dummy DSN as the sentry peer (the transport never uses it).
const DSN: &str = "https://public@127.0.0.1:9/1";
const ROOT_NAME: &str = "GET /users/{id}";
const ROOT_OP: &str = "http.server";
// sentry's `start_child(op, description)` = ("db.sql.query", "select 1").
const CHILD_NAME: &str = "select 1";
const CHILD_OP: &str = "db.sql.query";
const FLUSH: Duration = Duration::from_secs(30);

/// Options of an "ours" contender (mirrors `peer_sentry::Opts`).
#[derive(Clone, Copy)]
pub(crate) struct Opts {
    pub(crate) traces_sample_rate: f64,
    pub(crate) attach_stacktrace: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Self { traces_sample_rate: 1.0, attach_stacktrace: false }
    }
}

fn options(o: Opts) -> ClientOptions {
    ClientOptions::new()
        .with_transport(NoopTransport)
        .with_attach_stacktrace(o.attach_stacktrace)
        .with_traces_sample_rate(o.traces_sample_rate)
        .with_queue_capacity(1_000_000)
}

fn dsn(s: &str) -> Dsn {
    s.parse().expect("valid DSN")
}

/// A client with `options` and a hub (forked from main) bound to it.
pub(crate) fn client_hub(options: ClientOptions) -> (Arc<Client>, Arc<Hub>) {
    let client = Arc::new(Client::new(options, Some(dsn(DSN))));
    assert!(client.is_enabled(), "sentry-lite client must be enabled");
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    (client, hub)
}

/// `(queue overflow, buffer overflow)` drops of `category` so far.
pub(crate) fn drops(client: &Client, category: DataCategory) -> (u64, u64) {
    (
        client.discarded(DiscardReason::QueueOverflow, category),
        client.discarded(DiscardReason::BufferOverflow, category),
    )
}

fn note(client: Arc<Client>) -> Box<dyn Fn() -> String> {
    Box::new(move || {
        let (qe, be) = drops(&client, DataCategory::Error);
        let (qs, bs) = drops(&client, DataCategory::Span);
        let mut parts = Vec::new();
        if qe + be > 0 {
            parts.push(format!("errors dropped: queue={qe} buffer={be}"));
        }
        if qs + bs > 0 {
            parts.push(format!("spans dropped: queue={qs} buffer={bs}"));
        }
        if parts.is_empty() {
            "drops=0".to_owned()
        } else {
            parts.join(", ")
        }
    })
}

/// An "ours" contender: `body` runs in `Hub::run(hub)`; the client is flushed
/// after each batch, untimed.
fn contender(o: Opts, body: impl FnMut(u64) -> Duration + 'static) -> Contender {
    contender_with(options(o), body)
}

fn contender_with(options: ClientOptions, mut body: impl FnMut(u64) -> Duration + 'static) -> Contender {
    let (client, hub) = client_hub(options);
    let c = client.clone();
    let run: BatchFn = Box::new(move |iters| {
        let t = Hub::run(hub.clone(), || body(iters));
        c.flush(FLUSH);
        t
    });
    Contender::new(crate::harness::OURS, run).with_note(note(client))
}

// ---------------------------------------------------------------- events --

/// `capture_message("hello from the benchmark", Info)` per iteration.
pub(crate) fn capture_message() -> Contender {
    contender(Opts::default(), |iters| {
        time_loop(iters, |_| sentry_lite_core::capture_message("hello from the benchmark", Level::Info))
    })
}

/// `capture_error(&peer_sentry::error_chain())` per iteration; `stacktrace`
/// = the `attach_stacktrace` option.
pub(crate) fn capture_error(stacktrace: bool) -> Contender {
    contender(Opts { attach_stacktrace: stacktrace, ..Opts::default() }, |iters| {
        let err = error_chain();
        time_loop(iters, |_| sentry_lite_core::capture_error(&err))
    })
}

/// `configure_scope(|s| s.set_tag("shard", i & 7))` per iteration.
pub(crate) fn set_tag() -> Contender {
    contender(Opts::default(), |iters| {
        time_loop(iters, |i| sentry_lite_core::configure_scope(|s| s.set_tag("shard", i & 7)))
    })
}

/// `add_breadcrumb(category "http", message "GET /users/42", Info)` per iteration.
pub(crate) fn add_breadcrumb() -> Contender {
    contender(Opts::default(), |iters| {
        time_loop(iters, |_| {
            sentry_lite_core::add_breadcrumb(
                Breadcrumb::new("GET /users/42").with_category("http").with_level(Level::Info),
            )
        })
    })
}

// ----------------------------------------------------------------- spans --

fn rate(sampled: bool) -> Opts {
    Opts { traces_sample_rate: if sampled { 1.0 } else { 0.0 }, ..Opts::default() }
}

/// Root span (segment) start + finish per iteration; `sampled` selects
/// traces_sample_rate 1.0 or 0.0.
pub(crate) fn span_root(sampled: bool) -> Contender {
    contender(rate(sampled), |iters| {
        time_loop(iters, |_| sentry_lite_core::start_root_span(ROOT_NAME, ROOT_OP).finish())
    })
}

/// Child span start + finish per iteration, under a root recycled (untimed)
/// every 100 children.
pub(crate) fn span_child(sampled: bool) -> Contender {
    contender(rate(sampled), |iters| {
        time_chunked(
            iters,
            100,
            || sentry_lite_core::start_root_span(ROOT_NAME, ROOT_OP),
            |root, _| root.start_child(CHILD_NAME, CHILD_OP).finish(),
            |root| root.finish(),
        )
    })
}

/// [`span_child`] with the client flushed (untimed) after every 1 000
/// children: the cost of a child that is kept, with the worker keeping up.
pub(crate) fn span_child_kept() -> Contender {
    let (client, hub) = client_hub(options(rate(true)));
    let c = client.clone();
    let run: BatchFn = Box::new(move |iters| {
        let t = Hub::run(hub.clone(), || {
            time_chunked_settled(
                iters,
                100,
                10,
                || sentry_lite_core::start_root_span(ROOT_NAME, ROOT_OP),
                |root, _| root.start_child(CHILD_NAME, CHILD_OP).finish(),
                |root| root.finish(),
                || {
                    c.flush(FLUSH);
                },
            )
        });
        c.flush(FLUSH);
        t
    });
    Contender::new(crate::harness::OURS, run).with_note(note(client))
}

/// One iteration = start root, `n` children start + finish, finish root.
pub(crate) fn trace_n(n: u64) -> Contender {
    contender(Opts::default(), move |iters| {
        time_loop(iters, |_| {
            let root = sentry_lite_core::start_root_span(ROOT_NAME, ROOT_OP);
            for _ in 0..n {
                root.start_child(CHILD_NAME, CHILD_OP).finish();
            }
            root.finish();
        })
    })
}

// ------------------------------------------------------ tracing layer ----

fn tracing_contender(body: impl Fn(u64) -> Duration + 'static) -> Contender {
    let subscriber = tracing_subscriber::registry().with(sentry_lite_tracing::layer());
    let dispatch = tracing::Dispatch::new(subscriber);
    contender(Opts::default(), move |iters| tracing::dispatcher::with_default(&dispatch, || body(iters)))
}

/// `baseline::one_span` per iteration under registry + sentry-lite-tracing.
pub(crate) fn tracing_span() -> Contender {
    tracing_contender(|iters| time_loop(iters, crate::baseline::one_span))
}

/// `baseline::child_spans(iters)` under registry + sentry-lite-tracing.
pub(crate) fn tracing_child_span() -> Contender {
    tracing_contender(crate::baseline::child_spans)
}

/// `baseline::one_event` per iteration (→ breadcrumb) under registry + sentry-lite-tracing.
pub(crate) fn tracing_event() -> Contender {
    tracing_contender(|iters| time_loop(iters, crate::baseline::one_event))
}

/// `baseline::events_in_span(iters)` under registry + sentry-lite-tracing.
pub(crate) fn tracing_event_in_span() -> Contender {
    tracing_contender(crate::baseline::events_in_span)
}

// ------------------------------------------------------------------ axum --

/// Tower layer making `hub` the current hub while the inner service's `call`
/// runs (what `init` + the main hub would give, without touching globals).
#[derive(Clone)]
struct BindHubLayer(Arc<Hub>);

impl<S> tower::Layer<S> for BindHubLayer {
    type Service = BindHub<S>;
    fn layer(&self, inner: S) -> BindHub<S> {
        BindHub { inner, hub: self.0.clone() }
    }
}

#[derive(Clone)]
struct BindHub<S> {
    inner: S,
    hub: Arc<Hub>,
}

impl<S: tower::Service<R>, R> tower::Service<R> for BindHub<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> S::Future {
        let inner = &mut self.inner;
        Hub::run(self.hub.clone(), || inner.call(req))
    }
}

/// Wrap `base` in sentry-lite-axum's `SentryLayer` (per-request hub, trace
/// continuation, `http.server` segment span) with `traces_sample_rate`. The
/// guard keeps the client alive and reports its drops when dropped.
pub(crate) fn axum_app(base: axum::Router, traces_sample_rate: f32) -> (axum::Router, Box<dyn Any + Send>) {
    let (client, hub) =
        client_hub(options(Opts { traces_sample_rate: f64::from(traces_sample_rate), ..Opts::default() }));
    let router = base.layer(sentry_lite_axum::SentryLayer::new()).layer(BindHubLayer(hub));
    (router, Box::new(AxumGuard(client)))
}

struct AxumGuard(Arc<Client>);

impl AxumGuard {
    fn report(&self) -> String {
        self.0.flush(FLUSH);
        let (q, b) = drops(&self.0, DataCategory::Span);
        format!("ours spans dropped: queue={q} buffer={b}")
    }
}

impl Drop for AxumGuard {
    fn drop(&mut self) {
        println!("   ({})", self.report());
    }
}

// ---------------------------------------------------------------- memory --

/// Memory case: one root, `n` children started and finished, `checkpoint()`,
/// root finished, then a flush (so the next repetition starts empty).
pub(crate) fn memory_trace() -> MemFn {
    let (client, hub) = client_hub(options(Opts::default()));
    Box::new(move |n, checkpoint| {
        Hub::run(hub.clone(), || {
            let root = sentry_lite_core::start_root_span(ROOT_NAME, ROOT_OP);
            for _ in 0..n {
                root.start_child(CHILD_NAME, CHILD_OP).finish();
            }
            checkpoint();
            root.finish();
        });
        client.flush(FLUSH);
        // A tight loop outruns the worker: the bound (`max_buffered_spans`, buffered +
        // in flight) then drops and counts instead of growing. Report, don't hide it.
        let (q, b) = drops(&client, DataCategory::Span);
        if q + b > 0 {
            println!("   (ours: {} of {n} spans dropped at the memory bound so far: queue={q} buffer={b})", q + b);
        }
    })
}

// ------------------------------------------------------------------ wire --

/// Envelopes captured by a `TestTransport` while `f` runs in a fresh hub.
fn capture_envelopes(o: Opts, f: impl FnOnce()) -> Vec<sentry_lite_core::protocol::Envelope> {
    let transport = TestTransport::new();
    let opts = ClientOptions::new()
        .with_transport(transport.clone())
        .with_attach_stacktrace(o.attach_stacktrace)
        .with_traces_sample_rate(o.traces_sample_rate)
        .with_send_client_reports(false);
    let (client, hub) = client_hub(opts);
    Hub::run(hub, f);
    client.flush(FLUSH);
    client.close(FLUSH);
    transport.take()
}

fn sizes(envs: &[sentry_lite_core::protocol::Envelope]) -> (u64, u64) {
    let mut raw = Vec::new();
    for e in envs {
        raw.extend_from_slice(&e.to_vec());
    }
    (raw.len() as u64, crate::gzip_len(&raw))
}

/// Wire size of one trace with `n` children as sent (span v2 envelopes):
/// `(raw_bytes, gzip_bytes)`.
pub(crate) fn wire_bytes(n: u64) -> (u64, u64) {
    let envs = capture_envelopes(Opts::default(), || {
        let root = sentry_lite_core::start_root_span(ROOT_NAME, ROOT_OP);
        for _ in 0..n {
            root.start_child(CHILD_NAME, CHILD_OP).finish();
        }
        root.finish();
    });
    sizes(&envs)
}

/// Wire size of one error event (3-level chain, stack trace attached):
/// `(raw_bytes, gzip_bytes)`.
pub(crate) fn wire_error_event() -> (u64, u64) {
    let envs = capture_envelopes(Opts { attach_stacktrace: true, ..Opts::default() }, || {
        sentry_lite_core::capture_error(&error_chain());
    });
    assert_eq!(envs.len(), 1, "one error envelope");
    sizes(&envs)
}

// -------------------------------------------------------------- loopback --

/// Our gzipped error envelope (3-level chain, stack trace) as the transport
/// sends it (fast level), for the bare-reqwest floor.
pub(crate) fn error_envelope_gzip() -> Vec<u8> {
    let envs = capture_envelopes(Opts { attach_stacktrace: true, ..Opts::default() }, || {
        sentry_lite_core::capture_error(&error_chain());
    });
    let raw = envs.first().expect("one error envelope").to_vec();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&raw).expect("gzip");
    enc.finish().expect("gzip")
}

/// Our client sending to a loopback receiver over the real HTTP transport,
/// with default options (`attach_stacktrace` on, queue of 1 000): what a user gets.
pub(crate) struct LoopbackSdk {
    client: Arc<Client>,
    hub: Arc<Hub>,
    err: crate::peer_sentry::RequestFailed,
}

impl LoopbackSdk {
    pub(crate) fn new(receiver: &Receiver) -> Self {
        let client = Arc::new(Client::new(ClientOptions::new(), Some(dsn(&receiver.dsn()))));
        assert!(client.is_enabled());
        let hub = Arc::new(Hub::new_from_top(&Hub::main()));
        hub.bind_client(Some(client.clone()));
        let sdk = LoopbackSdk { client, hub, err: error_chain() };
        // warm up: connections, symbol cache
        sdk.bound(&mut || (0..200).for_each(|_| sdk.capture()));
        sdk.flush();
        sdk
    }
}

impl Sdk for LoopbackSdk {
    fn bound(&self, f: &mut dyn FnMut()) {
        Hub::run(self.hub.clone(), f)
    }

    fn capture(&self) {
        sentry_lite_core::capture_error(&self.err);
    }

    fn flush(&self) {
        self.client.flush(FLUSH);
    }

    fn dropped(&self) -> (u64, u64) {
        let c = &self.client;
        (
            c.discarded(DiscardReason::QueueOverflow, DataCategory::Error),
            c.discarded(DiscardReason::NetworkError, DataCategory::Error)
                + c.discarded(DiscardReason::SendError, DataCategory::Error),
        )
    }

    fn worker_thread(&self) -> &'static str {
        // `sentry-lite-worker`, as the kernel truncates it.
        "sentry-lite-wor"
    }
}

impl Drop for LoopbackSdk {
    fn drop(&mut self) {
        self.client.close(Duration::from_secs(2));
    }
}

// -------------------------------------------------------- span sustained --

/// Result of the sustained span-rate case.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sustained {
    pub(crate) spans: u64,
    pub(crate) elapsed: Duration,
    pub(crate) dropped_queue: u64,
    pub(crate) dropped_buffer: u64,
    /// Slots in which the producer could not keep up with the target rate.
    pub(crate) late_slots: u64,
}

/// One producer thread emits `rate` spans/s for `duration` (paced in 10 ms
/// slots) with default options (traces_sample_rate 1.0, NoopTransport), as
/// traces of one root + `children` children; then flushes and reports drops.
pub(crate) fn span_sustained(rate: u64, duration: Duration, children: u64) -> Sustained {
    let opts = ClientOptions::new().with_transport(NoopTransport).with_traces_sample_rate(1.0);
    let (client, hub) = client_hub(opts);
    let slot = Duration::from_millis(10);
    let per_slot = rate / 100;
    let per_trace = children + 1;
    let mut spans = 0u64;
    let mut late = 0u64;
    let t0 = Instant::now();
    Hub::run(hub, || {
        let mut next = t0;
        let mut root = sentry_lite_core::start_root_span(ROOT_NAME, ROOT_OP);
        let mut in_trace = 1u64; // the root counts when it finishes
        while next.duration_since(t0) < duration {
            for _ in 0..per_slot {
                if in_trace == per_trace {
                    root.finish();
                    root = sentry_lite_core::start_root_span(ROOT_NAME, ROOT_OP);
                    in_trace = 1;
                } else {
                    root.start_child(CHILD_NAME, CHILD_OP).finish();
                    in_trace += 1;
                }
                spans += 1;
            }
            next += slot;
            let now = Instant::now();
            if now > next {
                late += 1;
            } else {
                std::thread::sleep(next - now);
            }
        }
        root.finish();
    });
    let elapsed = t0.elapsed();
    client.flush(FLUSH);
    let (q, b) = drops(&client, DataCategory::Span);
    client.close(Duration::from_secs(2));
    Sustained { spans, elapsed, dropped_queue: q, dropped_buffer: b, late_slots: late }
}
