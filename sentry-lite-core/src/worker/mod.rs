//! The background worker: one OS thread per client, fed by a bounded queue.
//!
//! The application's threads only `try_send` into the queue. The worker turns jobs
//! into envelopes (symbolication, scope application, serialization), drops what is
//! rate limited, attaches client reports and hands bytes to the [`Transport`].
//! Flush and shutdown are markers that travel through the same queue, so they
//! cover exactly what was queued before them, and their callers wait with a deadline.
//!
//! When the transport can send several envelopes at once ([`Transport::max_batch`]),
//! the worker takes whatever jobs are already waiting (never waiting for more, and
//! never past a flush or shutdown marker) and hands their envelopes to
//! [`Transport::send_batch`] together; each envelope's outcome is then handled as
//! if it had been sent alone.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

mod client_reports;
mod job;

pub(crate) use client_reports::ClientReports;
pub(crate) use job::{guarded, Buffer, EnvelopeJob, Job, Loss, SingleJob};

use crate::protocol::{DataCategory, DiscardReason, Envelope, Item, ItemType, Timestamp};
use crate::transport::spool::{Claimed, Spool, Taken};
use crate::transport::{RateLimits, SendOutcome, Transport};

/// What the worker needs to know of the client's options.
#[derive(Debug, Clone)]
pub(crate) struct WorkerConfig {
    /// Capacity of the job queue.
    pub(crate) queue_capacity: usize,
    /// Whether drop counts are sent as client reports.
    pub(crate) send_client_reports: bool,
    /// Whether to print the SDK's diagnostics to stderr.
    pub(crate) debug: bool,
    /// Where undeliverable envelopes wait for the next attempt, if anywhere.
    pub(crate) spool_dir: Option<std::path::PathBuf>,
    pub(crate) spool_max_bytes: u64,
    pub(crate) spool_max_files: usize,
}

impl WorkerConfig {
    fn debug(&self, message: &str) {
        if self.debug {
            eprintln!("[sentry-lite] {message}");
        }
    }
}

enum Task<C: ?Sized> {
    Job(Box<dyn Job<C>>),
    Flush(SyncSender<()>),
    Shutdown(SyncSender<()>),
}

/// The application's side of the worker. `C` is what jobs read while they run.
pub(crate) struct Worker<C: ?Sized + Send + Sync + 'static> {
    tx: SyncSender<Task<C>>,
    reports: Arc<ClientReports>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Jobs accepted and not yet finished: queued, or taken by the worker.
    held: Arc<AtomicUsize>,
    /// Upper bound of `held`: the queue's capacity plus one job in the worker's
    /// hands, whether the worker takes jobs one at a time or in batches.
    max_held: usize,
}

impl<C: ?Sized + Send + Sync + 'static> std::fmt::Debug for Worker<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Worker")
    }
}

/// How often an idle worker wakes to check buffers and the spool.
const IDLE_TICK: Duration = Duration::from_millis(500);
/// Back-off between attempts to re-send the spool while the server fails.
const SPOOL_MIN_BACKOFF: Duration = Duration::from_millis(500);
const SPOOL_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Spooled envelopes re-sent between two batches of live jobs: live traffic and
/// the backlog take turns, so neither waits for the other to finish.
const SPOOL_SLICE: usize = 64;
/// Failed attempts at one spooled envelope, each while other envelopes got
/// through, after which it is dropped (and counted) instead of kept.
const MAX_SPOOL_STRIKES: u32 = 3;
/// Upper bound of `queue_capacity`: the channel allocates its slots up front.
const MAX_QUEUE_CAPACITY: usize = 1 << 20;
/// Upper bound of the envelopes handed to the transport at once.
const MAX_BATCH: usize = 16;

