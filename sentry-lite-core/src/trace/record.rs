//! Finished spans and their serialization, which runs on the worker.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::hub::ScopeSnapshot;
use crate::ids::SpanId;
use crate::pipeline::JobContext;
use crate::protocol::{
    Attribute, AttributeValue, DataCategory, DiscardReason, Envelope, Item, SpanStatus, SpanV2, Timestamp,
};
use crate::worker::{guarded, Job, Loss, SingleJob};

use super::clock::{Anchor, Tick};
use super::name::{SharedStr, SpanName};
use super::span::SegmentShared;
use super::span_json::{fast_item, scoped_attributes, IdText};

/// The thread a span started on, computed once per thread.
#[derive(Debug)]
pub(crate) struct ThreadInfo {
    /// `thread.id`, an integer attribute (sentry-conventions).
    pub(crate) id: u64,
    /// `id` in decimal, written as it is by the direct JSON writer.
    pub(crate) id_digits: String,
    pub(crate) name: Option<String>,
}

thread_local! {
    static THREAD: Arc<ThreadInfo> = Arc::new(ThreadInfo::compute());
}

impl ThreadInfo {
    fn compute() -> Self {
        let t = std::thread::current();
        // `ThreadId(7)` → `7`: stable for the thread's life, unique in the process.
        let id_digits: String = format!("{:?}", t.id()).chars().filter(char::is_ascii_digit).collect();
        let id = id_digits.parse().unwrap_or(0);
        Self { id, id_digits: id.to_string(), name: t.name().map(str::to_owned) }
    }

    /// This thread's info (a reference-count increment).
    pub(crate) fn current() -> Arc<ThreadInfo> {
        THREAD.try_with(Arc::clone).unwrap_or_else(|_| Arc::new(Self::compute()))
    }

    /// This thread's info unless it is `known` (then nothing: no reference count
    /// touched, which the worker's batches also hold).
    #[inline]
    pub(crate) fn unless_current(known: &Arc<ThreadInfo>) -> Option<Arc<ThreadInfo>> {
        THREAD
            .try_with(|t| (!Arc::ptr_eq(t, known)).then(|| t.clone()))
            .unwrap_or_else(|_| Some(Arc::new(Self::compute())))
    }
}

/// A span attribute's key: a `&'static str` (a literal, a `tracing` field name) is
/// kept as is, with no allocation; a `String` is owned.
///
/// # Examples
/// ```
/// use sentry_lite_core::{protocol::AttributeValue, AttributeKey};
/// let attributes: Vec<(AttributeKey, AttributeValue)> =
///     vec![("db.system".into(), "sqlite".into()), (format!("db.{}", "name").into(), "main".into())];
/// let root = sentry_lite_core::start_root_span_with_attributes("job", "queue.process", attributes);
/// root.set_attribute("rows", 3);
/// root.finish();
/// ```
pub type AttributeKey = std::borrow::Cow<'static, str>;

/// A finished span waiting in the buffer: plain data, common attributes are added
/// when it is serialized.
#[derive(Debug)]
pub(crate) struct SpanRecord {
    pub(crate) span_id: SpanId,
    pub(crate) parent_span_id: Option<SpanId>,
    /// Converted to wall-clock time on the worker (see `clock`).
    pub(crate) start: Tick,
    pub(crate) end: Tick,
    pub(crate) is_segment: bool,
    /// Empty for segments: their name is read from the segment.
    pub(crate) name: SpanName,
    pub(crate) op: Option<SharedStr>,
    pub(crate) origin: Option<SharedStr>,
    pub(crate) status: SpanStatus,
    pub(crate) attributes: Vec<(AttributeKey, AttributeValue)>,
    /// Index of the segment in the batch's [`Refs`].
    pub(crate) segment: u32,
    /// Index of the thread the span started on in the batch's [`Refs`].
    pub(crate) thread: u32,
    /// Scopes at the segment's end (segments only).
    pub(crate) scope: Option<Box<ScopeSnapshot>>,
}

