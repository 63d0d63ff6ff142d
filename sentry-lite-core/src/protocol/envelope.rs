use std::fmt;
use std::io::Write;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::json;
use super::raw_frames::RawFrame;
use super::{ClientReport, DynamicSamplingContext, Event, EventId, SdkInfo, Stacktrace};

/// Envelope headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeHeaders {
    /// Required with event and transaction items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<EventId>,
    /// Written once, at send time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    /// The SDK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk: Option<SdkInfo>,
    /// The DSC; required with span items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<DynamicSamplingContext>,
    /// Headers this SDK does not know, kept on round trips.
    #[serde(flatten, default)]
    pub other: Map<String, Value>,
}

impl EnvelopeHeaders {
    /// Writes the same JSON as its `Serialize` (field order, skipped `None`s, the
    /// unknown headers last), directly: serde's `flatten` goes through a map, and
    /// one of these is written per envelope.
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut first = true;
        let mut key = |out: &mut Vec<u8>, k: &str| {
            out.push(if std::mem::take(&mut first) { b'{' } else { b',' });
            json::write_key(out, k);
        };
        if let Some(id) = &self.event_id {
            key(out, "event_id");
            json::write_hex(out, id.as_int(), 32);
        }
        if let Some(sent_at) = &self.sent_at {
            key(out, "sent_at");
            json::write_str(out, sent_at);
        }
        if let Some(sdk) = &self.sdk {
            key(out, "sdk");
            if sdk.integrations.is_empty() && sdk.packages.is_empty() {
                out.extend_from_slice(b"{\"name\":");
                json::write_str(out, &sdk.name);
                out.extend_from_slice(b",\"version\":");
                json::write_str(out, &sdk.version);
                out.push(b'}');
            } else {
                // Writing to a Vec cannot fail; these types always serialize.
                let _ = serde_json::to_writer(&mut *out, sdk);
            }
        }
        if let Some(dsc) = &self.trace {
            key(out, "trace");
            dsc.write_json(out);
        }
        for (k, v) in &self.other {
            key(out, k);
            let _ = serde_json::to_writer(&mut *out, v);
        }
        if first {
            out.push(b'{');
        }
        out.push(b'}');
    }
}

/// The type of an envelope item.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ItemType {
    /// An error or message event.
    Event,
    /// A static-mode transaction.
    Transaction,
    /// A span v2 container.
    Span,
    /// A structured log container.
    Log,
    /// An attachment.
    Attachment,
    /// A client report.
    ClientReport,
    /// A session update.
    Session,
    /// A cron check-in.
    CheckIn,
    /// User feedback.
    Feedback,
    /// Any other type, kept as is.
    Other(String),
}

impl ItemType {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            ItemType::Event => "event",
            ItemType::Transaction => "transaction",
            ItemType::Span => "span",
            ItemType::Log => "log",
            ItemType::Attachment => "attachment",
            ItemType::ClientReport => "client_report",
            ItemType::Session => "session",
            ItemType::CheckIn => "check_in",
            ItemType::Feedback => "feedback",
            ItemType::Other(s) => s,
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "event" => ItemType::Event,
            "transaction" => ItemType::Transaction,
            "span" => ItemType::Span,
            "log" => ItemType::Log,
            "attachment" => ItemType::Attachment,
            "client_report" => ItemType::ClientReport,
            "session" => ItemType::Session,
            "check_in" => ItemType::CheckIn,
            "feedback" => ItemType::Feedback,
            other => ItemType::Other(other.to_owned()),
        }
    }

    /// The rate-limit / client-report category, if the type has one.
    pub fn category(&self) -> Option<DataCategory> {
        Some(match self {
            ItemType::Event => DataCategory::Error,
            ItemType::Transaction => DataCategory::Transaction,
            ItemType::Span => DataCategory::Span,
            ItemType::Log => DataCategory::LogItem,
            ItemType::Attachment => DataCategory::Attachment,
            ItemType::Session => DataCategory::Session,
            ItemType::CheckIn => DataCategory::Monitor,
            ItemType::Feedback => DataCategory::Feedback,
            ItemType::ClientReport | ItemType::Other(_) => return None,
        })
    }
}

