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
//! Children usually do not take this path one by one: the buffer lends the
//! trace's bucket to their segment with room for a few more (see `stage`).
//!
//! At most `max_buffered_spans` spans are held (room lent to segments included),
//! counting both the buffered ones and those handed to the worker but not yet
//! serialized ([`InFlight`]), so memory stays bounded when the worker is slower
//! than the producer. On overflow the oldest
//! bucket (O(log n), by creation order) is dropped and counted; when the spans in
//! flight alone fill the bound, the new span is dropped and counted too.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::hub::ScopeSnapshot;
use crate::ids::TraceId;
use crate::pipeline::JobContext;
use crate::protocol::{DataCategory, DiscardReason};
use crate::scope::Scope;
use crate::worker::{Buffer, Job};

use super::record::{estimate_size, Records, Refs, SpanBatchJob, SpanGroupJob, SpanRecord, ThreadInfo};
use super::span::SegmentShared;
use super::stage::GRANT;

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
    /// Its records are in a segment's stage (see `stage`).
    lent: bool,
}

#[derive(Default)]
struct State {
    buckets: HashMap<TraceId, Bucket, BuildHasherDefault<IdHasher>>,
    /// Every bucket by creation order (seq → trace), so the oldest is found in O(log n).
    order: BTreeMap<u64, TraceId>,
    /// Complete traces waiting to leave together (counted in `total`).
    complete: Vec<(Records, Refs)>,
    complete_spans: usize,
    /// Spans in buckets and complete traces (lent buckets: as when lent).
    total: usize,
    /// Room lent to stages, staged spans included: held like `total`.
    reserved: usize,
    /// Segments with a loan; each knows its position (`Stage::slot`).
    stages: Vec<Arc<SegmentShared>>,
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

/// Vectors kept for reuse: one per trace the worker finishes, taken by the
/// next new bucket. Enough for the traces of a busy moment (a trace's vector
/// grown from empty copies each record about once more).
const POOL: usize = 16;
/// Capacity above which an emptied vector is freed rather than kept: the pool
/// holds at most `POOL` × this many records' worth of memory (~650 KB).
const POOLED_CAPACITY: usize = 256;

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
        if (16..=POOLED_CAPACITY).contains(&spans.capacity()) {
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
    /// New spans are refused at the door (see [`Self::refuse`]).
    refusing: AtomicBool,
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
        Self {
            state: Mutex::default(),
            capacity: capacity.max(1),
            in_flight: Arc::default(),
            refusing: AtomicBool::new(false),
        }
    }

