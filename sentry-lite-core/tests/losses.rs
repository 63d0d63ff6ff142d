//! Every loss is counted: processors that drop, user callbacks that panic on the
//! worker. A panic loses only the item being processed, is counted as
//! `internal_sdk_error`, and the worker keeps going.

mod common;

use common::{flush, test_hub};
use sentry_lite_core::protocol::{DataCategory, DiscardReason, ItemType};
use sentry_lite_core::{self as sentry, ClientOptions, Hub, Level};

#[test]
fn processors_run_in_order_and_a_dropping_one_is_counted() {
    let (hub, transport, client) = test_hub(ClientOptions::new().with_attach_stacktrace(false));
    Hub::run(hub, || {
        sentry::configure_scope(|scope| {
            scope.add_event_processor(|mut event| {
                event.tags.insert("first".into(), "ran".into());
                Some(event)
            });
            scope.add_event_processor(|event| {
                let dropped = event.tags.contains_key("drop");
                assert_eq!(event.tags.get("first").map(String::as_str), Some("ran"), "runs after the first");
                (!dropped).then_some(event)
            });
        });
        sentry::capture_message("kept", Level::Info);
        sentry::with_scope(|scope| scope.set_tag("drop", "yes"), || sentry::capture_message("dropped", Level::Info));
    });
    flush(&client);
    let events = transport.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].tags.get("first").map(String::as_str), Some("ran"));
    assert_eq!(client.discarded(DiscardReason::EventProcessor, DataCategory::Error), 1);
    assert_eq!(client.discarded(DiscardReason::InternalSdkError, DataCategory::Error), 0);
}

#[test]
fn a_panicking_event_processor_loses_that_event_only_and_is_counted() {
    let (hub, transport, client) = test_hub(ClientOptions::new().with_attach_stacktrace(false));
    Hub::run(hub, || {
        sentry::with_scope(
            |scope| scope.add_event_processor(|_| panic!("processor panics")),
            || sentry::capture_message("lost", Level::Error),
        );
        sentry::with_scope(
            |scope| scope.add_event_processor(|_| panic!("processor panics again")),
            || sentry::capture_message("lost too", Level::Error),
        );
        sentry::capture_message("after", Level::Error);
    });
    flush(&client);
    let events = transport.events();
    assert_eq!(events.len(), 1, "the worker survived both panics");
    assert_eq!(events[0].logentry.as_ref().map(|l| l.message.as_str()), Some("after"));
    assert_eq!(client.discarded(DiscardReason::InternalSdkError, DataCategory::Error), 2);
}

#[test]
fn a_panicking_before_send_is_counted_per_event() {
    let options = ClientOptions::new().with_attach_stacktrace(false).with_before_send(|event| {
        if event.logentry.as_ref().is_some_and(|l| l.message == "boom") {
            panic!("before_send panics");
        }
        Some(event)
    });
    let (hub, transport, client) = test_hub(options);
    Hub::run(hub, || {
        for _ in 0..3 {
            sentry::capture_message("boom", Level::Error);
        }
        sentry::capture_message("fine", Level::Error);
    });
    flush(&client);
    assert_eq!(transport.events().len(), 1);
    assert_eq!(client.discarded(DiscardReason::InternalSdkError, DataCategory::Error), 3);
    assert_eq!(client.discarded(DiscardReason::BeforeSend, DataCategory::Error), 0);
}

#[test]
fn a_panicking_before_send_span_loses_its_trace_only_and_counts_its_spans() {
    let options = ClientOptions::new().with_traces_sample_rate(1.0).with_before_send_span(|span| {
        if span.name == "poison" {
            panic!("before_send_span panics");
        }
    });
    let (hub, transport, client) = test_hub(options);
    Hub::run(hub, || {
        let root = sentry::start_root_span("poisoned trace", "task");
        root.start_child("poison", "db").finish();
        root.start_child("fine child", "db").finish();
        root.finish();
        sentry::start_root_span("healthy trace", "task").finish();
    });
    flush(&client);
    let names: Vec<String> = transport
        .items_of(&ItemType::Span)
        .flat_map(|item| item["items"].as_array().cloned().unwrap_or_default())
        .filter_map(|span| span["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names, ["healthy trace"]);
    assert_eq!(client.discarded(DiscardReason::InternalSdkError, DataCategory::Span), 3);
}
