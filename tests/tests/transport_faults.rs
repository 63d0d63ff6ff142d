//! The HTTP transport against a fault-injecting loopback receiver: the app never
//! blocks, timeouts hold, every drop is counted, delivery resumes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sentry_lite_core::protocol::{DataCategory, DiscardReason};
use sentry_lite_core::{self as sentry, Client, ClientOptions, Dsn, Hub, Level};
use sentry_lite_tests::fault_server::{FaultServer, Mode};

fn client_for(server: &FaultServer, options: ClientOptions) -> (Arc<Hub>, Arc<Client>) {
    let dsn: Dsn = server.dsn(1).parse().unwrap();
    let client = Arc::new(Client::new(options.with_attach_stacktrace(false), Some(dsn)));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    (hub, client)
}

fn capture_n(hub: &Arc<Hub>, n: usize) -> Vec<Duration> {
    Hub::run(hub.clone(), || {
        (0..n)
            .map(|i| {
                let start = Instant::now();
                sentry::capture_message(&format!("message {i}"), Level::Error);
                start.elapsed()
            })
            .collect()
    })
}

fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[(samples.len() * 99 / 100).min(samples.len() - 1)]
}

fn received_events(server: &FaultServer) -> usize {
    server.requests().iter().filter_map(|r| r.envelope().ok()).map(|e| e.events().len()).sum()
}

