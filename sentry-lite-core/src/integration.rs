//! Integrations: pieces that hook into the SDK at `init`.

use std::fmt;

use crate::protocol::Event;
use crate::ClientOptions;

/// An integration, e.g. the panic hook of `sentry-lite-panic`.
pub trait Integration: Send + Sync + 'static {
    /// A short name, listed in the event's `sdk.integrations`.
    fn name(&self) -> &'static str;

    /// Called once at `init`, before the client is built; may adjust options.
    fn setup(&self, _options: &mut ClientOptions) {}

    /// Called once the client is bound to the main hub.
    fn install(&self) {}

    /// Processes every event on the worker; `None` drops it (counted as `event_processor`).
    fn process_event(&self, event: Event, _options: &ClientOptions) -> Option<Event> {
        Some(event)
    }
}

impl fmt::Debug for dyn Integration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Integration({})", self.name())
    }
}
