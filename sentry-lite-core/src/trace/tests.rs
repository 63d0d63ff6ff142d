//! Unit tests that look inside the span machinery (buffer bounds, gauges).

use std::sync::Arc;
use std::time::Duration;

use crate::hub::Hub;
use crate::protocol::{AttributeValue, DataCategory, DiscardReason, ItemType};
use crate::worker::Buffer;
use crate::{Client, ClientOptions, TestTransport};

pub(super) fn setup(options: ClientOptions) -> (Arc<Hub>, TestTransport, Arc<Client>) {
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
    // Buffered and in flight to the worker together.
    assert!(client.span_buffer().peak() <= bound);
    assert!(client.flush(Duration::from_secs(20)));
    let sent: u64 = transport
        .envelopes()
        .iter()
        .flat_map(|e| e.items.iter())
        .filter(|i| i.ty() == &ItemType::Span)
        .map(|i| i.quantity())
        .sum();
    let dropped = client.discarded(DiscardReason::QueueOverflow, DataCategory::Span)
        + client.discarded(DiscardReason::BufferOverflow, DataCategory::Span);
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
    let root = Hub::run(hub, || super::start_root_span("one", "task"));
    root.start_child("c", "task").finish();
    let d = client.span_buffer().deadline().expect("deadline");
    assert!(d > std::time::Instant::now() + Duration::from_secs(3));
}

/// `cargo test --release -p sentry-lite-core --lib hot_path -- --ignored --nocapture`
#[test]
#[ignore = "timing; run in release"]
fn hot_path_cost() {
    let options = ClientOptions {
        max_buffered_spans: 1_000_000,
        queue_capacity: 100_000,
        ..ClientOptions::new().with_traces_sample_rate(1.0)
    };
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
    // Serialization on the worker, per span (traces of 1 000 spans).
    client.span_buffer().hold();
    Hub::run(hub.clone(), || {
        let root = super::start_root_span("root", "task");
        for _ in 0..20_000 {
            root.start_child("child", "db.query").finish();
        }
    });
    let (mut records, refs) = client.span_buffer().take_records();
    let mut jobs = Vec::new();
    while !records.is_empty() {
        let rest = records.split_off(records.len().min(1000));
        jobs.push(client.span_buffer().test_job(std::mem::replace(&mut records, rest), refs.clone()));
    }
    let n = jobs.len() as u32 * 1000;
    let t = std::time::Instant::now();
    let mut bytes = 0;
    for job in jobs {
        let env = crate::worker::SingleJob::run(job, client.inner()).expect("envelope");
        bytes += env.to_vec().len();
    }
    eprintln!("serialization on the worker: {:?}/span ({} B/span)", t.elapsed() / n, bytes / n as usize);
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
    client.span_buffer().hold();
    Hub::run(hub.clone(), || {
        hub.configure_scope(|s| s.set_tag("tier", "gold"));
        hub.configure_isolation_scope(|s| s.set_user(Some(crate::User { id: Some("7".into()), ..Default::default() })));
        let root = super::start_root_span("seg", "http.server");
        root.set_attribute("sentry.origin", "auto.custom");
        root.set_attribute("n", 1);
        root.set_attribute("n", 2);
        let child = root.start_child("child", "db");
        child.set_attribute("tier", "silver");
        // Every value type through the batch writer.
        child.set_attribute("ok", true);
        child.set_attribute("rows", -3);
        child.set_attribute("ratio", 0.25);
        child.set_attribute("nan", f64::NAN);
        child.set_attribute("esc", "quote\" and \u{1}");
        child.set_attribute("list", vec!["a".to_owned(), "b".to_owned()]);
        child.set_status(crate::protocol::SpanStatus::InternalError);
        child.finish();
        root.finish();
        // A plain segment (scope tags and user, no clashing keys) and one whose
        // scope tag is named like a common attribute.
        super::start_root_span("plain", "http.server").finish();
        hub.configure_scope(|s| s.set_tag("os.name", "custom-os"));
        super::start_root_span("clash", "http.server").finish();
    });
    let (records, refs) = client.span_buffer().take_records();
    assert_eq!(records.len(), 4);
    let mut slow = Vec::new();
    for r in &records {
        let fast = super::record::view_json(r, &refs, client.inner());
        let map_form = serde_json::to_value(r.to_v2(
            client.inner(),
            &refs,
            &refs.segment(r).name(),
            &super::clock::Anchor::current(),
        ))
        .unwrap();
        assert_eq!(fast, map_form);
        match (r.is_segment, fast["name"].as_str()) {
            (true, Some("seg")) => {
                assert_eq!(fast["attributes"]["tier"]["value"], "gold");
                assert_eq!(fast["attributes"]["user.id"]["value"], "7");
                assert_eq!(fast["attributes"]["n"]["value"], 2);
                assert_eq!(fast["attributes"]["sentry.origin"]["value"], "auto.custom");
            }
            (true, Some("clash")) => assert_eq!(fast["attributes"]["os.name"]["value"], "custom-os"),
            (true, _) => assert_eq!(fast["attributes"]["user.id"]["value"], "7"),
            (false, _) => assert_eq!(fast["status"], "error"),
        }
        slow.push(map_form);
    }
    // The batch writer, which renders plain spans and segments itself, agrees.
    let job = client.span_buffer().test_job(records, refs);
    let env = crate::worker::SingleJob::run(job, client.inner()).expect("envelope");
    let payload: serde_json::Value = serde_json::from_slice(env.items[0].payload()).unwrap();
    assert_eq!(payload["items"].as_array().unwrap(), &slow);
}

