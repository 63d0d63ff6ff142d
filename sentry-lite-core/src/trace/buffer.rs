//! The span buffer: the processor that decides *when* finished spans leave.
//!
//! Finished spans are grouped by trace id. A trace's bucket goes to the worker as
//! one job (one envelope) when it reaches [`MAX_SPANS_PER_ENVELOPE`] spans or about
//! [`MAX_BUCKET_BYTES`]. When its segment (local root) finishes, the bucket is
//! complete: complete buckets leave together once they hold [`SHIP_COMPLETE_AT`]
//! spans, so a service finishing many small traces wakes the worker once per group,
//! not once per request. Spans finishing after their segment start a new bucket.
//! Everything goes when the 5 s timer (started by the first buffered span) fires,
//! on flush and on close.
//!
//! At most `max_buffered_spans` spans are held, counting both the buffered ones and
//! those handed to the worker but not yet serialized ([`InFlight`]), so memory stays
//! bounded when the worker is slower than the producer. On overflow the oldest
//! bucket (O(log n), by creation order) is dropped and counted; when the spans in
//! flight alone fill the bound, the new span is dropped and counted too.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::client::Client;
use crate::hub::ScopeSnapshot;
use crate::ids::TraceId;
use crate::protocol::{DataCategory, DiscardReason};
use crate::scope::Scope;
use crate::transport::worker::{Buffer, Job};

use super::record::{estimate_size, Records, Refs, SpanBatchJob, SpanRecord, ThreadInfo};
use super::span::SegmentShared;

/// Most spans in one span v2 item (Relay's limit).
pub(crate) const MAX_SPANS_PER_ENVELOPE: usize = 1000;
/// Estimated serialized size at which a bucket is sent (Relay accepts up to 10 MB).
pub(crate) const MAX_BUCKET_BYTES: usize = 5 * 1024 * 1024;
/// Spans in complete traces (segment finished) that are sent together.
pub(crate) const SHIP_COMPLETE_AT: usize = 100;
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

struct Bucket {
    spans: Vec<SpanRecord>,
    refs: Refs,
    bytes: usize,
    /// Order of creation, the key in [`State::order`].
    seq: u64,
}

#[derive(Default)]
struct State {
    buckets: HashMap<TraceId, Bucket, BuildHasherDefault<IdHasher>>,
    /// Every bucket by creation order (seq → trace), so the oldest is found in O(log n).
    order: BTreeMap<u64, TraceId>,
    /// Complete traces waiting to leave together (counted in `total`).
    complete: Vec<(Records, Refs)>,
    complete_spans: usize,
    total: usize,
    seq: u64,
    deadline: Option<Instant>,
    closed: bool,
    peak: usize,
    /// Tests: keep everything buffered (no segment or size flush).
    #[cfg(test)]
    hold: bool,
}

/// Spans handed to the worker and not yet serialized (or dropped), shared with the
/// batch jobs: they count against `max_buffered_spans` like buffered ones.
#[derive(Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    /// Emptied batch vectors, reused for new buckets: a bucket grown to 1 000
    /// records is ~200 KB, and allocating it afresh for every trace (freed on
    /// the worker thread) costs page faults and copies on the producer.
    pool: Mutex<Vec<Vec<SpanRecord>>>,
}

/// Vectors kept for reuse.
const POOL: usize = 4;

impl InFlight {
    fn vec(&self) -> Vec<SpanRecord> {
        self.pool.try_lock().and_then(|mut p| p.pop()).unwrap_or_default()
    }
}

/// `n` spans of one batch job in flight; released when the job is dropped (after it
/// ran, or when the queue refused it).
pub(crate) struct InFlightGuard {
    counter: Arc<InFlight>,
    n: usize,
}

impl InFlightGuard {
    /// Keeps an emptied batch vector for a later bucket.
    pub(crate) fn recycle(&self, mut spans: Vec<SpanRecord>) {
        spans.clear();
        if spans.capacity() >= 16 {
            if let Some(mut pool) = self.counter.pool.try_lock() {
                if pool.len() < POOL {
                    pool.push(spans);
                }
            }
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.counter.count.fetch_sub(self.n, Ordering::Relaxed);
    }
}

/// See the module docs.
pub(crate) struct SpanBuffer {
    state: Mutex<State>,
    capacity: usize,
    in_flight: Arc<InFlight>,
}

impl std::fmt::Debug for SpanBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanBuffer")
            .field("len", &self.len())
            .field("in_flight", &self.in_flight())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl SpanBuffer {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { state: Mutex::default(), capacity: capacity.max(1), in_flight: Arc::default() }
    }

    /// Spans held right now (not counting those in flight to the worker).
    pub(crate) fn len(&self) -> usize {
        self.state.lock().total
    }

