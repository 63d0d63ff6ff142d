//! The tracing layer end to end: events → breadcrumbs / events / logs, spans →
//! streamed spans, against an in-memory transport.

use std::error::Error;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use sentry_lite_core::protocol::ItemType;
use sentry_lite_core::{ClientOptions, InitGuard, TestTransport};
use sentry_lite_tracing::{EventFilter, SentryLayer};
use serde_json::Value;
use tracing::Instrument as _;
use tracing_subscriber::prelude::*;
use tracing_subscriber::Registry;

/// `init` binds the process main hub: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn setup(options: ClientOptions) -> (std::sync::MutexGuard<'static, ()>, TestTransport, InitGuard) {
    let lock = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let transport = TestTransport::new();
    let guard = sentry_lite_core::init(options.with_transport(transport.clone())).expect("init");
    (lock, transport, guard)
}

fn flush() {
    assert!(sentry_lite_core::flush(Duration::from_secs(5)), "flush timed out");
}

fn run<R>(layer: SentryLayer<Registry>, f: impl FnOnce() -> R) -> R {
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, f)
}

/// All spans sent so far (span v2 items).
fn spans(t: &TestTransport) -> Vec<Value> {
    t.items_of(&ItemType::Span).flat_map(|v| v["items"].as_array().cloned().unwrap_or_default()).collect()
}

fn span_named<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]["value"]
}

#[derive(Debug)]
struct ConfigError(std::io::Error);
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("config failed")
    }
}
impl Error for ConfigError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.0)
    }
}