fn reported(server: &FaultServer, reason: &str, category: &str) -> u64 {
    server
        .requests()
        .iter()
        .filter_map(|r| r.envelope().ok())
        .flat_map(|e| e.items_of("client_report").filter_map(|i| i.json().ok()).collect::<Vec<_>>())
        .flat_map(|r| r["discarded_events"].as_array().cloned().unwrap_or_default())
        .filter(|d| d["reason"] == reason && d["category"] == category)
        .map(|d| d["quantity"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn requests_carry_auth_content_type_and_gzip() {
    let server = FaultServer::start();
    let (hub, client) = client_for(&server, ClientOptions::new());
    Hub::run(hub, || sentry::capture_message(&"x".repeat(4096), Level::Error));
    assert!(client.flush(Duration::from_secs(5)));
    let requests = server.wait_for_requests(1, Duration::from_secs(5));
    let req = &requests[0];
    assert_eq!(req.path, "/api/1/envelope/");
    assert_eq!(req.header("content-type"), Some("application/x-sentry-envelope"));
    assert_eq!(req.header("content-encoding"), Some("gzip"));
    assert!(req.header("user-agent").unwrap().starts_with("sentry.rust.lite/"));
    let auth = req.header("x-sentry-auth").unwrap();
    assert!(auth.contains("sentry_key=public") && auth.contains("sentry_version=7"), "{auth}");
    assert_eq!(req.envelope().unwrap().events().len(), 1);
}

#[test]
fn refused_connections_are_counted_and_delivery_resumes() {
    let server = FaultServer::start();
    server.set_mode(Mode::Refuse);
    let (hub, client) = client_for(&server, ClientOptions::new());
    let latencies = capture_n(&hub, 20);
    assert!(p99(latencies) < Duration::from_millis(5), "captures must not wait for the network");
    assert!(client.flush(Duration::from_secs(10)));
    assert_eq!(client.discarded(DiscardReason::NetworkError, DataCategory::Error), 20);
    server.set_mode(Mode::Ok);
    capture_n(&hub, 1);
    assert!(client.flush(Duration::from_secs(5)));
    server.wait_for_requests(1, Duration::from_secs(5));
    assert_eq!(received_events(&server), 1);
    assert_eq!(reported(&server, "network_error", "error"), 20, "the drops reach Sentry in a client report");
}

#[test]
fn flush_and_shutdown_return_on_time_when_the_server_never_answers() {
    let server = FaultServer::start();
    server.set_mode(Mode::Hang);
    let (hub, client) = client_for(&server, ClientOptions::new().with_request_timeout(Duration::from_secs(60)));
    let latencies = capture_n(&hub, 50);
    assert!(p99(latencies) < Duration::from_millis(5));
    for timeout in [Duration::from_millis(300), Duration::from_millis(700)] {
        let start = Instant::now();
        assert!(!client.flush(timeout));
        let took = start.elapsed();
        // The upper bound leaves room for a loaded CI machine; blocking would take the
        // request timeout or forever.
        assert!(took >= timeout && took < timeout + Duration::from_millis(250), "flush({timeout:?}) took {took:?}");
    }
    let start = Instant::now();
    assert!(!client.close(Duration::from_millis(400)));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(400) && took < Duration::from_millis(650), "close took {took:?}");
}

#[test]
fn a_full_queue_drops_and_counts_while_memory_stays_bounded() {
    let server = FaultServer::start();
    server.set_mode(Mode::Hang);
    let capacity = 16;
    let (hub, client) = client_for(
        &server,
        ClientOptions::new().with_queue_capacity(capacity).with_request_timeout(Duration::from_secs(1)),
    );
    capture_n(&hub, 1_000);
    let overflow = client.discarded(DiscardReason::QueueOverflow, DataCategory::Error);
    // At most `capacity` queued plus one in the worker's hands.
    assert!(overflow >= 1_000 - capacity as u64 - 1, "overflow {overflow}");
    server.set_mode(Mode::Ok);
    assert!(client.flush(Duration::from_secs(30)));
    let network = client.discarded(DiscardReason::NetworkError, DataCategory::Error);
    // Hung requests reach the server (possibly only after the mode changed) but are
    // never answered: not delivered. Only requests answered `Ok` count.
    let delivered: u64 = server
        .requests()
        .iter()
        .filter(|r| r.mode == Mode::Ok)
        .filter_map(|r| r.envelope().ok())
        .map(|e| e.events().len() as u64)
        .sum();
    assert_eq!(delivered + network + overflow, 1_000, "delivered {delivered} network {network} overflow {overflow}");
}

#[test]
fn server_errors_are_counted_as_send_errors() {
    for status in [500, 413] {
        let server = FaultServer::start();
        server.set_mode(Mode::Status(status));
        let (hub, client) = client_for(&server, ClientOptions::new());
        capture_n(&hub, 3);
        assert!(client.flush(Duration::from_secs(5)));
        assert_eq!(client.discarded(DiscardReason::SendError, DataCategory::Error), 3, "status {status}");
    }
}

#[test]
fn a_429_limits_what_it_names_and_nothing_else() {
    let server = FaultServer::start();
    server.set_mode(Mode::TooManyRequests { rate_limits: Some("60:error:organization".into()), retry_after: None });
    let (hub, client) = client_for(&server, ClientOptions::new());
    capture_n(&hub, 1);
    assert!(client.flush(Duration::from_secs(5)));
    server.clear_requests();
    server.set_mode(Mode::Ok);
    capture_n(&hub, 5);
    assert!(client.flush(Duration::from_secs(5)));
    assert_eq!(received_events(&server), 0);
    // The server counts the one it refused itself; the SDK counts what it held back.
    assert_eq!(client.discarded(DiscardReason::RatelimitBackoff, DataCategory::Error), 5);
    assert_eq!(client.discarded(DiscardReason::SendError, DataCategory::Error), 0);
}

#[test]
fn a_429_without_headers_backs_off_all_categories() {
    let server = FaultServer::start();
    server.set_mode(Mode::TooManyRequests { rate_limits: None, retry_after: None });
    let (hub, client) = client_for(&server, ClientOptions::new());
    capture_n(&hub, 1);
    assert!(client.flush(Duration::from_secs(5)));
    let before = server.requests().len();
    server.set_mode(Mode::Ok);
    capture_n(&hub, 4);
    assert!(client.flush(Duration::from_secs(5)));
    assert_eq!(server.requests().len(), before, "nothing sent during the 60 s back-off");
    assert_eq!(client.discarded(DiscardReason::RatelimitBackoff, DataCategory::Error), 4);
}

#[test]
fn slow_servers_delay_delivery_not_the_app() {
    let server = FaultServer::start();
    server.set_mode(Mode::Slow(Duration::from_millis(200)));
    let (hub, client) = client_for(&server, ClientOptions::new());
    let latencies = capture_n(&hub, 10);
    assert!(p99(latencies) < Duration::from_millis(5));
    assert!(client.flush(Duration::from_secs(10)));
    assert_eq!(received_events(&server), 10);
}