impl<C: ?Sized + Send + Sync + 'static> Worker<C> {
    /// Starts the worker thread. `make_transport` runs first on that thread;
    /// `None` means nothing can be sent (what is queued is then counted as lost).
    pub(crate) fn start(
        config: WorkerConfig,
        reports: Arc<ClientReports>,
        ctx: Arc<C>,
        buffers: Vec<Arc<dyn Buffer<C>>>,
        make_transport: impl FnOnce() -> Option<Box<dyn Transport>> + Send + 'static,
    ) -> std::io::Result<Self> {
        let capacity = config.queue_capacity.clamp(1, MAX_QUEUE_CAPACITY);
        let (tx, rx) = sync_channel(capacity);
        let held = Arc::new(AtomicUsize::new(0));
        let worker_reports = reports.clone();
        let worker_held = held.clone();
        let thread = std::thread::Builder::new().name("sentry-lite-worker".into()).spawn(move || {
            let transport = make_transport();
            let spool = config.spool_dir.as_deref().and_then(|dir| {
                match Spool::open(dir, config.spool_max_bytes, config.spool_max_files) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        config.debug(&format!(
                            "offline spool unavailable ({e}); undeliverable envelopes will be dropped and counted"
                        ));
                        None
                    }
                }
            });
            let batch_limit = transport.as_ref().map_or(1, |t| t.max_batch().clamp(1, MAX_BATCH));
            let mut state = WorkerState {
                config,
                reports: worker_reports,
                ctx,
                transport,
                batch_limit,
                held: worker_held,
                rate_limits: RateLimits::new(),
                buffers,
                spool,
                spool_retry_at: Instant::now(),
                spool_backoff: SPOOL_MIN_BACKOFF,
                delivered: 0,
                strikes: HashMap::new(),
                bodies: Vec::new(),
            };
            state.run(rx);
        })?;
        Ok(Self { tx, reports, thread: Mutex::new(Some(thread)), held, max_held: capacity + 1 })
    }

    /// Queues a job without blocking; a full queue drops it and counts the drop.
    pub(crate) fn submit(&self, job: Box<dyn Job<C>>) -> bool {
        if self.held.fetch_add(1, Ordering::AcqRel) >= self.max_held {
            // The queue plus the worker's batch hold as much as one queue and one job.
            self.held.fetch_sub(1, Ordering::AcqRel);
            job.loss().record(&self.reports, DiscardReason::QueueOverflow);
            return false;
        }
        match self.tx.try_send(Task::Job(job)) {
            Ok(()) => true,
            Err(TrySendError::Full(Task::Job(job)) | TrySendError::Disconnected(Task::Job(job))) => {
                self.held.fetch_sub(1, Ordering::AcqRel);
                job.loss().record(&self.reports, DiscardReason::QueueOverflow);
                false
            }
            Err(_) => {
                self.held.fetch_sub(1, Ordering::AcqRel);
                false
            }
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

    fn control(&self, timeout: Duration, make: fn(SyncSender<()>) -> Task<C>) -> bool {
        let deadline = crate::deadline::after(timeout);
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

struct WorkerState<C: ?Sized> {
    config: WorkerConfig,
    reports: Arc<ClientReports>,
    ctx: Arc<C>,
    transport: Option<Box<dyn Transport>>,
    /// Envelopes handed to the transport at once (its `max_batch`, bounded).
    batch_limit: usize,
    /// Shared with [`Worker::submit`]: decremented when a queued job is finished.
    held: Arc<AtomicUsize>,
    rate_limits: RateLimits,
    buffers: Vec<Arc<dyn Buffer<C>>>,
    spool: Option<Spool>,
    /// Until then the server is taken to be down: with a spool, new envelopes go
    /// straight to it and the spool is not re-sent.
    spool_retry_at: Instant,
    spool_backoff: Duration,
    /// Envelopes the transport delivered so far (evidence that the server is up).
    delivered: u64,
    /// Spooled envelopes that failed, by their spool name.
    strikes: HashMap<PathBuf, Strike>,
    /// Serialization buffers reused from batch to batch (one per envelope of a batch).
    bodies: Vec<Vec<u8>>,
}

/// Serialization buffers larger than this are not kept for the next batch (span
/// batches can reach megabytes; error events are a few KB).
const MAX_KEPT_BODY: usize = 64 * 1024;

/// Failures of one spooled envelope.
struct Strike {
    /// Failed attempts while other envelopes got through.
    count: u32,
    /// `WorkerState::delivered` at its last attempt.
    seen: u64,
}

/// What became of one delivery attempt.
#[derive(PartialEq, Eq)]
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

impl<C: ?Sized> WorkerState<C> {
    fn run(&mut self, rx: Receiver<Task<C>>) {
        // A marker met while taking a batch: handled right after that batch.
        let mut next: Option<Task<C>> = None;
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
            let task = match next.take() {
                Some(task) => Ok(task),
                None => rx.recv_timeout(wait),
            };
            match task {
                Ok(Task::Job(job)) => {
                    let mut jobs = vec![job];
                    // Take what is already waiting, up to a batch; never wait, and
                    // stop at a marker so that it still covers exactly what preceded it.
                    while jobs.len() < self.batch_limit {
                        match rx.try_recv() {
                            Ok(Task::Job(job)) => jobs.push(job),
                            Ok(marker) => {
                                next = Some(marker);
                                break;
                            }
                            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                        }
                    }
                    let taken = jobs.len();
                    self.run_jobs(jobs);
                    self.held.fetch_sub(taken, Ordering::AcqRel);
                }
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

    fn close(&mut self, rx: &Receiver<Task<C>>) {
        for b in &self.buffers {
            b.close();
        }
        let mut jobs = Vec::new();
        while let Ok(task) = rx.try_recv() {
            match task {
                Task::Job(job) => {
                    jobs.push(job);
                    if jobs.len() >= self.batch_limit {
                        self.finish_queued(std::mem::take(&mut jobs));
                    }
                }
                Task::Flush(ack) | Task::Shutdown(ack) => {
                    self.finish_queued(std::mem::take(&mut jobs));
                    let _ = ack.try_send(());
                }
            }
        }
        self.finish_queued(jobs);
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
                let jobs = self.buffers[i].drain(force);
                self.run_jobs(jobs);
            }
        }
    }

    /// Runs jobs taken from the queue and releases their places in it.
    fn finish_queued(&mut self, jobs: Vec<Box<dyn Job<C>>>) {
        let taken = jobs.len();
        if taken > 0 {
            self.run_jobs(jobs);
            self.held.fetch_sub(taken, Ordering::AcqRel);
        }
    }

    /// Turns jobs into envelopes and sends them, a batch at a time.
    fn run_jobs(&mut self, jobs: Vec<Box<dyn Job<C>>>) {
        let mut envelopes = Vec::with_capacity(jobs.len().min(self.batch_limit));
        for job in jobs {
            let ctx = self.ctx.clone();
            let reports = self.reports.clone();
            let limit = self.batch_limit;
            // Each envelope sent as soon as a batch is full: a group's envelopes
            // reuse the memory of the ones before them.
            let mut emit = |envelope| {
                envelopes.push(envelope);
                if envelopes.len() >= limit {
                    self.send_batch(std::mem::take(&mut envelopes));
                }
            };
            // A panic in a user callback (before_send, processors) must not kill the worker.
            if guarded(&reports, job.loss(), || job.run_into(&ctx, &mut emit)).is_none() {
                self.config.debug("a job panicked on the worker (user callback?); its data was dropped");
            }
        }
        if !envelopes.is_empty() {
            self.send_batch(envelopes);
        }
    }

    fn send_pending_report(&mut self) {
        if !self.config.send_client_reports {
            return;
        }
        if let Some(report) = self.reports.take() {
            if let Ok(item) = Item::client_report(&report) {
                let mut env = Envelope::new();
                env.add_item(item);
                self.send(env);
            }
        }
    }

    /// Rate limits, client report, serialization and delivery of one envelope.
    pub(crate) fn send(&mut self, envelope: Envelope) {
        self.send_batch(vec![envelope]);
    }

    /// Rate limits, client reports, serialization and delivery of envelopes sent
    /// together (at most `batch_limit`); each is handled as if it went alone.
    fn send_batch(&mut self, envelopes: Vec<Envelope>) {
        let ready: Vec<Envelope> = envelopes.into_iter().filter_map(|e| self.prepare(e)).collect();
        if ready.is_empty() {
            return;
        }
        let mut ready = ready;
        let deliveries = self.deliver_batch(&mut ready);
        self.note_server_state(&deliveries);
        for (envelope, delivery) in ready.into_iter().zip(deliveries) {
            self.after_delivery(envelope, delivery);
        }
    }

    /// After a batch: when something failed in a retryable way and nothing got
    /// through, the server is taken to be down for the current back-off.
    fn note_server_state(&mut self, deliveries: &[Delivery]) {
        let failed = deliveries.iter().any(|d| matches!(d, Delivery::Retryable(_)));
        if failed && !deliveries.contains(&Delivery::Delivered) {
            let now = Instant::now();
            if now >= self.spool_retry_at {
                self.spool_retry_at = now + self.spool_backoff;
                self.spool_backoff = (self.spool_backoff * 2).min(SPOOL_MAX_BACKOFF);
            }
        }
    }

    /// Everything before delivery: drops what is rate limited, attaches the pending
    /// client report, and spools instead while the server is taken to be down.
    /// `None` when nothing is left to send now.
    fn prepare(&mut self, mut envelope: Envelope) -> Option<Envelope> {
        let now = Instant::now();
        let reports = &self.reports;
        drop_rate_limited(&mut envelope, &self.rate_limits, reports, now);
        if envelope.items.is_empty() {
            return None;
        }
        let mut attached: Option<crate::protocol::ClientReport> = None;
        if self.config.send_client_reports && !envelope.items.iter().any(|i| i.ty() == &ItemType::ClientReport) {
            if let Some(report) = reports.take() {
                if let Ok(item) = Item::client_report(&report) {
                    envelope.add_item(item);
                    attached = Some(report);
                }
            }
        }
        if self.spool.is_some() && now < self.spool_retry_at {
            // The last attempts failed: store it without another one.
            if let Some(report) = attached.take() {
                envelope.items.retain(|i| i.ty() != &ItemType::ClientReport);
                reports.restore(&report);
            }
            if !self.spool_envelope(&envelope) {
                for item in &envelope.items {
                    record_item(&self.reports, DiscardReason::NetworkError, item);
                }
            }
            return None;
        }
        if envelope.items.iter().all(|i| i.ty() == &ItemType::ClientReport) && self.rate_limits.all_limited(now) {
            // A global back-off holds everything, reports included; their counts wait.
            if let Some(report) = attached {
                self.reports.restore(&report);
            }
            return None;
        }
        Some(envelope)
    }

    /// What happens to an envelope after one delivery attempt: nothing when it was
    /// delivered; else its client report counts go back to the pending report, and
    /// it is spooled (retryable failures) or its items are counted as dropped.
    fn after_delivery(&mut self, mut envelope: Envelope, delivery: Delivery) {
        if let Delivery::Delivered = delivery {
            return;
        }
        // Undelivered counts go back to the pending report, whether this
        // envelope carried them alongside data or alone.
        envelope.items.retain(|i| {
            if i.ty() != &ItemType::ClientReport {
                return true;
            }
            if let Ok(report) = serde_json::from_slice::<crate::protocol::ClientReport>(i.payload()) {
                self.reports.restore(&report);
            }
            false
        });
        let reason = match delivery {
            Delivery::Retryable(_) if self.spool_envelope(&envelope) => return,
            Delivery::Retryable(reason) => reason,
            Delivery::RateLimited => return,
            _ => DiscardReason::SendError,
        };
        for item in &envelope.items {
            record_item(&self.reports, reason, item);
        }
    }

    /// One attempt at sending each envelope (together, through
    /// [`Transport::send_batch`]), updating rate limits from the answers in order.
    fn deliver_batch(&mut self, envelopes: &mut [Envelope]) -> Vec<Delivery> {
        let sent_at = Timestamp::now().to_rfc3339();
        let mut bodies = std::mem::take(&mut self.bodies);
        if bodies.len() < envelopes.len() {
            bodies.resize_with(envelopes.len(), Vec::new);
        }
        for (envelope, body) in envelopes.iter_mut().zip(bodies.iter_mut()) {
            envelope.headers.sent_at = Some(sent_at.clone());
            body.clear();
            body.reserve(256 + envelope.items.iter().map(|i| i.payload().len() + 64).sum::<usize>());
            // Writing into a Vec cannot fail on I/O; serde errors are impossible for these types.
            let _ = envelope.to_writer(&mut *body);
        }
        let outcomes = match self.transport.as_mut() {
            None => None,
            Some(transport) if envelopes.len() == 1 => Some(vec![transport.send(&envelopes[0], &bodies[0])]),
            Some(transport) => {
                let batch: Vec<(&Envelope, &[u8])> =
                    envelopes.iter().zip(&bodies).map(|(e, b)| (e, b.as_slice())).collect();
                Some(transport.send_batch(&batch))
            }
        };
        // Keep the buffers for the next batch, unless one grew large.
        bodies.retain(|b| b.capacity() <= MAX_KEPT_BODY);
        self.bodies = bodies;
        let Some(outcomes) = outcomes else {
            return envelopes.iter().map(|_| Delivery::Retryable(DiscardReason::InternalSdkError)).collect();
        };
        let mut outcomes = outcomes.into_iter();
        envelopes
            .iter()
            .map(|_| match outcomes.next() {
                Some(outcome) => self.delivery_of(outcome),
                // A transport that answered fewer outcomes than envelopes: like a network error.
                None => self.delivery_of(SendOutcome::NetworkError("the transport returned no outcome".to_owned())),
            })
            .collect()
    }

    /// Maps a transport's answer to a delivery and applies its rate limits.
    fn delivery_of(&mut self, outcome: SendOutcome) -> Delivery {
        match outcome {
            SendOutcome::Sent { rate_limits } => {
                self.rate_limits.update(200, rate_limits.as_deref(), None, Instant::now());
                self.delivered += 1;
                self.spool_backoff = SPOOL_MIN_BACKOFF;
                Delivery::Delivered
            }
            SendOutcome::Rejected { status, rate_limits, retry_after } => {
                self.rate_limits.update(status, rate_limits.as_deref(), retry_after.as_deref(), Instant::now());
                self.config.debug(&format!("envelope rejected with HTTP {status}"));
                match status {
                    500..=599 => Delivery::Retryable(DiscardReason::SendError),
                    429 => Delivery::RateLimited,
                    _ => Delivery::Rejected,
                }
            }
            SendOutcome::NetworkError(reason) => {
                self.config.debug(&format!("envelope not delivered: {reason}"));
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
            true
        } else {
            self.config.debug("offline spool is full or cannot be written; envelope dropped");
            false
        }
    }

    /// Re-sends spooled envelopes, oldest first, a slice at a time, while the
    /// server accepts them. An envelope that fails while others get through gets
    /// a strike; at `MAX_SPOOL_STRIKES` it is dropped and counted.
    fn resend_spooled(&mut self) {
        let now = Instant::now();
        let Some(spool) = self.spool.as_mut() else { return };
        if spool.is_empty() || now < self.spool_retry_at || self.rate_limits.all_limited(now) {
            return;
        }
        let mut paths = spool.list().into_iter();
        let mut budget = SPOOL_SLICE;
        while budget > 0 {
            let batch = self.take_spooled(&mut paths, budget.min(self.batch_limit));
            if batch.is_empty() {
                return;
            }
            budget -= batch.len();
            let (claims, mut envelopes): (Vec<Claimed>, Vec<Envelope>) = batch.into_iter().unzip();
            let before = self.delivered;
            let deliveries = self.deliver_batch(&mut envelopes);
            self.note_server_state(&deliveries);
            let mut stop = Instant::now() < self.spool_retry_at;
            for ((claimed, envelope), delivery) in claims.into_iter().zip(envelopes).zip(deliveries) {
                let give_up = match delivery {
                    Delivery::Delivered => {
                        self.strikes.remove(&claimed.origin);
                        None
                    }
                    Delivery::RateLimited => {
                        self.release_spooled(claimed);
                        self.spool_retry_at = Instant::now() + SPOOL_MIN_BACKOFF;
                        stop = true;
                        continue;
                    }
                    Delivery::Rejected => Some(DiscardReason::SendError),
                    Delivery::Retryable(reason) => {
                        let strike =
                            self.strikes.entry(claimed.origin.clone()).or_insert(Strike { count: 0, seen: before });
                        if self.delivered > strike.seen {
                            strike.count += 1;
                        }
                        strike.seen = self.delivered;
                        if strike.count < MAX_SPOOL_STRIKES {
                            self.release_spooled(claimed);
                            continue;
                        }
                        self.config.debug("a spooled envelope kept failing while others got through; dropped");
                        self.strikes.remove(&claimed.origin);
                        Some(reason)
                    }
                };
                if let Some(reason) = give_up {
                    for item in &envelope.items {
                        record_item(&self.reports, reason, item);
                    }
                }
                self.discard_spooled(claimed);
            }
            if stop {
                return;
            }
        }
        // More may wait: the next slice goes right after the live jobs queued meanwhile.
        self.spool_retry_at = Instant::now();
    }

    /// Claims and reads up to `max` spooled envelopes that still have something to
    /// send. Entries that are not envelopes are skipped and counted.
    fn take_spooled(&mut self, paths: &mut impl Iterator<Item = PathBuf>, max: usize) -> Vec<(Claimed, Envelope)> {
        let now = Instant::now();
        let mut batch = Vec::new();
        while batch.len() < max {
            let Some(path) = paths.next() else { break };
            let Some(spool) = self.spool.as_mut() else { break };
            let (claimed, body) = match spool.take(&path) {
                Taken::Gone => continue,
                Taken::Skipped => {
                    self.reports.record_spool_skip();
                    continue;
                }
                Taken::Entry(claimed, body) => (claimed, body),
            };
            let Ok(mut envelope) = Envelope::from_slice(&body) else {
                // Counted once, whether or not it can be removed.
                self.reports.record_spool_skip();
                spool.discard(claimed);
                continue;
            };
            drop_rate_limited(&mut envelope, &self.rate_limits, &self.reports, now);
            if envelope.items.is_empty() {
                self.discard_spooled(claimed);
                continue;
            }
            batch.push((claimed, envelope));
        }
        batch
    }

    /// Removes a spooled envelope; one that cannot be removed is skipped (and counted)
    /// from now on, so it is never sent twice.
    fn discard_spooled(&mut self, claimed: Claimed) {
        if let Some(spool) = self.spool.as_mut() {
            if !spool.discard(claimed) {
                self.reports.record_spool_skip();
                self.config.debug("a spooled envelope cannot be removed; it is skipped from now on");
            }
        }
    }

    fn release_spooled(&mut self, claimed: Claimed) {
        if let Some(spool) = self.spool.as_mut() {
            spool.release(claimed);
        }
    }
}

/// Removes the items of rate-limited categories, counting each as `ratelimit_backoff`.
fn drop_rate_limited(envelope: &mut Envelope, limits: &RateLimits, reports: &ClientReports, now: Instant) {
    envelope.items.retain(|item| match item.ty().category() {
        Some(cat) if limits.is_limited(cat, now) => {
            record_item(reports, DiscardReason::RatelimitBackoff, item);
            false
        }
        _ => true,
    });
}

fn record_item(reports: &ClientReports, reason: DiscardReason, item: &Item) {
    let Some(category) = item.ty().category() else { return };
    reports.record(reason, category, item.quantity());
    if item.ty() == &ItemType::Transaction {
        // A dropped transaction also drops its spans: children plus the root.
        let children =
            item.payload_json().and_then(|v| v.get("spans").and_then(|s| s.as_array()).map(Vec::len)).unwrap_or(0);
        reports.record(reason, DataCategory::Span, children as u64 + 1);
    }
}