impl SpanRecord {
    /// A record to fill in place (see `Stage::keep_child`).
    pub(crate) const BLANK: SpanRecord = SpanRecord {
        span_id: SpanId::nil(),
        parent_span_id: None,
        start: Tick::ZERO,
        end: Tick::ZERO,
        is_segment: false,
        name: SpanName::EMPTY,
        op: None,
        origin: None,
        status: SpanStatus::Ok,
        attributes: Vec::new(),
        segment: 0,
        thread: 0,
        scope: None,
    };
}

/// The segments and threads the records of one batch point into, by index.
///
/// A batch holds one reference per segment and per thread instead of one per
/// span: a reference count bumped by the producer for every span and dropped by
/// the worker would bounce its cache line between the two cores on every span.
#[derive(Clone, Debug, Default)]
pub(crate) struct Refs {
    segments: Table<SegmentShared>,
    threads: Table<ThreadInfo>,
}

/// An append-only list of shared references whose first entry is inline: most
/// batches reference one segment and one thread, and then cost no allocation.
#[derive(Debug)]
struct Table<T> {
    first: Option<Arc<T>>,
    rest: Vec<Arc<T>>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table { first: None, rest: Vec::new() }
    }
}

impl<T> Clone for Table<T> {
    fn clone(&self) -> Self {
        Table { first: self.first.clone(), rest: self.rest.clone() }
    }
}

/// How far back [`Table::intern`] looks for a known entry: spans of a batch mostly
/// share one segment and a few threads; a miss only costs a duplicate entry.
const REFS_LOOKBACK: usize = 8;

impl<T> Table<T> {
    #[inline]
    fn intern(&mut self, item: &Arc<T>) -> u32 {
        // Most batches have one segment and one thread: a pointer compare.
        match &self.first {
            Some(first) if Arc::ptr_eq(first, item) => 0,
            Some(_) => self.intern_rest(item),
            None => {
                self.first = Some(item.clone());
                0
            }
        }
    }

    fn intern_rest(&mut self, item: &Arc<T>) -> u32 {
        let recent = self.rest.len().saturating_sub(REFS_LOOKBACK);
        if let Some(i) = self.rest[recent..].iter().rposition(|t| Arc::ptr_eq(t, item)) {
            return (recent + i + 1) as u32;
        }
        self.rest.push(item.clone());
        self.rest.len() as u32
    }

    fn get(&self, i: u32) -> &Arc<T> {
        let entry = match i {
            0 => self.first.as_ref(),
            i => self.rest.get(i as usize - 1),
        };
        // Indices come from `intern` on this table.
        entry.expect("a record's index is in its batch's table")
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    fn iter(&self) -> impl Iterator<Item = &Arc<T>> {
        self.first.iter().chain(&self.rest)
    }

    #[cfg(test)]
    fn extend(&mut self, other: Table<T>) {
        for t in other.first.into_iter().chain(other.rest) {
            match self.first {
                None => self.first = Some(t),
                Some(_) => self.rest.push(t),
            }
        }
    }
}

/// A record's thread index meaning "its segment's thread": a segment that
/// started on its own thread (every root) costs the batch no second reference,
/// taken by the producer and released by the worker.
const SEGMENT_THREAD: u32 = u32::MAX;

impl Refs {
    /// Points `record` at its segment and thread, adding them if new.
    #[inline]
    pub(crate) fn add(&mut self, record: &mut SpanRecord, segment: &Arc<SegmentShared>, thread: &Arc<ThreadInfo>) {
        record.segment = self.segments.intern(segment);
        record.thread = if Arc::ptr_eq(thread, &segment.thread) { SEGMENT_THREAD } else { self.threads.intern(thread) };
    }

    /// Points `record` at its thread only (its segment index stays 0).
    pub(crate) fn add_thread(&mut self, record: &mut SpanRecord, thread: &Arc<ThreadInfo>) {
        record.thread = self.threads.intern(thread);
    }

    pub(crate) fn segment(&self, r: &SpanRecord) -> &SegmentShared {
        self.segments.get(r.segment)
    }

    pub(crate) fn thread(&self, r: &SpanRecord) -> &ThreadInfo {
        self.thread_arc(r)
    }

    /// The shared reference to `r`'s thread, to point it into another table.
    pub(crate) fn thread_arc(&self, r: &SpanRecord) -> &Arc<ThreadInfo> {
        match r.thread {
            SEGMENT_THREAD => &self.segment(r).thread,
            i => self.threads.get(i),
        }
    }

