//! The span buffer: the processor that decides *when* finished spans leave.
//!
//! Finished spans are grouped by trace id. A trace's bucket goes to the worker as
//! one job (one envelope) when it reaches [`MAX_SPANS_PER_ENVELOPE`] spans or about
//! [`MAX_BUCKET_BYTES`]; everything goes when the 5 s timer (started by the first
//! buffered span) fires, on flush and on close. At most `max_buffered_spans` spans
//! are held: on overflow the oldest whole bucket is dropped and counted.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::client::Client;
use crate::ids::TraceId;
use crate::protocol::{DataCategory, DiscardReason};
use crate::transport::worker::{Buffer, Job};

use super::record::{estimate_size, SpanBatchJob, SpanRecord};

/// Most spans in one span v2 item (Relay's limit).
pub(crate) const MAX_SPANS_PER_ENVELOPE: usize = 1000;
/// Estimated serialized size at which a bucket is sent (Relay accepts up to 10 MB).
pub(crate) const MAX_BUCKET_BYTES: usize = 5 * 1024 * 1024;
/// How long the first buffered span waits at most.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// Trace ids are random: their low bits are a perfect hash.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 ^= v as u64;
    }
}

#[derive(Default)]
struct Bucket {
    spans: Vec<SpanRecord>,
    bytes: usize,
    /// Order of creation, to find the oldest.
    seq: u64,
}

#[derive(Default)]
struct State {
    buckets: HashMap<TraceId, Bucket, BuildHasherDefault<IdHasher>>,
    total: usize,
    seq: u64,
    deadline: Option<Instant>,
    closed: bool,
    peak: usize,
}

/// See the module docs.
pub(crate) struct SpanBuffer {
    state: Mutex<State>,
    capacity: usize,
}

impl std::fmt::Debug for SpanBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanBuffer").field("len", &self.len()).field("capacity", &self.capacity).finish()
    }
}

impl SpanBuffer {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { state: Mutex::default(), capacity: capacity.max(1) }
    }

    /// Spans held right now.
    pub(crate) fn len(&self) -> usize {
        self.state.lock().total
    }

    /// Most spans ever held at once.
    #[cfg(test)]
    pub(crate) fn peak(&self) -> usize {
        self.state.lock().peak
    }

    /// Buffers a finished span; a full bucket goes to the worker at once.
    pub(crate) fn push(&self, record: SpanRecord, client: &Client) {
        let trace_id = record.segment.state.trace_id;
        let size = estimate_size(&record);
        let mut state = self.state.lock();
        if state.closed {
            drop(state);
            client.record_drop(DiscardReason::BufferOverflow, DataCategory::Span, 1);
            return;
        }
        let dropped = if state.total >= self.capacity { state.drop_oldest() } else { None };
        if state.deadline.is_none() {
            state.deadline = Some(Instant::now() + FLUSH_INTERVAL);
        }
        let seq = state.seq;
        let bucket = state.buckets.entry(trace_id).or_insert_with(|| Bucket { spans: Vec::new(), bytes: 0, seq });
        if bucket.spans.is_empty() {
            bucket.seq = seq;
        }
        bucket.spans.push(record);
        bucket.bytes += size;
        let full = bucket.spans.len() >= MAX_SPANS_PER_ENVELOPE || bucket.bytes >= MAX_BUCKET_BYTES;
        state.seq += 1;
        state.total += 1;
        state.peak = state.peak.max(state.total);
        let ready = if full { state.take(&trace_id) } else { None };
        drop(state);
        if let Some(dropped) = dropped {
            client.record_drop(DiscardReason::BufferOverflow, DataCategory::Span, dropped.len() as u64);
        }
        if let Some(spans) = ready {
            client.submit(Box::new(SpanBatchJob { spans }));
        }
    }
}

#[cfg(test)]
impl SpanBuffer {
    /// Everything buffered, for tests that look at records.
    pub(crate) fn take_records(&self) -> Vec<SpanRecord> {
        let mut state = self.state.lock();
        state.total = 0;
        state.deadline = None;
        std::mem::take(&mut state.buckets).into_values().flat_map(|b| b.spans).collect()
    }
}

impl State {
    fn take(&mut self, trace_id: &TraceId) -> Option<Vec<SpanRecord>> {
        let bucket = self.buckets.remove(trace_id)?;
        self.total -= bucket.spans.len();
        if self.total == 0 {
            self.deadline = None;
        }
        Some(bucket.spans)
    }

    /// Removes the oldest bucket (to be dropped outside the lock).
    fn drop_oldest(&mut self) -> Option<Vec<SpanRecord>> {
        let oldest = self.buckets.iter().min_by_key(|(_, b)| b.seq).map(|(id, _)| *id)?;
        self.take(&oldest)
    }
}

impl Buffer for SpanBuffer {
    fn deadline(&self) -> Option<Instant> {
        self.state.lock().deadline
    }

    fn drain(&self, force: bool) -> Vec<Box<dyn Job>> {
        let buckets = {
            let mut state = self.state.lock();
            let due = force || state.deadline.is_some_and(|d| d <= Instant::now());
            if !due || state.total == 0 {
                return Vec::new();
            }
            state.total = 0;
            state.deadline = None;
            std::mem::take(&mut state.buckets)
        };
        let mut buckets: Vec<Bucket> = buckets.into_values().collect();
        buckets.sort_by_key(|b| b.seq);
        let mut jobs: Vec<Box<dyn Job>> = Vec::with_capacity(buckets.len());
        for bucket in buckets {
            let mut spans = bucket.spans;
            while spans.len() > MAX_SPANS_PER_ENVELOPE {
                let rest = spans.split_off(MAX_SPANS_PER_ENVELOPE);
                jobs.push(Box::new(SpanBatchJob { spans }));
                spans = rest;
            }
            if !spans.is_empty() {
                jobs.push(Box::new(SpanBatchJob { spans }));
            }
        }
        jobs
    }

    fn close(&self) {
        self.state.lock().closed = true;
    }
}