/// Data categories of rate limits and client reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum DataCategory {
    Error,
    Transaction,
    Span,
    LogItem,
    LogByte,
    Attachment,
    Session,
    Monitor,
    Feedback,
}

impl DataCategory {
    /// Every category, in a fixed order.
    pub const ALL: [DataCategory; 9] = [
        DataCategory::Error,
        DataCategory::Transaction,
        DataCategory::Span,
        DataCategory::LogItem,
        DataCategory::LogByte,
        DataCategory::Attachment,
        DataCategory::Session,
        DataCategory::Monitor,
        DataCategory::Feedback,
    ];

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            DataCategory::Error => "error",
            DataCategory::Transaction => "transaction",
            DataCategory::Span => "span",
            DataCategory::LogItem => "log_item",
            DataCategory::LogByte => "log_byte",
            DataCategory::Attachment => "attachment",
            DataCategory::Session => "session",
            DataCategory::Monitor => "monitor",
            DataCategory::Feedback => "feedback",
        }
    }

    /// Parses a wire name; unknown names give `None`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "error" | "default" => DataCategory::Error,
            "transaction" => DataCategory::Transaction,
            "span" => DataCategory::Span,
            "log_item" => DataCategory::LogItem,
            "log_byte" => DataCategory::LogByte,
            "attachment" => DataCategory::Attachment,
            "session" => DataCategory::Session,
            "monitor" => DataCategory::Monitor,
            "feedback" => DataCategory::Feedback,
            _ => return None,
        })
    }
}

/// One envelope item: a type, extra headers and a raw payload.
#[derive(Clone, PartialEq)]
pub struct Item {
    ty: ItemType,
    headers: Map<String, Value>,
    payload: Vec<u8>,
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Item")
            .field("type", &self.ty)
            .field("headers", &self.headers)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

const SPAN_V2_CONTENT_TYPE: &str = "application/vnd.sentry.items.span.v2+json";
const LOG_CONTENT_TYPE: &str = "application/vnd.sentry.items.log+json";

impl Item {
    /// An item with a raw payload.
    pub fn new(ty: ItemType, payload: Vec<u8>) -> Self {
        Self { ty, headers: Map::new(), payload }
    }

    /// A JSON item with `content_type: application/json`.
    pub fn json<T: Serialize>(ty: ItemType, value: &T) -> serde_json::Result<Self> {
        let mut item = Self::new(ty, serde_json::to_vec(value)?);
        item.set_header("content_type", "application/json");
        Ok(item)
    }

    /// An `event` item, or a `transaction` item when the event is one.
    pub fn event(event: &Event) -> serde_json::Result<Self> {
        let ty = if event.ty.as_deref() == Some("transaction") { ItemType::Transaction } else { ItemType::Event };
        // Events with a stack trace are several KB: start big rather than grow
        // through a chain of reallocations.
        let mut payload = Vec::with_capacity(8 * 1024);
        serde_json::to_writer(&mut payload, event)?;
        let mut item = Self::new(ty, payload);
        item.set_header("content_type", "application/json");
        Ok(item)
    }

    /// [`Item::event`] for an event whose stack trace `placeholder` is written as
    /// the already serialized `frames` (see [`raw_frames`](super::raw_frames)).
    pub(crate) fn event_with_frames(
        event: &Event,
        placeholder: &Stacktrace,
        frames: Vec<RawFrame>,
    ) -> serde_json::Result<Self> {
        let ty = if event.ty.as_deref() == Some("transaction") { ItemType::Transaction } else { ItemType::Event };
        let mut payload = Vec::with_capacity(8 * 1024);
        super::raw_frames::serialize_event(event, placeholder, frames, &mut payload)?;
        let mut item = Self::new(ty, payload);
        item.set_header("content_type", "application/json");
        Ok(item)
    }

    /// A span v2 container item; `item_count` is set from the slice.
    pub fn spans<T: Serialize>(spans: &[T]) -> serde_json::Result<Self> {
        Self::container(ItemType::Span, SPAN_V2_CONTENT_TYPE, spans, true)
    }

    /// A log container item.
    pub fn logs<T: Serialize>(logs: &[T]) -> serde_json::Result<Self> {
        Self::container(ItemType::Log, LOG_CONTENT_TYPE, logs, false)
    }