    /// The shared reference to `r`'s segment, to point it into another table.
    pub(crate) fn segment_arc(&self, r: &SpanRecord) -> &Arc<SegmentShared> {
        self.segments.get(r.segment)
    }

    /// Takes over `other`'s entries, re-pointing its `records` (tests).
    #[cfg(test)]
    pub(crate) fn merge(&mut self, other: Refs, records: &mut [SpanRecord]) {
        let (segments, threads) = (self.segments.len() as u32, self.threads.len() as u32);
        for r in records {
            r.segment += segments;
            if r.thread != SEGMENT_THREAD {
                r.thread += threads;
            }
        }
        self.segments.extend(other.segments);
        self.threads.extend(other.threads);
    }

    /// The segments, in order of first appearance.
    pub(crate) fn segments(&self) -> impl Iterator<Item = &Arc<SegmentShared>> {
        self.segments.iter()
    }
}

/// Rough serialized size, for the 5 MB bucket bound.
pub(crate) fn estimate_size(r: &SpanRecord) -> usize {
    estimate_parts(&r.name, &r.attributes)
}

/// [`estimate_size`] of a record with this name and these attributes.
pub(crate) fn estimate_parts(name: &SpanName, attributes: &[(AttributeKey, AttributeValue)]) -> usize {
    let attrs: usize = attributes.iter().map(|(k, v)| k.len() + value_size(v) + 32).sum();
    // Ids, timestamps, status and the common attributes.
    900 + name.byte_len() + attrs
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::String(s) => s.len(),
        AttributeValue::StringArray(a) => a.iter().map(|s| s.len() + 3).sum(),
        AttributeValue::BoolArray(a) => a.len() * 6,
        AttributeValue::I64Array(a) => a.len() * 20,
        AttributeValue::F64Array(a) => a.len() * 24,
        _ => 24,
    }
}

fn string(s: impl Into<String>) -> Attribute {
    Attribute::from(&AttributeValue::String(s.into()))
}

impl SpanRecord {
    pub(crate) fn origin(&self) -> &str {
        self.origin.as_deref().unwrap_or("manual")
    }

    /// The span v2 form: own attributes over the common ones, scope data on segments.
    pub(crate) fn to_v2(&self, client: &JobContext, refs: &Refs, segment_name: &str, anchor: &Anchor) -> SpanV2 {
        let options = &client.options;
        let segment = refs.segment(self);
        let thread = refs.thread(self);
        let mut attributes: BTreeMap<String, Attribute> = BTreeMap::new();
        let mut put = |k: &str, v: Attribute| {
            attributes.insert(k.to_owned(), v);
        };
        if let Some(release) = &options.release {
            put("sentry.release", string(release.as_ref()));
        }
        put("sentry.environment", string(options.effective_environment()));
        put("sentry.sdk.name", string(client.sdk.name.clone()));
        put("sentry.sdk.version", string(client.sdk.version.clone()));
        put("sentry.segment.name", string(segment_name));
        put("sentry.segment.id", string(segment.span_id.to_string()));
        if let Some(op) = &self.op {
            put("sentry.op", string(&**op));
        }
        put("sentry.origin", string(self.origin()));
        put("sentry.trace_lifecycle", string("stream"));
        put("thread.id", Attribute::from(&AttributeValue::from(thread.id)));
        if let Some(name) = &thread.name {
            put("thread.name", string(name.clone()));
        }
        if let Some(server) = &client.server_name {
            put("server.address", string(server.clone()));
        }
        put("os.name", string(os_name(client)));
        if self.is_segment {
            put("sentry.span.source", string(segment.source()));
            put("sentry.platform", string("native"));
            if let Some(scope) = &self.scope {
                scope_attributes(scope, options.send_default_pii, &mut attributes);
            }
        }
        for (k, v) in &self.attributes {
            attributes.insert(k.to_string(), Attribute::from(v));
        }
        let (start, end) = anchor.span(self.start, self.end);
        SpanV2 {
            trace_id: segment.state.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            name: if self.is_segment { segment_name.to_owned() } else { self.name.to_string() },
            status: if self.status.is_ok() { "ok" } else { "error" }.to_owned(),
            is_segment: self.is_segment,
            start_timestamp: Timestamp::from_system_time(start),
            end_timestamp: Timestamp::from_system_time(end),
            attributes,
        }
    }
}

