//! Unit tests that look inside the span machinery (buffer bounds, gauges).

use std::sync::Arc;
use std::time::Duration;

use crate::hub::Hub;
use crate::protocol::{DataCategory, DiscardReason, ItemType};
use crate::transport::worker::Buffer;
use crate::{Client, ClientOptions, TestTransport};

fn setup(options: ClientOptions) -> (Arc<Hub>, TestTransport, Arc<Client>) {
    let transport = TestTransport::new();
    let client = Arc::new(Client::new(options.with_transport(transport.clone()), None));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    (hub, transport, client)
}

#[test]
fn a_huge_trace_never_exceeds_the_buffer_bound() {
    let bound = 3_000;
    let options = ClientOptions::new().with_traces_sample_rate(1.0);
    let options = ClientOptions { max_buffered_spans: bound, queue_capacity: 1_000, ..options };
    let (hub, transport, client) = setup(options);
    Hub::run(hub, || {
        let root = super::start_root_span("big", "task");
        for i in 0..100_000 {
            root.start_child(format!("child {}", i % 10), "work").finish();
            assert!(client.span_buffer().len() <= super::buffer::MAX_SPANS_PER_ENVELOPE);
        }
        root.finish();
    });
    assert!(client.span_buffer().peak() <= bound.min(super::buffer::MAX_SPANS_PER_ENVELOPE));
    assert!(client.flush(Duration::from_secs(20)));
    let sent: u64 = transport.envelopes().iter().flat_map(|e| e.items.iter()).filter(|i| i.ty() == &ItemType::Span).map(|i| i.quantity()).sum();
    let dropped = client.discarded(DiscardReason::QueueOverflow, DataCategory::Span);
    assert_eq!(sent + dropped, 100_001);
}

#[test]
fn overflow_drops_the_oldest_bucket_and_counts_it() {
    let options = ClientOptions { max_buffered_spans: 10, ..ClientOptions::new().with_traces_sample_rate(1.0) };
    let (hub, transport, client) = setup(options);
    let (first, second) = Hub::run(hub, || {
        let a = super::start_root_span("a", "task");
        for _ in 0..6 {
            a.start_child("x", "work").finish();
        }
        let b = super::start_root_span("b", "task");
        for _ in 0..4 {
            b.start_child("y", "work").finish();
        }
        assert_eq!(client.span_buffer().len(), 10);
        // The 11th span evicts trace `a` (6 spans), the oldest bucket.
        b.start_child("z", "work").finish();
        assert_eq!(client.span_buffer().len(), 5);
        (a.trace_id(), b.trace_id())
    });
    assert_eq!(client.discarded(DiscardReason::BufferOverflow, DataCategory::Span), 6);
    // `a` and `b` themselves are still unfinished: finish them now (drop).
    assert!(client.flush(Duration::from_secs(5)));
    let envs = transport.envelopes();
    let traces: Vec<_> = envs.iter().filter_map(|e| e.headers.trace.as_ref().map(|d| d.trace_id)).collect();
    assert!(traces.contains(&second));
    let first_spans: usize = envs
        .iter()
        .filter(|e| e.headers.trace.as_ref().is_some_and(|d| d.trace_id == first))
        .map(|e| e.items[0].quantity() as usize)
        .sum();
    // Only the segment `a` (finished when dropped at the end of the closure) remains of trace a.
    assert_eq!(first_spans, 1);
}

#[test]
fn closed_buffer_accepts_nothing() {
    let (hub, _t, client) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    client.span_buffer().close();
    Hub::run(hub, || super::start_root_span("late", "task").finish());
    assert_eq!(client.span_buffer().len(), 0);
    assert_eq!(client.discarded(DiscardReason::BufferOverflow, DataCategory::Span), 1);
}

#[test]
fn timer_starts_at_first_item() {
    let (hub, _t, client) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    assert!(client.span_buffer().deadline().is_none());
    Hub::run(hub, || super::start_root_span("one", "task").finish());
    let d = client.span_buffer().deadline().expect("deadline");
    assert!(d > std::time::Instant::now() + Duration::from_secs(3));
}

/// `cargo test --release -p sentry-lite-core --lib hot_path -- --ignored --nocapture`
#[test]
#[ignore = "timing; run in release"]
fn hot_path_cost() {
    let options = ClientOptions { max_buffered_spans: 1_000_000, queue_capacity: 100_000, ..ClientOptions::new().with_traces_sample_rate(1.0) };
    let (hub, _t, client) = setup(options);
    Hub::run(hub.clone(), || {
        let root = super::start_root_span("root", "task");
        let n = 200_000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            root.start_child("child", "db.query").finish();
        }
        eprintln!("sampled child start+finish: {:?}/span", t.elapsed() / n);
        let _g = super::enter_span(&root);
        let t = std::time::Instant::now();
        for _ in 0..n {
            super::start_span("child", "db.query").finish();
        }
        eprintln!("start_span (implicit parent) + finish: {:?}/span", t.elapsed() / n);
        drop(_g);
        // No worker activity: 999 spans per trace stay buffered until the timer.
        let roots: Vec<_> = (0..100).map(|_| super::start_root_span("root", "task")).collect();
        let t = std::time::Instant::now();
        for r in &roots {
            for _ in 0..999 {
                r.start_child("child", "db.query").finish();
            }
        }
        eprintln!("sampled child, worker idle: {:?}/span", t.elapsed() / 99_900);
    });
    client.flush(Duration::from_secs(30));
    let (hub, _t, _client) = setup(ClientOptions::new().with_traces_sample_rate(0.0));
    Hub::run(hub, || {
        let root = super::start_root_span("root", "task");
        let n = 1_000_000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            root.start_child("child", "db.query").finish();
        }
        eprintln!("unsampled child: {:?}/span", t.elapsed() / n);
        let t = std::time::Instant::now();
        for _ in 0..n {
            super::start_root_span("root", "task").finish();
        }
        eprintln!("unsampled root: {:?}/span", t.elapsed() / n);
    });
}

#[test]
fn fast_serialization_matches_the_map_form() {
    let options = ClientOptions::new().with_traces_sample_rate(1.0).with_release("r@1");
    let options = ClientOptions { send_default_pii: true, ..options };
    let (hub, _t, client) = setup(options);
    Hub::run(hub.clone(), || {
        hub.configure_scope(|s| s.set_tag("tier", "gold"));
        hub.configure_isolation_scope(|s| s.set_user(Some(crate::User { id: Some("7".into()), ..Default::default() })));
        let root = super::start_root_span("seg", "http.server");
        root.set_attribute("sentry.origin", "auto.custom");
        root.set_attribute("n", 1);
        root.set_attribute("n", 2);
        let child = root.start_child("child", "db");
        child.set_attribute("tier", "silver");
        child.set_status(crate::protocol::SpanStatus::InternalError);
        child.finish();
        root.finish();
    });
    let records = client.span_buffer().take_records();
    assert_eq!(records.len(), 2);
    for r in &records {
        let fast = super::record::view_json(r, client.inner());
        let slow = serde_json::to_value(r.to_v2(client.inner(), &r.segment.name())).unwrap();
        assert_eq!(fast, slow);
        if r.is_segment {
            assert_eq!(fast["attributes"]["tier"]["value"], "gold");
            assert_eq!(fast["attributes"]["user.id"]["value"], "7");
            assert_eq!(fast["attributes"]["n"]["value"], 2);
            assert_eq!(fast["attributes"]["sentry.origin"]["value"], "auto.custom");
        } else {
            assert_eq!(fast["status"], "error");
        }
    }
}
