//! Entering a tracing span makes it the SDK's current span (the layer pushes it on
//! the core's entered stack under its own key): the innermost entered span wins
//! across any mix of tracing spans and core spans, and captures link to it.

use std::error::Error;
use std::sync::Mutex;
use std::time::Duration;

use sentry_lite_core::protocol::ItemType;
use sentry_lite_core::{current_span, ClientOptions, InitGuard, SpanId, TestTransport};
use serde_json::Value;
use tracing_subscriber::prelude::*;

/// `init` binds the process main hub: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn setup() -> (std::sync::MutexGuard<'static, ()>, TestTransport, InitGuard) {
    let lock = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let transport = TestTransport::new();
    let options = ClientOptions::new().with_traces_sample_rate(1.0).with_transport(transport.clone());
    let guard = sentry_lite_core::init(options).expect("init");
    (lock, transport, guard)
}

fn flush() {
    assert!(sentry_lite_core::flush(Duration::from_secs(5)), "flush timed out");
}

fn spans(t: &TestTransport) -> Vec<Value> {
    t.items_of(&ItemType::Span).flat_map(|v| v["items"].as_array().cloned().unwrap_or_default()).collect()
}

fn span_named<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
}

fn current_id() -> Option<String> {
    current_span().map(|s| s.span_id().to_string())
}

fn id(s: SpanId) -> Option<String> {
    Some(s.to_string())
}

#[derive(Debug)]
struct Failed;
impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failed")
    }
}
impl Error for Failed {}

/// tracing A ⊃ core B ⊃ tracing C ⊃ core D, unwound in order: at each level the
/// innermost is current; captures and core children link to it.
#[test]
fn innermost_of_nested_tracing_and_core_spans_is_current() {
    let (_l, t, _g) = setup();
    let subscriber = tracing_subscriber::registry().with(sentry_lite_tracing::layer());
    let mut seen = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        assert_eq!(current_id(), None);
        let a = tracing::info_span!("a").entered();
        let a_id = current_id().expect("a is current");
        let b = sentry_lite_core::start_span("b", "task");
        assert_eq!(b.parent_span_id().map(|p| p.to_string()), Some(a_id.clone()), "core child of a tracing span");
        {
            let _b = sentry_lite_core::enter_span(&b);
            assert_eq!(current_id(), id(b.span_id()));
            {
                let _c = tracing::info_span!("c").entered();
                let c_id = current_id().expect("c is current");
                assert_ne!(Some(c_id.clone()), id(b.span_id()));
                seen.push(("c", c_id.clone()));
                // A capture inside a tracing span links to it.
                sentry_lite_core::capture_error(&Failed);
                {
                    let d = sentry_lite_core::start_span("d", "task");
                    assert_eq!(d.parent_span_id().map(|p| p.to_string()), Some(c_id.clone()));
                    let _d = sentry_lite_core::enter_span(&d);
                    assert_eq!(current_id(), id(d.span_id()));
                    // An error event (captured inside the layer's callback) links
                    // to the innermost span, the core span d; it marks the
                    // tracing span it is in (c).
                    tracing::error!("inside d");
                    seen.push(("d", d.span_id().to_string()));
                }
                assert_eq!(current_id(), Some(c_id));
            }
            assert_eq!(current_id(), id(b.span_id()));
        }
        b.finish();
        assert_eq!(current_id(), Some(a_id.clone()));
        seen.push(("a", a_id));
        drop(a);
        assert_eq!(current_id(), None);
    });
    flush();
    let spans = spans(&t);
    for (name, span_id) in &seen {
        assert_eq!(span_named(&spans, name)["span_id"], *span_id.as_str(), "{name}");
    }
    let c = span_named(&spans, "c");
    assert_eq!(c["parent_span_id"], span_named(&spans, "a")["span_id"], "tracing parents come from tracing's tree");
    assert_eq!(c["status"], "error");
    assert_eq!(span_named(&spans, "a")["status"], "ok");
    let events = t.events();
    assert_eq!(events.len(), 2, "{events:#?}");
    let linked: Vec<_> = events
        .iter()
        .map(|e| serde_json::to_value(&e.contexts["trace"]).unwrap()["span_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(linked.contains(&seen[0].1), "capture_error links to c: {linked:?}");
    assert!(linked.contains(&seen[1].1), "error! links to d: {linked:?}");
}

/// A core span entered first, then a tracing span: the tracing span is its child
/// and current; exits out of order leave the right span current.
#[test]
fn core_span_below_tracing_span_and_out_of_order_exits() {
    let (_l, t, _g) = setup();
    let subscriber = tracing_subscriber::registry().with(sentry_lite_tracing::layer());
    tracing::subscriber::with_default(subscriber, || {
        let root = sentry_lite_core::start_span("root", "task");
        let entered_root = sentry_lite_core::enter_span(&root);
        let x = tracing::info_span!("x");
        let y = tracing::info_span!("y");
        let gx = x.enter();
        let x_id = current_id().unwrap();
        let gy = y.enter();
        let y_id = current_id().unwrap();
        assert_ne!(x_id, y_id);
        drop(gx); // x leaves first: y stays current
        assert_eq!(current_id(), Some(y_id));
        drop(gy);
        assert_eq!(current_id(), id(root.span_id()));
        drop(entered_root);
        root.finish();
    });
    flush();
    let spans = spans(&t);
    let root = span_named(&spans, "root");
    assert_eq!(span_named(&spans, "x")["parent_span_id"], root["span_id"]);
    assert_eq!(span_named(&spans, "y")["parent_span_id"], root["span_id"], "created before x was entered");
}

/// A tracing span without a Sentry span (filtered out) is skipped: the span below
/// it on the entered stack (here a core span) stays current.
#[test]
fn filtered_tracing_span_is_transparent() {
    let (_l, t, _g) = setup();
    let layer = sentry_lite_tracing::layer().span_filter(|md| md.name() != "hidden");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let _a = tracing::info_span!("a").entered();
        let b = sentry_lite_core::start_span("b", "task");
        let _b = sentry_lite_core::enter_span(&b);
        let _hidden = tracing::info_span!("hidden").entered();
        assert_eq!(current_id(), id(b.span_id()));
        let _inner = tracing::info_span!("inner").entered();
        let inner_id = current_id().unwrap();
        assert_ne!(Some(inner_id), id(b.span_id()));
    });
    flush();
    let spans = spans(&t);
    assert!(spans.iter().all(|s| s["name"] != "hidden"));
    // Tracing parents skip the filtered span.
    assert_eq!(span_named(&spans, "inner")["parent_span_id"], span_named(&spans, "a")["span_id"]);
}