fn config_error() -> ConfigError {
    ConfigError(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
}

#[test]
fn info_is_breadcrumb_and_error_is_event_with_chain() {
    let (_l, t, _g) = setup(ClientOptions::new());
    run(sentry_lite_tracing::layer(), || {
        tracing::info!(target: "billing", user = 42, ok = true, ratio = 0.5, name = "ann", "charging");
        tracing::debug!("ignored");
        let err = config_error();
        tracing::error!(target: "billing", error = &err as &(dyn Error + 'static), attempt = 3u64, "charge failed");
    });
    flush();
    let events = t.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert_eq!(event.logger.as_deref(), Some("billing"));
    assert_eq!(event.logentry.as_ref().unwrap().message, "charge failed");
    assert_eq!(event.extra["attempt"], 3);
    let values = &event.exception.as_ref().expect("exception").values;
    let texts: Vec<_> = values.iter().map(|e| e.value.clone().unwrap()).collect();
    assert_eq!(texts, ["no such file", "config failed"]);
    assert_eq!(values[1].ty, "ConfigError");
    let mechanism = values[1].mechanism.as_ref().unwrap();
    assert_eq!(mechanism.handled, Some(true));
    assert!(
        values[1].stacktrace.as_ref().is_some_and(|s| !s.frames.is_empty()),
        "stack trace on the outermost exception"
    );
    let crumbs: Vec<_> = event.breadcrumbs.as_ref().expect("breadcrumbs").values.iter().collect();
    assert_eq!(crumbs.len(), 1, "{crumbs:#?}");
    let crumb = crumbs[0];
    assert_eq!(crumb.message.as_deref(), Some("charging"));
    assert_eq!(crumb.category.as_deref(), Some("billing"));
    assert_eq!(crumb.level, Some(sentry_lite_core::Level::Info));
    assert_eq!(crumb.data["user"], 42);
    assert_eq!(crumb.data["ok"], true);
    assert_eq!(crumb.data["ratio"], 0.5);
    assert_eq!(crumb.data["name"], "ann");
}

#[test]
fn event_filter_chooses_actions() {
    let (_l, t, _g) = setup(ClientOptions::new());
    let layer = sentry_lite_tracing::layer().event_filter(|md| match *md.level() {
        tracing::Level::ERROR => EventFilter::Ignore,
        tracing::Level::DEBUG => EventFilter::Breadcrumb,
        tracing::Level::WARN => EventFilter::Event | EventFilter::Breadcrumb,
        _ => EventFilter::Ignore,
    });
    run(layer, || {
        tracing::error!("not sent");
        tracing::info!("not kept");
        tracing::debug!(step = 1, "debug crumb");
        tracing::warn!("warned");
    });
    flush();
    let events = t.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].logentry.as_ref().unwrap().message, "warned");
    assert_eq!(events[0].level, Some(sentry_lite_core::Level::Warning));
    let crumbs: Vec<_> =
        events[0].breadcrumbs.as_ref().unwrap().values.iter().map(|c| c.message.clone().unwrap()).collect();
    assert_eq!(crumbs, ["debug crumb"]);
    assert_eq!(format!("{:?}", EventFilter::Breadcrumb | EventFilter::Log), "Breadcrumb | Log");
}

#[test]
fn spans_have_names_ops_attributes_and_records() {
    let (_l, t, _g) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    run(sentry_lite_tracing::layer(), || {
        let outer = tracing::info_span!(
            "outer",
            sentry.op = "task",
            count = 3i64,
            big = u64::MAX,
            flag = true,
            ratio = 1.5,
            label = "x",
            status = tracing::field::Empty
        );
        let _e = outer.enter();
        {
            let inner = tracing::info_span!("inner", sentry.name = "GET /users", sentry.op = "http.client", debug = ?vec![1, 2]);
            let _i = inner.enter();
        }
        outer.record("status", "done");
        outer.record("count", 4i64);
    });
    flush();
    let spans = spans(&t);
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let outer = span_named(&spans, "outer");
    let inner = span_named(&spans, "GET /users");
    assert_eq!(*attr(outer, "sentry.op"), "task");
    assert_eq!(*attr(outer, "count"), 4);
    assert_eq!(outer["attributes"]["count"]["type"], "integer");
    assert_eq!(*attr(outer, "big"), u64::MAX.to_string());
    assert_eq!(*attr(outer, "flag"), true);
    assert_eq!(*attr(outer, "ratio"), 1.5);
    assert_eq!(*attr(outer, "label"), "x");
    assert_eq!(*attr(outer, "status"), "done");
    assert_eq!(*attr(outer, "sentry.origin"), "auto.tracing");
    assert_eq!(*attr(inner, "sentry.op"), "http.client");
    assert_eq!(*attr(inner, "debug"), "[1, 2]");
    assert_eq!(inner["parent_span_id"], outer["span_id"]);
    assert_eq!(inner["trace_id"], outer["trace_id"]);
    assert_eq!(outer["is_segment"], true);
    assert_eq!(outer["status"], "ok");
    let plain = tracing_subscriber::registry().with(sentry_lite_tracing::layer());
    tracing::subscriber::with_default(plain, || {
        let _s = tracing::info_span!("default_op").entered();
    });
    flush();
    let spans = self::spans(&t);
    assert_eq!(*attr(span_named(&spans, "default_op"), "sentry.op"), sentry_lite_tracing::DEFAULT_SPAN_OP);
}

#[tracing::instrument]
async fn child_work(n: u64) {
    tokio::task::yield_now().await;
    tracing::info!(n, "child step");
}

#[tracing::instrument(fields(sentry.op = "job"))]
async fn parent_work() {
    let mut handles = Vec::new();
    for n in 0..3 {
        handles.push(tokio::spawn(child_work(n).in_current_span()));
    }
    for h in handles {
        h.await.unwrap();
    }
}

#[test]
fn spawned_tasks_get_tracing_parents() {
    let (_l, t, _g) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    run(sentry_lite_tracing::layer(), || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            // Two concurrent roots: children must attach to their own parent.
            let a = tokio::spawn(parent_work().instrument(tracing::info_span!("root_a")));
            let b = tokio::spawn(parent_work().instrument(tracing::info_span!("root_b")));
            a.await.unwrap();
            b.await.unwrap();
        });
    });
    flush();
    let spans = spans(&t);
    assert_eq!(spans.len(), 2 + 2 + 6, "{spans:#?}");
    for root in ["root_a", "root_b"] {
        let root = span_named(&spans, root);
        let parent = spans
            .iter()
            .find(|s| s["name"] == "parent_work" && s["parent_span_id"] == root["span_id"])
            .expect("parent_work under root");
        assert_eq!(*attr(parent, "sentry.op"), "job");
        let children: Vec<_> = spans.iter().filter(|s| s["parent_span_id"] == parent["span_id"]).collect();
        assert_eq!(children.len(), 3);
        for c in children {
            assert_eq!(c["name"], "child_work");
            assert_eq!(c["trace_id"], root["trace_id"]);
        }
    }
    assert_ne!(span_named(&spans, "root_a")["trace_id"], span_named(&spans, "root_b")["trace_id"]);
}

#[test]
fn error_inside_span_marks_it_and_links_the_event() {
    let (_l, t, _g) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    run(sentry_lite_tracing::layer(), || {
        let _root = tracing::info_span!("request").entered();
        let _span = tracing::info_span!("db").entered();
        tracing::error!("query failed");
        // capture_error inside an entered tracing span links to it too.
        sentry_lite_core::capture_error(&config_error());
    });
    flush();
    let spans = spans(&t);
    let db = span_named(&spans, "db");
    assert_eq!(db["status"], "error");
    assert_eq!(span_named(&spans, "request")["status"], "ok");
    let events = t.events();
    assert_eq!(events.len(), 2);
    for event in &events {
        let trace = serde_json::to_value(&event.contexts["trace"]).unwrap();
        assert_eq!(trace["span_id"], db["span_id"], "{trace:#?}");
        assert_eq!(trace["trace_id"], db["trace_id"]);
    }
}