    /// Spans held right now, staged ones included (not counting those in flight
    /// to the worker).
    pub(crate) fn len(&self) -> usize {
        let state = self.state.lock();
        state.total + state.stages.iter().map(|s| s.stage.lock().staged()).sum::<usize>()
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

    /// Drops (and counts) a child that found no room in its segment's loan while
    /// the spans in flight to the worker alone fill the bound: nothing buffered
    /// could make room, so the buffer's lock, its loans and its oldest bucket are
    /// left alone. Once the worker has fallen that far behind, children are
    /// refused until it has caught up by an eighth of the bound: a producer
    /// faster than the worker then pays a load and a count per dropped span,
    /// instead of a trip through the buffer for a loan of a few spans each time
    /// the worker finishes a batch.
    #[inline]
    pub(crate) fn refuse(&self, sink: &impl SpanSink) -> bool {
        let in_flight = self.in_flight();
        if self.refusing.load(Ordering::Relaxed) {
            if in_flight + self.capacity / 8 < self.capacity {
                // Caught up. A race with another producer only shifts the switch.
                self.refusing.store(false, Ordering::Relaxed);
                return false;
            }
        } else if in_flight < self.capacity {
            return false;
        } else {
            self.refusing.store(true, Ordering::Relaxed);
        }
        sink.count_lost(DiscardReason::BufferOverflow, DataCategory::Span, 1);
        true
    }

    /// [`Self::refuse`] for a segment, when it has no loan: dropped (and
    /// counted) before its scopes are read or its record built. Its trace's
    /// spans already buffered stay, and leave with the timer at the latest.
    #[inline]
    pub(crate) fn refuse_segment(&self, segment: &SegmentShared) -> bool {
        let behind = self.refusing.load(Ordering::Relaxed) || self.in_flight() >= self.capacity;
        behind && segment.stage.lock().slot.is_none() && self.refuse(&*segment.client)
    }

    /// Buffers a finished segment, or a child that did not fit in its segment's
    /// loan (see `stage`), under the buffer's lock, after taking back that loan.
    /// A full bucket goes to the worker at once; a trace whose segment finished
    /// waits with the other complete ones (see module docs). Over the bound
    /// (buffered + lent + in flight), every loan ends, complete traces are sent,
    /// the oldest open bucket is dropped, and the span too if that is not
    /// enough. A child's segment then gets a new loan.
    // Out of line: the staging path in `ChildSpan::ship` stays small (no large
    // prologue).
    #[inline(never)]
    pub(crate) fn push(&self, mut record: SpanRecord, segment: &Arc<SegmentShared>, thread: &Arc<ThreadInfo>) {
        let sink = &*segment.client;
        let trace_id = segment.state.trace_id;
        let is_segment = record.is_segment;
        let size = estimate_size(&record);
        let mut guard = self.state.lock();
        if guard.closed {
            drop(guard);
            drop(record);
            sink.count_lost(DiscardReason::BufferOverflow, DataCategory::Span, 1);
            return;
        }
        let mut evicted = None;
        let mut ready = Vec::new();
        let state = &mut *guard;
        // Staged children first: back in their bucket before their segment completes it.
        state.collect(segment, true, &mut ready);
        if state.held() + self.in_flight() >= self.capacity {
            state.collect_all(true, &mut ready);
        }
        if state.held() + self.in_flight() >= self.capacity {
            // Complete traces go to the worker rather than being dropped.
            ready.extend(state.take_complete());
            evicted = state.drop_oldest();
            if state.held() + self.in_flight() >= self.capacity {
                // The worker is behind: nothing buffered is left to make room.
                drop(guard);
                let n = evicted.map_or(0, |(e, _)| e.len()) as u64 + 1;
                drop(record);
                sink.count_lost(DiscardReason::BufferOverflow, DataCategory::Span, n);
                self.submit(ready, sink);
                return;
            }
        }
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
            state.insert(&self.in_flight, record, size, segment, thread, true, &mut ready);
            if is_segment {
                state.complete(&trace_id);
            } else {
                self.lend(state, segment);
            }
        }
        if state.complete_spans >= SHIP_COMPLETE_AT {
            let complete = state.take_complete();
            // Usually nothing else is ready: the group is moved, not copied.
            if ready.is_empty() {
                ready = complete;
            } else {
                ready.extend(complete);
            }
        }
        if !state.idle() && state.deadline.is_none() {
            state.deadline = Some(Instant::now() + FLUSH_INTERVAL);
        }
        state.peak = state.peak.max(state.held() + self.in_flight());
        drop(guard);
        if let Some(evicted) = evicted {
            sink.count_lost(DiscardReason::BufferOverflow, DataCategory::Span, evicted.0.len() as u64);
        }
        // Most spans complete nothing: no call, no vector to drop.
        if !ready.is_empty() {
            self.submit(ready, sink);
        }
    }