/// Span ids are per subscriber: under another subscriber (same type, its own
/// layer), the outer subscriber's entered span still resolves in its own registry.
#[test]
fn entered_spans_resolve_in_their_own_subscriber() {
    let (_l, t, _g) = setup();
    let outer = tracing_subscriber::registry().with(sentry_lite_tracing::layer());
    tracing::subscriber::with_default(outer, || {
        let _o = tracing::info_span!("outer").entered();
        let outer_id = current_id().unwrap();
        let inner = tracing_subscriber::registry().with(sentry_lite_tracing::layer());
        tracing::subscriber::with_default(inner, || {
            assert_eq!(current_id(), Some(outer_id.clone()));
            let _i = tracing::info_span!("inner_sub").entered();
            let inner_id = current_id().unwrap();
            assert_ne!(inner_id, outer_id);
        });
        assert_eq!(current_id(), Some(outer_id));
        // A subscriber without the layer leaves the current span alone.
        tracing::subscriber::with_default(tracing_subscriber::registry(), || {
            let _n = tracing::info_span!("plain").entered();
            assert!(current_id().is_some());
        });
    });
    assert_eq!(current_id(), None);
    flush();
    assert_eq!(spans(&t).len(), 2);
}

/// Entering and leaving a span many times (an instrumented future polled often)
/// leaves nothing behind on the entered stack.
#[test]
fn repeated_enter_exit_is_balanced() {
    let (_l, _t, _g) = setup();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(sentry_lite_tracing::layer()), || {
        let span = tracing::info_span!("polled");
        let first = {
            let _e = span.enter();
            current_id()
        };
        for _ in 0..10_000 {
            let _e = span.enter();
            assert_eq!(current_id(), first);
        }
        assert_eq!(current_id(), None);
    });
}