    fn container<T: Serialize>(
        ty: ItemType,
        content_type: &str,
        items: &[T],
        versioned: bool,
    ) -> serde_json::Result<Self> {
        #[derive(Serialize)]
        struct Container<'a, T> {
            #[serde(skip_serializing_if = "Option::is_none")]
            version: Option<u8>,
            items: &'a [T],
        }
        let body = Container { version: versioned.then_some(2), items };
        let mut item = Self::new(ty, serde_json::to_vec(&body)?);
        item.set_header("content_type", content_type);
        item.set_header("item_count", items.len());
        Ok(item)
    }

    /// A `client_report` item.
    pub fn client_report(report: &ClientReport) -> serde_json::Result<Self> {
        Self::json(ItemType::ClientReport, report)
    }

    /// An attachment item.
    pub fn attachment(filename: &str, content_type: &str, payload: Vec<u8>) -> Self {
        let mut item = Self::new(ItemType::Attachment, payload);
        item.set_header("filename", filename);
        item.set_header("content_type", content_type);
        item
    }

    /// Sets a header other than `type` and `length`, which are always derived.
    pub fn set_header(&mut self, key: &str, value: impl Into<Value>) {
        if key != "type" && key != "length" {
            self.headers.insert(key.to_owned(), value.into());
        }
    }

    /// One header.
    pub fn header(&self, key: &str) -> Option<&Value> {
        self.headers.get(key)
    }

    /// The type.
    pub fn ty(&self) -> &ItemType {
        &self.ty
    }

    /// The raw payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Writes the item header line (without its newline): the extra headers plus
    /// `type` and `length`, keys in sorted order like a JSON map, and without
    /// building one.
    fn write_headers(&self, w: &mut Vec<u8>) {
        let mut fixed = [("length", None), ("type", Some(self.ty.as_str()))].into_iter().peekable();
        let mut first = true;
        let mut sep = |w: &mut Vec<u8>| w.push(if std::mem::take(&mut first) { b'{' } else { b',' });
        let write_fixed = |w: &mut Vec<u8>, key: &str, ty: Option<&str>| {
            json::write_key(w, key);
            match ty {
                Some(ty) => json::write_str(w, ty),
                None => json::write_u64(w, self.payload.len() as u64),
            }
        };
        for (k, v) in &self.headers {
            while let Some((key, ty)) = fixed.next_if(|(key, _)| *key < k.as_str()) {
                sep(w);
                write_fixed(w, key, ty);
            }
            sep(w);
            json::write_key(w, k);
            match v {
                Value::String(v) => json::write_str(w, v),
                Value::Number(n) if n.is_u64() => json::write_u64(w, n.as_u64().unwrap_or_default()),
                // Writing to a Vec cannot fail; a JSON value always serializes.
                v => {
                    let _ = serde_json::to_writer(&mut *w, v);
                }
            }
        }
        for (key, ty) in fixed {
            sep(w);
            write_fixed(w, key, ty);
        }
        w.push(b'}');
    }

    /// The payload parsed as JSON.
    pub fn payload_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.payload).ok()
    }

    /// How many units of its category this item holds (containers count their items).
    pub fn quantity(&self) -> u64 {
        self.headers.get("item_count").and_then(Value::as_u64).unwrap_or(1)
    }
}

/// An envelope: headers and items, serialized in Sentry's line format.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Envelope {
    /// Envelope headers.
    pub headers: EnvelopeHeaders,
    /// Items, in order.
    pub items: Vec<Item>,
}

/// Why an envelope could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeParseError {
    offset: usize,
    what: &'static str,
}

impl fmt::Display for EnvelopeParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid envelope at byte {}: {}", self.offset, self.what)
    }
}

impl std::error::Error for EnvelopeParseError {}

impl Envelope {
    /// An empty envelope.
    pub fn new() -> Self {
        Self::default()
    }

    /// An envelope holding one event (its id goes into the headers).
    pub fn from_event(event: &Event) -> serde_json::Result<Self> {
        let mut env = Self::new();
        env.headers.event_id = Some(event.event_id);
        env.items.push(Item::event(event)?);
        Ok(env)
    }

