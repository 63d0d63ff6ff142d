//! Panic hook integration for sentry-lite.
//!
//! Every panic becomes one fatal event, sent before the process goes down:
//!
//! ```text
//! panic!() on thread T
//!   -> std panic machinery -> our hook (installed once, chains the previous hook)
//!        skip if: on the SDK worker thread, already inside our hook on T (re-entrancy),
//!                 or T runs under `with_hook_suppressed` (the axum layer reports itself)
//!        RawBacktrace::capture()          (unresolved; the worker trims hook/std frames)
//!        event: exception {type "panic", value = payload, mechanism panic/handled false},
//!               level fatal, threads [{id, name, crashed, current}], contexts.panic (location)
//!        active span + its segment -> status internal_error
//!        capture through T's hub (tags, breadcrumbs, user, trace link of the active span)
//!        if the panic ends the process: flush synchronously, bounded by `shutdown_timeout`
//!   -> previous hook (default: prints the message)
//!   -> unwind, or abort with `panic = "abort"`: the event is already delivered
//! ```
//!
//! # Which panics wait for delivery
//! Only a panic that ends the process waits: every panic under `panic = "abort"`,
//! and with unwinding a panic on the main thread outside a Tokio task. A panic
//! that ends only its thread, or that Tokio catches in a spawned task, queues its
//! event and returns at once: the event goes out with the rest of the traffic, and
//! the application's runtime is never held for `shutdown_timeout`. An application
//! whose own hook (installed before this one) exits or aborts on every panic turns
//! on [`PanicIntegration::with_flush_on_every_panic`].
//!
//! # Example
//! ```
//! use sentry_lite_core::ClientOptions;
//! use sentry_lite_panic::PanicIntegration;
//!
//! let _guard = sentry_lite_core::init(ClientOptions::from_env().with_integration(PanicIntegration::new()))
//!     .expect("valid DSN");
//! // From here on, a panic on any thread is reported as a fatal event.
//! ```
//!
//! Without the integration, [`install`] installs the same hook (idempotent).
//!
//! # Avoiding double reports
//! Code that catches panics and reports them itself (e.g. the axum layer, which wraps
//! handler futures in `catch_unwind`) runs the guarded section in
//! [`with_hook_suppressed`]; the hook then leaves those panics alone on that thread
//! (it still chains to the previous hook), keeping only their stack trace and
//! location, which [`capture_caught_panic`] puts in the event once the caller has
//! caught the panic. [`is_hook_suppressed`] tells whether the current thread is in
//! such a section.

mod event;
mod hook;

pub use event::{event_from_panic, panic_message};
pub use hook::{capture_caught_panic, install, is_hook_suppressed, is_installed, with_hook_suppressed};

use sentry_lite_core::protocol::Event;
use sentry_lite_core::{ClientOptions, Integration};

/// The panic hook as an [`Integration`]: installs the hook once the client is bound.
///
/// # Examples
/// ```
/// let options = sentry_lite_core::ClientOptions::new()
///     .with_integration(sentry_lite_panic::PanicIntegration::new());
/// # drop(options);
/// ```
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct PanicIntegration {
    flush_on_every_panic: bool,
}

impl PanicIntegration {
    /// The integration with default settings.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits for delivery (up to `shutdown_timeout`) after every panic, not only
    /// after those that end the process. For applications whose own panic hook,
    /// installed before this one, exits or aborts: the SDK cannot see that.
    ///
    /// # Examples
    /// ```
    /// let integration = sentry_lite_panic::PanicIntegration::new().with_flush_on_every_panic(true);
    /// # drop(integration);
    /// ```
    #[must_use]
    pub fn with_flush_on_every_panic(mut self, on: bool) -> Self {
        self.flush_on_every_panic = on;
        self
    }
}

impl Integration for PanicIntegration {
    fn name(&self) -> &'static str {
        "panic"
    }

    fn install(&self) {
        hook::set_flush_on_every_panic(self.flush_on_every_panic);
        hook::install();
    }

    fn process_event(&self, event: Event, _options: &ClientOptions) -> Option<Event> {
        Some(event::add_location_frame(event))
    }
}