pub(crate) fn os_name(client: &JobContext) -> String {
    use crate::protocol::Context;
    match client.contexts.get("os") {
        Some(Context::Other(map)) => {
            map.get("name").and_then(|v| v.as_str()).unwrap_or(std::env::consts::OS).to_owned()
        }
        _ => std::env::consts::OS.to_owned(),
    }
}

/// Scope data on the segment span: tags under their own key (never overriding the
/// span's attributes, which are applied after), `user.id`, `user.email`,
/// `user.name` and `user.ip_address` only with `send_default_pii`.
fn scope_attributes(scope: &ScopeSnapshot, pii: bool, out: &mut BTreeMap<String, Attribute>) {
    for (k, v) in scoped_attributes(scope, pii) {
        out.insert(k.to_owned(), string(v));
    }
}

/// Strings shared by every span of one batch, computed once per batch.
pub(crate) struct Common<'a> {
    pub(super) release: Option<&'a str>,
    pub(super) environment: &'a str,
    pub(super) sdk_name: &'a str,
    pub(super) sdk_version: &'a str,
    pub(super) server: Option<&'a str>,
    pub(super) os: String,
    pub(super) pii: bool,
}

impl<'a> Common<'a> {
    pub(crate) fn new(client: &'a JobContext) -> Self {
        Common {
            release: client.options.release.as_deref(),
            environment: client.options.effective_environment(),
            sdk_name: &client.sdk.name,
            sdk_version: &client.sdk.version,
            server: client.server_name.as_deref(),
            os: os_name(client),
            pii: client.options.send_default_pii,
        }
    }
}

/// A span serialized straight from its record (no intermediate maps): the fast
/// path when there is no `before_send_span`. Same output as [`SpanRecord::to_v2`].
pub(super) struct View<'a> {
    pub(super) r: &'a SpanRecord,
    pub(super) refs: &'a Refs,
    pub(super) common: &'a Common<'a>,
    pub(super) segment_name: &'a str,
    pub(super) segment_id: &'a str,
    pub(super) anchor: &'a Anchor,
}

struct StrAttr<'a>(&'a str);

impl Serialize for StrAttr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Attribute", 2)?;
        st.serialize_field("type", "string")?;
        st.serialize_field("value", self.0)?;
        st.end()
    }
}

pub(super) struct ValueAttr<'a>(pub(super) &'a AttributeValue);

impl Serialize for ValueAttr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Attribute::from(self.0).serialize(s)
    }
}

struct Attrs<'a>(&'a View<'a>);

impl Serialize for Attrs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        let r = v.r;
        let c = v.common;
        let own = |k: &str| r.attributes.iter().any(|(key, _)| *key == *k);
        let mut map = s.serialize_map(None)?;
        let mut common: Vec<(&str, &str)> = Vec::with_capacity(16);
        if let Some(release) = c.release {
            common.push(("sentry.release", release));
        }
        common.push(("sentry.environment", c.environment));
        common.push(("sentry.sdk.name", c.sdk_name));
        common.push(("sentry.sdk.version", c.sdk_version));
        common.push(("sentry.segment.name", v.segment_name));
        common.push(("sentry.segment.id", v.segment_id));
        if let Some(op) = &r.op {
            common.push(("sentry.op", &**op));
        }
        common.push(("sentry.origin", r.origin()));
        common.push(("sentry.trace_lifecycle", "stream"));
        let thread = v.refs.thread(r);
        if let Some(name) = &thread.name {
            common.push(("thread.name", name));
        }
        if let Some(server) = c.server {
            common.push(("server.address", server));
        }
        common.push(("os.name", &c.os));
        let source;
        if r.is_segment {
            source = v.refs.segment(r).source();
            common.push(("sentry.span.source", &source));
            common.push(("sentry.platform", "native"));
        }
        let scoped = match (r.scope.as_deref(), r.is_segment) {
            (Some(scope), true) => scoped_attributes(scope, c.pii),
            _ => BTreeMap::new(),
        };
        for (k, val) in &common {
            if !own(k) && !scoped.contains_key(k) {
                map.serialize_entry(k, &StrAttr(val))?;
            }
        }
        if !own("thread.id") && !scoped.contains_key("thread.id") {
            map.serialize_entry("thread.id", &ValueAttr(&AttributeValue::from(thread.id)))?;
        }
        for (k, val) in &scoped {
            if !own(k) {
                map.serialize_entry(k, &StrAttr(val))?;
            }
        }
        for (i, (k, val)) in r.attributes.iter().enumerate() {
            // Last write wins, like the map form.
            if !r.attributes[i + 1..].iter().any(|(later, _)| later == k) {
                map.serialize_entry(k, &ValueAttr(val))?;
            }
        }
        map.end()
    }
}

