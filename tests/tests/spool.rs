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
    spooling_client_with(dsn, dir, |o| o)
}

fn spooling_client_with(
    dsn: &str,
    dir: &PathBuf,
    configure: impl FnOnce(ClientOptions) -> ClientOptions,
) -> (Arc<Hub>, Arc<Client>) {
    let dsn: Dsn = dsn.parse().unwrap();
    // Every spooled envelope costs an fsync (~1.6 ms on this machine's disk, more under
    // load), so a burst during an outage needs queue room while the spool catches up.
    let options = configure(
        ClientOptions::new()
            .with_attach_stacktrace(false)
            .with_spool_dir(dir)
            .with_queue_capacity(20_000)
            .with_request_timeout(Duration::from_secs(2)),
    );
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

/// Captures `n` events named `<prefix> <i>` in `hub`; their ids.
fn capture_n(hub: &Arc<Hub>, prefix: &str, n: usize) -> Vec<String> {
    Hub::run(hub.clone(), || {
        (0..n).map(|i| sentry::capture_message(&format!("{prefix} {i}"), Level::Error).to_string()).collect()
    })
}

/// Fills a spool with `n` events while the server refuses connections, through a
/// client of its own that then closes; their ids.
fn fill_spool(server: &FaultServer, dir: &PathBuf, n: usize) -> Vec<String> {
    server.set_mode(Mode::Refuse);
    let (hub, client) = spooling_client(&server.dsn(1), dir);
    let ids = capture_n(&hub, "spooled", n);
    client.close(Duration::from_secs(30));
    assert_eq!(client.discarded(DiscardReason::NetworkError, DataCategory::Error), 0, "all {n} spooled");
    ids
}

#[test]
fn the_spool_drains_while_the_app_keeps_capturing() {
    let server = FaultServer::start();
    let dir = spool_dir("drain");
    // A backlog close to the file bound: live events must not have to wait in it.
    let backlog = fill_spool(&server, &dir, 250);
    server.set_mode(Mode::Ok);
    let (hub, client) = spooling_client_with(&server.dsn(1), &dir, |o| o.with_spool_max_files(300));
    let recovered = Instant::now();
    // 20 events/s for 8 s while the backlog drains.
    let backlog_delivered = || {
        let ids = received_ids(&server);
        backlog.iter().all(|id| ids.contains_key(id))
    };
    let mut live = Vec::new();
    let mut backlog_wait = None;
    for i in 0..160 {
        let due = Duration::from_millis(50 * i);
        if let Some(wait) = due.checked_sub(recovered.elapsed()) {
            std::thread::sleep(wait);
        }
        live.extend(capture_n(&hub, "live", 1));
        if i % 10 == 9 && backlog_wait.is_none() && backlog_delivered() {
            backlog_wait = Some(recovered.elapsed());
        }
    }
    let backlog_done = wait_until(Duration::from_secs(30), backlog_delivered);
    let backlog_wait = backlog_wait.unwrap_or_else(|| recovered.elapsed());
    assert!(client.flush(Duration::from_secs(10)));
    let ids = received_ids(&server);
    let missing = backlog.iter().filter(|id| !ids.contains_key(*id)).count();
    assert!(backlog_done, "{missing} of {} spooled events still waiting after recovery", backlog.len());
    assert!(live.iter().chain(&backlog).all(|id| ids.get(id) == Some(&1)), "every event exactly once");
    for reason in [DiscardReason::NetworkError, DiscardReason::QueueOverflow, DiscardReason::SendError] {
        assert_eq!(client.discarded(reason, DataCategory::Error), 0, "{reason:?}");
    }
    println!("backlog of {} delivered {backlog_wait:?} after recovery under 20 events/s", backlog.len());
    client.close(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_envelope_the_server_always_refuses_does_not_block_the_others() {
    let server = FaultServer::start();
    server.set_poison(Some(("poison pill", 500)));
    let dir = spool_dir("poison");
    let (hub, client) = spooling_client(&server.dsn(1), &dir);
    let poison = capture_n(&hub, "poison pill", 1).remove(0);
    let mut others = Vec::new();
    let start = Instant::now();
    for _ in 0..40 {
        others.extend(capture_n(&hub, "fine", 5));
        std::thread::sleep(Duration::from_millis(100));
    }
    let ok = wait_until(Duration::from_secs(20), || {
        let ids = received_ids(&server);
        others.iter().all(|id| ids.contains_key(id))
            && client.discarded(DiscardReason::SendError, DataCategory::Error) == 1
    });
    let ids = received_ids(&server);
    let delivered = others.iter().filter(|id| ids.contains_key(*id)).count();
    assert!(ok, "{delivered} of {} delivered in {:?} behind a poison envelope", others.len(), start.elapsed());
    assert!(others.iter().all(|id| ids.get(id) == Some(&1)), "every event exactly once");
    // The first attempt, one retry to learn that others get through, then one per
    // strike: at most five.
    let attempts = ids.get(&poison).copied().unwrap_or(0);
    assert!((2..=5).contains(&attempts), "the poison envelope was tried {attempts} times");
    assert_eq!(client.discarded(DiscardReason::SendError, DataCategory::Error), 1);
    // Given up on: nothing waits in the spool any more.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(received_ids(&server).get(&poison).copied().unwrap_or(0), attempts);
    client.close(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(dir);
}

const RO_CHILD_DIR: &str = "SENTRY_LITE_SPOOL_RO_DIR";

/// Runs only as the child of `a_read_only_spool_is_sent_once_and_odd_entries_are_skipped`,
/// with the spool directory mounted read-only.
#[test]
fn spool_read_only_child() {
    let (Ok(dir), Ok(dsn)) = (std::env::var(RO_CHILD_DIR), std::env::var(CHILD_DSN)) else { return };
    let dir = PathBuf::from(dir);
    assert!(std::fs::remove_dir_all(dir.join("probe")).is_err(), "the spool is not read-only");
    let (_hub, client) = spooling_client_with(&dsn, &dir, |o| o.with_spool_max_bytes(1 << 20));
    std::thread::sleep(Duration::from_secs(4));
    println!("spool-skipped={}", client.spool_skipped());
    client.close(Duration::from_secs(5));
}

#[test]
fn a_read_only_spool_is_sent_once_and_odd_entries_are_skipped() {
    let server = FaultServer::start();
    let dir = spool_dir("readonly");
    let spooled = fill_spool(&server, &dir, 5);
    // Entries that are not envelopes, ahead of the real ones in the listing.
    std::fs::create_dir_all(dir.join("00000000000000000000-0000000000-1.envelope/inside")).unwrap();
    std::fs::write(dir.join("00000000000000000001-0000000000-1.envelope"), b"not an envelope\n{{{").unwrap();
    std::fs::write(dir.join("00000000000000000002-0000000000-1.envelope"), vec![b'{'; 2 << 20]).unwrap();
    std::fs::create_dir_all(dir.join("probe")).unwrap();
    server.set_mode(Mode::Ok);
    let script = r#"mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@""#;
    let out = std::process::Command::new("unshare")
        .args(["-rm", "sh", "-c", script])
        .arg(&dir)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "spool_read_only_child", "--nocapture", "--test-threads=1"])
        .env(RO_CHILD_DIR, &dir)
        .env(CHILD_DSN, server.dsn(1))
        .output()
        .expect("unshare (util-linux) runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let ids = received_ids(&server);
    assert!(spooled.iter().all(|id| ids.get(id) == Some(&1)), "each spooled event once: {ids:?}");
    // The five envelopes, plus at most a client report or two: no re-sending loop.
    assert!(server.request_count() <= 8, "{} requests", server.request_count());
    // Three entries that are not envelopes, five that could not be removed.
    assert!(stdout.contains("spool-skipped=8"), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}

const FSIZE_CHILD: &str = "SENTRY_LITE_SPOOL_FSIZE_CHILD";

/// Runs only as the child of `a_file_size_limit_is_a_counted_drop_not_a_signal`,
/// under `ulimit -f 1` (1 KiB).
#[test]
fn spool_fsize_child() {
    let (Ok(dir), Ok(dsn)) = (std::env::var(FSIZE_CHILD), std::env::var(CHILD_DSN)) else { return };
    let (hub, client) = spooling_client(&dsn, &PathBuf::from(dir));
    let big = "x".repeat(4096);
    Hub::run(hub, || {
        for _ in 0..3 {
            sentry::capture_message(&big, Level::Error);
        }
    });
    assert!(client.flush(Duration::from_secs(10)));
    println!("network-errors={}", client.discarded(DiscardReason::NetworkError, DataCategory::Error));
    client.close(Duration::from_secs(5));
}

#[test]
fn a_file_size_limit_is_a_counted_drop_not_a_signal() {
    let server = FaultServer::start();
    server.set_mode(Mode::Refuse);
    let dir = spool_dir("fsize");
    let out = std::process::Command::new("sh")
        .args(["-c", r#"ulimit -f 1 && exec "$0" "$@""#])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "spool_fsize_child", "--nocapture", "--test-threads=1"])
        .env(FSIZE_CHILD, &dir)
        .env(CHILD_DSN, server.dsn(1))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}: {stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("network-errors=3"), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}