#[test]
fn logs_are_batched_with_trace_ids() {
    let (_l, t, _g) =
        setup(ClientOptions::new().with_traces_sample_rate(1.0).with_enable_logs(true).with_release("app@1"));
    let layer = sentry_lite_tracing::layer().event_filter(|_| EventFilter::Log);
    let flusher = layer.log_flusher();
    run(layer, || {
        let span = tracing::info_span!("batch").entered();
        for i in 0..250u64 {
            tracing::info!(i, "item processed");
        }
        drop(span);
        tracing::warn!("outside");
        sentry_lite_core::capture_message("linked", sentry_lite_core::Level::Info);
    });
    flusher.flush();
    flush();
    let mut logs = Vec::new();
    for env in t.envelopes() {
        for item in env.items.iter().filter(|i| *i.ty() == ItemType::Log) {
            let payload = item.payload_json().unwrap();
            let n = payload["items"].as_array().unwrap().len();
            assert!(n <= 100, "{n} logs in one item");
            assert_eq!(item.header("item_count").and_then(Value::as_u64), Some(n as u64));
            assert_eq!(
                item.header("content_type").and_then(Value::as_str),
                Some("application/vnd.sentry.items.log+json")
            );
            logs.extend(payload["items"].as_array().unwrap().clone());
        }
    }
    assert_eq!(logs.len(), 251);
    let spans = spans(&t);
    let batch = span_named(&spans, "batch");
    // Batches may reach the transport from the flusher thread and from `flush()`
    // in either order: find logs by content, not position.
    let first = logs
        .iter()
        .find(|l| l["attributes"]["sentry.message.parameter.i"]["value"] == 0)
        .expect("the first item's log");
    assert_eq!(first["body"], "item processed");
    assert_eq!(first["level"], "info");
    assert_eq!(first["trace_id"], batch["trace_id"]);
    assert_eq!(first["span_id"], batch["span_id"]);
    let a = &first["attributes"];
    assert_eq!(a["sentry.message.template"]["value"], "item processed");
    assert_eq!(a["sentry.message.parameter.i"]["value"], 0);
    assert!(a.get("sentry.message.parameter.0").is_none(), "fields are named parameters");
    assert_eq!(a["i"]["type"], "integer");
    assert_eq!(a["sentry.release"]["value"], "app@1");
    assert_eq!(a["sentry.sdk.name"]["value"], sentry_lite_core::SDK_NAME);
    assert!(a["sentry.environment"]["value"].is_string());
    let last = logs.iter().find(|l| l["body"] == "outside").expect("the log outside spans");
    assert_eq!(last["level"], "warn");
    assert!(last.get("span_id").is_none());
    // Outside spans, logs share the trace of the scope's propagation context.
    let event = &t.events()[0];
    let trace = serde_json::to_value(&event.contexts["trace"]).unwrap();
    assert_eq!(last["trace_id"], trace["trace_id"]);
}

#[test]
fn disabled_sdk_is_a_no_op() {
    let _l = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    run(sentry_lite_tracing::layer(), || {
        let span = tracing::info_span!("nothing", n = 1).entered();
        tracing::info!("crumb");
        tracing::error!(error = &config_error() as &(dyn Error + 'static), "no event");
        assert!(sentry_lite_core::current_span().is_none());
        drop(span);
    });
}

#[test]
fn logs_are_off_unless_enabled() {
    let (_l, t, _g) = setup(ClientOptions::new());
    let layer = sentry_lite_tracing::layer().event_filter(|_| EventFilter::Log);
    let flusher = layer.log_flusher();
    run(layer, || tracing::info!("nothing"));
    flusher.flush();
    flush();
    assert_eq!(t.items_of(&ItemType::Log).count(), 0);
}

#[test]
fn core_flush_drains_logs_and_drops_are_reported() {
    use sentry_lite_core::protocol::{DataCategory, DiscardReason};
    let (_l, t, guard) = setup(ClientOptions::new().with_enable_logs(true).with_server_name("web-1"));
    let layer = sentry_lite_tracing::layer().event_filter(|_| EventFilter::Log);
    let flusher = layer.log_flusher();
    let sent = 5000u64;
    let logs = run(layer, || {
        for i in 0..sent {
            tracing::info!(i, "burst");
        }
        // No `LogFlusher::flush`, and the layer is still alive: the layer's queue is
        // a flush hook of the client.
        flush();
        let mut logs = Vec::new();
        for env in t.envelopes() {
            for item in env.items.iter().filter(|i| *i.ty() == ItemType::Log) {
                logs.extend(item.payload_json().unwrap()["items"].as_array().unwrap().clone());
            }
        }
        logs
    });
    let dropped = flusher.dropped();
    let client = guard.client().unwrap();
    assert_eq!(client.discarded(DiscardReason::BufferOverflow, DataCategory::LogItem), dropped);
    assert_eq!(logs.len() as u64 + dropped, sent);
    assert!(!logs.is_empty());
    assert_eq!(logs[0]["attributes"]["server.address"]["value"], "web-1");
}
