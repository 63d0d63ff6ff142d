//! The client: options, the worker, and the capture path.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::contexts::default_contexts;
use crate::error_chain::exceptions_from_error;
use crate::hub::Hub;
use crate::ids::{random_f64, EventId};
use crate::pipeline::{JobContext, PendingEvent};
use crate::protocol::{DataCategory, DiscardReason, Event, Level, SdkInfo, SdkPackage, Values, SDK_NAME, SDK_VERSION};
use crate::stacktrace::RawBacktrace;
use crate::trace::buffer::{SpanBuffer, SpanSink};
use crate::transport::Transport;
use crate::worker::{Buffer, ClientReports, Job, Worker, WorkerConfig};
use crate::{ClientOptions, Dsn};

/// The client's transport: the configured factory's, else HTTP to the DSN.
fn create_transport(ctx: &JobContext) -> Option<Box<dyn Transport>> {
    let result = match &ctx.options.transport {
        Some(factory) => factory.create(&ctx.options, ctx.dsn.as_ref()),
        None => default_transport(ctx),
    };
    match result {
        Ok(t) => Some(t),
        Err(e) => {
            ctx.debug(&format!("transport could not be created, nothing will be sent: {e}"));
            None
        }
    }
}

#[cfg(feature = "http")]
fn default_transport(ctx: &JobContext) -> Result<Box<dyn Transport>, String> {
    match &ctx.dsn {
        Some(dsn) => crate::transport::HttpTransport::new(&ctx.options, dsn).map(|t| Box::new(t) as Box<dyn Transport>),
        None => Err("no DSN".into()),
    }
}

#[cfg(not(feature = "http"))]
fn default_transport(_ctx: &JobContext) -> Result<Box<dyn Transport>, String> {
    Err("the `http` feature is off and no transport was configured".into())
}

/// A configured client. Usually created by [`crate::init`] and used through the hub.
pub struct Client {
    inner: Arc<JobContext>,
    worker: Option<Worker<JobContext>>,
    buffers: Mutex<Vec<Arc<dyn Buffer<JobContext>>>>,
    spans: Arc<SpanBuffer>,
    flush_hooks: Mutex<Vec<Arc<dyn FlushHook>>>,
}

/// Something outside the core that buffers data for Sentry (e.g. the log batcher of
/// the `tracing` integration): the client drains it first on every flush and close.
pub trait FlushHook: Send + Sync + 'static {
    /// Hands everything buffered to the client (e.g. through [`crate::capture_envelope`]).
    fn flush(&self);
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("dsn", &self.inner.dsn).field("enabled", &self.is_enabled()).finish()
    }
}

impl Client {
    /// Builds a client and starts its worker. With neither DSN nor custom transport
    /// the client is disabled and captures are no-ops.
    pub fn new(options: ClientOptions, dsn: Option<Dsn>) -> Self {
        let enabled = dsn.is_some() || options.transport.is_some();
        let server_name = options.server_name.as_deref().map(str::to_owned).or_else(hostname);
        let mut integrations: Vec<String> = options.integrations.iter().map(|i| i.name().to_owned()).collect();
        integrations.sort();
        let sdk = SdkInfo {
            name: SDK_NAME.into(),
            version: SDK_VERSION.into(),
            integrations,
            packages: vec![SdkPackage { name: "cargo:sentry-lite-core".into(), version: SDK_VERSION.into() }],
        };
        let inner = Arc::new(JobContext {
            options,
            dsn,
            reports: Arc::new(ClientReports::default()),
            sdk,
            contexts: default_contexts(),
            server_name,
            span_attributes: std::sync::OnceLock::new(),
        });
        let spans = Arc::new(SpanBuffer::new(inner.options.max_buffered_spans));
        let buffers: Vec<Arc<dyn Buffer<JobContext>>> = vec![spans.clone()];
        let worker = if enabled {
            let options = &inner.options;
            let config = WorkerConfig {
                queue_capacity: options.queue_capacity,
                send_client_reports: options.send_client_reports,
                debug: options.debug,
                spool_dir: options.spool_dir.clone(),
                spool_max_bytes: options.spool_max_bytes,
                spool_max_files: options.spool_max_files,
            };
            let ctx = inner.clone();
            let make_transport = move || {
                // Here rather than on the first span's thread (~1 ms).
                crate::trace::clock::calibrate();
                create_transport(&ctx)
            };
            match Worker::start(config, inner.reports.clone(), inner.clone(), buffers.clone(), make_transport) {
                Ok(w) => Some(w),
                Err(e) => {
                    inner.debug(&format!("could not start the worker thread, SDK disabled: {e}"));
                    None
                }
            }
        } else {
            None
        };
        Self { inner, worker, buffers: Mutex::new(buffers), spans, flush_hooks: Mutex::new(Vec::new()) }
    }

    /// Whether this client sends anything.
    pub fn is_enabled(&self) -> bool {
        self.worker.is_some()
    }

