//! The offline spool: an outage loses nothing that was captured, and nothing is
//! delivered twice, also across a process restart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sentry_lite_core::protocol::{DataCategory, DiscardReason};
use sentry_lite_core::{self as sentry, Client, ClientOptions, Dsn, Hub, Level};
use sentry_lite_tests::fault_server::{FaultServer, Mode};

fn spool_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sentry-lite-spool-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn spooling_client(dsn: &str, dir: &PathBuf) -> (Arc<Hub>, Arc<Client>) {
    let dsn: Dsn = dsn.parse().unwrap();
    // Every spooled envelope costs an fsync (~1.6 ms on this machine's disk, more under
    // load), so a burst during an outage needs queue room while the spool catches up.
    let options = ClientOptions::new()
        .with_attach_stacktrace(false)
        .with_spool_dir(dir)
        .with_queue_capacity(20_000)
        .with_request_timeout(Duration::from_secs(2));
    let client = Arc::new(Client::new(options, Some(dsn)));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    (hub, client)
}

/// event_id → how many times the server received it.
fn received_ids(server: &FaultServer) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for req in server.requests() {
        if let Ok(env) = req.envelope() {
            for ev in env.events() {
                *ids.entry(ev["event_id"].as_str().unwrap_or("").to_owned()).or_insert(0) += 1;
            }
        }
    }
    ids
}

fn wait_until(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

#[test]
fn a_30_second_outage_of_10_000_events_is_delivered_exactly_once() {
    let server = FaultServer::start();
    server.set_mode(Mode::Refuse);
    let dir = spool_dir("outage");
    let (hub, client) = spooling_client(&server.dsn(1), &dir);
    let total = 10_000;
    let outage = Duration::from_secs(30);
    let start = Instant::now();
    let mut sent = Vec::with_capacity(total);
    Hub::run(hub, || {
        for i in 0..total {
            // Spread the captures over the outage, like real traffic.
            let due = outage.mul_f64(i as f64 / total as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
            sent.push(sentry::capture_message(&format!("during outage {i}"), Level::Error).to_string());
        }
    });
    if let Some(rest) = outage.checked_sub(start.elapsed()) {
        std::thread::sleep(rest);
    }
    server.set_mode(Mode::Ok);
    let ok = wait_until(Duration::from_secs(120), || received_ids(&server).len() >= total);
    let ids = received_ids(&server);
    let dropped: Vec<_> = [DiscardReason::QueueOverflow, DiscardReason::NetworkError, DiscardReason::SendError]
        .into_iter()
        .map(|r| (r, client.discarded(r, DataCategory::Error)))
        .collect();
    assert!(ok, "only {} of {total} delivered after recovery; dropped {dropped:?}", ids.len());
    assert!(sent.iter().all(|id| ids.get(id) == Some(&1)), "every event exactly once");
    assert!(client.flush(Duration::from_secs(10)));
    let _ = std::fs::remove_dir_all(dir);
}

const CHILD_DIR: &str = "SENTRY_LITE_SPOOL_CHILD_DIR";
const CHILD_DSN: &str = "SENTRY_LITE_SPOOL_CHILD_DSN";

/// Runs only as the child of `spooled_envelopes_survive_a_restart`: captures while
/// the server refuses, then exits.
#[test]
fn spool_child_process() {
    let (Ok(dir), Ok(dsn)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_DSN)) else { return };
    let (hub, client) = spooling_client(&dsn, &PathBuf::from(dir));
    Hub::run(hub, || {
        for i in 0..200 {
            println!("captured {}", sentry::capture_message(&format!("before restart {i}"), Level::Error));
        }
    });
    client.close(Duration::from_secs(10));
}

#[test]
fn spooled_envelopes_survive_a_restart() {
    let server = FaultServer::start();
    server.set_mode(Mode::Refuse);
    let dir = spool_dir("restart");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "spool_child_process", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, &dir)
        .env(CHILD_DSN, server.dsn(1))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // libtest may print its own text on the same line as the first capture.
    let captured: Vec<String> =
        stdout.lines().filter_map(|l| l.split_once("captured ").map(|(_, id)| id.trim().to_owned())).collect();
    assert_eq!(captured.len(), 200);
    assert!(received_ids(&server).is_empty());
    let spooled = std::fs::read_dir(&dir).unwrap().count();
    assert!(spooled > 0, "the child left its undelivered envelopes in the spool");

    server.set_mode(Mode::Ok);
    let (_hub, client) = spooling_client(&server.dsn(1), &dir);
    let ok = wait_until(Duration::from_secs(30), || received_ids(&server).len() >= 200);
    let ids = received_ids(&server);
    assert!(ok, "{} of 200 delivered after restart", ids.len());
    assert!(captured.iter().all(|id| ids.get(id) == Some(&1)), "every event exactly once");
    client.close(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(dir);
}