    /// Spans handed to the worker and not yet serialized.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.count.load(Ordering::Relaxed)
    }

    /// Most spans ever held at once (buffered and in flight).
    #[cfg(test)]
    pub(crate) fn peak(&self) -> usize {
        self.state.lock().peak
    }

    /// A batch job for `spans`, counted in flight until it is dropped.
    fn job(&self, spans: Records, refs: Refs) -> Box<SpanBatchJob> {
        let n = spans.len();
        self.in_flight.count.fetch_add(n, Ordering::Relaxed);
        Box::new(SpanBatchJob { spans, refs, _in_flight: InFlightGuard { counter: self.in_flight.clone(), n } })
    }

    /// Buffers a finished span. A full bucket goes to the worker at once; a trace
    /// whose segment finished waits with the other complete ones (see module
    /// docs). Over the bound (buffered + in flight), complete traces are sent, the
    /// oldest open bucket is dropped, and the span too if that is not enough.
    pub(crate) fn push(&self, mut record: SpanRecord, segment: &Arc<SegmentShared>, thread: &Arc<ThreadInfo>) {
        if let Some(scope) = record.scope.as_mut() {
            slim(scope);
        }
        let client = &*segment.client;
        let trace_id = segment.state.trace_id;
        let is_segment = record.is_segment;
        let size = estimate_size(&record);
        let mut guard = self.state.lock();
        if guard.closed {
            drop(guard);
            drop(record);
            client.record_drop(DiscardReason::BufferOverflow, DataCategory::Span, 1);
            return;
        }
        let mut evicted = None;
        let mut ready = Vec::new();
        if guard.total + self.in_flight() >= self.capacity {
            // Complete traces go to the worker rather than being dropped.
            ready = guard.take_complete();
            evicted = guard.drop_oldest();
            if guard.total + self.in_flight() >= self.capacity {
                // The worker is behind: nothing buffered is left to make room.
                drop(guard);
                let n = evicted.map_or(0, |(e, _)| e.len()) as u64 + 1;
                drop(record);
                client.record_drop(DiscardReason::BufferOverflow, DataCategory::Span, n);
                self.submit(ready, client);
                return;
            }
        }
        let state = &mut *guard;
        #[cfg(test)]
        let is_segment = is_segment && !state.hold;
        if is_segment && !state.buckets.contains_key(&trace_id) {
            // A segment whose trace has nothing else buffered (one-span traces,
            // or children already sent): complete at once, no bucket.
            let mut refs = Refs::default();
            refs.add(&mut record, segment, thread);
            state.complete.push((Records::One(record), refs));
            state.complete_spans += 1;
            state.total += 1;
        } else {
            let bucket = match state.buckets.entry(trace_id) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let seq = state.seq;
                    state.seq += 1;
                    state.order.insert(seq, trace_id);
                    e.insert(Bucket { spans: self.in_flight.vec(), refs: Refs::default(), bytes: 0, seq })
                }
            };
            bucket.refs.add(&mut record, segment, thread);
            bucket.spans.push(record);
            bucket.bytes += size;
            let full = bucket.spans.len() >= MAX_SPANS_PER_ENVELOPE || bucket.bytes >= MAX_BUCKET_BYTES;
            state.total += 1;
            #[cfg(test)]
            let full = full && !state.hold;
            if full {
                ready.extend(state.take(&trace_id).map(|(spans, refs)| (Records::Many(spans), refs)));
            } else if is_segment {
                state.complete(&trace_id);
            }
        }
        if state.complete_spans >= SHIP_COMPLETE_AT {
            ready.extend(state.take_complete());
        }
        if state.total > 0 && state.deadline.is_none() {
            state.deadline = Some(Instant::now() + FLUSH_INTERVAL);
        }
        state.peak = state.peak.max(state.total + self.in_flight());
        drop(guard);
        if let Some(evicted) = evicted {
            client.record_drop(DiscardReason::BufferOverflow, DataCategory::Span, evicted.0.len() as u64);
        }
        // Most spans complete nothing: no call, no vector to drop.
        if !ready.is_empty() {
            self.submit(ready, client);
        }
    }

    fn submit(&self, traces: Vec<(Records, Refs)>, client: &Client) {
        for (spans, refs) in traces {
            client.submit(self.job(spans, refs));
        }
    }
}

/// Keeps of a segment's scopes only what its span carries (tags and user; see
/// `record::scoped_attributes`). A unit of work's own scopes (a request's: its
/// request data, transaction, span, trace) usually die with it right after its
/// segment finishes; held by the record, they would be freed on the worker, and
/// memory freed on another thread costs both threads more in the allocator.
fn slim(snapshot: &mut ScopeSnapshot) {
    for scope in [&mut snapshot.isolation, &mut snapshot.current] {
        let keep_nothing = scope.tags.is_empty() && scope.user.is_none();
        if keep_nothing {
            *scope = Scope::default();
        } else if scope.request.is_some() || scope.span.is_some() || scope.propagation.is_some() {
            let mut slim = Scope::default();
            slim.tags = scope.tags.clone();
            slim.user = scope.user.clone();
            *scope = slim;
        }
    }
}

#[cfg(test)]
impl SpanBuffer {
    /// A batch job as the buffer makes them.
    pub(crate) fn test_job(&self, spans: Vec<SpanRecord>, refs: Refs) -> Box<SpanBatchJob> {
        self.job(Records::Many(spans), refs)
    }

