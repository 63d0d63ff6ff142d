//! Structured-log batching: a bounded queue drained by a small flusher thread into
//! `log` envelopes (≤ 100 logs each), every 5 s, at 100 queued logs and on flush.
//! The buffer registers itself as a [`FlushHook`] on every client it queues logs
//! for, so `sentry_lite_core::flush` and shutdown drain it too.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use sentry_lite_core::protocol::{Attribute, AttributeValue, DataCategory, DiscardReason, Envelope, Item, LogItem};
use sentry_lite_core::{Client, FlushHook, Hub, SDK_NAME, SDK_VERSION};

/// Most logs in one envelope item.
pub(crate) const MAX_LOGS_PER_ITEM: usize = 100;
/// Most logs waiting to be sent; beyond it new logs are dropped and counted.
pub(crate) const MAX_QUEUED_LOGS: usize = 1000;
/// How long the first queued log waits at most.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Queue {
    /// Client the queued logs belong to (logs of another client flush these first).
    client: Option<Arc<Client>>,
    logs: Vec<LogItem>,
    first_at: Option<Instant>,
    shutdown: bool,
    thread_started: bool,
    /// Clients this buffer is registered on as a flush hook (weak: identity only; a
    /// weak reference keeps the address from being reused while held).
    hooked: Vec<Weak<Client>>,
}

/// The flush hook registered on clients: weak, so a client never keeps the layer's
/// buffer alive.
struct Hook(Weak<LogBuffer>);

impl FlushHook for Hook {
    fn flush(&self) {
        if let Some(buffer) = self.0.upgrade() {
            buffer.flush();
        }
    }
}

/// The log queue shared by the layer, its flusher thread and [`LogFlusher`] handles.
#[derive(Default)]
pub(crate) struct LogBuffer {
    queue: Mutex<Queue>,
    wake: Condvar,
    dropped: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Held from taking a batch until it is queued, so `flush` never misses one in flight.
    sending: Mutex<()>,
}

impl std::fmt::Debug for LogBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBuffer").field("dropped", &self.dropped.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

impl LogBuffer {
    /// Queues one log of `client`. Never blocks on I/O; a full queue drops it.
    pub(crate) fn push(self: &Arc<Self>, client: &Arc<Client>, log: LogItem) {
        let mut q = self.queue.lock();
        if q.shutdown {
            return;
        }
        if q.client.as_ref().is_some_and(|c| !Arc::ptr_eq(c, client)) {
            // A different client (tests, re-init): send what belongs to the old one.
            let old = take(&mut q);
            drop(q);
            send(old);
            q = self.queue.lock();
        }
        let hook = !q.hooked.iter().any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(client)));
        if hook {
            q.hooked.retain(|w| w.strong_count() > 0);
            q.hooked.push(Arc::downgrade(client));
        }
        if q.logs.len() >= MAX_QUEUED_LOGS {
            drop(q);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            client.record_lost(DiscardReason::BufferOverflow, DataCategory::LogItem, 1);
            if hook {
                client.register_flush_hook(Arc::new(Hook(Arc::downgrade(self))));
            }
            return;
        }
        if q.client.is_none() {
            q.client = Some(client.clone());
        }
        if q.first_at.is_none() {
            q.first_at = Some(Instant::now());
        }
        q.logs.push(log);
        let full = q.logs.len() >= MAX_LOGS_PER_ITEM;
        let start = !q.thread_started;
        q.thread_started = true;
        drop(q);
        if hook {
            client.register_flush_hook(Arc::new(Hook(Arc::downgrade(self))));
        }
        if start {
            self.start_thread();
        }
        if full {
            self.wake.notify_one();
        }
    }

    fn start_thread(self: &Arc<Self>) {
        let me = Arc::clone(self);
        let handle = std::thread::Builder::new().name("sentry-lite-logs".into()).spawn(move || me.run());
        if let Ok(h) = handle {
            *self.thread.lock() = Some(h);
        }
    }

    fn run(&self) {
        loop {
            let mut q = self.queue.lock();
            loop {
                if q.shutdown {
                    return;
                }
                let due = q.first_at.map(|t| t + FLUSH_INTERVAL);
                if q.logs.len() >= MAX_LOGS_PER_ITEM || due.is_some_and(|d| d <= Instant::now()) {
                    break;
                }
                match due {
                    Some(d) => {
                        self.wake.wait_until(&mut q, d);
                    }
                    None => self.wake.wait(&mut q),
                }
            }
            drop(q);
            let _sending = self.sending.lock();
            let batch = take(&mut self.queue.lock());
            send(batch);
        }
    }

    /// Sends everything queued through the client's worker (does not wait for I/O).
    pub(crate) fn flush(&self) {
        let _sending = self.sending.lock();
        let batch = take(&mut self.queue.lock());
        send(batch);
    }

    /// Flushes and stops the flusher thread.
    pub(crate) fn shutdown(&self) {
        let batch = {
            let mut q = self.queue.lock();
            q.shutdown = true;
            take(&mut q)
        };
        self.wake.notify_all();
        send(batch);
        if let Some(h) = self.thread.lock().take() {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

type Batch = Option<(Arc<Client>, Vec<LogItem>)>;

fn take(q: &mut Queue) -> Batch {
    q.first_at = None;
    let client = q.client.take()?;
    let logs = std::mem::take(&mut q.logs);
    (!logs.is_empty()).then_some((client, logs))
}

/// Adds the client's default attributes and queues one envelope per 100 logs.
fn send(batch: Batch) {
    let Some((client, mut logs)) = batch else { return };
    let defaults = default_attributes(&client);
    for log in &mut logs {
        for (k, v) in &defaults {
            log.attributes.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client));
    Hub::run(hub, || {
        for chunk in logs.chunks(MAX_LOGS_PER_ITEM) {
            if let Ok(item) = Item::logs(chunk) {
                let mut envelope = Envelope::new();
                envelope.add_item(item);
                sentry_lite_core::capture_envelope(envelope);
            }
        }
    });
}

fn default_attributes(client: &Client) -> BTreeMap<String, Attribute> {
    let o = client.options();
    let mut attrs = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        attrs.insert(k.to_owned(), Attribute::from(&AttributeValue::from(v)));
    };
    put("sentry.environment", o.effective_environment());
    if let Some(r) = &o.release {
        put("sentry.release", r);
    }
    put("sentry.sdk.name", SDK_NAME);
    put("sentry.sdk.version", SDK_VERSION);
    if let Some(s) = client.server_name() {
        put("server.address", s);
    }
    attrs
}

/// A handle to the layer's log queue. `sentry_lite_core::flush` and shutdown drain
/// it already (the queue is a flush hook of the client); this flushes it alone.
#[derive(Debug, Clone)]
pub struct LogFlusher {
    pub(crate) buffer: Arc<LogBuffer>,
}

impl LogFlusher {
    /// Hands every queued log to the client's worker (never blocks on I/O).
    pub fn flush(&self) {
        self.buffer.flush();
    }

    /// How many logs were dropped because the queue was full (also counted in the
    /// client's reports as `buffer_overflow` / `log_item`).
    pub fn dropped(&self) -> u64 {
        self.buffer.dropped()
    }
}