    /// [`Envelope::from_event`] through [`Item::event_with_frames`].
    pub(crate) fn from_event_with_frames(
        event: &Event,
        placeholder: &Stacktrace,
        frames: Vec<RawFrame>,
    ) -> serde_json::Result<Self> {
        let mut env = Self::new();
        env.headers.event_id = Some(event.event_id);
        env.items.push(Item::event_with_frames(event, placeholder, frames)?);
        Ok(env)
    }

    /// Appends an item.
    pub fn add_item(&mut self, item: Item) {
        self.items.push(item);
    }

    /// Whether the envelope has no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The first event or transaction payload, parsed.
    pub fn event(&self) -> Option<Event> {
        self.items
            .iter()
            .find(|i| matches!(i.ty, ItemType::Event | ItemType::Transaction))
            .and_then(|i| serde_json::from_slice(&i.payload).ok())
    }

    /// Serializes in the line format; every item carries `length`.
    pub fn to_writer<W: Write>(&self, mut w: W) -> std::io::Result<()> {
        // Header lines go through one buffer: written directly, not through serde.
        let mut line = Vec::with_capacity(512);
        self.headers.write_json(&mut line);
        w.write_all(&line)?;
        for item in &self.items {
            line.clear();
            line.push(b'\n');
            item.write_headers(&mut line);
            line.push(b'\n');
            w.write_all(&line)?;
            w.write_all(&item.payload)?;
        }
        w.write_all(b"\n")
    }

    /// Serializes into a byte vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.items.iter().map(|i| i.payload.len() + 64).sum::<usize>());
        // Writing into a Vec cannot fail on I/O; serde errors are impossible for these types.
        let _ = self.to_writer(&mut out);
        out
    }

    /// Parses the line format. Items without `length` run to the next newline.
    /// Never panics, and runs in time linear in the input.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EnvelopeParseError> {
        let err = |offset, what| EnvelopeParseError { offset, what };
        let (header_line, mut pos) = split_line(bytes, 0);
        let headers: EnvelopeHeaders =
            serde_json::from_slice(header_line).map_err(|_| err(0, "envelope headers are not a JSON object"))?;
        let mut items = Vec::new();
        while pos < bytes.len() {
            let (line, next) = split_line(bytes, pos);
            if line.iter().all(u8::is_ascii_whitespace) {
                pos = next;
                continue;
            }
            let mut item_headers: Map<String, Value> =
                serde_json::from_slice(line).map_err(|_| err(pos, "item headers are not a JSON object"))?;
            let ty = match item_headers.remove("type") {
                Some(Value::String(t)) => ItemType::parse(&t),
                _ => return Err(err(pos, "item header `type` is missing")),
            };
            let length = item_headers.remove("length");
            pos = next;
            let payload = match length {
                Some(v) => {
                    let len = v.as_u64().ok_or_else(|| err(pos, "item `length` is not an unsigned integer"))?;
                    let len = usize::try_from(len).map_err(|_| err(pos, "item `length` is too large"))?;
                    let end = pos
                        .checked_add(len)
                        .filter(|e| *e <= bytes.len())
                        .ok_or_else(|| err(pos, "item payload is shorter than `length`"))?;
                    let payload = bytes[pos..end].to_vec();
                    match bytes.get(end) {
                        None => pos = end,
                        Some(b'\n') => pos = end + 1,
                        Some(_) => return Err(err(end, "payload is not followed by a newline")),
                    }
                    payload
                }
                None => {
                    let (payload, after) = split_line(bytes, pos);
                    pos = after;
                    payload.to_vec()
                }
            };
            items.push(Item { ty, headers: item_headers, payload });
        }
        Ok(Envelope { headers, items })
    }
}

