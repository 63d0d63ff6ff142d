//! The span handle and what recording spans share with their segment.
//!
//! A [`Span`] is either *recording* or *non-recording* (ids and the trace's
//! sampling state inline: no allocation, nothing buffered). A recording segment
//! is an `Arc` of its mutable data, shared with clones; a recording child lives
//! in a slot of its segment (see `child`). All spans of one local root (the *segment*)
//! share a [`SegmentShared`]: the trace's sampling state, the client, the segment's
//! name, source and status (read by children at flush time, so a late rename
//! reaches every span) and the frozen DSC.
//!
//! Finishing moves the span's data into a [`SpanRecord`] and hands it to the span
//! buffer (stream mode) or the segment's collector (static mode): one short lock,
//! no serialization. Everything else happens on the worker.

use parking_lot::Mutex;
use std::fmt;
use std::sync::{Arc, Weak};

use crate::client::Client;
use crate::hub::{Hub, EVER_ENABLED};
use crate::ids::{SpanId, TraceId};
use crate::options::TraceLifecycle;
use crate::pipeline::JobContext;
use crate::protocol::{AttributeValue, DataCategory, DiscardReason, DynamicSamplingContext, SpanStatus, TraceContext};

use super::child::ChildSpan;
use super::clock::Tick;
use super::name::{IntoSpanName, SharedStr, SpanName};
use super::propagation::{format_rate, format_sample_rand, Baggage};
use super::record::{AttributeKey, SpanRecord, ThreadInfo};
use super::sampling::{decide, new_sample_rand, SamplingContext};
use super::PropagationContext;

/// Sampling state of a trace as seen by this process.
#[derive(Clone, Debug)]
pub(crate) struct TraceState {
    pub(crate) trace_id: TraceId,
    /// `None`: deferred.
    pub(crate) sampled: Option<bool>,
    pub(crate) sample_rand: f64,
    /// The rate of the decision when this SDK made it (or upstream sent it).
    pub(crate) sample_rate: Option<f64>,
    /// The incoming context this trace continues, with its frozen DSC.
    pub(crate) continued: Option<Arc<PropagationContext>>,
}

impl TraceState {
    /// The DSC: the incoming frozen one when continuing, else built from the client.
    pub(crate) fn dsc(&self, client: Option<&JobContext>, transaction: Option<String>) -> DynamicSamplingContext {
        if let Some(mut dsc) = self.continued.as_ref().and_then(|p| p.dsc.clone()) {
            dsc.trace_id = self.trace_id;
            return dsc;
        }
        let mut dsc = DynamicSamplingContext {
            trace_id: self.trace_id,
            sample_rand: Some(format_sample_rand(self.sample_rand)),
            sampled: self.sampled.map(|s| s.to_string()),
            sample_rate: self.sample_rate.map(format_rate),
            transaction,
            ..DynamicSamplingContext::default()
        };
        if let Some(client) = client {
            dsc.public_key = client.dsn.as_ref().map(|d| d.public_key().to_owned());
            dsc.org_id = client.org_id().map(|o| o.to_string());
            dsc.release = client.options.release.as_deref().map(str::to_owned);
            dsc.environment = Some(client.options.effective_environment().to_owned());
        }
        dsc
    }
}

/// Mutable state of a segment, read by its children at flush time.
#[derive(Debug, Default)]
pub(crate) struct SegmentMeta {
    /// Inline when short: a root span's name costs no allocation.
    pub(crate) name: SpanName,
    pub(crate) source: Option<String>,
    pub(crate) status: Option<SpanStatus>,
    /// Boxed: most segments never freeze one on the caller's thread, and the
    /// segment is moved several times while it is built (~230 bytes less).
    pub(crate) dsc: Option<Box<DynamicSamplingContext>>,
    pub(crate) finished: bool,
}

impl SegmentMeta {
    /// The segment's name for the DSC: never a URL, never empty.
    fn dsc_transaction(&self) -> Option<String> {
        let good_name = self.source.as_deref() != Some("url") && !self.name.is_empty();
        good_name.then(|| self.name.to_string())
    }
}