#[test]
fn complete_traces_leave_together_one_envelope_each() {
    let (hub, transport, client) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    let trace = |name: &str| {
        let root = Hub::run(hub.clone(), || super::start_root_span(name, "task"));
        for _ in 0..4 {
            root.start_child("c", "work").finish();
        }
        root.finish();
    };
    trace("first");
    // Complete, but waiting for company (or the 5 s timer), not sent alone.
    assert_eq!(client.span_buffer().len(), 5);
    assert!(client.span_buffer().deadline().is_some());
    assert!(transport.envelopes().is_empty());
    let traces = super::buffer::SHIP_COMPLETE_AT / 5;
    for i in 1..traces {
        trace(&format!("t{i}"));
    }
    // The group reached SHIP_COMPLETE_AT spans: handed to the worker at once.
    assert_eq!(client.span_buffer().len(), 0);
    assert!(client.span_buffer().deadline().is_none());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while transport.envelopes().len() < traces && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let envs = transport.envelopes();
    assert_eq!(envs.len(), traces, "one envelope per trace");
    let ids: std::collections::BTreeSet<_> = envs.iter().map(|e| e.headers.trace.as_ref().unwrap().trace_id).collect();
    assert_eq!(ids.len(), traces);
    assert!(envs.iter().all(|e| e.items[0].quantity() == 5));
}

#[test]
fn a_group_of_one_span_traces_is_one_job_and_a_panic_loses_one_trace() {
    let options = ClientOptions::new().with_traces_sample_rate(1.0).with_before_send_span(|span| {
        if span.name == "boom" {
            panic!("user callback");
        }
    });
    let (hub, transport, client) = setup(options);
    let traces = super::buffer::SHIP_COMPLETE_AT;
    Hub::run(hub, || {
        for i in 0..traces {
            let name = if i == 7 { "boom".to_owned() } else { format!("t{i}") };
            super::start_root_span(name, "task").finish();
        }
    });
    assert_eq!(client.span_buffer().len(), 0, "the group left at once");
    assert!(client.flush(Duration::from_secs(5)));
    let envs = transport.envelopes();
    assert_eq!(envs.len(), traces - 1, "one envelope per trace, the panicking one lost");
    assert_eq!(client.discarded(DiscardReason::InternalSdkError, DataCategory::Span), 1);
    assert_eq!(client.span_buffer().in_flight(), 0);
}