impl Serialize for View<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.r;
        let mut st = s.serialize_struct("SpanV2", 9)?;
        st.serialize_field("trace_id", &self.refs.segment(r).state.trace_id)?;
        st.serialize_field("span_id", &r.span_id)?;
        if let Some(p) = &r.parent_span_id {
            st.serialize_field("parent_span_id", p)?;
        }
        st.serialize_field("name", if r.is_segment { self.segment_name } else { &r.name })?;
        st.serialize_field("status", if r.status.is_ok() { "ok" } else { "error" })?;
        st.serialize_field("is_segment", &r.is_segment)?;
        let (start, end) = self.anchor.span(r.start, r.end);
        st.serialize_field("start_timestamp", &Timestamp::from_system_time(start))?;
        st.serialize_field("end_timestamp", &Timestamp::from_system_time(end))?;
        st.serialize_field("attributes", &Attrs(self))?;
        st.end()
    }
}

/// The records of one batch. A one-span trace (a request's server span, most
/// often) keeps its record inline: no vector allocated on the producer's thread
/// and freed on the worker's.
#[derive(Debug)]
pub(crate) enum Records {
    One(SpanRecord),
    Many(Vec<SpanRecord>),
}

impl Records {
    pub(crate) fn as_slice(&self) -> &[SpanRecord] {
        match self {
            Records::One(r) => std::slice::from_ref(r),
            Records::Many(v) => v,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }

    #[cfg(test)]
    pub(crate) fn into_vec(self) -> Vec<SpanRecord> {
        match self {
            Records::One(r) => vec![r],
            Records::Many(v) => v,
        }
    }
}

/// One trace's batch of finished spans, serialized into one span v2 envelope on
/// the worker.
pub(crate) struct SpanBatchJob {
    pub(crate) spans: Records,
    pub(crate) refs: Refs,
    /// Released after the records (field order), when the job is dropped.
    pub(crate) _in_flight: super::buffer::InFlightGuard,
}

impl Drop for SpanBatchJob {
    fn drop(&mut self) {
        // Records first, then the vector goes back to the buffer, then the guard
        // releases the in-flight count.
        if let Records::Many(spans) = std::mem::replace(&mut self.spans, Records::Many(Vec::new())) {
            self._in_flight.recycle(spans);
        }
    }
}

impl SingleJob<JobContext> for SpanBatchJob {
    fn loss(&self) -> Loss {
        Loss::of(DataCategory::Span, self.spans.len() as u64)
    }

    fn run(self: Box<Self>, client: &JobContext) -> Option<Envelope> {
        trace_envelope(self.spans.as_slice(), &self.refs, client)
    }
}

/// Complete traces that left the buffer together (see `buffer`): one job on the
/// queue, still one envelope per trace. A service finishing many one-span traces
/// then pays one box and one queue send per group, not per request.
pub(crate) struct SpanGroupJob {
    pub(crate) traces: Vec<(Records, Refs)>,
    /// Every span of the group, released when the job is dropped.
    pub(crate) _in_flight: super::buffer::InFlightGuard,
}

impl Drop for SpanGroupJob {
    fn drop(&mut self) {
        for (spans, _) in std::mem::take(&mut self.traces) {
            if let Records::Many(spans) = spans {
                self._in_flight.recycle(spans);
            }
        }
    }
}

impl Job<JobContext> for SpanGroupJob {
    fn loss(&self) -> Loss {
        Loss::of(DataCategory::Span, self.traces.iter().map(|(s, _)| s.len() as u64).sum())
    }