/// The line starting at `start` (without its `\n`) and the offset after it.
fn split_line(bytes: &[u8], start: usize) -> (&[u8], usize) {
    let rest = &bytes[start.min(bytes.len())..];
    match rest.iter().position(|b| *b == b'\n') {
        Some(i) => (&rest[..i], start + i + 1),
        None => (rest, bytes.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_events_attachments_reports_and_unknown_items() {
        let mut event = Event::new();
        event.set_message("hello\nworld");
        let mut env = Envelope::from_event(&event).unwrap();
        env.add_item(Item::attachment("a.txt", "text/plain", b"line1\nline2".to_vec()));
        env.add_item(
            Item::client_report(&ClientReport { timestamp: event.timestamp, discarded_events: vec![] }).unwrap(),
        );
        env.add_item(Item::new(ItemType::Other("future_thing".into()), b"{}".to_vec()));
        let bytes = env.to_vec();
        let parsed = Envelope::from_slice(&bytes).unwrap();
        assert_eq!(parsed.items.len(), 4);
        assert_eq!(parsed.headers.event_id, Some(event.event_id));
        assert_eq!(parsed.items[1].payload(), b"line1\nline2");
        assert_eq!(parsed.items[3].ty(), &ItemType::Other("future_thing".into()));
        assert_eq!(parsed.event().unwrap().event_id, event.event_id);
        assert_eq!(parsed.to_vec(), bytes);
    }

    #[test]
    fn every_item_header_carries_length() {
        let env = Envelope::from_event(&Event::new()).unwrap();
        let text = String::from_utf8(env.to_vec()).unwrap();
        let item_header: Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
        assert_eq!(item_header["length"].as_u64().unwrap() as usize, text.lines().nth(2).unwrap().len());
    }

    #[test]
    fn item_headers_are_written_like_a_sorted_map() {
        let mut items = vec![Item::spans(&[1, 2]).unwrap(), Item::new(ItemType::Other("x\"y".into()), vec![1; 5])];
        let mut item = Item::attachment("a\nb.txt", "text/plain", b"abc".to_vec());
        item.set_header("zzz", 1);
        item.set_header("aaa", Value::Null);
        items.push(item);
        for item in items {
            let mut map = item.headers.clone();
            map.insert("type".into(), Value::String(item.ty.as_str().to_owned()));
            map.insert("length".into(), Value::from(item.payload.len()));
            let mut line = Vec::new();
            item.write_headers(&mut line);
            assert_eq!(String::from_utf8(line).unwrap(), serde_json::to_string(&map).unwrap());
        }
    }

    #[test]
    fn headers_are_written_like_serde() {
        let mut headers = EnvelopeHeaders::default();
        let check = |h: &EnvelopeHeaders| {
            let mut out = Vec::new();
            h.write_json(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(h).unwrap());
        };
        check(&headers);
        headers.other.insert("zz".into(), Value::from(3));
        check(&headers);
        headers.event_id = Some(EventId::new());
        headers.sent_at = Some("2026-11-23T16:15:03.843301Z".into());
        headers.sdk = Some(SdkInfo { name: "sentry.rust.lite".into(), version: "0.1.0".into(), ..Default::default() });
        headers.trace = Some(DynamicSamplingContext {
            public_key: Some("k".into()),
            transaction: Some("GET \"/\"".into()),
            ..Default::default()
        });
        check(&headers);
        headers.other.insert("a\nb".into(), Value::String("c".into()));
        headers.sdk.as_mut().unwrap().integrations.push("panic".into());
        check(&headers);
    }

    #[test]
    fn items_without_length_run_to_newline() {
        let raw = b"{}\n{\"type\":\"event\"}\n{\"message\":\"x\"}\n{\"type\":\"attachment\",\"length\":3}\nabc";
        let env = Envelope::from_slice(raw).unwrap();
        assert_eq!(env.items.len(), 2);
        assert_eq!(env.items[0].payload(), b"{\"message\":\"x\"}");
        assert_eq!(env.items[1].payload(), b"abc");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for raw in [
            &b""[..],
            b"nope",
            b"{}\n{\"length\":1}\nx",
            b"{}\n{\"type\":\"event\",\"length\":99}\nx",
            b"{}\n{\"type\":\"e\",\"length\":1}\nxy",
        ] {
            assert!(Envelope::from_slice(raw).is_err(), "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn span_container_counts_items() {
        let item = Item::spans(&[1, 2, 3]).unwrap();
        assert_eq!(item.header("item_count"), Some(&Value::from(3)));
        assert_eq!(item.quantity(), 3);
        assert_eq!(item.payload(), b"{\"version\":2,\"items\":[1,2,3]}");
    }
}
