//! Helpers for users' own tests (feature `test`): run code against an in-memory
//! transport and get back what would have been sent.

use std::sync::Arc;
use std::time::Duration;

use crate::protocol::{Envelope, Event};
use crate::{Client, ClientOptions, Hub, TestTransport};

/// Runs `f` on the current thread with a fresh hub whose client records into
/// memory, then returns `f`'s result and every envelope it produced.
///
/// # Examples
/// ```
/// let (_, envelopes) = sentry_lite_core::test::with_captured_envelopes(Default::default(), || {
///     sentry_lite_core::capture_message("hello", sentry_lite_core::Level::Info);
/// });
/// assert_eq!(envelopes.len(), 1);
/// ```
pub fn with_captured_envelopes<R>(options: ClientOptions, f: impl FnOnce() -> R) -> (R, Vec<Envelope>) {
    let transport = TestTransport::new();
    let client = Arc::new(Client::new(options.with_transport(transport.clone()), None));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    let result = Hub::run(hub, f);
    client.close(Duration::from_secs(5));
    (result, transport.take())
}

/// Like [`with_captured_envelopes`], returning only the error and message events.
pub fn with_captured_events(f: impl FnOnce()) -> Vec<Event> {
    let (_, envelopes) = with_captured_envelopes(ClientOptions::new(), f);
    envelopes.iter().filter_map(Envelope::event).collect()
}
