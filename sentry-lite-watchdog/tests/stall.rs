//! Stalls on a current-thread runtime: one event per stall location, a new one
//! for a new location, none for polls that return in time.

use std::sync::Mutex;
use std::time::Duration;

use sentry_lite_core::protocol::ItemType;
use sentry_lite_core::{ClientOptions, TestTransport};
use sentry_lite_watchdog::{instrument_runtime, WatchExt, Watchdog, WatchdogOptions};
use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

#[inline(never)]
fn stuck_here(time: Duration) {
    std::thread::sleep(time);
}

#[inline(never)]
fn stuck_elsewhere(time: Duration) {
    std::thread::sleep(time);
}

fn stalls(t: &TestTransport) -> Vec<Value> {
    t.items_of(&ItemType::Event).filter(|e| e["contexts"]["watchdog"]["kind"] == "stall").collect()
}

fn functions(event: &Value) -> Vec<String> {
    event["exception"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["function"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[test]
fn current_thread_runtime_stalls_are_reported_once_per_location() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = TestTransport::new();
    let _guard = sentry_lite_core::init(ClientOptions::new().with_transport(t.clone())).unwrap();
    let watchdog = Watchdog::start(WatchdogOptions::new().with_threshold(Duration::from_millis(200)));
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    instrument_runtime(&mut builder, "single");
    let runtime = builder.build().unwrap();
    runtime.block_on(
        async {
            // Quick polls: nothing to report.
            for _ in 0..50 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            // The same place twice, then another place.
            for _ in 0..2 {
                stuck_here(Duration::from_millis(600));
                tokio::task::yield_now().await;
            }
            stuck_elsewhere(Duration::from_millis(600));
        }
        .watched(),
    );
    std::thread::sleep(Duration::from_millis(100));
    drop(watchdog);
    assert!(sentry_lite_core::flush(Duration::from_secs(10)));
    let stalls = stalls(&t);
    assert_eq!(stalls.len(), 2, "{stalls:#?}");
    assert!(functions(&stalls[0]).iter().any(|f| f.ends_with("stuck_here")), "{:#?}", functions(&stalls[0]));
    assert!(functions(&stalls[1]).iter().any(|f| f.ends_with("stuck_elsewhere")), "{:#?}", functions(&stalls[1]));
    let this_thread = std::thread::current().name().unwrap().to_owned();
    for stall in &stalls {
        assert_eq!(stall["contexts"]["watchdog"]["runtime"], "single");
        assert_eq!(stall["threads"]["values"][0]["name"], this_thread.as_str(), "block_on runs here");
    }
}