#[test]
fn a_lone_complete_trace_leaves_on_flush() {
    let (hub, transport, client) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    Hub::run(hub, || super::start_root_span("alone", "task").finish());
    assert_eq!(client.span_buffer().len(), 1);
    assert!(client.flush(Duration::from_secs(5)));
    assert_eq!(transport.envelopes().len(), 1);
    assert_eq!(client.span_buffer().len(), 0);
}

#[test]
fn spans_finishing_after_their_segment_wait_for_the_timer() {
    let (hub, transport, client) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    let (root, child) = Hub::run(hub, || {
        let root = super::start_root_span("seg", "task");
        let child = root.start_child("slow", "work");
        (root, child)
    });
    root.finish();
    child.finish();
    // The complete segment and the late child's new bucket.
    assert_eq!(client.span_buffer().len(), 2);
    assert!(client.span_buffer().deadline().is_some());
    assert!(client.flush(Duration::from_secs(5)));
    let spans: u64 = transport
        .envelopes()
        .iter()
        .flat_map(|e| e.items.iter())
        .filter(|i| i.ty() == &ItemType::Span)
        .map(|i| i.quantity())
        .sum();
    assert_eq!(spans, 2);
}

#[test]
fn drop_oldest_evicts_by_creation_order() {
    let options = ClientOptions { max_buffered_spans: 40, ..ClientOptions::new().with_traces_sample_rate(1.0) };
    let (hub, _t, client) = setup(options);
    Hub::run(hub, || {
        let roots: Vec<_> = (0..8).map(|i| super::start_root_span(format!("r{i}"), "task")).collect();
        // Buckets created in order r0..r7, filled in reverse so that neither size nor
        // last use points at r0.
        for r in &roots {
            r.start_child("first", "work").finish();
        }
        for r in roots.iter().rev() {
            for _ in 0..4 {
                r.start_child("more", "work").finish();
            }
        }
        assert_eq!(client.span_buffer().len(), 40);
        roots[7].start_child("one more", "work").finish();
        // r0's bucket (5 spans) went.
        assert_eq!(client.span_buffer().len(), 36);
        assert_eq!(client.discarded(DiscardReason::BufferOverflow, DataCategory::Span), 5);
        roots[7].start_child("one more", "work").finish();
        roots[7].start_child("one more", "work").finish();
        roots[7].start_child("one more", "work").finish();
        roots[7].start_child("one more", "work").finish();
        // Next: r1.
        roots[7].start_child("one more", "work").finish();
        assert_eq!(client.span_buffer().len(), 36);
        assert_eq!(client.discarded(DiscardReason::BufferOverflow, DataCategory::Span), 10);
        let (records, refs) = client.span_buffer().take_records();
        let names: std::collections::BTreeSet<String> = records.iter().map(|r| refs.segment(r).name()).collect();
        assert!(!names.contains("r0") && !names.contains("r1") && names.contains("r2"), "{names:?}");
    });
}

/// A transport that blocks until the gate opens.
struct Gated {
    gate: Arc<parking_lot::Mutex<()>>,
    spans: Arc<std::sync::atomic::AtomicU64>,
}

impl crate::transport::Transport for Gated {
    fn send(&mut self, envelope: &crate::protocol::Envelope, _body: &[u8]) -> crate::transport::SendOutcome {
        drop(self.gate.lock());
        let n: u64 = envelope.items.iter().filter(|i| i.ty() == &ItemType::Span).map(|i| i.quantity()).sum();
        self.spans.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        crate::transport::SendOutcome::sent()
    }
}

