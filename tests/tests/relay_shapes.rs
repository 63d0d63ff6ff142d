//! Every event shape the SDK produces passes Relay's own normalizer.

use std::fmt;

use sentry_lite_core::protocol::{ItemType, Request};
use sentry_lite_core::{self as sentry, Breadcrumb, ClientOptions, Level, User};
use serde_json::Value;

#[derive(Debug)]
struct Wrapped(std::io::Error);

impl fmt::Display for Wrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("wrapped failure")
    }
}

impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn error_message_and_rich_scope_events_pass_relay() {
    let options = ClientOptions::new().with_release("relay@1").with_send_default_pii(true);
    let (_, envelopes) = sentry::test::with_captured_envelopes(options, || {
        sentry::add_breadcrumb(
            Breadcrumb::new("clicked").with_category("ui").with_level(Level::Info).with_data("x", 1),
        );
        sentry::configure_scope(|s| {
            s.set_tag("k", "v");
            s.set_extra("nested", serde_json::json!({"a": [1, 2, {"b": null}]}));
            s.set_request(Some(Request {
                url: Some("http://localhost/x".into()),
                method: Some("GET".into()),
                ..Default::default()
            }));
        });
        sentry::set_user(Some(User {
            id: Some("7".into()),
            ip_address: Some("127.0.0.1".into()),
            ..Default::default()
        }));
        sentry::capture_error(&Wrapped(std::io::Error::other("root")));
        sentry::capture_message("plain message", Level::Warning);
        let huge = "x".repeat(10 * 1024 * 1024);
        sentry::capture_message(&huge, Level::Error);
        sentry::configure_scope(|s| {
            for i in 0..100_000 {
                s.set_tag(format!("tag{i}"), i);
            }
        });
        sentry::capture_message("many tags", Level::Error);
    });
    let events: Vec<Value> = envelopes
        .iter()
        .flat_map(|e| e.items.iter().filter(|i| i.ty() == &ItemType::Event).filter_map(|i| i.payload_json()))
        .collect();
    assert_eq!(events.len(), 4);
    for envelope in &envelopes {
        for item in &envelope.items {
            if item.ty() == &ItemType::Event {
                assert!(item.payload().len() < 1024 * 1024, "event under Relay's 1 MiB limit");
            }
        }
    }
    sentry_lite_tests::relay::assert_all_valid(&events);
}

#[test]
fn deep_and_cyclic_error_chains_are_bounded_and_valid() {
    #[derive(Debug)]
    struct Link(Option<Box<Link>>);
    impl fmt::Display for Link {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("link")
        }
    }
    impl std::error::Error for Link {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.0.as_deref().map(|l| l as _)
        }
    }
    let mut chain = Link(None);
    for _ in 0..10_000 {
        chain = Link(Some(Box::new(chain)));
    }
    let events = sentry::test::with_captured_events(|| {
        sentry::capture_error(&chain);
    });
    let values = &events[0].exception.as_ref().unwrap().values;
    assert!(values.len() <= 64, "chain cut at a bound: {}", values.len());
    let json = serde_json::to_value(&events[0]).unwrap();
    sentry_lite_tests::relay::assert_valid(&json);
    // Dropping a 10 000-deep Box chain recursively would overflow a test thread's stack.
    std::mem::forget(chain);
}

#[test]
fn static_mode_transactions_and_errors_in_spans_pass_relay() {
    use sentry_lite_core::TraceLifecycle;
    let options = ClientOptions::new()
        .with_traces_sample_rate(1.0)
        .with_trace_lifecycle(TraceLifecycle::Static)
        .with_release("relay@1");
    let (_, envelopes) = sentry::test::with_captured_envelopes(options, || {
        let root = sentry::start_root_span("GET /users/{id}", "http.server");
        root.set_source("route");
        root.set_attribute("http.request.method", "GET");
        let child = root.start_child("SELECT users", "db.query");
        child.set_attribute("db.system", "postgresql");
        let err = Wrapped(std::io::Error::other("db down"));
        {
            let _entered = sentry::enter_span(&child);
            sentry::capture_error(&err);
        }
        child.finish();
        root.finish();
    });
    let mut transactions = Vec::new();
    let mut errors = Vec::new();
    for env in &envelopes {
        for item in &env.items {
            match item.ty() {
                ItemType::Transaction => transactions.push(item.payload_json().unwrap()),
                ItemType::Event => {
                    assert!(env.headers.trace.is_some(), "an error in a span carries the DSC");
                    errors.push(item.payload_json().unwrap());
                }
                _ => {}
            }
        }
    }
    assert_eq!(transactions.len(), 1);
    assert_eq!(errors.len(), 1);
    let tx = &transactions[0];
    assert_eq!(tx["transaction"], "GET /users/{id}");
    assert_eq!(tx["spans"].as_array().unwrap().len(), 1);
    assert_eq!(tx["contexts"]["trace"]["trace_id"], errors[0]["contexts"]["trace"]["trace_id"]);
    assert_eq!(errors[0]["contexts"]["trace"]["span_id"], tx["spans"][0]["span_id"]);
    sentry_lite_tests::relay::assert_all_valid(&[tx.clone(), errors[0].clone()]);
}
