//! Worker behaviour: bounded queue, exact drop counts, rate limits, timeouts.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sentry_lite_core::protocol::{Envelope, ItemType};
use sentry_lite_core::{
    self as sentry, Client, ClientOptions, Hub, Level, SendOutcome, TestTransport, Transport, TransportFactory,
};

/// A transport that blocks every send until released, like a server that accepts
/// and never answers.
#[derive(Clone)]
struct Gate {
    release: Arc<Mutex<mpsc::Receiver<()>>>,
    seen: TestTransport,
}

impl Transport for Gate {
    fn send(&mut self, envelope: &Envelope, body: &[u8]) -> SendOutcome {
        let _ = self.release.lock().unwrap().recv_timeout(Duration::from_secs(30));
        self.seen.clone().send(envelope, body)
    }
}

impl TransportFactory for Gate {
    fn create(&self, _: &ClientOptions, _: Option<&sentry::Dsn>) -> Result<Box<dyn Transport>, String> {
        Ok(Box::new(self.clone()))
    }
}

fn gated(capacity: usize) -> (Arc<Hub>, Arc<Client>, mpsc::Sender<()>, TestTransport) {
    let (tx, rx) = mpsc::channel();
    let seen = TestTransport::new();
    let gate = Gate { release: Arc::new(Mutex::new(rx)), seen: seen.clone() };
    let options = ClientOptions::new().with_queue_capacity(capacity).with_attach_stacktrace(false).with_transport(gate);
    let client = Arc::new(Client::new(options, None));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    (hub, client, tx, seen)
}

#[test]
fn flush_and_shutdown_honour_their_timeouts_when_the_transport_hangs() {
    let (hub, client, release, _seen) = gated(10);
    Hub::run(hub, || sentry::capture_message("stuck", Level::Error));
    let start = Instant::now();
    assert!(!client.flush(Duration::from_millis(300)));
    let took = start.elapsed();
    // Upper bounds leave room for a loaded CI machine; the transport hangs until released.
    assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(550), "{took:?}");
    let start = Instant::now();
    assert!(!client.close(Duration::from_millis(200)));
    let took = start.elapsed();
    assert!(took < Duration::from_millis(450), "{took:?}");
    drop(release);
}

#[test]
fn queue_overflow_is_counted_exactly_and_capture_never_blocks() {
    let (hub, client, release, seen) = gated(5);
    let start = Instant::now();
    Hub::run(hub, || {
        for i in 0..100 {
            sentry::capture_message(&format!("m{i}"), Level::Info);
        }
    });
    assert!(start.elapsed() < Duration::from_millis(500), "captures blocked: {:?}", start.elapsed());
    for _ in 0..200 {
        let _ = release.send(());
    }
    assert!(client.flush(Duration::from_secs(5)));
    let delivered = seen.events().len() as u64;
    let dropped: u64 = seen
        .items_of(&ItemType::ClientReport)
        .flat_map(|r| r["discarded_events"].as_array().cloned().unwrap_or_default())
        .filter(|d| d["reason"] == "queue_overflow" && d["category"] == "error")
        .map(|d| d["quantity"].as_u64().unwrap())
        .sum();
    assert_eq!(delivered + dropped, 100, "delivered {delivered} + dropped {dropped}");
    assert!(dropped > 0);
}

#[test]
fn rate_limited_categories_are_dropped_before_sending_and_counted() {
    let transport = TestTransport::new();
    transport.push_outcomes([SendOutcome::Sent { rate_limits: Some("60:error:organization".into()) }]);
    let client = Arc::new(Client::new(
        ClientOptions::new().with_attach_stacktrace(false).with_transport(transport.clone()),
        None,
    ));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    Hub::run(hub.clone(), || sentry::capture_message("first", Level::Error));
    assert!(client.flush(Duration::from_secs(2)));
    Hub::run(hub, || {
        for _ in 0..3 {
            sentry::capture_message("limited", Level::Error);
        }
    });
    assert!(client.flush(Duration::from_secs(2)));
    assert!(transport.events().is_empty(), "limited events must not be sent");
    let report = transport.items_of(&ItemType::ClientReport).last().expect("report sent at flush");
    assert_eq!(report["discarded_events"][0]["reason"], "ratelimit_backoff");
    assert_eq!(report["discarded_events"][0]["quantity"], 3);
}

#[test]
fn a_429_without_headers_backs_off_everything() {
    let transport = TestTransport::new();
    transport.push_outcomes([SendOutcome::Rejected { status: 429, rate_limits: None, retry_after: None }]);
    let client = Arc::new(Client::new(
        ClientOptions::new().with_attach_stacktrace(false).with_transport(transport.clone()),
        None,
    ));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    Hub::run(hub, || {
        sentry::capture_message("rejected", Level::Error);
        assert!(client.flush(Duration::from_secs(2)));
        sentry::capture_message("backed off", Level::Error);
    });
    assert!(client.flush(Duration::from_secs(2)));
    assert!(transport.events().is_empty());
}

#[test]
fn client_reports_can_be_turned_off() {
    let transport = TestTransport::new();
    let options =
        ClientOptions::new().with_sample_rate(0.0).with_send_client_reports(false).with_transport(transport.clone());
    let client = Arc::new(Client::new(options, None));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    Hub::run(hub, || sentry::capture_message("x", Level::Error));
    assert!(client.flush(Duration::from_secs(2)));
    assert!(transport.envelopes().is_empty());
}