/// A client whose transport blocks while `gate` is held, counting the spans sent.
fn gated(bound: usize) -> (Arc<Client>, Arc<Hub>, Arc<parking_lot::Mutex<()>>, Arc<std::sync::atomic::AtomicU64>) {
    let gate = Arc::new(parking_lot::Mutex::new(()));
    let spans = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (g, s) = (gate.clone(), spans.clone());
    let options = ClientOptions {
        max_buffered_spans: bound,
        queue_capacity: 10_000,
        send_client_reports: false,
        ..ClientOptions::new().with_traces_sample_rate(1.0)
    };
    let options = options.with_transport(move |_: &ClientOptions| {
        Box::new(Gated { gate: g.clone(), spans: s.clone() }) as Box<dyn crate::transport::Transport>
    });
    let client = Arc::new(Client::new(options, None));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    (client, hub, gate, spans)
}

#[test]
fn spans_in_flight_count_against_the_bound_with_a_stalled_worker() {
    let bound = 500;
    let (client, hub, gate, spans) = gated(bound);
    let closed = gate.lock();
    let produced = Hub::run(hub, || {
        let mut produced = 0u64;
        for _ in 0..300 {
            let root = super::start_root_span("t", "task");
            for _ in 0..9 {
                root.start_child("c", "work").finish();
            }
            root.finish();
            produced += 10;
            let buffer = client.span_buffer();
            assert!(buffer.len() + buffer.in_flight() <= bound, "{} + {}", buffer.len(), buffer.in_flight());
        }
        produced
    });
    let buffer = client.span_buffer();
    assert!(buffer.peak() <= bound, "peak {}", buffer.peak());
    let dropped = client.discarded(DiscardReason::BufferOverflow, DataCategory::Span);
    // The worker holds at most one job (being sent) beyond the bound.
    assert!(dropped >= produced - bound as u64 - 10, "dropped {dropped}");
    drop(closed);
    assert!(client.flush(Duration::from_secs(10)));
    assert_eq!(buffer.in_flight(), 0);
    let sent = spans.load(std::sync::atomic::Ordering::Relaxed);
    let lost = dropped + client.discarded(DiscardReason::QueueOverflow, DataCategory::Span);
    assert_eq!(sent + lost, produced);
}

#[test]
fn children_are_refused_at_the_door_until_the_worker_catches_up() {
    let bound = 20_000;
    let (client, hub, gate, spans) = gated(bound);
    let buffer = client.span_buffer().clone();
    let dropped = || client.discarded(DiscardReason::BufferOverflow, DataCategory::Span);
    let sent = || spans.load(std::sync::atomic::Ordering::Relaxed);
    let mut closed = gate.lock();
    let late = Hub::run(hub.clone(), || {
        // Fill the bound with spans in flight to the stalled worker.
        for _ in 0..10_000 {
            if buffer.in_flight() >= bound {
                break;
            }
            let root = super::start_root_span("t", "task");
            for _ in 0..9 {
                root.start_child("c", "work").finish();
            }
            root.finish();
        }
        assert!(buffer.in_flight() >= bound);
        super::start_root_span("late", "task")
    });
    let check_refused = |n: u64| {
        let before = (dropped(), buffer.len());
        for _ in 0..n {
            late.start_child("c", "work").finish();
        }
        assert_eq!(dropped() - before.0, n, "every child is dropped and counted");
        assert_eq!(buffer.len(), before.1, "nothing buffered for them, nothing evicted");
    };
    check_refused(100);
    let before = (dropped(), buffer.len());
    Hub::run(hub.clone(), || super::start_root_span("lone", "task").finish());
    assert_eq!(dropped() - before.0, 1, "a one-span trace is refused too");
    assert_eq!(buffer.len(), before.1, "and nothing buffered moved for it");
    // Let one envelope through: the worker takes its next batch, and the spans
    // in flight fall just under the bound. Children stay refused until the
    // worker is an eighth of the bound behind.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while buffer.in_flight() >= bound && std::time::Instant::now() < deadline {
        // Hands the gate to the waiting worker (if it waits) for one send.
        parking_lot::MutexGuard::unlocked_fair(&mut closed, || {});
        std::thread::sleep(Duration::from_millis(2));
    }
    let in_flight = buffer.in_flight();
    assert!(in_flight < bound && in_flight + bound / 8 >= bound, "in flight {in_flight}");
    check_refused(10);
    drop(closed);
    late.finish();
    assert!(client.flush(Duration::from_secs(10)));
    assert_eq!(buffer.in_flight(), 0);
    let (sent_before, lost) = (sent(), dropped());
    Hub::run(hub, || {
        let root = super::start_root_span("after", "task");
        for _ in 0..20 {
            root.start_child("c", "work").finish();
        }
        root.finish();
    });
    assert!(client.flush(Duration::from_secs(10)));
    assert_eq!(dropped(), lost, "the worker caught up: children are kept again");
    assert_eq!(sent(), sent_before + 21);
}

