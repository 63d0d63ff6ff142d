//! Helpers shared by the core behaviour tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use sentry_lite_core::{Client, ClientOptions, Hub, TestTransport};

/// A fresh hub with its own client writing into a `TestTransport`, so tests in one
/// process never share state through the main hub.
pub fn test_hub(options: ClientOptions) -> (Arc<Hub>, TestTransport, Arc<Client>) {
    let transport = TestTransport::new();
    let client = Arc::new(Client::new(options.with_transport(transport.clone()), None));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    (hub, transport, client)
}

/// Flushes, failing the test on timeout.
pub fn flush(client: &Client) {
    assert!(client.flush(Duration::from_secs(5)), "flush timed out");
}