    /// Lends the trace's bucket to the segment, with room for its next children:
    /// at most [`GRANT`], an eighth of the free room under the bound, and what
    /// the bucket can still take.
    fn lend(&self, state: &mut State, segment: &Arc<SegmentShared>) {
        let free = self.capacity.saturating_sub(state.held() + self.in_flight());
        let trace_id = segment.state.trace_id;
        let len = state.buckets.get(&trace_id).map_or(0, |b| b.spans.len());
        let n = GRANT.min(free / 8).min(MAX_SPANS_PER_ENVELOPE.saturating_sub(len));
        if n == 0 {
            return;
        }
        let mut stage = segment.stage.lock();
        if stage.slot.is_some() {
            return;
        }
        let bucket = state.bucket(&self.in_flight, trace_id);
        bucket.lent = true;
        stage.records = std::mem::take(&mut bucket.spans);
        stage.refs = std::mem::take(&mut bucket.refs);
        stage.bytes = bucket.bytes;
        stage.base = stage.records.len();
        stage.limit = stage.base + n;
        stage.slot = Some(state.stages.len());
        state.stages.push(segment.clone());
        state.reserved += n;
    }

    /// One job for several traces (one envelope each, see [`SpanGroupJob`]).
    fn group_job(&self, traces: Vec<(Records, Refs)>) -> Box<dyn Job<JobContext>> {
        let n = traces.iter().map(|(s, _)| s.len()).sum();
        self.in_flight.count.fetch_add(n, Ordering::Relaxed);
        Box::new(SpanGroupJob { traces, _in_flight: InFlightGuard { counter: self.in_flight.clone(), n } })
    }

    fn submit(&self, mut traces: Vec<(Records, Refs)>, sink: &impl SpanSink) {
        match traces.len() {
            0 => {}
            1 => {
                let (spans, refs) = traces.pop().expect("one trace");
                sink.submit_spans(self.job(spans, refs));
            }
            _ => {
                sink.submit_spans(self.group_job(traces));
            }
        }
    }
}

/// Where the buffer hands its batches and counts the spans it drops (the client).
pub(crate) trait SpanSink {
    /// Queues a batch for the worker; a full queue drops and counts it.
    fn submit_spans(&self, job: Box<dyn Job<JobContext>>);
    /// Counts spans dropped before they became a batch.
    fn count_lost(&self, reason: DiscardReason, category: DataCategory, quantity: u64);
}

