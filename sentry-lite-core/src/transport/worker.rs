//! The background worker: one OS thread per client, fed by a bounded queue.
//!
//! The application's threads only `try_send` into the queue. The worker turns jobs
//! into envelopes (symbolication, scope application, serialization), drops what is
//! rate limited, attaches client reports and hands bytes to the [`Transport`].
//! Flush and shutdown are markers that travel through the same queue, so they
//! cover exactly what was queued before them, and their callers wait with a deadline.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::spool::Spool;
use super::{RateLimits, SendOutcome, Transport};
use crate::client::ClientInner;
use crate::protocol::{DataCategory, DiscardReason, Envelope, Item, ItemType, Timestamp};

/// Work that becomes an envelope on the worker thread.
pub(crate) trait Job: Send {
    /// The category and quantity counted if this job is dropped before it runs.
    fn category(&self) -> (DataCategory, u64);
    /// Builds the envelope; `None` when the job decided to drop (and counted it).
    fn run(self: Box<Self>, client: &ClientInner) -> Option<Envelope>;
}

/// A buffer (spans, logs) that the worker drains on its timer, on flush and on close.
pub(crate) trait Buffer: Send + Sync {
    /// When the oldest buffered item must go out.
    fn deadline(&self) -> Option<Instant>;
    /// Takes what is due (everything with `force`).
    fn drain(&self, force: bool) -> Vec<Box<dyn Job>>;
    /// Stops accepting new items.
    fn close(&self);
}

enum Task {
    Job(Box<dyn Job>),
    Flush(SyncSender<()>),
    Shutdown(SyncSender<()>),
}

/// The application's side of the worker.
pub(crate) struct Worker {
    tx: SyncSender<Task>,
    client: Arc<ClientInner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Worker")
    }
}

/// How often an idle worker wakes to check buffers and the spool.
const IDLE_TICK: Duration = Duration::from_millis(500);
/// Back-off between attempts to re-send the spool while the server fails.
const SPOOL_MIN_BACKOFF: Duration = Duration::from_millis(500);
const SPOOL_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Spooled envelopes re-sent per worker wake-up, so new data is not starved.
const SPOOL_BATCH: usize = 200;

impl Worker {
    pub(crate) fn start(client: Arc<ClientInner>, buffers: Vec<Arc<dyn Buffer>>) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(client.options.queue_capacity.max(1));
        let inner = client.clone();
        let thread = std::thread::Builder::new().name("sentry-lite-worker".into()).spawn(move || {
            let transport = inner.create_transport();
            let spool = inner.options.spool_dir.as_deref().and_then(|dir| match Spool::open(dir, inner.options.spool_max_bytes, inner.options.spool_max_files) {
                Ok(s) => Some(s),
                Err(e) => {
                    inner.debug(&format!("offline spool unavailable ({e}); undeliverable envelopes will be dropped and counted"));
                    None
                }
            });
            let mut state = WorkerState {
                client: inner,
                transport,
                rate_limits: RateLimits::new(),
                buffers,
                spool,
                spool_retry_at: Instant::now(),
                spool_backoff: SPOOL_MIN_BACKOFF,
            };
            state.run(rx);
        })?;
        Ok(Self { tx, client, thread: Mutex::new(Some(thread)) })
    }

    /// Queues a job without blocking; a full queue drops it and counts the drop.
    pub(crate) fn submit(&self, job: Box<dyn Job>) -> bool {
        match self.tx.try_send(Task::Job(job)) {
            Ok(()) => true,
            Err(TrySendError::Full(Task::Job(job)) | TrySendError::Disconnected(Task::Job(job))) => {
                let (category, quantity) = job.category();
                self.client.reports.record(DiscardReason::QueueOverflow, category, quantity);
                false
            }
            Err(_) => false,
        }
    }

    /// Waits until everything queued before this call was handed to the transport.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        self.control(timeout, Task::Flush)
    }

    /// Flushes, then stops the worker. Returns within `timeout` even if the
    /// transport hangs; the thread then finishes in the background.
    pub(crate) fn shutdown(&self, timeout: Duration) -> bool {
        let done = self.control(timeout, Task::Shutdown);
        if done {
            if let Some(handle) = self.thread.lock().take() {
                let _ = handle.join();
            }
        }
        done
    }

    fn control(&self, timeout: Duration, make: fn(SyncSender<()>) -> Task) -> bool {
        let deadline = Instant::now() + timeout;
        let (ack_tx, ack_rx) = sync_channel(1);
        let mut task = make(ack_tx);
        // The marker must not be dropped on a full queue: retry until the deadline.
        loop {
            match self.tx.try_send(task) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(t)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    task = t;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        ack_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_ok()
    }
}

struct WorkerState {
    client: Arc<ClientInner>,
    transport: Option<Box<dyn Transport>>,
    rate_limits: RateLimits,
    buffers: Vec<Arc<dyn Buffer>>,
    spool: Option<Spool>,
    spool_retry_at: Instant,
    spool_backoff: Duration,
}

