//! The span v2 item written by hand: the fast path for batches whose spans need
//! no per-span decisions (no own attribute shadows a common or scoped one), with
//! the attributes every span of the batch shares serialized once.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::hub::ScopeSnapshot;
use crate::ids::SpanId;
use crate::pipeline::JobContext;
use crate::protocol::{AttributeValue, Item, Timestamp};

use super::clock::Anchor;
use super::record::{segment_user, user_attributes, Common, Refs, SpanRecord, ValueAttr, View};

/// Keys of the attributes every span gets; a span with an own attribute of one of
/// these names goes through the general path.
const COMMON_KEYS: [&str; 13] = [
    "sentry.release",
    "sentry.environment",
    "sentry.sdk.name",
    "sentry.sdk.version",
    "sentry.segment.name",
    "sentry.segment.id",
    "sentry.op",
    "sentry.origin",
    "sentry.trace_lifecycle",
    "thread.id",
    "thread.name",
    "server.address",
    "os.name",
];

fn json_str(out: &mut Vec<u8>, s: &str) {
    crate::protocol::json::write_str(out, s);
}

/// `"key":{"type":"string","value":` for a literal key, built at compile time:
/// fixed keys need no escaping scan.
macro_rules! attr_prefix {
    ($key:literal) => {
        concat!("\"", $key, "\":{\"type\":\"string\",\"value\":").as_bytes()
    };
}

/// A string attribute under a literal key (see [`attr_prefix`]).
fn static_attr(out: &mut Vec<u8>, prefix: &[u8], value: &str) {
    out.extend_from_slice(prefix);
    json_str(out, value);
    out.extend_from_slice(b"},");
}

fn str_attr(out: &mut Vec<u8>, key: &str, value: &str) {
    json_str(out, key);
    out.extend_from_slice(b":{\"type\":\"string\",\"value\":");
    json_str(out, value);
    out.extend_from_slice(b"},");
}

/// An attribute value as `{"type":…,"value":…}`; scalars are written directly
/// (no intermediate `Attribute`, which copies strings into a JSON value).
fn value_attr(out: &mut Vec<u8>, v: &AttributeValue) {
    match v {
        AttributeValue::String(s) => {
            out.extend_from_slice(b"{\"type\":\"string\",\"value\":");
            json_str(out, s);
            out.push(b'}');
        }
        AttributeValue::Bool(true) => out.extend_from_slice(b"{\"type\":\"boolean\",\"value\":true}"),
        AttributeValue::Bool(false) => out.extend_from_slice(b"{\"type\":\"boolean\",\"value\":false}"),
        AttributeValue::I64(i) => {
            out.extend_from_slice(b"{\"type\":\"integer\",\"value\":");
            let _ = serde_json::to_writer(&mut *out, i);
            out.push(b'}');
        }
        other => {
            let _ = serde_json::to_writer(&mut *out, &ValueAttr(other));
        }
    }
}

fn hex_id(out: &mut Vec<u8>, v: u128, digits: usize) {
    crate::protocol::json::write_hex(out, v, digits);
}

/// A span id as its 16 hex digits, inline (no allocation, no formatting).
pub(super) struct IdText([u8; 16]);