#[test]
fn batch_payload_matches_the_map_form() {
    let options = ClientOptions::new().with_traces_sample_rate(1.0).with_release("r\"@1");
    let (hub, _t, client) = setup(options);
    client.span_buffer().hold();
    Hub::run(hub.clone(), || {
        hub.configure_scope(|s| s.set_tag("tier", "gold"));
        let root = super::start_root_span("seg \u{e9}\n", "http.server");
        let a = root.start_child("plain", "db.query");
        a.finish();
        let b = root.start_child("with \"attrs\"", "");
        b.set_attribute("n", 1);
        b.set_attribute("list", vec!["x".to_owned(), "y".to_owned()]);
        b.set_attribute("f", 1.5);
        b.set_status(crate::protocol::SpanStatus::InternalError);
        b.set_origin("auto.test");
        b.finish();
        let c = root.start_child("override", "work");
        c.set_attribute("thread.id", "mine");
        c.finish();
        let r2 = root.clone();
        std::thread::spawn(move || r2.start_child("other thread", "task").finish()).join().unwrap();
        root.finish();
    });
    let (records, refs) = client.span_buffer().take_records();
    assert_eq!(records.len(), 5);
    let slow: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            serde_json::to_value(r.to_v2(
                client.inner(),
                &refs,
                &refs.segment(r).name(),
                &super::clock::Anchor::current(),
            ))
            .unwrap()
        })
        .collect();
    let job = client.span_buffer().test_job(records, refs);
    let env = crate::worker::SingleJob::run(job, client.inner()).expect("envelope");
    let payload: serde_json::Value = serde_json::from_slice(env.items[0].payload()).unwrap();
    assert_eq!(payload["version"], 2);
    assert_eq!(payload["items"].as_array().unwrap(), &slow);
    assert_eq!(env.items[0].quantity(), 5);
}

#[test]
fn a_batch_holds_one_reference_per_segment_and_thread_not_per_span() {
    let (hub, _t, client) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    client.span_buffer().hold();
    Hub::run(hub, || {
        let root = super::start_root_span("root", "task");
        for _ in 0..500 {
            root.start_child("here", "task").finish();
        }
        let r2 = root.clone();
        std::thread::spawn(move || {
            for _ in 0..500 {
                r2.start_child("there", "task").finish();
            }
        })
        .join()
        .unwrap();
        root.finish();
    });
    let (records, refs) = client.span_buffer().take_records();
    assert_eq!(records.len(), 1001);
    assert_eq!(refs.segments().count(), 1);
    let threads: std::collections::BTreeSet<u64> = records.iter().map(|r| refs.thread(r).id).collect();
    assert_eq!(threads.len(), 2);
    for r in &records {
        let here = refs.thread(r).id == records.last().map(|s| refs.thread(s).id).unwrap_or_default();
        assert_eq!(here, &*r.name != "there", "{:?} on the wrong thread", &*r.name);
    }
}

