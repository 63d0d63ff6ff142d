//! `trace_lifecycle: static`: spans of a segment become one `transaction` event.
//!
//! For self-hosted Sentry older than 25.11, which drops span v2 items. Children
//! wait in their segment (at most [`MAX_CHILDREN`]; the rest are counted as
//! dropped) and the segment's end turns them into one transaction, with the same
//! span tree as stream mode.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::pipeline::JobContext;
use crate::protocol::{
    AttributeValue, Context, DataCategory, DiscardReason, Envelope, Event, SpanStatus, Timestamp, TraceContext,
    TransactionInfo,
};
use crate::worker::{Loss, SingleJob};

use std::sync::Arc;

use super::clock::Anchor;
use super::record::{os_name, segment_user, Refs, SpanRecord, ThreadInfo};
use super::span::SegmentShared;

/// Most children in one transaction (Sentry's limit).
pub(crate) const MAX_CHILDREN: usize = 1000;

/// Finished children of a segment, waiting for it.
#[derive(Debug, Default)]
pub(crate) struct Children {
    spans: Vec<SpanRecord>,
    refs: Refs,
    dropped: u64,
    closed: bool,
}

/// Keeps a finished child, or turns a finished segment into a transaction job.
pub(crate) fn collect(mut record: SpanRecord, segment: &Arc<SegmentShared>, thread: &Arc<ThreadInfo>) {
    if !record.is_segment {
        let mut children = segment.children.lock();
        if children.closed || children.spans.len() >= MAX_CHILDREN {
            children.dropped += 1;
            let late = children.closed;
            drop(children);
            // A child ending after its segment was sent has nowhere to go.
            let reason = if late { DiscardReason::Invalid } else { DiscardReason::BufferOverflow };
            segment.client.record_drop(reason, DataCategory::Span, 1);
        } else {
            // Not the segment itself: it holds these refs (a cycle). It becomes
            // index 0, the children's segment index, when it finishes.
            children.refs.add_thread(&mut record, thread);
            children.spans.push(record);
        }
        return;
    }
    let (children, mut refs) = {
        let mut c = segment.children.lock();
        c.closed = true;
        (std::mem::take(&mut c.spans), std::mem::take(&mut c.refs))
    };
    refs.add(&mut record, segment, thread);
    segment.client.submit(Box::new(TransactionJob { segment: record, children, refs }));
}

/// A segment and its children, assembled into a transaction on the worker.
pub(crate) struct TransactionJob {
    segment: SpanRecord,
    children: Vec<SpanRecord>,
    refs: Refs,
}

fn attribute_json(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::String(s) => json!(s),
        AttributeValue::Bool(b) => json!(b),
        AttributeValue::I64(i) => json!(i),
        AttributeValue::F64(x) if x.is_finite() => json!(x),
        AttributeValue::F64(x) => json!(x.to_string()),
        AttributeValue::StringArray(a) => json!(a),
        AttributeValue::BoolArray(a) => json!(a),
        AttributeValue::I64Array(a) => json!(a),
        AttributeValue::F64Array(a) => {
            Value::Array(a.iter().map(|x| if x.is_finite() { json!(x) } else { json!(x.to_string()) }).collect())
        }
    }
}

fn data_of(r: &SpanRecord, refs: &Refs) -> BTreeMap<String, Value> {
    let mut data: BTreeMap<String, Value> =
        r.attributes.iter().map(|(k, v)| (k.to_string(), attribute_json(v))).collect();
    let thread = refs.thread(r);
    data.insert("thread.id".into(), json!(thread.id));
    if let Some(name) = &thread.name {
        data.insert("thread.name".into(), json!(name));
    }
    data
}

fn status_str(s: SpanStatus) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