    fn run_into(self: Box<Self>, client: &JobContext, emit: &mut dyn FnMut(Envelope)) {
        for (spans, refs) in &self.traces {
            // A panic in `before_send_span` loses that trace only.
            let loss = Loss::of(DataCategory::Span, spans.len() as u64);
            match guarded(&client.reports, loss, || trace_envelope(spans.as_slice(), refs, client)) {
                Some(Some(envelope)) => emit(envelope),
                Some(None) => {}
                None => client.debug("before_send_span panicked on the worker; its trace was dropped"),
            }
        }
    }
}

/// The span v2 envelope of one trace's batch.
fn trace_envelope(spans: &[SpanRecord], refs: &Refs, client: &JobContext) -> Option<Envelope> {
    let segment = refs.segment_arc(spans.first()?);
    let mut dsc = segment.dsc_for_batch(client);
    dsc.trace_id = segment.state.trace_id;
    // Segment names (and ids) as of now, once per segment in the batch.
    let mut segments: Vec<(SpanId, String, IdText)> = Vec::with_capacity(1);
    for seg in refs.segments() {
        let id = seg.span_id;
        if !segments.iter().any(|(s, _, _)| *s == id) {
            segments.push((id, seg.name(), IdText::of(id)));
        }
    }
    let segment_of =
        |id: SpanId| segments.iter().find(|(s, _, _)| *s == id).map_or(("", ""), |(_, n, i)| (n.as_str(), i.as_str()));
    let count = spans.len() as u64;
    let anchor = Anchor::current();
    let item = match &client.options.before_send_span {
        None => Ok(fast_item(spans, refs, client, &segments, &anchor)),
        Some(before) => {
            let items: Vec<SpanV2> = spans
                .iter()
                .map(|record| {
                    let seg_id = refs.segment(record).span_id;
                    let mut span = record.to_v2(client, refs, segment_of(seg_id).0, &anchor);
                    let (trace_id, span_id) = (span.trace_id, span.span_id);
                    before(&mut span);
                    // It may change a span, not move it to another trace.
                    span.trace_id = trace_id;
                    span.span_id = span_id;
                    span
                })
                .collect();
            Item::spans(&items)
        }
    };
    let item = match item {
        Ok(item) => item,
        Err(_) => {
            Loss::of(DataCategory::Span, count).record(&client.reports, DiscardReason::InternalSdkError);
            return None;
        }
    };
    let mut envelope = Envelope::new();
    envelope.headers.trace = Some(dsc);
    // Name and version only: one envelope per trace, and the integrations
    // and packages lists would be copied and written for each.
    envelope.headers.sdk = Some(crate::protocol::SdkInfo {
        name: client.sdk.name.clone(),
        version: client.sdk.version.clone(),
        ..Default::default()
    });
    envelope.add_item(item);
    Some(envelope)
}

#[cfg(test)]
pub(crate) fn view_json(r: &SpanRecord, refs: &Refs, client: &JobContext) -> serde_json::Value {
    let common = Common::new(client);
    let name = refs.segment(r).name();
    let id = refs.segment(r).span_id.to_string();
    let anchor = Anchor::current();
    let view = View { r, refs, common: &common, segment_name: &name, segment_id: &id, anchor: &anchor };
    serde_json::to_value(view).unwrap_or_default()
}

/// The user of a segment's scopes, innermost first.
pub(super) fn segment_user(scope: &crate::hub::ScopeSnapshot) -> Option<&crate::protocol::User> {
    scope.current.user.as_deref().or(scope.isolation.user.as_deref()).or(scope.global.user.as_deref())
}

/// The `user.*` span attributes of a user (sent only with `send_default_pii`).
pub(super) fn user_attributes(user: &crate::protocol::User) -> [(&'static str, &Option<String>); 4] {
    [
        ("user.id", &user.id),
        ("user.email", &user.email),
        ("user.name", &user.username),
        ("user.ip_address", &user.ip_address),
    ]
}