#[test]
fn children_can_start_with_attributes_and_origin() {
    let (hub, _t, client) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    client.span_buffer().hold();
    Hub::run(hub, || {
        let root = super::start_root_span_with("root", "task", "auto.test", vec![("a".into(), 1.into())]);
        root.start_child_with_attributes("plain", "db", vec![("rows".into(), 3.into())]).finish();
        root.start_child_with("integration", "db", Some("auto.db"), vec![("x".into(), true.into())]).finish();
        root.finish();
    });
    let (records, _) = client.span_buffer().take_records();
    let by_name = |n: &str| records.iter().find(|r| &*r.name == n || (r.is_segment && n == "root")).unwrap();
    assert_eq!(by_name("plain").attributes, vec![("rows".into(), AttributeValue::I64(3))]);
    assert_eq!(by_name("plain").origin(), "manual");
    assert_eq!(by_name("integration").origin(), "auto.db");
    assert_eq!(by_name("integration").attributes, vec![("x".into(), AttributeValue::Bool(true))]);
    assert_eq!(by_name("root").origin(), "auto.test");
    assert_eq!(by_name("root").attributes, vec![("a".into(), AttributeValue::I64(1))]);
}

/// `&'static str` keys are kept borrowed (no allocation per attribute); `String`
/// keys are owned; a repeated key replaces the value whatever its form.
#[test]
fn static_attribute_keys_are_not_copied() {
    use std::borrow::Cow;
    let (hub, _t, client) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    client.span_buffer().hold();
    Hub::run(hub, || {
        let root = super::start_root_span("root", "task");
        let child = root.start_child("child", "db");
        child.set_attribute("static", 1);
        child.set_attribute(format!("own{}", 1), 2);
        child.set_attribute("own1", 3);
        child.finish();
        root.finish();
    });
    let (records, _) = client.span_buffer().take_records();
    let child = records.iter().find(|r| !r.is_segment).unwrap();
    assert!(matches!(&child.attributes[0], (Cow::Borrowed("static"), AttributeValue::I64(1))));
    assert!(matches!(&child.attributes[1], (Cow::Owned(k), AttributeValue::I64(3)) if k == "own1"));
    assert_eq!(child.attributes.len(), 2);
}

#[test]
fn a_segment_finishing_keeps_the_running_timer() {
    let (hub, _t, client) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    let root = Hub::run(hub, || super::start_root_span("seg", "task"));
    root.start_child("c", "work").finish();
    let first = client.span_buffer().deadline().expect("timer started by the first span");
    std::thread::sleep(Duration::from_millis(5));
    root.finish();
    // Complete but waiting: the timer of the first span still runs.
    assert_eq!(client.span_buffer().len(), 2);
    assert_eq!(client.span_buffer().deadline(), Some(first));
}

/// Every span item of the transport's envelopes, as JSON.
pub(super) fn sent_spans(transport: &TestTransport) -> Vec<serde_json::Value> {
    let mut spans = Vec::new();
    for env in transport.envelopes() {
        for item in env.items.iter().filter(|i| i.ty() == &ItemType::Span) {
            let payload: serde_json::Value = serde_json::from_slice(item.payload()).unwrap();
            spans.extend(payload["items"].as_array().unwrap().iter().cloned());
        }
    }
    spans
}