/// What all recording spans of one segment share.
pub(crate) struct SegmentShared {
    pub(crate) state: TraceState,
    pub(crate) span_id: SpanId,
    pub(crate) client: Arc<Client>,
    pub(crate) meta: Mutex<SegmentMeta>,
    /// The hub whose scopes are applied to the segment when it finishes.
    hub: Mutex<Weak<Hub>>,
    /// The thread the segment started on, shared by its spans that start there
    /// (no reference count per span).
    pub(crate) thread: Arc<ThreadInfo>,
    /// Static mode: finished children waiting for the segment.
    pub(crate) children: Mutex<super::static_mode::Children>,
    /// Stream mode: finished children waiting for the span buffer.
    pub(crate) stage: Mutex<super::stage::Stage>,
}

impl fmt::Debug for SegmentShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("trace_id", &self.state.trace_id)
            .field("span_id", &self.span_id)
            .finish_non_exhaustive()
    }
}

impl SegmentShared {
    /// The segment's current name.
    pub(crate) fn name(&self) -> String {
        self.meta.lock().name.to_string()
    }

    /// `sentry.span.source` of the segment (`custom` unless set).
    pub(crate) fn source(&self) -> String {
        self.meta.lock().source.clone().unwrap_or_else(|| "custom".to_owned())
    }

    /// The trace's DSC, frozen on first use (propagation, an error, a flush).
    pub(crate) fn frozen_dsc(&self, client: &JobContext) -> DynamicSamplingContext {
        let mut meta = self.meta.lock();
        if let Some(dsc) = &meta.dsc {
            return DynamicSamplingContext::clone(dsc);
        }
        let transaction = meta.dsc_transaction();
        let dsc = self.state.dsc(Some(client), transaction);
        meta.dsc = Some(Box::new(dsc.clone()));
        dsc
    }

    /// The DSC for a batch of the segment's spans on the worker. When the batch
    /// holds the last reference to the segment, nothing can read the frozen DSC
    /// any more: it is moved out, or built without keeping a copy (one DSC's
    /// strings built per one-span trace, not built, boxed and cloned).
    pub(crate) fn dsc_for_batch(self: &Arc<Self>, client: &JobContext) -> DynamicSamplingContext {
        if Arc::strong_count(self) > 1 {
            return self.frozen_dsc(client);
        }
        let mut meta = self.meta.lock();
        if let Some(dsc) = meta.dsc.take() {
            return *dsc;
        }
        let transaction = meta.dsc_transaction();
        self.state.dsc(Some(client), transaction)
    }

    /// Sets the hub whose scope data goes on the segment span.
    pub(crate) fn set_hub(&self, hub: &Arc<Hub>) {
        *self.hub.lock() = Arc::downgrade(hub);
    }

    /// Taken when the segment finishes (its only use): the weak count is then
    /// released on the caller's thread, not by the worker dropping the segment
    /// (which would pull the hub's cache line to the worker on every trace).
    fn take_hub(&self) -> Option<Arc<Hub>> {
        std::mem::take(&mut *self.hub.lock()).upgrade()
    }

    pub(crate) fn lifecycle(&self) -> TraceLifecycle {
        self.client.options().trace_lifecycle
    }
}

/// A span's data until it finishes.
#[derive(Debug)]
pub(crate) struct SpanData {
    /// Unused for segments, whose name lives in [`SegmentMeta`].
    pub(crate) name: SpanName,
    pub(crate) op: Option<SharedStr>,
    pub(crate) origin: Option<SharedStr>,
    pub(crate) status: SpanStatus,
    pub(crate) attributes: Vec<(AttributeKey, AttributeValue)>,
    /// The thread the span started on when not its segment's (see
    /// [`SegmentShared::thread`]).
    pub(crate) thread: Option<Arc<ThreadInfo>>,
    /// Op, origin and status stay readable after the end, for events captured in
    /// the span but processed later.
    pub(crate) finished: bool,
}

impl SpanData {
    pub(crate) const EMPTY: SpanData = SpanData {
        name: SpanName::EMPTY,
        op: None,
        origin: None,
        status: SpanStatus::Ok,
        attributes: Vec::new(),
        thread: None,
        finished: false,
    };
}

/// A recording segment (children are kept by their segment, see `child`).
struct SpanInner {
    span_id: SpanId,
    parent_span_id: Option<SpanId>,
    start: Tick,
    segment: Arc<SegmentShared>,
    data: Mutex<SpanData>,
}

