//! The hook in-process: what it captures, what it leaves alone, and that it never
//! waits on the SDK's own worker.

use std::panic::catch_unwind;
use std::time::{Duration, Instant};

use sentry_lite_core::protocol::Level;
use sentry_lite_core::{self as sentry, ClientOptions, TestTransport};
use sentry_lite_panic::{install, with_hook_suppressed, PanicIntegration};

#[test]
fn panic_becomes_a_fatal_event_with_scope_data() {
    install();
    install(); // idempotent: one report per panic below
    let events = sentry::test::with_captured_events(|| {
        sentry::configure_scope(|s| s.set_tag("where", "hook-test"));
        sentry::add_breadcrumb("before the panic");
        let _ = catch_unwind(|| panic!("boom {}", 42));
        let _ = catch_unwind(|| std::panic::panic_any(7u32));
    });
    assert_eq!(events.len(), 2, "{events:#?}");
    let exc = &events[0].exception.as_ref().unwrap().values[0];
    assert_eq!(exc.ty, "panic");
    assert_eq!(exc.value.as_deref(), Some("boom 42"));
    let mechanism = exc.mechanism.as_ref().unwrap();
    assert_eq!((&*mechanism.ty, mechanism.handled), ("panic", Some(false)));
    assert_eq!(events[0].level, Some(Level::Fatal));
    assert_eq!(events[0].tags.get("where").map(String::as_str), Some("hook-test"));
    assert!(events[0]
        .breadcrumbs
        .as_ref()
        .unwrap()
        .values
        .iter()
        .any(|c| c.message.as_deref() == Some("before the panic")));
    let thread = &events[0].threads.as_ref().unwrap().values[0];
    assert_eq!((thread.crashed, thread.current), (Some(true), Some(true)));
    let top = exc.stacktrace.as_ref().unwrap().frames.last().unwrap();
    assert_eq!(top.filename.as_deref(), Some("hook.rs"), "{top:?}");
    assert_eq!(events[1].exception.as_ref().unwrap().values[0].value.as_deref(), Some("Box<dyn Any>"));
}

#[test]
fn suppressed_sections_are_left_to_the_caller() {
    install();
    let events = sentry::test::with_captured_events(|| {
        let r = with_hook_suppressed(|| catch_unwind(|| panic!("reported elsewhere")));
        assert!(r.is_err());
        // Suppression ends with the section, also after an unwind through it.
        let _ = catch_unwind(|| with_hook_suppressed(|| panic!("unwinds through the section")));
        assert!(!sentry_lite_panic::is_hook_suppressed());
    });
    assert!(events.is_empty(), "{events:#?}");
}

#[test]
fn a_caught_panic_is_captured_with_the_stack_the_hook_kept() {
    install();
    let events = sentry::test::with_captured_events(|| {
        let payload = catch_unwind(|| with_hook_suppressed(|| panic!("caught by the caller"))).unwrap_err();
        sentry_lite_panic::capture_caught_panic(&*payload);
        // A payload that is not this thread's last suppressed panic gets no stale stack.
        let _ = catch_unwind(|| with_hook_suppressed(|| panic!("first")));
        let other = catch_unwind(|| std::panic::resume_unwind(Box::new("second"))).unwrap_err();
        sentry_lite_panic::capture_caught_panic(&*other);
    });
    assert_eq!(events.len(), 2, "{events:#?}");
    let exc = &events[0].exception.as_ref().unwrap().values[0];
    assert_eq!(exc.value.as_deref(), Some("caught by the caller"));
    assert_eq!(events[0].level, Some(Level::Fatal));
    let top = exc.stacktrace.as_ref().expect("the kept stack").frames.last().unwrap();
    assert_eq!(top.filename.as_deref(), Some("hook.rs"), "{top:?}");
    let location = serde_json::to_value(&events[0].contexts["panic"]).unwrap();
    assert_eq!(top.lineno, location["line"].as_u64().map(|l| l as u32));
    let exc = &events[1].exception.as_ref().unwrap().values[0];
    assert_eq!(exc.value.as_deref(), Some("second"));
    assert!(exc.stacktrace.is_none() && !events[1].contexts.contains_key("panic"), "{:#?}", events[1]);
}

#[test]
fn panic_in_before_send_does_not_make_the_worker_wait_on_itself() {
    let transport = TestTransport::new();
    let options = ClientOptions::new()
        .with_transport(transport.clone())
        .with_shutdown_timeout(Duration::from_secs(3))
        .with_integration(PanicIntegration::new())
        .with_before_send(|event| {
            if event.level == Some(Level::Warning) {
                panic!("before_send exploded");
            }
            Some(event)
        });
    let guard = sentry::init(options).expect("init");
    let started = Instant::now();
    sentry::capture_message("trips before_send", Level::Warning);
    assert!(sentry::flush(Duration::from_secs(3)));
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the hook flushed from the worker: {:?}",
        started.elapsed()
    );
    // The worker survived and still sends.
    sentry::capture_message("still alive", Level::Info);
    assert!(sentry::flush(Duration::from_secs(3)));
    drop(guard);
    let events: Vec<_> = transport.take().iter().filter_map(|e| e.event()).collect();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].logentry.as_ref().map(|l| l.message.as_str()), Some("still alive"));
}

#[test]
fn panic_marks_the_active_span_and_its_segment_as_failed() {
    install();
    let options = ClientOptions::new().with_traces_sample_rate(1.0);
    let (trace_id, envelopes) = sentry::test::with_captured_envelopes(options, || {
        let root = sentry::start_root_span("job", "task");
        let entered_root = sentry::enter_span(&root);
        let child = sentry::start_span("step", "db");
        {
            let _entered = sentry::enter_span(&child);
            let _ = catch_unwind(|| panic!("inside a span"));
        }
        child.finish();
        drop(entered_root);
        root.finish();
        root.trace_id()
    });
    let items: Vec<_> = envelopes
        .iter()
        .flat_map(|e| e.items.iter())
        .filter_map(|i| i.payload_json().map(|j| (i.ty().clone(), j)))
        .collect();
    let event =
        items.iter().find(|(ty, _)| *ty == sentry_lite_core::protocol::ItemType::Event).map(|(_, j)| j).expect("event");
    assert_eq!(event["contexts"]["trace"]["trace_id"], trace_id.to_string(), "{event}");
    let spans: Vec<_> = items
        .iter()
        .filter(|(ty, _)| *ty == sentry_lite_core::protocol::ItemType::Span)
        .flat_map(|(_, j)| j["items"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(spans.len(), 2, "{items:#?}");
    for span in &spans {
        assert_ne!(span["status"], "ok", "{span}");
    }
}