    /// The options.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// The DSN, if any.
    pub fn dsn(&self) -> Option<&Dsn> {
        self.inner.dsn.as_ref()
    }

    /// How many items were dropped for `reason` in `category` since the client
    /// started; the same counts go to Sentry in client reports.
    ///
    /// # Examples
    /// ```
    /// use sentry_lite_core::protocol::{DataCategory, DiscardReason};
    /// let client = sentry_lite_core::Client::new(sentry_lite_core::ClientOptions::new(), None);
    /// assert_eq!(client.discarded(DiscardReason::QueueOverflow, DataCategory::Error), 0);
    /// ```
    pub fn discarded(&self, reason: DiscardReason, category: DataCategory) -> u64 {
        self.inner.reports.total(reason, category)
    }

    /// How many entries of the offline spool were skipped: files that are not
    /// envelopes (a directory, a corrupt or oversized file), or envelopes that
    /// were delivered but could not be removed. Each is skipped once and never
    /// blocks or repeats the entries behind it.
    ///
    /// # Examples
    /// ```
    /// let client = sentry_lite_core::Client::new(sentry_lite_core::ClientOptions::new(), None);
    /// assert_eq!(client.spool_skipped(), 0);
    /// ```
    pub fn spool_skipped(&self) -> u64 {
        self.inner.reports.spool_skipped()
    }

    /// Drops an item and counts it, for integrations that buffer their own data.
    pub fn record_lost(&self, reason: DiscardReason, category: DataCategory, quantity: u64) {
        self.record_drop(reason, category, quantity);
    }

    /// The server name sent with events (configured, else the host name).
    pub fn server_name(&self) -> Option<&str> {
        self.inner.server_name.as_deref()
    }

    /// Registers a buffer outside the core to drain on every flush and close.
    pub fn register_flush_hook(&self, hook: Arc<dyn FlushHook>) {
        self.flush_hooks.lock().push(hook);
    }

    fn run_flush_hooks(&self) {
        let hooks: Vec<Arc<dyn FlushHook>> = self.flush_hooks.lock().clone();
        for hook in hooks {
            hook.flush();
        }
    }

    /// The span buffer (stream mode).
    pub(crate) fn span_buffer(&self) -> &Arc<SpanBuffer> {
        &self.spans
    }

    /// What the client's jobs read on the worker.
    pub(crate) fn inner(&self) -> &Arc<JobContext> {
        &self.inner
    }

    pub(crate) fn submit(&self, job: Box<dyn Job<JobContext>>) -> bool {
        match &self.worker {
            Some(w) => w.submit(job),
            None => false,
        }
    }

    pub(crate) fn record_drop(&self, reason: DiscardReason, category: DataCategory, quantity: u64) {
        if self.is_enabled() {
            self.inner.reports.record(reason, category, quantity);
        }
    }

    /// Captures an event with the scopes of `hub`. Returns its id, or the nil id
    /// when it was dropped by sampling or the client is disabled.
    ///
    /// The event travels in the box that becomes the worker's job: one allocation,
    /// and no move of the large event along the capture path.
    pub(crate) fn capture(&self, hub: &Hub, mut job: Box<PendingEvent>) -> EventId {
        if !self.is_enabled() {
            return EventId::nil();
        }
        let rate = self.inner.options.sample_rate;
        if rate < 1.0 && random_f64() >= f64::from(rate) {
            self.record_drop(DiscardReason::SampleRate, DataCategory::Error, 1);
            return EventId::nil();
        }
        let id = job.event.event_id;
        job.scopes = Some(hub.snapshot());
        self.submit(job);
        hub.set_last_event_id(id);
        id
    }

    /// Builds the event for an error and its `source()` chain.
    pub(crate) fn event_from_error(
        &self,
        error: &(dyn Error + 'static),
        type_name: Option<&'static str>,
    ) -> Box<PendingEvent> {
        let mut job = PendingEvent::new(Event::new(), None);
        job.event.level = Some(Level::Error);
        job.event.exception = Some(Values { values: exceptions_from_error(error, type_name) });
        job.backtrace = self.inner.options.attach_stacktrace.then(RawBacktrace::capture);
        job
    }

    /// Sends everything queued so far; `false` if `timeout` passed first.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.run_flush_hooks();
        match &self.worker {
            Some(w) => w.flush(timeout),
            None => true,
        }
    }

    /// Flushes and stops the worker within `timeout`.
    pub fn close(&self, timeout: Duration) -> bool {
        self.run_flush_hooks();
        for b in self.buffers.lock().iter() {
            b.close();
        }
        match &self.worker {
            Some(w) => w.shutdown(timeout),
            None => true,
        }
    }
}

impl SpanSink for Client {
    fn submit_spans(&self, job: Box<dyn Job<JobContext>>) {
        self.submit(job);
    }

    fn count_lost(&self, reason: DiscardReason, category: DataCategory, quantity: u64) {
        self.record_drop(reason, category, quantity);
    }
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}