impl SpanInner {
    fn finish(&self) {
        let mut guard = self.data.lock();
        if guard.finished {
            return;
        }
        guard.finished = true;
        let segment = &self.segment;
        let lifecycle = segment.lifecycle();
        if lifecycle != TraceLifecycle::Static && segment.client.span_buffer().refuse_segment(segment) {
            drop(guard);
            segment.meta.lock().finished = true;
            drop(segment.take_hub());
            return;
        }
        let mut record = SpanRecord::BLANK;
        record.span_id = self.span_id;
        record.parent_span_id = self.parent_span_id;
        record.start = self.start;
        record.is_segment = true;
        record.op = guard.op.clone();
        record.origin = guard.origin.clone();
        record.status = guard.status;
        record.attributes = std::mem::take(&mut guard.attributes);
        let thread = guard.thread.take();
        drop(guard);
        record.end = Tick::now();
        let thread = thread.as_ref().unwrap_or(&segment.thread);
        let status = {
            let mut meta = segment.meta.lock();
            meta.finished = true;
            meta.status
        };
        if let Some(status) = status {
            record.status = status;
        }
        // Both lifecycles send a segment's tags and user, and nothing else of its scopes.
        record.scope = segment.take_hub().and_then(|h| super::buffer::segment_scope(&h));
        match lifecycle {
            TraceLifecycle::Static => super::static_mode::collect(record, segment, thread),
            _ => segment.client.span_buffer().push(record, segment, thread),
        }
    }
}

impl Drop for SpanInner {
    fn drop(&mut self) {
        // The last handle: no lock needed to see whether it already finished.
        if !self.data.get_mut().finished {
            self.finish();
        }
    }
}

/// A non-recording span: ids and sampling state for propagation, nothing else.
#[derive(Clone, Debug)]
struct NonRecording {
    state: TraceState,
    span_id: SpanId,
    parent_span_id: Option<SpanId>,
    /// Dropped by `ignore_spans` (its children are dropped too).
    ignored: bool,
}

#[derive(Clone)]
enum Repr {
    /// A recording segment.
    Recording(Arc<SpanInner>),
    /// A recording child, kept by its segment.
    Child(ChildSpan),
    NonRecording(NonRecording),
}

/// A span: a timed operation in a trace.
///
/// Cheap to clone (clones share the span). A span finishes on [`Span::finish`] or
/// when its last clone drops. Unsampled and ignored spans are *non-recording*: they
/// carry ids for propagation and every setter is a no-op.
///
/// # Examples
/// ```
/// let root = sentry_lite_core::start_root_span("GET /users/{id}", "http.server");
/// root.set_source("route");
/// let child = root.start_child("SELECT users", "db.query");
/// child.set_attribute("db.system", "postgresql");
/// child.finish();
/// root.finish();
/// ```
#[derive(Clone)]
pub struct Span {
    repr: Repr,
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Span")
            .field("trace_id", &self.trace_id())
            .field("span_id", &self.span_id())
            .field("parent_span_id", &self.parent_span_id())
            .field("recording", &self.is_recording())
            .finish()
    }
}

fn ignored<N: std::ops::Deref<Target = str>>(client: &Client, name: &N, op: Option<&str>) -> bool {
    let patterns = &client.options().ignore_spans;
    // The name's `deref` is only paid when there are patterns.
    !patterns.is_empty() && patterns.iter().any(|p| p.matches(name, op))
}

fn non_empty(op: &str) -> Option<&str> {
    (!op.is_empty()).then_some(op)
}

impl Span {
    fn non_recording(state: TraceState, parent_span_id: Option<SpanId>, ignored: bool) -> Self {
        Span { repr: Repr::NonRecording(NonRecording { state, span_id: SpanId::new(), parent_span_id, ignored }) }
    }