/// What became of one delivery attempt.
enum Delivery {
    Delivered,
    /// Failed in a way worth retrying later (network error or 5xx), with the
    /// reason counted if it cannot be kept.
    Retryable(DiscardReason),
    /// Rejected for good (4xx): never spooled.
    Rejected,
    /// 429: the server counts what it drops itself; never spooled.
    RateLimited,
}

impl WorkerState {
    fn run(&mut self, rx: Receiver<Task>) {
        loop {
            let now = Instant::now();
            let spool_due = self.spool.as_ref().filter(|s| !s.is_empty()).map(|_| self.spool_retry_at);
            let wait = self
                .buffers
                .iter()
                .filter_map(|b| b.deadline())
                .chain(spool_due)
                .min()
                .map_or(IDLE_TICK, |d| d.saturating_duration_since(now).min(IDLE_TICK));
            match rx.recv_timeout(wait) {
                Ok(Task::Job(job)) => self.run_job(job),
                Ok(Task::Flush(ack)) => {
                    self.drain_buffers(true);
                    self.send_pending_report();
                    let _ = ack.try_send(());
                }
                Ok(Task::Shutdown(ack)) => {
                    self.close(&rx);
                    let _ = ack.try_send(());
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.close(&rx);
                    return;
                }
            }
            self.drain_buffers(false);
            self.resend_spooled();
        }
    }

    fn close(&mut self, rx: &Receiver<Task>) {
        for b in &self.buffers {
            b.close();
        }
        while let Ok(task) = rx.try_recv() {
            match task {
                Task::Job(job) => self.run_job(job),
                Task::Flush(ack) | Task::Shutdown(ack) => {
                    let _ = ack.try_send(());
                }
            }
        }
        self.drain_buffers(true);
        self.send_pending_report();
        // One last attempt; what stays in the spool goes out on the next start.
        self.resend_spooled();
    }

    fn drain_buffers(&mut self, force: bool) {
        let now = Instant::now();
        for i in 0..self.buffers.len() {
            let due = force || self.buffers[i].deadline().is_some_and(|d| d <= now);
            if due {
                for job in self.buffers[i].drain(force) {
                    self.run_job(job);
                }
            }
        }
    }