/// Core spans started one after another under a tracing span all get it as parent
/// (the resolution is reused); once it exits, the next tracing span (which may
/// reuse its registry slot) is resolved afresh.
#[test]
fn repeated_core_spans_under_tracing_spans_get_the_right_parent() {
    let (_l, t, _g) = setup();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(sentry_lite_tracing::layer()), || {
        for round in 0..3 {
            let outer = tracing::info_span!("outer", round).entered();
            let outer_id = current_id().unwrap();
            for _ in 0..3 {
                let s = sentry_lite_core::start_span("core", "task");
                assert_eq!(s.parent_span_id().map(|p| p.to_string()), Some(outer_id.clone()));
                s.finish();
            }
            {
                let _inner = tracing::info_span!("inner").entered();
                let inner_id = current_id().unwrap();
                assert_ne!(inner_id, outer_id);
                let s = sentry_lite_core::start_span("core", "task");
                assert_eq!(s.parent_span_id().map(|p| p.to_string()), Some(inner_id));
                s.finish();
            }
            assert_eq!(current_id(), Some(outer_id));
            drop(outer);
            assert_eq!(current_id(), None);
        }
    });
    flush();
    assert_eq!(spans(&t).len(), 3 * (1 + 3 + 2));
}

/// Another layer that formats recorded values while holding the span's
/// extensions write lock (as `fmt` does), with a value whose `Debug` panics.
struct FormatsUnderWriteLock;

impl<S> tracing_subscriber::Layer<S> for FormatsUnderWriteLock
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Format;
        impl tracing::field::Visit for Format {
            fn record_debug(&mut self, _: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                let _ = format!("{value:?}");
            }
        }
        let span = ctx.span(id).expect("span");
        let _held = span.extensions_mut();
        values.record(&mut Format);
    }
}

struct PanicsInDebug;
impl std::fmt::Debug for PanicsInDebug {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("Debug failed")
    }
}

/// A panic hook asking for the current span while this thread holds the entered
/// span's extensions write lock must not deadlock (the entry is skipped).
#[test]
fn panic_hook_under_a_held_extensions_lock_does_not_block() {
    let (_l, _t, _g) = setup();
    let (done, finished) = std::sync::mpsc::channel();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {
        let _ = current_span();
    }));
    std::thread::spawn(move || {
        let subscriber = tracing_subscriber::registry().with(FormatsUnderWriteLock).with(sentry_lite_tracing::layer());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("held", value = tracing::field::Empty);
            let caught = {
                let _e = span.enter();
                // The other layer sees the record first and panics under its lock.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    span.record("value", tracing::field::debug(PanicsInDebug));
                }))
            };
            // Its lock is poisoned now: closing would panic in any layer.
            std::mem::forget(span);
            let _ = done.send(caught.is_err());
        });
    });
    let outcome = finished.recv_timeout(Duration::from_secs(20));
    // A blocked hook holds the hook lock: only restore it when it returned.
    if outcome.is_ok() {
        std::panic::set_hook(previous);
    }
    assert_eq!(outcome, Ok(true), "the panic hook blocked");
}

/// A panic hook (the panic integration's capture) running inside an entered
/// tracing span sees that span as current.
#[test]
fn a_panic_inside_a_tracing_span_sees_that_span() {
    let (_l, _t, _g) = setup();
    let seen: &'static Mutex<Vec<Option<String>>> = Box::leak(Box::new(Mutex::new(Vec::new())));
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |_| seen.lock().unwrap().push(current_id())));
    let subscriber = tracing_subscriber::registry().with(sentry_lite_tracing::layer());
    let expected = tracing::subscriber::with_default(subscriber, || {
        let outer = tracing::info_span!("outer");
        let _o = outer.enter();
        let inner = tracing::info_span!("inner");
        let _i = inner.enter();
        let _ = std::panic::catch_unwind(|| panic!("inside inner"));
        // Asked only after the hook ran.
        current_id()
    });
    std::panic::set_hook(previous);
    assert!(expected.is_some());
    assert_eq!(*seen.lock().unwrap(), vec![expected]);
}