    /// Keeps every span buffered until `take_records` (or a flush).
    pub(crate) fn hold(&self) {
        self.state.lock().hold = true;
    }

    /// Everything buffered, for tests that look at records.
    pub(crate) fn take_records(&self) -> (Vec<SpanRecord>, Refs) {
        let mut state = self.state.lock();
        state.total = 0;
        state.deadline = None;
        state.order.clear();
        let mut all = (Vec::new(), Refs::default());
        let complete = std::mem::take(&mut state.complete).into_iter().map(|(spans, refs)| (spans.into_vec(), refs));
        state.complete_spans = 0;
        let buckets = std::mem::take(&mut state.buckets).into_values().map(|b| (b.spans, b.refs));
        for (mut spans, refs) in complete.chain(buckets) {
            all.1.merge(refs, &mut spans);
            all.0.append(&mut spans);
        }
        all
    }
}

impl State {
    fn take(&mut self, trace_id: &TraceId) -> Option<(Vec<SpanRecord>, Refs)> {
        let bucket = self.buckets.remove(trace_id)?;
        self.order.remove(&bucket.seq);
        self.total -= bucket.spans.len();
        if self.total == 0 {
            self.deadline = None;
        }
        Some((bucket.spans, bucket.refs))
    }

    /// Moves a trace whose segment finished to the complete ones: still buffered
    /// (in `total`, under the running timer) until enough complete traces wait.
    fn complete(&mut self, trace_id: &TraceId) {
        if let Some(bucket) = self.buckets.remove(trace_id) {
            self.order.remove(&bucket.seq);
            self.complete_spans += bucket.spans.len();
            self.complete.push((Records::Many(bucket.spans), bucket.refs));
        }
    }

    /// The complete traces, to be sent.
    fn take_complete(&mut self) -> Vec<(Records, Refs)> {
        self.total -= self.complete_spans;
        self.complete_spans = 0;
        if self.total == 0 {
            self.deadline = None;
        }
        std::mem::take(&mut self.complete)
    }

    /// Removes the oldest bucket (to be dropped outside the lock): O(log n).
    fn drop_oldest(&mut self) -> Option<(Vec<SpanRecord>, Refs)> {
        let (_, oldest) = self.order.pop_first()?;
        self.take(&oldest)
    }
}

impl Buffer for SpanBuffer {
    fn deadline(&self) -> Option<Instant> {
        self.state.lock().deadline
    }

    fn drain(&self, force: bool) -> Vec<Box<dyn Job>> {
        let (complete, buckets) = {
            let mut state = self.state.lock();
            let due = force || state.deadline.is_some_and(|d| d <= Instant::now());
            if !due || state.total == 0 {
                return Vec::new();
            }
            let complete = state.take_complete();
            state.total = 0;
            state.deadline = None;
            state.order.clear();
            (complete, std::mem::take(&mut state.buckets))
        };
        let mut buckets: Vec<Bucket> = buckets.into_values().collect();
        buckets.sort_by_key(|b| b.seq);
        let mut jobs: Vec<Box<dyn Job>> = Vec::with_capacity(complete.len() + buckets.len());
        for (spans, refs) in complete {
            jobs.push(self.job(spans, refs));
        }
        for bucket in buckets {
            let mut spans = bucket.spans;
            while spans.len() > MAX_SPANS_PER_ENVELOPE {
                let rest = spans.split_off(MAX_SPANS_PER_ENVELOPE);
                jobs.push(self.job(Records::Many(spans), bucket.refs.clone()));
                spans = rest;
            }
            if !spans.is_empty() {
                jobs.push(self.job(Records::Many(spans), bucket.refs));
            }
        }
        jobs
    }

    fn close(&self) {
        self.state.lock().closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Request, User};

    #[test]
    fn slim_scopes_keep_tags_and_user_only() {
        let mut current = Scope::default();
        current.set_tag("tier", "gold");
        current.set_request(Some(Request::default()));
        current.set_transaction(Some("GET /"));
        let mut isolation = Scope::default();
        isolation.set_user(Some(User { id: Some("7".into()), ..Default::default() }));
        let mut bare = Scope::default();
        bare.set_transaction(Some("x"));
        let mut global = Scope::default();
        global.set_request(Some(Request::default()));
        let mut snapshot = ScopeSnapshot { global, isolation, current };
        slim(&mut snapshot);
        assert_eq!(snapshot.current.tag("tier"), Some("gold"));
        assert!(snapshot.current.request.is_none() && snapshot.current.transaction.is_none());
        assert_eq!(snapshot.isolation.user().and_then(|u| u.id.as_deref()), Some("7"));
        // The global scope is shared and long-lived: left alone.
        assert!(snapshot.global.request.is_some());
        let mut snapshot = ScopeSnapshot { global: Scope::default(), isolation: Scope::default(), current: bare };
        slim(&mut snapshot);
        assert!(snapshot.current.transaction.is_none());
    }
}
