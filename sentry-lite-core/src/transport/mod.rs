//! Transports: how a serialized envelope leaves the process.
//!
//! The background worker (`crate::worker`) decides *when* and *what* to send, applies
//! rate limits and counts drops; a [`Transport`] only decides *how*. A transport runs
//! on the worker thread and may block there, bounded by its own timeout; it never
//! runs on the application's threads or runtime.

#[cfg(feature = "http")]
mod http;
mod inbox;
mod memory;
mod rate_limit;
pub(crate) mod spool;

use std::fmt;
use std::sync::Arc;

use crate::protocol::Envelope;
use crate::ClientOptions;

#[cfg(feature = "http")]
pub use http::HttpTransport;
pub use inbox::InboxTransport;
pub use memory::{MemoryTransport, TestTransport};
pub use rate_limit::{parse_rate_limits, RateLimit, RateLimits};

/// The outcome of one send, as seen by the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendOutcome {
    /// The receiver accepted the envelope (2xx), or the sink stored it.
    Sent {
        /// `X-Sentry-Rate-Limits`, which servers may send on any response.
        rate_limits: Option<String>,
    },
    /// The receiver answered with a non-2xx status.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// `X-Sentry-Rate-Limits`, if any.
        rate_limits: Option<String>,
        /// `Retry-After`, if any.
        retry_after: Option<String>,
    },
    /// The request failed before a complete response: connection refused or reset,
    /// DNS or TLS failure, a timeout, garbage from the server.
    NetworkError(String),
}

impl SendOutcome {
    /// A successful send without rate limits.
    pub fn sent() -> Self {
        SendOutcome::Sent { rate_limits: None }
    }
}

/// Sends serialized envelopes. Runs on the SDK's worker thread.
///
/// Only [`send`](Transport::send) is required. A transport that can have several
/// requests in flight (like [`HttpTransport`]) also overrides
/// [`send_batch`](Transport::send_batch) and [`max_batch`](Transport::max_batch);
/// the worker then hands it up to `max_batch` envelopes at once.
pub trait Transport: Send + 'static {
    /// Sends one envelope. `body` is `envelope` serialized in the line format.
    /// Must return within a bounded time (e.g. the request timeout).
    fn send(&mut self, envelope: &Envelope, body: &[u8]) -> SendOutcome;

    /// Sends several independent envelopes, e.g. concurrently, and returns one
    /// outcome per envelope, in the same order. Must return within a bounded time
    /// (for a concurrent implementation: about one request timeout for the batch).
    ///
    /// The default sends them one after the other with [`send`](Transport::send).
    fn send_batch(&mut self, batch: &[(&Envelope, &[u8])]) -> Vec<SendOutcome> {
        batch.iter().map(|(envelope, body)| self.send(envelope, body)).collect()
    }

    /// The largest batch worth handing to [`send_batch`](Transport::send_batch).
    /// The default, 1, makes the worker send envelopes one at a time, so that
    /// each answer (e.g. a rate limit) applies before the next envelope goes out.
    fn max_batch(&self) -> usize {
        1
    }
}

/// Creates the transport of a client, on the worker thread.
pub trait TransportFactory: Send + Sync + 'static {
    /// Builds the transport. An error disables sending (reported with `debug`).
    fn create(&self, options: &ClientOptions, dsn: Option<&crate::Dsn>) -> Result<Box<dyn Transport>, String>;
}

impl<F> TransportFactory for F
where
    F: Fn(&ClientOptions) -> Box<dyn Transport> + Send + Sync + 'static,
{
    fn create(&self, options: &ClientOptions, _dsn: Option<&crate::Dsn>) -> Result<Box<dyn Transport>, String> {
        Ok(self(options))
    }
}

/// A transport that discards everything; useful for benchmarks.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopTransport;

impl Transport for NoopTransport {
    fn send(&mut self, _envelope: &Envelope, _body: &[u8]) -> SendOutcome {
        SendOutcome::sent()
    }
}

impl TransportFactory for NoopTransport {
    fn create(&self, _: &ClientOptions, _: Option<&crate::Dsn>) -> Result<Box<dyn Transport>, String> {
        Ok(Box::new(NoopTransport))
    }
}

impl<T: TransportFactory> TransportFactory for Arc<T> {
    fn create(&self, options: &ClientOptions, dsn: Option<&crate::Dsn>) -> Result<Box<dyn Transport>, String> {
        (**self).create(options, dsn)
    }
}

impl fmt::Debug for dyn TransportFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TransportFactory")
    }
}
