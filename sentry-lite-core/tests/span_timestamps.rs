//! Span timestamps in what is sent: spans record counter ticks and the worker
//! converts them to wall-clock time, which must agree with `SystemTime::now()`
//! around the span, in stream mode (both serializers) and static mode.

mod common;

use std::thread::sleep;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use common::{flush, test_hub};
use sentry_lite_core::protocol::ItemType;
use sentry_lite_core::{start_root_span, Client, ClientOptions, Hub, TraceLifecycle};

/// Allowed conversion error against the wall clock read around a span
/// (timestamps have µs precision; the counter drifts by a few ppm between
/// anchor checks; an anchor read under preemption is uncertain by its spread).
const SLACK: f64 = 0.003;
const ROOT_ALONE: Duration = Duration::from_millis(20);
const CHILD: Duration = Duration::from_millis(30);

fn secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Wall-clock readings around a root with one child.
struct Seen {
    before_root: f64,
    before_child: f64,
    after_child: f64,
    after_root: f64,
}

/// A root that runs alone for `ROOT_ALONE`, then a child that takes `CHILD`.
fn run(hub: std::sync::Arc<Hub>, client: &Client) -> Seen {
    // The worker calibrates the counter before it runs anything: after a flush,
    // spans record counter ticks (before, the wall clock; see the unit tests).
    assert!(client.flush(Duration::from_secs(5)));
    Hub::run(hub, || {
        let before_root = secs(SystemTime::now());
        let root = start_root_span("root", "task");
        sleep(ROOT_ALONE);
        let before_child = secs(SystemTime::now());
        let child = root.start_child("child", "work");
        sleep(CHILD);
        child.finish();
        let after_child = secs(SystemTime::now());
        root.finish();
        let after_root = secs(SystemTime::now());
        Seen { before_root, before_child, after_child, after_root }
    })
}

/// `got` lies between two wall-clock readings known to be taken before and
/// after the event (preemption can only widen the window, never shift the
/// event out of it), give or take the conversion's error.
fn between(what: &str, got: f64, before: f64, after: f64) {
    assert!(
        got >= before - SLACK && got <= after + SLACK,
        "{what}: {got:.6} outside the wall clock's [{before:.6}, {after:.6}]"
    );
}

/// Start and end as sent, checked against the wall clock around them.
fn check(root: (f64, f64), child: (f64, f64), seen: &Seen) {
    between("root start", root.0, seen.before_root, seen.before_child);
    between("child start", child.0, seen.before_child, seen.after_child);
    between("child end", child.1, seen.before_child, seen.after_child);
    between("root end", root.1, seen.after_child, seen.after_root);
    assert!(root.1 >= root.0 && child.1 >= child.0, "ends before start: {root:?} {child:?}");
    assert!(child.0 >= root.0 && child.1 <= root.1, "child outside its root: {root:?} {child:?}");
    let took = child.1 - child.0;
    // A sleep takes at least its time; the scheduler may add some.
    let want = CHILD.as_secs_f64();
    assert!(took >= want - 0.0005 && took <= want + 0.05, "child took {took:.6} s, slept {want} s");
    let alone = child.0 - root.0;
    assert!(alone >= ROOT_ALONE.as_secs_f64() - 0.0005, "root alone {alone:.6} s");
}

fn stream(options: ClientOptions) {
    let (hub, transport, client) = test_hub(options.with_traces_sample_rate(1.0));
    let seen = run(hub, &client);
    flush(&client);
    let items: Vec<Value> =
        transport.items_of(&ItemType::Span).flat_map(|v| v["items"].as_array().cloned().unwrap_or_default()).collect();
    let times = |name: &str| {
        let span = items.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no span {name}"));
        (span["start_timestamp"].as_f64().unwrap(), span["end_timestamp"].as_f64().unwrap())
    };
    check(times("root"), times("child"), &seen);
}

#[test]
fn stream_mode_timestamps_match_the_wall_clock() {
    stream(ClientOptions::new());
}

#[test]
fn stream_mode_timestamps_match_the_wall_clock_through_before_send_span() {
    // The general serializer (a span handed to the callback).
    stream(ClientOptions::new().with_before_send_span(|_| {}));
}

#[test]
fn static_mode_timestamps_match_the_wall_clock() {
    let options = ClientOptions::new().with_traces_sample_rate(1.0).with_trace_lifecycle(TraceLifecycle::Static);
    let (hub, transport, client) = test_hub(options);
    let seen = run(hub, &client);
    flush(&client);
    let tx: Vec<Value> = transport.items_of(&ItemType::Transaction).collect();
    assert_eq!(tx.len(), 1);
    let root = (tx[0]["start_timestamp"].as_f64().unwrap(), tx[0]["timestamp"].as_f64().unwrap());
    let child = &tx[0]["spans"][0];
    let child = (child["start_timestamp"].as_f64().unwrap(), child["timestamp"].as_f64().unwrap());
    check(root, child, &seen);
}
