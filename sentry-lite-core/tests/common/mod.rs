//! Helpers shared by the core behaviour tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use sentry_lite_core::{Client, ClientOptions, Hub, TestTransport};

/// A DSN with a real (32 hex digits) public key, as Sentry issues them.
pub const DSN: &str = "https://0123456789abcdef0123456789abcdef@sentry.example/1";

/// Its public key.
pub const KEY: &str = "0123456789abcdef0123456789abcdef";

/// A fresh hub with its own client writing into a `TestTransport`, so tests in one
/// process never share state through the main hub.
pub fn test_hub(options: ClientOptions) -> (Arc<Hub>, TestTransport, Arc<Client>) {
    let transport = TestTransport::new();
    let dsn = DSN.parse().ok();
    let client = Arc::new(Client::new(options.with_transport(transport.clone()), dsn));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    (hub, transport, client)
}

/// Flushes, failing the test on timeout.
pub fn flush(client: &Client) {
    assert!(client.flush(Duration::from_secs(5)), "flush timed out");
}