    fn run_job(&mut self, job: Box<dyn Job>) {
        let client = self.client.clone();
        // A panic in a user callback (before_send, processors) must not kill the worker.
        let envelope = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(&client)));
        match envelope {
            Ok(Some(envelope)) => self.send(envelope),
            Ok(None) => {}
            Err(_) => self.client.debug("a job panicked on the worker (user callback?); its data was dropped"),
        }
    }

    fn send_pending_report(&mut self) {
        if !self.client.options.send_client_reports {
            return;
        }
        if let Some(report) = self.client.reports.take() {
            if let Ok(item) = Item::client_report(&report) {
                let mut env = Envelope::new();
                env.add_item(item);
                self.send(env);
            }
        }
    }

    /// Rate limits, client report, serialization and delivery of one envelope.
    pub(crate) fn send(&mut self, mut envelope: Envelope) {
        let now = Instant::now();
        let reports = &self.client.reports;
        let limits = &self.rate_limits;
        envelope.items.retain(|item| match item.ty().category() {
            Some(cat) if limits.is_limited(cat, now) => {
                record_item(reports, DiscardReason::RatelimitBackoff, item);
                false
            }
            _ => true,
        });
        if envelope.items.is_empty() {
            return;
        }
        let mut attached: Option<crate::protocol::ClientReport> = None;
        if self.client.options.send_client_reports && !envelope.items.iter().any(|i| i.ty() == &ItemType::ClientReport) {
            if let Some(report) = reports.take() {
                if let Ok(item) = Item::client_report(&report) {
                    envelope.add_item(item);
                    attached = Some(report);
                }
            }
        }
        if self.spool.as_ref().is_some_and(|s| !s.is_empty()) {
            // Keep the order: while older envelopes wait on disk, new ones queue behind them.
            if let Some(report) = attached.take() {
                envelope.items.retain(|i| i.ty() != &ItemType::ClientReport);
                reports.restore(&report);
            }
            if !self.spool_envelope(&envelope) {
                for item in &envelope.items {
                    record_item(&self.client.reports, DiscardReason::NetworkError, item);
                }
            }
            self.resend_spooled();
            return;
        }
        if envelope.items.iter().all(|i| i.ty() == &ItemType::ClientReport) && self.rate_limits.all_limited(now) {
            // A global back-off holds everything, reports included; their counts wait.
            if let Some(report) = attached {
                self.client.reports.restore(&report);
            }
            return;
        }
        match self.deliver(&mut envelope) {
            Delivery::Delivered => {}
            outcome => {
                // Undelivered counts go back to the pending report, whether this
                // envelope carried them alongside data or alone.
                envelope.items.retain(|i| {
                    if i.ty() != &ItemType::ClientReport {
                        return true;
                    }
                    if let Ok(report) = serde_json::from_slice::<crate::protocol::ClientReport>(i.payload()) {
                        self.client.reports.restore(&report);
                    }
                    false
                });
                let reason = match outcome {
                    Delivery::Retryable(_) if self.spool_envelope(&envelope) => return,
                    Delivery::Retryable(reason) => reason,
                    Delivery::RateLimited => return,
                    _ => DiscardReason::SendError,
                };
                for item in &envelope.items {
                    record_item(&self.client.reports, reason, item);
                }
            }
        }
    }

    /// One attempt at sending `envelope`, updating rate limits from the answer.
    fn deliver(&mut self, envelope: &mut Envelope) -> Delivery {
        envelope.headers.sent_at = Some(Timestamp::now().to_rfc3339());
        let body = envelope.to_vec();
        let Some(transport) = self.transport.as_mut() else {
            return Delivery::Retryable(DiscardReason::InternalSdkError);
        };
        match transport.send(envelope, &body) {
            SendOutcome::Sent { rate_limits } => {
                self.rate_limits.update(200, rate_limits.as_deref(), None, Instant::now());
                Delivery::Delivered
            }
            SendOutcome::Rejected { status, rate_limits, retry_after } => {
                self.rate_limits.update(status, rate_limits.as_deref(), retry_after.as_deref(), Instant::now());
                self.client.debug(&format!("envelope rejected with HTTP {status}"));
                match status {
                    500..=599 => Delivery::Retryable(DiscardReason::SendError),
                    429 => Delivery::RateLimited,
                    _ => Delivery::Rejected,
                }
            }
            SendOutcome::NetworkError(reason) => {
                self.client.debug(&format!("envelope not delivered: {reason}"));
                Delivery::Retryable(DiscardReason::NetworkError)
            }
        }
    }

    /// Writes an envelope to the spool, if there is one; `true` when it is safe there.
    fn spool_envelope(&mut self, envelope: &Envelope) -> bool {
        let Some(spool) = self.spool.as_mut() else { return false };
        let mut stored = envelope.clone();
        stored.headers.sent_at = None;
        if spool.store(&stored.to_vec()) {
            self.spool_retry_at = self.spool_retry_at.max(Instant::now() + self.spool_backoff);
            true
        } else {
            self.client.debug("offline spool is full; envelope dropped");
            false
        }
    }

    /// Re-sends spooled envelopes in order while the server accepts them.
    fn resend_spooled(&mut self) {
        let now = Instant::now();
        let Some(spool) = self.spool.as_ref() else { return };
        if spool.is_empty() || now < self.spool_retry_at || self.rate_limits.all_limited(now) {
            return;
        }
        let paths = spool.list().unwrap_or_default();
        for path in paths.into_iter().take(SPOOL_BATCH) {
            let Some(spool) = self.spool.as_mut() else { return };
            let parsed = spool.read(&path).and_then(|b| Envelope::from_slice(&b).ok());
            let Some(mut envelope) = parsed else {
                spool.remove(&path);
                continue;
            };
            let limits = &self.rate_limits;
            let reports = &self.client.reports;
            envelope.items.retain(|item| match item.ty().category() {
                Some(cat) if limits.is_limited(cat, now) => {
                    record_item(reports, DiscardReason::RatelimitBackoff, item);
                    false
                }
                _ => true,
            });
            if envelope.items.is_empty() {
                spool.remove(&path);
                continue;
            }
            match self.deliver(&mut envelope) {
                Delivery::Delivered => {
                    self.spool_backoff = SPOOL_MIN_BACKOFF;
                    if let Some(s) = self.spool.as_mut() {
                        s.remove(&path);
                    }
                }
                Delivery::RateLimited => {
                    // Keep it and wait for the limit to pass.
                    self.spool_retry_at = Instant::now() + SPOOL_MIN_BACKOFF;
                    return;
                }
                Delivery::Rejected => {
                    for item in &envelope.items {
                        record_item(&self.client.reports, DiscardReason::SendError, item);
                    }
                    if let Some(s) = self.spool.as_mut() {
                        s.remove(&path);
                    }
                }
                Delivery::Retryable(_) => {
                    self.spool_retry_at = Instant::now() + self.spool_backoff;
                    self.spool_backoff = (self.spool_backoff * 2).min(SPOOL_MAX_BACKOFF);
                    return;
                }
            }
        }
    }
}

fn record_item(reports: &super::ClientReports, reason: DiscardReason, item: &Item) {
    let Some(category) = item.ty().category() else { return };
    reports.record(reason, category, item.quantity());
    if item.ty() == &ItemType::Transaction {
        // A dropped transaction also drops its spans: children plus the root.
        let children = item.payload_json().and_then(|v| v.get("spans").and_then(|s| s.as_array()).map(Vec::len)).unwrap_or(0);
        reports.record(reason, DataCategory::Span, children as u64 + 1);
    }
}

/// A ready envelope (e.g. a batch of logs built by an integration).
pub(crate) struct EnvelopeJob(pub(crate) Envelope);

impl Job for EnvelopeJob {
    fn category(&self) -> (DataCategory, u64) {
        self.0.items.iter().find_map(|i| i.ty().category().map(|c| (c, i.quantity()))).unwrap_or((DataCategory::Error, 0))
    }

    fn run(self: Box<Self>, _client: &ClientInner) -> Option<Envelope> {
        Some(self.0)
    }
}