/// The scopes a segment keeps (either lifecycle), from the hub that ran it: only tags and
/// users (see [`slim`]), and none at all when no scope has any, so most
/// segments cost no box (allocated here, freed on the worker).
pub(crate) fn segment_scope(hub: &crate::hub::Hub) -> Option<Box<ScopeSnapshot>> {
    let mut snapshot = hub.span_tag_scopes()?;
    slim(&mut snapshot);
    Some(Box::new(snapshot))
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
        state.collect_all(false, &mut Vec::new());
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
    /// Spans counted against the bound (granted room included).
    fn held(&self) -> usize {
        self.total + self.reserved
    }

    /// Nothing buffered, nothing granted: no timer needed.
    fn idle(&self) -> bool {
        self.total == 0 && self.stages.is_empty()
    }

    /// Puts a record in its trace's bucket; with `ship`, a full bucket goes to
    /// `ready` (otherwise `drain` splits it).
    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        pool: &InFlight,
        mut record: SpanRecord,
        size: usize,
        segment: &Arc<SegmentShared>,
        thread: &Arc<ThreadInfo>,
        ship: bool,
        ready: &mut Vec<(Records, Refs)>,
    ) {
        let trace_id = segment.state.trace_id;
        let bucket = self.bucket(pool, trace_id);
        bucket.refs.add(&mut record, segment, thread);
        bucket.spans.push(record);
        bucket.bytes += size;
        self.total += 1;
        if ship {
            self.ship_if_full(trace_id, ready);
        }
    }

    /// The trace's bucket (taken back if lent), new ones in creation order.
    fn bucket(&mut self, pool: &InFlight, trace_id: TraceId) -> &mut Bucket {
        self.reclaim(trace_id);
        match self.buckets.entry(trace_id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let seq = self.seq;
                self.seq += 1;
                self.order.insert(seq, trace_id);
                e.insert(Bucket { spans: pool.vec(), refs: Refs::default(), bytes: 0, seq, lent: false })
            }
        }
    }

    /// Takes back the trace's bucket if a segment has it (another segment of the
    /// trace than the one at hand: rare).
    fn reclaim(&mut self, trace_id: TraceId) {
        if self.buckets.get(&trace_id).is_some_and(|b| b.lent) {
            let borrower = self.stages.iter().find(|s| s.state.trace_id == trace_id).cloned();
            if let Some(segment) = borrower {
                self.collect(&segment, false, &mut Vec::new());
            }
        }
    }

    /// A full bucket goes to `ready`, in batches of at most
    /// [`MAX_SPANS_PER_ENVELOPE`].
    fn ship_if_full(&mut self, trace_id: TraceId, ready: &mut Vec<(Records, Refs)>) {
        let Some(bucket) = self.buckets.get(&trace_id) else {
            return;
        };
        let full = bucket.spans.len() >= MAX_SPANS_PER_ENVELOPE || bucket.bytes >= MAX_BUCKET_BYTES;
        #[cfg(test)]
        let full = full && !self.hold;
        if !full {
            return;
        }
        if let Some((mut spans, refs)) = self.take(&trace_id) {
            while spans.len() > MAX_SPANS_PER_ENVELOPE {
                let rest = spans.split_off(MAX_SPANS_PER_ENVELOPE);
                ready.push((Records::Many(spans), refs.clone()));
                spans = rest;
            }
            ready.push((Records::Many(spans), refs));
        }
    }

    /// Takes back the bucket lent to a segment, with its staged children.
    fn collect(&mut self, segment: &Arc<SegmentShared>, ship: bool, ready: &mut Vec<(Records, Refs)>) {
        let mut stage = segment.stage.lock();
        let Some(slot) = stage.slot.take() else {
            return;
        };
        self.stages.swap_remove(slot);
        if let Some(moved) = self.stages.get(slot) {
            // Another segment's stage: only the buffer's lock holder takes two.
            moved.stage.lock().slot = Some(slot);
        }
        self.give_back(segment, &mut stage, ship, ready);
    }

    /// Takes back every lent bucket (timer, flush, close, overflow).
    fn collect_all(&mut self, ship: bool, ready: &mut Vec<(Records, Refs)>) {
        for segment in std::mem::take(&mut self.stages) {
            let mut stage = segment.stage.lock();
            stage.slot = None;
            self.give_back(&segment, &mut stage, ship, ready);
        }
    }

    fn give_back(
        &mut self,
        segment: &Arc<SegmentShared>,
        stage: &mut super::stage::Stage,
        ship: bool,
        ready: &mut Vec<(Records, Refs)>,
    ) {
        self.reserved -= stage.reserved();
        self.total += stage.staged();
        let trace_id = segment.state.trace_id;
        let spans = std::mem::take(&mut stage.records);
        let refs = std::mem::take(&mut stage.refs);
        let bytes = std::mem::take(&mut stage.bytes);
        (stage.base, stage.limit) = (0, 0);
        match self.buckets.get_mut(&trace_id) {
            Some(bucket) if bucket.lent => {
                bucket.lent = false;
                (bucket.spans, bucket.refs, bucket.bytes) = (spans, refs, bytes);
                if bucket.spans.is_empty() {
                    let seq = bucket.seq;
                    self.buckets.remove(&trace_id);
                    self.order.remove(&seq);
                } else if ship {
                    self.ship_if_full(trace_id, ready);
                }
            }
            // Not expected: a lent bucket stays in its place until given back.
            Some(bucket) => {
                for mut record in spans {
                    let (segment, thread) = (refs.segment_arc(&record), refs.thread_arc(&record));
                    bucket.refs.add(&mut record, segment, thread);
                    bucket.spans.push(record);
                }
                bucket.bytes += bytes;
            }
            None if !spans.is_empty() => {
                let seq = self.seq;
                self.seq += 1;
                self.order.insert(seq, trace_id);
                self.buckets.insert(trace_id, Bucket { spans, refs, bytes, seq, lent: false });
            }
            None => {}
        }
        if self.idle() {
            self.deadline = None;
        }
    }

    fn take(&mut self, trace_id: &TraceId) -> Option<(Vec<SpanRecord>, Refs)> {
        let bucket = self.buckets.remove(trace_id)?;
        self.order.remove(&bucket.seq);
        self.total -= bucket.spans.len();
        if self.idle() {
            self.deadline = None;
        }
        Some((bucket.spans, bucket.refs))
    }

    /// Moves a trace whose segment finished to the complete ones: still buffered
    /// (in `total`, under the running timer) until enough complete traces wait.
    fn complete(&mut self, trace_id: &TraceId) {
        self.reclaim(*trace_id);
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
        if self.idle() {
            self.deadline = None;
        }
        // Sized for the next group: grown one push at a time, the vector of
        // large records would be reallocated and copied ~7 times per group.
        let next = if self.complete.is_empty() { Vec::new() } else { Vec::with_capacity(SHIP_COMPLETE_AT) };
        std::mem::replace(&mut self.complete, next)
    }

    /// Removes the oldest bucket (to be dropped outside the lock): O(log n).
    fn drop_oldest(&mut self) -> Option<(Vec<SpanRecord>, Refs)> {
        let (_, oldest) = self.order.pop_first()?;
        self.take(&oldest)
    }
}