/// A child in the transaction `spans` array (the pre-v2 span format).
fn old_span(r: &SpanRecord, refs: &Refs, trace_id: &str, anchor: &Anchor) -> Value {
    let mut span = Map::new();
    span.insert("trace_id".into(), json!(trace_id));
    span.insert("span_id".into(), json!(r.span_id.to_string()));
    if let Some(p) = r.parent_span_id {
        span.insert("parent_span_id".into(), json!(p.to_string()));
    }
    if let Some(op) = &r.op {
        span.insert("op".into(), json!(&**op));
    }
    span.insert("description".into(), json!(&*r.name));
    span.insert("status".into(), status_str(r.status));
    span.insert("origin".into(), json!(r.origin()));
    let (start, end) = anchor.span(r.start, r.end);
    span.insert("start_timestamp".into(), json!(Timestamp::from_system_time(start).as_secs_f64()));
    span.insert("timestamp".into(), json!(Timestamp::from_system_time(end).as_secs_f64()));
    let data = data_of(r, refs);
    if !data.is_empty() {
        span.insert("data".into(), json!(data));
    }
    Value::Object(span)
}

impl TransactionJob {
    fn build_event(&self, client: &JobContext) -> Event {
        let seg = &self.segment;
        let segment = self.refs.segment(seg);
        let trace_id = segment.state.trace_id;
        let trace_id_str = trace_id.to_string();
        let options = &client.options;
        let anchor = Anchor::current();
        let (start, end) = anchor.span(seg.start, seg.end);
        let mut event = Event::new();
        event.ty = Some("transaction".into());
        event.start_timestamp = Some(Timestamp::from_system_time(start));
        event.timestamp = Timestamp::from_system_time(end);
        event.transaction = Some(segment.name());
        event.transaction_info = Some(TransactionInfo { source: segment.source() });
        let mut data = data_of(seg, &self.refs);
        data.insert("sentry.sdk.name".into(), json!(client.sdk.name));
        data.insert("os.name".into(), json!(os_name(client)));
        let trace = TraceContext {
            trace_id,
            span_id: seg.span_id,
            parent_span_id: seg.parent_span_id,
            op: Some(seg.op.as_deref().unwrap_or("default").to_owned()),
            status: Some(seg.status),
            origin: Some(seg.origin().to_owned()),
            data,
        };
        event.contexts.insert("trace".into(), Context::Trace(trace));
        for (k, v) in &client.contexts {
            event.contexts.entry(k.clone()).or_insert_with(|| v.clone());
        }
        event.spans = self.children.iter().map(|c| old_span(c, &self.refs, &trace_id_str, &anchor)).collect();
        event.release = options.release.as_deref().map(str::to_owned);
        event.dist = options.dist.as_deref().map(str::to_owned);
        event.environment = Some(options.effective_environment().to_owned());
        event.server_name = client.server_name.clone();
        event.sdk = Some(client.sdk.clone());
        if let Some(scope) = &seg.scope {
            for s in [&scope.current, &scope.isolation, &scope.global] {
                for (k, v) in s.tags.iter() {
                    event.tags.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            if let Some(user) = segment_user(scope) {
                let mut user = user.clone();
                if !options.send_default_pii {
                    user.ip_address = None;
                }
                event.user = Some(user);
            }
        }
        event
    }
}

impl SingleJob<JobContext> for TransactionJob {
    fn loss(&self) -> Loss {
        Loss::transaction(self.children.len() as u64)
    }

    fn run(self: Box<Self>, client: &JobContext) -> Option<Envelope> {
        let event = self.build_event(client);
        let mut envelope = match Envelope::from_event(&event) {
            Ok(e) => e,
            Err(_) => {
                SingleJob::loss(&*self).record(&client.reports, DiscardReason::InternalSdkError);
                return None;
            }
        };
        let segment = self.refs.segment(&self.segment);
        let mut dsc = segment.frozen_dsc(client);
        dsc.trace_id = segment.state.trace_id;
        envelope.headers.trace = Some(dsc);
        envelope.headers.sdk = Some(client.sdk.clone());
        Some(envelope)
    }
}
