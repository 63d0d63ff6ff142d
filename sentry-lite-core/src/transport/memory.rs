//! In-memory transports for tests: the SDK's own and users'.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::{SendOutcome, Transport, TransportFactory};
use crate::protocol::{Envelope, Event, ItemType};
use crate::{ClientOptions, Dsn};

/// Collects every envelope the SDK would have sent.
///
/// Clone it freely: clones share the collected envelopes.
///
/// # Examples
/// ```
/// use sentry_lite_core::{ClientOptions, Level, TestTransport};
/// let transport = TestTransport::new();
/// let guard = sentry_lite_core::init(ClientOptions::new().with_transport(transport.clone())).unwrap();
/// sentry_lite_core::capture_message("hi", Level::Info);
/// sentry_lite_core::flush(std::time::Duration::from_secs(2));
/// assert_eq!(transport.events()[0].logentry.as_ref().unwrap().message, "hi");
/// drop(guard);
/// ```
#[derive(Debug, Clone, Default)]
pub struct TestTransport {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    envelopes: Mutex<Vec<Envelope>>,
    arrived: Condvar,
    next: Mutex<Vec<SendOutcome>>,
}

/// Alias kept for readability in tests that talk about memory.
pub type MemoryTransport = TestTransport;

impl TestTransport {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// All envelopes so far.
    pub fn envelopes(&self) -> Vec<Envelope> {
        self.shared.envelopes.lock().clone()
    }

    /// Takes and clears the envelopes so far.
    pub fn take(&self) -> Vec<Envelope> {
        std::mem::take(&mut *self.shared.envelopes.lock())
    }

    /// All error/message events so far (not transactions).
    pub fn events(&self) -> Vec<Event> {
        self.items_of(&ItemType::Event).filter_map(|v| serde_json::from_value(v).ok()).collect()
    }

    /// Payloads of all items of one type, parsed as JSON.
    pub fn items_of<'a>(&self, ty: &'a ItemType) -> impl Iterator<Item = serde_json::Value> + 'a {
        let envelopes = self.envelopes();
        envelopes.into_iter().flat_map(move |e| {
            e.items.into_iter().filter(|i| i.ty() == ty).filter_map(|i| i.payload_json()).collect::<Vec<_>>()
        })
    }

    /// Waits until at least `n` envelopes arrived or `timeout` passed; returns the count.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> usize {
        let deadline = crate::deadline::after(timeout);
        let mut envs = self.shared.envelopes.lock();
        while envs.len() < n {
            if self.shared.arrived.wait_until(&mut envs, deadline).timed_out() {
                break;
            }
        }
        envs.len()
    }

    /// Makes the next sends answer with these outcomes (in order) instead of success,
    /// to simulate a misbehaving server.
    pub fn push_outcomes(&self, outcomes: impl IntoIterator<Item = SendOutcome>) {
        self.shared.next.lock().extend(outcomes);
    }
}

impl Transport for TestTransport {
    fn send(&mut self, envelope: &Envelope, _body: &[u8]) -> SendOutcome {
        let mut next = self.shared.next.lock();
        if !next.is_empty() {
            return next.remove(0);
        }
        drop(next);
        self.shared.envelopes.lock().push(envelope.clone());
        self.shared.arrived.notify_all();
        SendOutcome::sent()
    }
}

impl TransportFactory for TestTransport {
    fn create(&self, _: &ClientOptions, _: Option<&Dsn>) -> Result<Box<dyn Transport>, String> {
        Ok(Box::new(self.clone()))
    }
}