impl Buffer<JobContext> for SpanBuffer {
    fn deadline(&self) -> Option<Instant> {
        self.state.lock().deadline
    }

    fn drain(&self, force: bool) -> Vec<Box<dyn Job<JobContext>>> {
        let (complete, buckets) = {
            let mut state = self.state.lock();
            let due = force || state.deadline.is_some_and(|d| d <= Instant::now());
            if !due || state.idle() {
                return Vec::new();
            }
            state.collect_all(false, &mut Vec::new());
            let complete = state.take_complete();
            state.total = 0;
            state.deadline = None;
            state.order.clear();
            (complete, std::mem::take(&mut state.buckets))
        };
        let mut buckets: Vec<Bucket> = buckets.into_values().collect();
        buckets.sort_by_key(|b| b.seq);
        let mut jobs: Vec<Box<dyn Job<JobContext>>> = Vec::with_capacity(1 + buckets.len());
        if !complete.is_empty() {
            jobs.push(self.group_job(complete));
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
        let mut state = self.state.lock();
        state.closed = true;
        // Staged spans stay buffered for the final drain; no new grant.
        state.collect_all(false, &mut Vec::new());
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

    #[test]
    fn segment_scope_is_kept_only_with_tags_or_a_user() {
        let hub = crate::hub::Hub::new_from_top(&crate::hub::Hub::main());
        hub.configure_scope(|s| {
            s.set_request(Some(Request::default()));
            s.set_transaction(Some("GET /"));
        });
        assert!(segment_scope(&hub).is_none(), "no tags, no user: nothing kept");
        hub.configure_isolation_scope(|s| s.set_user(Some(User { id: Some("7".into()), ..Default::default() })));
        let kept = segment_scope(&hub).expect("a user is kept");
        assert_eq!(kept.isolation.user().and_then(|u| u.id.as_deref()), Some("7"));
        assert!(kept.current.request.is_none() && kept.current.transaction.is_none());
        hub.configure_isolation_scope(|s| s.set_user(None));
        hub.configure_scope(|s| s.set_tag("tier", "gold"));
        let kept = segment_scope(&hub).expect("tags are kept");
        assert_eq!(kept.current.tag("tier"), Some("gold"));
        assert!(kept.current.request.is_none(), "slimmed");
    }
}