    /// A new local root (segment) in the current hub: continues the scope's
    /// propagation context if any, else starts a new trace; samples it.
    pub(crate) fn new_root(
        name: SpanName,
        op: &str,
        origin: Option<&'static str>,
        attributes: Vec<(AttributeKey, AttributeValue)>,
    ) -> Span {
        if !EVER_ENABLED.load(std::sync::atomic::Ordering::Relaxed) {
            let state = TraceState {
                trace_id: TraceId::new(),
                sampled: None,
                sample_rand: new_sample_rand(),
                sample_rate: None,
                continued: None,
            };
            return Span::non_recording(state, None, false);
        }
        Hub::with_current(|hub| {
            let continued = hub
                .read_scope(|s| s.propagation.clone())
                .or_else(|| hub.read_isolation_scope(|s| s.propagation.clone()));
            let (trace_id, parent_span_id, parent_sampled, parent_rate, sample_rand) = match &continued {
                Some(p) => (p.trace_id, p.parent_span_id, p.sampled, p.sample_rate, p.sample_rand),
                None => (TraceId::new(), None, None, None, new_sample_rand()),
            };
            let mut state =
                TraceState { trace_id, sampled: parent_sampled, sample_rand, sample_rate: parent_rate, continued };
            let op = non_empty(op);
            // Decided under the client's read lock: the client is cloned only for a
            // recording span.
            let recording = hub.with_client(|client| {
                if !client.is_enabled() {
                    return None;
                }
                // Only the sampler reads the name: without one, no `deref` of
                // the inline name (a UTF-8 check).
                let has_sampler = client.options().traces_sampler.is_some();
                let ctx = SamplingContext {
                    name: if has_sampler { &name } else { "" },
                    op,
                    parent_sampled,
                    parent_sample_rate: parent_rate,
                    attributes: &attributes,
                };
                // A panicking `traces_sampler` is contained: the span is not
                // recorded, and counted as `internal_sdk_error`.
                let loss = crate::worker::Loss::of(DataCategory::Span, 1);
                let decided = crate::worker::guarded(&client.inner().reports, loss, || {
                    decide(client.options(), &ctx, sample_rand)
                });
                let Some(decision) = decided else {
                    client.inner().debug("traces_sampler panicked; the span is not recorded");
                    return None;
                };
                state.sampled = decision.sampled;
                state.sample_rate = decision.rate;
                if !decision.record {
                    let options = client.options();
                    if decision.sampled == Some(false)
                        && (options.traces_sampler.is_some() || options.traces_sample_rate.is_some())
                    {
                        client.record_drop(DiscardReason::SampleRate, DataCategory::Span, 1);
                    }
                    return None;
                }
                Some(client.clone())
            });
            let Some(client) = recording.flatten() else {
                return Span::non_recording(state, parent_span_id, false);
            };
            if ignored(&client, &name, op) {
                client.record_drop(DiscardReason::Ignored, DataCategory::Span, 1);
                return Span::non_recording(state, parent_span_id, true);
            }
            let span_id = SpanId::new();
            let segment = Arc::new(SegmentShared {
                state,
                span_id,
                client,
                meta: Mutex::new(SegmentMeta { name, ..SegmentMeta::default() }),
                hub: Mutex::new(Arc::downgrade(hub)),
                thread: ThreadInfo::current(),
                children: Mutex::default(),
                stage: Mutex::default(),
            });
            let data = SpanData {
                name: SpanName::default(),
                op: op.and_then(SharedStr::new),
                origin: origin.map(SharedStr::Static),
                status: SpanStatus::Ok,
                attributes,
                thread: None,
                finished: false,
            };
            Span {
                repr: Repr::Recording(Arc::new(SpanInner {
                    span_id,
                    parent_span_id,
                    start: Tick::now(),
                    segment,
                    data: Mutex::new(data),
                })),
            }
        })
    }

    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.state().trace_id
    }

    /// The span id.
    pub fn span_id(&self) -> SpanId {
        match &self.repr {
            Repr::Recording(s) => s.span_id,
            Repr::Child(c) => c.span_id,
            Repr::NonRecording(n) => n.span_id,
        }
    }

    /// The parent span id (possibly in another service); `None` on trace roots.
    pub fn parent_span_id(&self) -> Option<SpanId> {
        match &self.repr {
            Repr::Recording(s) => s.parent_span_id,
            Repr::Child(c) => Some(c.parent_span_id),
            Repr::NonRecording(n) => n.parent_span_id,
        }
    }

    /// Whether the trace is sampled (`false` also while the decision is deferred).
    pub fn is_sampled(&self) -> bool {
        self.state().sampled == Some(true)
    }

    /// Whether this span records data and will be sent.
    pub fn is_recording(&self) -> bool {
        match &self.repr {
            Repr::Recording(s) => !s.data.lock().finished,
            Repr::Child(c) => c.with_data(|d| !d.finished).unwrap_or(false),
            Repr::NonRecording(_) => false,
        }
    }

    /// Whether this span is the local root of its trace in this process.
    pub fn is_segment(&self) -> bool {
        match &self.repr {
            Repr::Recording(_) => true,
            Repr::Child(_) => false,
            Repr::NonRecording(n) => {
                n.parent_span_id.is_none()
                    || n.state.continued.as_ref().is_some_and(|p| p.parent_span_id == n.parent_span_id)
            }
        }
    }

    pub(crate) fn state(&self) -> &TraceState {
        match &self.repr {
            Repr::Recording(s) => &s.segment.state,
            Repr::Child(c) => &c.segment.state,
            Repr::NonRecording(n) => &n.state,
        }
    }

    pub(crate) fn segment(&self) -> Option<&Arc<SegmentShared>> {
        match &self.repr {
            Repr::Recording(s) => Some(&s.segment),
            Repr::Child(c) => Some(&c.segment),
            Repr::NonRecording(_) => None,
        }
    }

    /// Starts a child span. Children of non-recording spans are non-recording.
    ///
    /// # Examples
    /// ```
    /// let root = sentry_lite_core::start_root_span("job", "queue.process");
    /// let child = root.start_child("SELECT 1", "db.query");
    /// assert_eq!(child.parent_span_id(), Some(root.span_id()));
    /// assert_eq!(child.trace_id(), root.trace_id());
    /// ```
    pub fn start_child(&self, name: impl IntoSpanName, op: &str) -> Span {
        self.start_child_with(name, op, None, Vec::new())
    }

    /// [`Span::start_child`] with initial attributes (no lock per attribute).
    ///
    /// # Examples
    /// ```
    /// let root = sentry_lite_core::start_root_span("job", "queue.process");
    /// let attributes = vec![("db.system".into(), "sqlite".into())];
    /// let child = root.start_child_with_attributes("SELECT 1", "db.query", attributes);
    /// assert_eq!(child.parent_span_id(), Some(root.span_id()));
    /// ```
    pub fn start_child_with_attributes(
        &self,
        name: impl IntoSpanName,
        op: &str,
        attributes: Vec<(AttributeKey, AttributeValue)>,
    ) -> Span {
        self.start_child_with(name, op, None, attributes)
    }

    /// A child with its origin and attributes set at once: for integrations.
    #[doc(hidden)]
    pub fn start_child_with(
        &self,
        name: impl IntoSpanName,
        op: &str,
        origin: Option<&'static str>,
        attributes: Vec<(AttributeKey, AttributeValue)>,
    ) -> Span {
        self.child(name, || non_empty(op).and_then(SharedStr::new), origin, attributes)
    }

    /// [`Span::start_child_with`] with a `'static` op: kept as is, no lookup of a
    /// shared copy (the `tracing` layer's default op).
    #[doc(hidden)]
    pub fn start_child_with_static_op(
        &self,
        name: impl IntoSpanName,
        op: &'static str,
        origin: Option<&'static str>,
        attributes: Vec<(AttributeKey, AttributeValue)>,
    ) -> Span {
        self.child(name, || non_empty(op).map(SharedStr::Static), origin, attributes)
    }

    fn child(
        &self,
        name: impl IntoSpanName,
        op: impl FnOnce() -> Option<SharedStr>,
        origin: Option<&'static str>,
        attributes: Vec<(AttributeKey, AttributeValue)>,
    ) -> Span {
        let (segment, parent_span_id) = match &self.repr {
            Repr::Recording(parent) => (&parent.segment, parent.span_id),
            Repr::Child(parent) => (&parent.segment, parent.span_id),
            Repr::NonRecording(parent) => return Span::non_recording_child(parent),
        };
        let op = op();
        if !segment.client.options().ignore_spans.is_empty() {
            let name = name.into_span_name();
            if ignored(&segment.client, &name, op.as_deref()) {
                segment.client.record_drop(DiscardReason::Ignored, DataCategory::Span, 1);
                return Span::non_recording(segment.state.clone(), Some(parent_span_id), true);
            }
            return Span::open_child(segment, parent_span_id, |slot| *slot = name, op, origin, attributes);
        }
        Span::open_child(segment, parent_span_id, |slot| name.write_into(slot), op, origin, attributes)
    }

    /// Opens the child's slot and sets its data in place (see `Children::open`).
    #[inline(always)]
    fn open_child(
        segment: &Arc<SegmentShared>,
        parent_span_id: SpanId,
        name: impl FnOnce(&mut SpanName),
        op: Option<SharedStr>,
        origin: Option<&'static str>,
        attributes: Vec<(AttributeKey, AttributeValue)>,
    ) -> Span {
        let span_id = SpanId::new();
        let thread = ThreadInfo::unless_current(&segment.thread);
        let key = {
            let mut stage = segment.stage.lock();
            let (key, slot) = stage.children.open();
            let data = &mut slot.data;
            name(&mut data.name);
            data.op = op;
            if let Some(origin) = origin {
                data.origin = Some(SharedStr::Static(origin));
            }
            // The blank slot's vector is empty (see `fill_record`).
            if attributes.capacity() > 0 {
                data.attributes = attributes;
            }
            data.thread = thread;
            slot.start = Tick::now();
            key
        };
        Span { repr: Repr::Child(ChildSpan::new(segment, key, span_id, parent_span_id)) }
    }

    /// A child of a non-recording span.
    fn non_recording_child(parent: &NonRecording) -> Span {
        if parent.ignored {
            Hub::with_current_client(|c| c.record_drop(DiscardReason::Ignored, DataCategory::Span, 1));
        }
        Span::non_recording(parent.state.clone(), Some(parent.span_id), parent.ignored)
    }

    /// Runs `f` on the data of a recording span that has not finished; `f` is
    /// told the segment when the span is one.
    fn with_data(&self, f: impl FnOnce(&mut SpanData, Option<&SegmentShared>)) {
        match &self.repr {
            Repr::Recording(inner) => {
                let mut data = inner.data.lock();
                if !data.finished {
                    f(&mut data, Some(&inner.segment));
                }
            }
            Repr::Child(child) => {
                child.with_data(|data| {
                    if !data.finished {
                        f(data, None);
                    }
                });
            }
            Repr::NonRecording(_) => {}
        }
    }

    /// Renames the span. Renaming a segment also renames `sentry.segment.name` of
    /// all its spans, until the segment finishes.
    pub fn set_name(&self, name: impl Into<String>) {
        self.with_data(|data, segment| match segment {
            Some(segment) => segment.meta.lock().name = name.into().into_span_name(),
            None => data.name = name.into().into_span_name(),
        });
    }

    /// Sets the operation (`http.server`, `db.query`, ...).
    pub fn set_op(&self, op: &str) {
        self.with_data(|data, _| data.op = SharedStr::new(op));
    }

    /// Sets an attribute (replacing one with the same key). A `&'static str` key
    /// costs no allocation; other keys are given as `String` (see [`AttributeKey`]).
    pub fn set_attribute(&self, key: impl Into<AttributeKey>, value: impl Into<AttributeValue>) {
        self.with_data(|data, _| {
            let key = key.into();
            let value = value.into();
            match data.attributes.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => data.attributes.push((key, value)),
            }
        });
    }

    /// Sets the status.
    pub fn set_status(&self, status: SpanStatus) {
        self.with_data(|data, _| data.status = status);
    }

    /// Sets `sentry.origin` (`manual` unless set; integrations use `auto.*`).
    pub fn set_origin(&self, origin: &str) {
        self.with_data(|data, _| data.origin = SharedStr::new(origin));
    }

    /// Sets `sentry.span.source` of this span's segment: `route`, `url`, `custom`,
    /// `component`, `task`, ... A `url` name is never put in the DSC.
    pub fn set_source(&self, source: &str) {
        if let Some(segment) = self.segment() {
            segment.meta.lock().source = Some(source.to_owned());
        }
    }

    /// Sets the status of this span's segment (it wins over the segment's own).
    pub fn set_segment_status(&self, status: SpanStatus) {
        if let Some(segment) = self.segment() {
            let mut meta = segment.meta.lock();
            if !meta.finished {
                meta.status = Some(status);
            }
        }
    }

    /// Finishes the span; later calls do nothing.
    pub fn finish(&self) {
        match &self.repr {
            Repr::Recording(inner) => inner.finish(),
            Repr::Child(child) => child.finish(),
            Repr::NonRecording(_) => {}
        }
    }

    /// `sentry-trace` and `baggage` (and `traceparent` with
    /// [`ClientOptions::propagate_traceparent`](crate::ClientOptions::propagate_traceparent))
    /// for an outgoing request made in this span, whatever its URL: prefer
    /// [`Span::trace_headers_for`], which honours the propagation targets. Freezes
    /// the trace's DSC. Without an enabled client only `sentry-trace` is returned
    /// (no `baggage`: a DSC without a public key would be refused by Sentry).
    ///
    /// # Examples
    /// ```
    /// let span = sentry_lite_core::start_span("GET /", "http.client");
    /// let headers = span.trace_headers();
    /// assert_eq!(headers[0].0, "sentry-trace");
    /// assert!(headers[0].1.starts_with(&span.trace_id().to_string()));
    /// ```
    pub fn trace_headers(&self) -> Vec<(&'static str, String)> {
        self.headers_if(|_| true)
    }

    /// The trace headers for an outgoing request to `url`: empty when `url` is not
    /// one of [`ClientOptions::trace_propagation_targets`](crate::ClientOptions::trace_propagation_targets),
    /// else as [`Span::trace_headers`].
    ///
    /// # Examples
    /// ```
    /// let span = sentry_lite_core::start_span("GET /", "http.client");
    /// let headers = span.trace_headers_for("http://127.0.0.1:3000/users");
    /// assert_eq!(headers[0].0, "sentry-trace");
    /// ```
    pub fn trace_headers_for(&self, url: &str) -> Vec<(&'static str, String)> {
        self.headers_if(|o| o.trace_propagation_targets.matches(url))
    }

    pub(crate) fn headers_if(&self, target: impl FnOnce(&crate::ClientOptions) -> bool) -> Vec<(&'static str, String)> {
        let state = self.state();
        let client = match self.segment() {
            Some(segment) => Some(segment.client.clone()),
            None => Hub::with_current(|h| h.client()),
        };
        match client.filter(|c| c.is_enabled()) {
            None => headers(state.trace_id, self.span_id(), state.sampled, None),
            Some(client) if target(client.options()) => {
                let dsc = self.dsc_frozen();
                let traceparent = client.options().propagate_traceparent;
                headers(state.trace_id, self.span_id(), state.sampled, Some((&dsc, traceparent)))
            }
            Some(_) => Vec::new(),
        }
    }

    /// The DSC of this span's trace, frozen from now on.
    pub(crate) fn dsc_frozen(&self) -> DynamicSamplingContext {
        if let Some(segment) = self.segment() {
            return segment.frozen_dsc(segment.client.inner());
        }
        let client = Hub::with_current_client(Arc::clone);
        self.state().dsc(client.as_ref().map(|c| &**c.inner()), None)
    }

    /// `contexts.trace` for an event captured while this span is current.
    pub(crate) fn trace_context(&self) -> TraceContext {
        let mut ctx = TraceContext {
            trace_id: self.trace_id(),
            span_id: self.span_id(),
            parent_span_id: self.parent_span_id(),
            ..TraceContext::default()
        };
        let mut fill = |data: &mut SpanData| {
            ctx.op = data.op.as_deref().map(str::to_owned);
            ctx.status = Some(data.status);
            ctx.origin = Some(data.origin.as_deref().unwrap_or("manual").to_owned());
        };
        match &self.repr {
            Repr::Recording(inner) => fill(&mut inner.data.lock()),
            Repr::Child(child) => {
                child.with_data(fill);
            }
            Repr::NonRecording(_) => {}
        }
        ctx
    }

    /// The DSC for an event's envelope (freezes it).
    pub(crate) fn dsc(&self) -> Option<DynamicSamplingContext> {
        Some(self.dsc_frozen())
    }

    /// The segment's name, for `transaction` of events.
    pub(crate) fn segment_name(&self) -> Option<String> {
        self.segment().map(|s| s.name()).filter(|n| !n.is_empty())
    }
}

/// Builds the propagation headers: `sentry-trace` always; with an enabled client's
/// DSC (and whether `traceparent` is on) also `baggage` when the DSC has a public
/// key, and `traceparent` when asked for.
pub(crate) fn headers(
    trace_id: TraceId,
    span_id: SpanId,
    sampled: Option<bool>,
    client: Option<(&DynamicSamplingContext, bool)>,
) -> Vec<(&'static str, String)> {
    use super::propagation::{SentryTrace, TraceParent};
    let mut out = vec![("sentry-trace", SentryTrace { trace_id, span_id, sampled }.to_string())];
    if let Some((dsc, traceparent)) = client {
        if dsc.public_key.is_some() {
            out.push(("baggage", Baggage::header_value(dsc, &[])));
        }
        if traceparent {
            out.push(("traceparent", TraceParent { trace_id, span_id, sampled }.to_string()));
        }
    }
    out
}