impl IdText {
    pub(super) fn of(id: SpanId) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let v = id.as_int();
        let mut text = [b'0'; 16];
        for (i, digit) in text.iter_mut().enumerate() {
            *digit = HEX[((v >> ((15 - i) * 4)) & 0xf) as usize];
        }
        IdText(text)
    }

    pub(super) fn as_str(&self) -> &str {
        // Hex digits only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

fn timestamp(out: &mut Vec<u8>, t: SystemTime) {
    let _ = serde_json::to_writer(&mut *out, &Timestamp::from_system_time(t));
}

/// Attributes only segments get, besides the scope's.
const SEGMENT_KEYS: [&str; 2] = ["sentry.span.source", "sentry.platform"];

/// A segment's scope data as attributes, inner scopes winning: tags, then `user.*`
/// with `send_default_pii`.
pub(super) fn scoped_attributes(scope: &ScopeSnapshot, pii: bool) -> BTreeMap<&str, &str> {
    let mut scoped = BTreeMap::new();
    for s in [&scope.global, &scope.isolation, &scope.current] {
        for (k, v) in s.tags.iter() {
            scoped.insert(k.as_str(), v.as_str());
        }
    }
    if pii {
        if let Some(user) = segment_user(scope) {
            for (key, value) in user_attributes(user) {
                if let Some(v) = value {
                    scoped.insert(key, v.as_str());
                }
            }
        }
    }
    scoped
}

/// The attributes every span of a client carries, rendered once per client.
fn shared_attributes(common: &Common<'_>) -> Vec<u8> {
    let mut shared = Vec::with_capacity(512);
    if let Some(release) = common.release {
        static_attr(&mut shared, attr_prefix!("sentry.release"), release);
    }
    static_attr(&mut shared, attr_prefix!("sentry.environment"), common.environment);
    static_attr(&mut shared, attr_prefix!("sentry.sdk.name"), common.sdk_name);
    static_attr(&mut shared, attr_prefix!("sentry.sdk.version"), common.sdk_version);
    static_attr(&mut shared, attr_prefix!("sentry.trace_lifecycle"), "stream");
    if let Some(server) = common.server {
        static_attr(&mut shared, attr_prefix!("server.address"), server);
    }
    static_attr(&mut shared, attr_prefix!("os.name"), &common.os);
    shared
}

/// Whether a span can be written from the pre-rendered pieces: no key written
/// twice (an own attribute or scope tag overriding a common attribute, or a
/// repeated own attribute): those take the general path, where the last wins.
fn fast_eligible(r: &SpanRecord, scoped: &BTreeMap<&str, &str>) -> bool {
    let reserved = |k: &str| COMMON_KEYS.contains(&k) || (r.is_segment && SEGMENT_KEYS.contains(&k));
    scoped.keys().all(|k| !reserved(k))
        && r.attributes.iter().enumerate().all(|(i, (k, _))| {
            !reserved(k) && !scoped.contains_key(&**k) && !r.attributes[i + 1..].iter().any(|(l, _)| l == k)
        })
}

/// The span v2 container of a batch, written directly: the attributes shared by
/// the batch, a segment or a thread are escaped once, not once per span. Same
/// JSON as serializing [`View`]s (which segments and unusual spans still use).
pub(super) fn fast_item(
    spans: &[SpanRecord],
    refs: &Refs,
    client: &JobContext,
    segments: &[(SpanId, String, IdText)],
    anchor: &Anchor,
) -> Item {
    let shared = client.span_attributes.get_or_init(|| shared_attributes(&Common::new(client)));
    // Only spans taking the general path need it.
    let mut common = None;
    let mut out = Vec::with_capacity(64 + spans.len() * (shared.len() + 640));
    out.extend_from_slice(b"{\"version\":2,\"items\":[");
    for (i, r) in spans.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let segment = refs.segment(r);
        let (segment_name, segment_id) = segments
            .iter()
            .find(|(s, _, _)| *s == segment.span_id)
            .map_or(("", ""), |(_, n, i)| (n.as_str(), i.as_str()));
        let scoped = match (&r.scope, r.is_segment) {
            (Some(scope), true) => scoped_attributes(scope, client.options.send_default_pii),
            _ => BTreeMap::new(),
        };
        if !fast_eligible(r, &scoped) {
            let common = common.get_or_insert_with(|| Common::new(client));
            let view = View { r, refs, common, segment_name, segment_id, anchor };
            let _ = serde_json::to_writer(&mut out, &view);
            continue;
        }
        out.extend_from_slice(b"{\"trace_id\":");
        hex_id(&mut out, segment.state.trace_id.as_int(), 32);
        out.extend_from_slice(b",\"span_id\":");
        hex_id(&mut out, u128::from(r.span_id.as_int()), 16);
        if let Some(p) = r.parent_span_id {
            out.extend_from_slice(b",\"parent_span_id\":");
            hex_id(&mut out, u128::from(p.as_int()), 16);
        }
        out.extend_from_slice(b",\"name\":");
        json_str(&mut out, if r.is_segment { segment_name } else { &r.name });
        out.extend_from_slice(if r.status.is_ok() { b",\"status\":\"ok\"" } else { b",\"status\":\"error\"" });
        out.extend_from_slice(if r.is_segment { b",\"is_segment\":true" } else { b",\"is_segment\":false" });
        let (start, end) = anchor.span(r.start, r.end);
        out.extend_from_slice(b",\"start_timestamp\":");
        timestamp(&mut out, start);
        out.extend_from_slice(b",\"end_timestamp\":");
        timestamp(&mut out, end);
        out.extend_from_slice(b",\"attributes\":{");
        out.extend_from_slice(shared);
        // Escaping is a scan and a copy for usual names: no per-segment cache.
        static_attr(&mut out, attr_prefix!("sentry.segment.name"), segment_name);
        static_attr(&mut out, attr_prefix!("sentry.segment.id"), segment_id);
        if let Some(op) = &r.op {
            static_attr(&mut out, attr_prefix!("sentry.op"), op);
        }
        static_attr(&mut out, attr_prefix!("sentry.origin"), r.origin());
        let thread = refs.thread(r);
        out.extend_from_slice(b"\"thread.id\":{\"type\":\"integer\",\"value\":");
        out.extend_from_slice(thread.id_digits.as_bytes());
        out.extend_from_slice(b"},");
        if let Some(name) = &thread.name {
            static_attr(&mut out, attr_prefix!("thread.name"), name);
        }
        if r.is_segment {
            static_attr(&mut out, attr_prefix!("sentry.span.source"), &segment.source());
            static_attr(&mut out, attr_prefix!("sentry.platform"), "native");
            for (k, v) in &scoped {
                str_attr(&mut out, k, v);
            }
        }
        for (k, v) in &r.attributes {
            json_str(&mut out, k);
            out.push(b':');
            value_attr(&mut out, v);
            out.push(b',');
        }
        // Every span has attributes: replace the last comma.
        if out.last() == Some(&b',') {
            out.pop();
        }
        out.extend_from_slice(b"}}");
    }
    out.extend_from_slice(b"]}");
    let mut item = Item::new(crate::protocol::ItemType::Span, out);
    item.set_header("content_type", "application/vnd.sentry.items.span.v2+json");
    item.set_header("item_count", spans.len());
    item
}
