//! The watchdog: a blocking axum handler, a parking_lot deadlock and a thread
//! dump each become one event with the stuck threads' stacks; nothing hangs.

use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use sentry_lite_axum::SentryLayer;
use sentry_lite_core::protocol::ItemType;
use sentry_lite_core::{ClientOptions, InitGuard, Level, TestTransport};
use sentry_lite_tests::relay;
use sentry_lite_watchdog::{instrument_runtime, Watchdog, WatchdogLayer, WatchdogOptions};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn init() -> (InitGuard, TestTransport) {
    let t = TestTransport::new();
    let options = ClientOptions::new().with_transport(t.clone()).with_traces_sample_rate(1.0);
    (sentry_lite_core::init(options).expect("init"), t)
}

fn flush() {
    assert!(sentry_lite_core::flush(Duration::from_secs(10)), "flush timed out");
}

fn events(t: &TestTransport) -> Vec<Value> {
    t.items_of(&ItemType::Event).collect()
}

fn of_kind(events: &[Value], kind: &str) -> Vec<Value> {
    events.iter().filter(|e| e["contexts"]["watchdog"]["kind"] == kind).cloned().collect()
}

/// Every frame's function of a stack trace, oldest first.
fn functions(stacktrace: &Value) -> Vec<String> {
    stacktrace["frames"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["function"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[inline(never)]
fn block_the_worker() {
    std::thread::sleep(Duration::from_secs(3));
}

async fn blocking_handler() -> &'static str {
    block_the_worker();
    "done"
}

async fn get_over_tcp(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

#[test]
fn a_blocking_axum_handler_is_one_stall_event_with_the_handlers_frame() {
    let _serial = serial();
    let (_guard, t) = init();
    let threshold = Duration::from_millis(1000);
    let watchdog = Watchdog::start(WatchdogOptions::new().with_threshold(threshold));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    instrument_runtime(&mut builder, "api");
    let runtime = builder.build().unwrap();
    let response = runtime.block_on(async {
        let app = Router::new()
            .route("/block", get(blocking_handler))
            .route("/ok", get(|| async { "ok" }))
            .layer(WatchdogLayer::new())
            .layer(SentryLayer::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let response = get_over_tcp(addr, "/block").await;
        // Quick requests after it: no more stalls.
        for _ in 0..20 {
            assert!(get_over_tcp(addr, "/ok").await.ends_with("ok"));
        }
        response
    });
    assert!(response.ends_with("done"), "{response}");
    // Let a tick see the recovery, then an event that carries its breadcrumb.
    std::thread::sleep(Duration::from_millis(200));
    sentry_lite_core::capture_message("after the stall", Level::Info);
    flush();
    drop(watchdog);
    runtime.shutdown_timeout(Duration::from_secs(5));

    let events = events(&t);
    let stalls = of_kind(&events, "stall");
    assert_eq!(stalls.len(), 1, "one stall, one event: {stalls:#?}");
    let stall = &stalls[0];
    assert_eq!(stall["level"], "warning");
    let exception = &stall["exception"]["values"][0];
    assert_eq!(exception["mechanism"]["type"], "watchdog");
    assert_eq!(exception["mechanism"]["handled"], true);
    let frames = functions(&exception["stacktrace"]);
    assert!(frames.iter().any(|f| f.contains("blocking_handler")), "the handler's frame: {frames:#?}");
    assert!(frames.iter().any(|f| f.contains("block_the_worker")), "{frames:#?}");
    let context = &stall["contexts"]["watchdog"];
    assert!(context["stall_duration_ms"].as_u64().unwrap() >= 1000, "{context}");
    assert_eq!(context["runtime"], "api");
    let thread = &stall["threads"]["values"][0];
    assert_eq!(thread["crashed"], true);
    assert_eq!(thread["id"], exception["thread_id"]);
    assert!(thread["name"].as_str().unwrap().starts_with("tokio-"), "{thread}");
    assert!(stall["fingerprint"].as_array().unwrap().contains(&Value::from("{{ default }}")));
    // The request it was serving: the stall event is in the request's trace.
    let trace_id = stall["contexts"]["trace"]["trace_id"].as_str().expect("trace context");
    let segments: Vec<Value> = t
        .items_of(&ItemType::Span)
        .flat_map(|v| v["items"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["is_segment"] == true && s["name"].as_str().is_some_and(|n| n.contains("/block")))
        .collect();
    assert_eq!(segments.len(), 1, "{segments:#?}");
    assert_eq!(segments[0]["trace_id"], trace_id);
    // The recovery, as data on the next event.
    let after = events.iter().find(|e| e["logentry"]["message"] == "after the stall");
    let after = after.unwrap_or_else(|| panic!("the later event: {events:#?}"));
    let crumbs = after["breadcrumbs"]["values"].as_array().cloned().unwrap_or_default();
    let recovery = crumbs.iter().find(|c| c["category"] == "watchdog").unwrap_or_else(|| panic!("{crumbs:#?}"));
    assert!(recovery["data"]["stall_duration_ms"].as_u64().unwrap() >= 2500, "{recovery}");
    relay::assert_valid(stall);
}

/// Parks until `release` is dropped; a recognisable frame in a thread dump.
#[inline(never)]
fn parked_helper(ready: Arc<Barrier>, release: std::sync::mpsc::Receiver<()>) {
    ready.wait();
    let _ = release.recv();
}

#[test]
fn a_thread_dump_lists_every_thread_with_its_stack() {
    let _serial = serial();
    let (_guard, t) = init();
    let ready = Arc::new(Barrier::new(4));
    let mut releases = Vec::new();
    let mut helpers = Vec::new();
    for i in 0..3 {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        releases.push(tx);
        let ready = ready.clone();
        helpers.push(
            std::thread::Builder::new()
                .name(format!("dump-helper-{i}"))
                .spawn(move || parked_helper(ready, rx))
                .unwrap(),
        );
    }
    ready.wait();
    std::thread::sleep(Duration::from_millis(50));
    let before = tids();
    let id = sentry_lite_watchdog::capture_thread_dump();
    let after = tids();
    assert!(!id.is_nil());
    flush();
    drop(releases);
    for h in helpers {
        h.join().unwrap();
    }

    let dumps = of_kind(&events(&t), "thread_dump");
    assert_eq!(dumps.len(), 1);
    let dump = &dumps[0];
    let threads = dump["threads"]["values"].as_array().unwrap();
    let listed: Vec<u64> = threads.iter().map(|t| t["id"].as_u64().unwrap()).collect();
    for tid in before.iter().filter(|t| after.contains(t)) {
        assert!(listed.contains(tid), "thread {tid} missing from {listed:?}");
    }
    for i in 0..3 {
        let name = format!("dump-helper-{i}");
        let helper = threads.iter().find(|t| t["name"] == name.as_str()).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(helper["state"], "WAITING");
        let frames = functions(&helper["stacktrace"]);
        assert!(frames.iter().any(|f| f.contains("parked_helper")), "{name}: {frames:#?}");
    }
    let current: Vec<&Value> = threads.iter().filter(|t| t["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert!(
        functions(&current[0]["stacktrace"]).iter().any(|f| f.contains("a_thread_dump_lists_every_thread")),
        "{:#?}",
        current[0]
    );
    assert_eq!(threads.iter().filter(|t| t["main"] == true).count(), 1);
    relay::assert_valid(dump);
}

fn tids() -> Vec<u64> {
    std::fs::read_dir("/proc/self/task").unwrap().filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// Takes `first` then `second`, meeting the other thread in between.
#[inline(never)]
fn take_both(first: &parking_lot::Mutex<u32>, second: &parking_lot::Mutex<u32>, both_hold_one: &Barrier) {
    let _a = first.lock();
    both_hold_one.wait();
    let _b = second.lock();
}

#[test]
fn a_two_thread_deadlock_is_one_fatal_event_naming_both_threads_and_locks() {
    let _serial = serial();
    let (_guard, t) = init();
    let watchdog = Watchdog::start(WatchdogOptions::new().with_deadlock_interval(Duration::from_millis(100)));
    let accounts = Arc::new((parking_lot::Mutex::new(1), parking_lot::Mutex::new(2)));
    let barrier = Arc::new(Barrier::new(2));
    for (name, forward) in [("deadlock-a", true), ("deadlock-b", false)] {
        let (accounts, barrier) = (accounts.clone(), barrier.clone());
        // Never joined: they stay blocked until the process exits.
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let (x, y) = (&accounts.0, &accounts.1);
                if forward {
                    take_both(x, y, &barrier)
                } else {
                    take_both(y, x, &barrier)
                }
            })
            .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut found = Vec::new();
    while std::time::Instant::now() < deadline {
        flush();
        found = of_kind(&events(&t), "deadlock");
        if !found.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // A few more checks must not report the same cycle again.
    std::thread::sleep(Duration::from_millis(400));
    flush();
    drop(watchdog);
    let deadlocks = of_kind(&events(&t), "deadlock");
    assert_eq!(deadlocks.len(), 1, "{found:#?}");
    let event = &deadlocks[0];
    assert_eq!(event["level"], "fatal");
    let exception = &event["exception"]["values"][0];
    assert_eq!(exception["type"], "Deadlock");
    assert_eq!(exception["mechanism"]["type"], "watchdog");
    let value = exception["value"].as_str().unwrap();
    assert!(value.contains("'deadlock-a'") && value.contains("'deadlock-b'"), "{value}");
    assert!(value.contains("take_both") && value.contains("Mutex"), "{value}");
    let threads = event["threads"]["values"].as_array().unwrap();
    assert_eq!(threads.len(), 2);
    let ids: Vec<u64> = threads.iter().map(|t| t["id"].as_u64().unwrap()).collect();
    for (i, thread) in threads.iter().enumerate() {
        assert!(thread["name"].as_str().unwrap().starts_with("deadlock-"), "{thread}");
        assert_eq!(thread["state"], "BLOCKED");
        let frames = functions(&thread["stacktrace"]);
        assert!(frames.iter().any(|f| f.contains("take_both")), "{frames:#?}");
        let locks = thread["held_locks"].as_object().unwrap();
        let blocked = locks.values().find(|l| l["type"] == 8).expect("the lock it waits for");
        assert_eq!(blocked["thread_id"], ids[1 - i], "held by the other thread");
        let held = locks.values().find(|l| l["type"] == 1).expect("the lock it holds");
        assert_eq!(held["thread_id"], ids[i]);
    }
    relay::assert_valid(event);
}