#[test]
fn staged_children_count_in_len_and_leave_on_flush() {
    let (hub, transport, client) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    let root = Hub::run(hub, || super::start_root_span("seg", "task"));
    // The first child goes through the buffer and gets the bucket lent; the
    // others are staged in the segment.
    for i in 0..10 {
        root.start_child(format!("c{i}"), "work").finish();
    }
    assert!(root.segment().unwrap().stage.lock().staged() > 0, "children are staged");
    assert_eq!(client.span_buffer().len(), 10);
    assert!(client.span_buffer().deadline().is_some());
    assert!(client.flush(Duration::from_secs(5)));
    assert_eq!(client.span_buffer().len(), 0);
    assert!(client.span_buffer().deadline().is_none());
    let spans = sent_spans(&transport);
    assert_eq!(spans.len(), 10);
    let parent = root.span_id().to_string();
    let names: std::collections::BTreeSet<_> = spans.iter().map(|s| s["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names.len(), 10);
    assert!(spans.iter().all(|s| s["parent_span_id"] == parent.as_str()));
    // The segment's staged children were taken back: a later child is fine too.
    root.start_child("late", "work").finish();
    root.finish();
    assert!(client.flush(Duration::from_secs(5)));
    assert_eq!(sent_spans(&transport).len(), 12);
}

#[test]
fn staged_children_leave_with_their_segment_and_on_close() {
    let (hub, transport, client) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    Hub::run(hub.clone(), || {
        let root = super::start_root_span("one", "task");
        for _ in 0..5 {
            root.start_child("c", "work").finish();
        }
        root.finish();
    });
    // One complete trace, its staged children with it (no loan left).
    assert_eq!(client.span_buffer().len(), 6);
    let open = Hub::run(hub, || super::start_root_span("two", "task"));
    for _ in 0..5 {
        open.start_child("c", "work").finish();
    }
    assert_eq!(client.span_buffer().len(), 11);
    assert!(client.close(Duration::from_secs(5)));
    assert_eq!(sent_spans(&transport).len(), 11);
    // Closed: nothing staged any more, the next child is counted as dropped.
    open.start_child("c", "work").finish();
    assert_eq!(client.span_buffer().len(), 0);
    assert_eq!(client.discarded(DiscardReason::BufferOverflow, DataCategory::Span), 1);
}

#[test]
fn drain_takes_staged_children() {
    let (hub, _t, client) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    let root = Hub::run(hub, || super::start_root_span("seg", "task"));
    for _ in 0..7 {
        root.start_child("c", "work").finish();
    }
    // What the worker's timer does once the deadline passed.
    let jobs = client.span_buffer().drain(true);
    let n: u64 = jobs.iter().map(|j| j.loss().quantity(DataCategory::Span)).sum();
    assert_eq!(n, 7);
    assert_eq!(client.span_buffer().len(), 0);
    assert!(client.span_buffer().deadline().is_none());
}

#[test]
fn two_segments_of_one_trace_share_the_lent_bucket() {
    let (hub, transport, client) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    let headers = [("sentry-trace", "0123456789abcdef0123456789abcdef-0123456789abcdef-1")];
    let (a, b) = Hub::run(hub.clone(), || {
        hub.configure_scope(|s| s.set_propagation(super::continue_trace(headers)));
        (super::start_root_span("a", "task"), super::start_root_span("b", "task"))
    });
    assert_eq!(a.trace_id(), b.trace_id());
    for _ in 0..3 {
        a.start_child("from a", "work").finish();
        b.start_child("from b", "work").finish();
    }
    assert_eq!(client.span_buffer().len(), 6);
    a.finish();
    b.start_child("after a", "work").finish();
    b.finish();
    assert!(client.flush(Duration::from_secs(5)));
    let spans = sent_spans(&transport);
    assert_eq!(spans.len(), 9);
    let count = |name: &str, parent: super::Span| {
        let id = parent.span_id().to_string();
        spans.iter().filter(|s| s["name"] == name && s["parent_span_id"] == id.as_str()).count()
    };
    assert_eq!(count("from a", a.clone()), 3);
    assert_eq!(count("from b", b.clone()), 3);
    assert_eq!(count("after a", b.clone()), 1);
}

#[test]
fn children_finishing_on_many_threads_all_arrive_once() {
    let (hub, transport, client) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    let root = Hub::run(hub, || super::start_root_span("seg", "task"));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let root = root.clone();
            std::thread::spawn(move || {
                for i in 0..700 {
                    let child = root.start_child(format!("t{t} c{i}"), "work");
                    child.set_attribute("i", i);
                    child.finish();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    root.finish();
    assert!(client.flush(Duration::from_secs(10)));
    let spans = sent_spans(&transport);
    assert_eq!(client.discarded(DiscardReason::BufferOverflow, DataCategory::Span), 0);
    assert_eq!(spans.len(), 2801);
    let names: std::collections::BTreeSet<_> = spans.iter().map(|s| s["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names.len(), 2801, "every span once");
    let parent = root.span_id().to_string();
    for s in spans.iter().filter(|s| s["is_segment"] == false) {
        assert_eq!(s["parent_span_id"], parent.as_str());
        let name = s["name"].as_str().unwrap();
        let i: i64 = name.rsplit('c').next().unwrap().parse().unwrap();
        assert_eq!(s["attributes"]["i"]["value"], i, "{name}: its own attributes");
    }
}

#[test]
fn lent_room_counts_against_the_bound() {
    let bound = 100;
    let options = ClientOptions { max_buffered_spans: bound, ..ClientOptions::new().with_traces_sample_rate(1.0) };
    let (hub, _t, client) = setup(options);
    Hub::run(hub, || {
        let roots: Vec<_> = (0..30).map(|i| super::start_root_span(format!("r{i}"), "task")).collect();
        for _ in 0..10 {
            for r in &roots {
                r.start_child("c", "work").finish();
                assert!(client.span_buffer().len() <= bound);
            }
        }
        // 300 children for a bound of 100: the oldest buckets went, counted.
        let dropped = client.discarded(DiscardReason::BufferOverflow, DataCategory::Span);
        assert_eq!(dropped as usize + client.span_buffer().len(), 300);
    });
    assert!(client.span_buffer().peak() <= bound, "peak {}", client.span_buffer().peak());
}

#[test]
fn a_span_reports_the_thread_it_started_on() {
    let (hub, transport, client) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    let root = Hub::run(hub, || super::start_root_span("seg", "task"));
    let here = root.start_child("started here", "work");
    let (there, there_id) = {
        let root = root.clone();
        std::thread::Builder::new()
            .name("elsewhere".into())
            .spawn(move || {
                let there = root.start_child("started there", "work");
                // Finished on its segment's thread below; `here` finishes there.
                (there, crate::trace::record::ThreadInfo::current().id)
            })
            .unwrap()
            .join()
            .unwrap()
    };
    std::thread::spawn(move || here.finish()).join().unwrap();
    there.finish();
    root.finish();
    assert!(client.flush(Duration::from_secs(5)));
    let spans = sent_spans(&transport);
    let attr = |name: &str, key: &str| {
        let span = spans.iter().find(|s| s["name"] == name).unwrap();
        span["attributes"][key].clone()
    };
    let main_id = crate::trace::record::ThreadInfo::current().id;
    // An integer attribute, as sentry-conventions define `thread.id`.
    assert_eq!(attr("started here", "thread.id"), serde_json::json!({"type": "integer", "value": main_id}));
    assert_eq!(attr("seg", "thread.id")["value"], main_id);
    assert_eq!(attr("started there", "thread.id")["value"], there_id);
    assert_ne!(there_id, main_id);
    assert_eq!(attr("started there", "thread.name")["value"], "elsewhere");
}

#[test]
fn current_span_if_active_answers_both_questions() {
    let (hub, _transport, _client) = setup(ClientOptions::new().with_traces_sample_rate(1.0));
    Hub::run(hub, || {
        assert!(matches!(super::current_span_if_active(), Some(None)), "active, no span");
        let root = super::start_root_span("r", "task");
        {
            let _entered = super::enter_span(&root);
            let current = super::current_span_if_active().flatten().expect("entered span");
            assert_eq!(current.span_id(), root.span_id());
        }
        let scoped = root.start_child("c", "work");
        Hub::current().configure_scope(|s| s.set_span(Some(scoped.clone())));
        let current = super::current_span_if_active().flatten().expect("scope span");
        assert_eq!(current.span_id(), scoped.span_id());
    });
    let disabled = Arc::new(Client::new(ClientOptions::new(), None));
    if !disabled.is_enabled() {
        let hub = Arc::new(Hub::new_from_top(&Hub::main()));
        hub.bind_client(Some(disabled));
        Hub::run(hub, || assert!(super::current_span_if_active().is_none(), "inactive: nothing"));
    }
}
