//! The `tracing_subscriber::Layer`.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use sentry_lite_core::protocol::{
    Attribute, AttributeValue, Event, Exception, LogItem, LogLevel, SpanStatus, TraceId, Values,
};
use sentry_lite_core::{Breadcrumb, Hub, Level, RawBacktrace, Span};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::fields::{CrumbFields, EventFields, FieldValue};
use crate::filter::{default_event_filter, EventFilter};
use crate::logs::{LogBuffer, LogFlusher};
use crate::span_fields::{is_special, AttributeList, SpanAttributes, SpanNaming};

type EventFilterFn = dyn Fn(&Metadata<'_>) -> EventFilter + Send + Sync;
type SpanFilterFn = dyn Fn(&Metadata<'_>) -> bool + Send + Sync;

/// Default `sentry.op` of a span without a `sentry.op` field.
pub const DEFAULT_SPAN_OP: &str = "function";
/// `sentry.origin` of spans made by this layer.
pub const SPAN_ORIGIN: &str = "auto.tracing";

/// The per-span state kept in the registry's extensions.
pub(crate) struct SentrySpan {
    pub(crate) span: Span,
}

/// A `tracing_subscriber` layer sending `tracing` data to Sentry. Build it with
/// [`layer()`].
///
/// - Events become breadcrumbs, Sentry events or logs according to the
///   [event filter](SentryLayer::event_filter) (default: [`default_event_filter`]).
/// - Spans become streamed Sentry spans, parented along `tracing`'s own span tree.
///   The name is the field `sentry.name` (or `otel.name`) if present, else the
///   `tracing` span name; `sentry.op` comes from the field `sentry.op`, else
///   [`DEFAULT_SPAN_OP`]; the other fields are typed attributes, updated by
///   `Span::record`. Entering a `tracing` span makes it the SDK's current span.
pub struct SentryLayer<S> {
    event_filter: Box<EventFilterFn>,
    span_filter: Box<SpanFilterFn>,
    enable_logs: Option<bool>,
    logs: Arc<LogBuffer>,
    /// Names this layer's entries on the core's entered-span stack (tracing ids
    /// are per subscriber, and several may run on one thread).
    key: u64,
    _subscriber: PhantomData<fn(S)>,
}

/// Layer keys; 0 is the core's "no key".
static NEXT_KEY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl<S> fmt::Debug for SentryLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentryLayer").field("enable_logs", &self.enable_logs).finish_non_exhaustive()
    }
}

/// A layer with the default filters; add it to a `tracing_subscriber::registry()`.
///
/// # Examples
/// ```
/// use tracing_subscriber::prelude::*;
/// let subscriber = tracing_subscriber::registry().with(sentry_lite_tracing::layer());
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(user = 42, "logged in"); // a breadcrumb
/// });
/// ```
pub fn layer<S>() -> SentryLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    SentryLayer {
        event_filter: Box::new(default_event_filter),
        span_filter: Box::new(|_| true),
        enable_logs: None,
        logs: Arc::new(LogBuffer::default()),
        key: NEXT_KEY.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        _subscriber: PhantomData,
    }
}

impl<S> SentryLayer<S> {
    /// Chooses per event among ignore, breadcrumb, event and log (or combinations).
    ///
    /// # Examples
    /// ```
    /// use sentry_lite_tracing::EventFilter;
    /// # type S = tracing_subscriber::Registry;
    /// let layer = sentry_lite_tracing::layer::<S>().event_filter(|md| match *md.level() {
    ///     tracing::Level::ERROR => EventFilter::Event,
    ///     _ => EventFilter::Breadcrumb | EventFilter::Log,
    /// });
    /// ```
    #[must_use]
    pub fn event_filter(mut self, f: impl Fn(&Metadata<'_>) -> EventFilter + Send + Sync + 'static) -> Self {
        self.event_filter = Box::new(f);
        self
    }

    /// Chooses which `tracing` spans become Sentry spans (default: all). Children of a
    /// filtered-out span attach to its nearest kept ancestor.
    #[must_use]
    pub fn span_filter(mut self, f: impl Fn(&Metadata<'_>) -> bool + Send + Sync + 'static) -> Self {
        self.span_filter = Box::new(f);
        self
    }

    /// Forces structured logs on or off; by default `ClientOptions::enable_logs` decides.
    #[must_use]
    pub fn enable_logs(mut self, enable: bool) -> Self {
        self.enable_logs = Some(enable);
        self
    }

    /// A handle to flush the queued logs (e.g. just before `sentry_lite_core::flush`).
    pub fn log_flusher(&self) -> LogFlusher {
        LogFlusher { buffer: self.logs.clone() }
    }
}

impl<S> Drop for SentryLayer<S> {
    fn drop(&mut self) {
        self.logs.shutdown();
    }
}

/// The nearest span (this one or an ancestor) holding a Sentry span.
fn sentry_span_in<S>(span: Option<SpanRef<'_, S>>) -> Option<Span>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    for s in span?.scope() {
        if let Some(state) = s.extensions().get::<SentrySpan>() {
            return Some(state.span.clone());
        }
    }
    None
}

fn breadcrumb_level(level: &tracing_core::Level) -> Level {
    match *level {
        tracing_core::Level::ERROR => Level::Error,
        tracing_core::Level::WARN => Level::Warning,
        tracing_core::Level::INFO => Level::Info,
        _ => Level::Debug,
    }
}

fn log_level(level: &tracing_core::Level) -> LogLevel {
    match *level {
        tracing_core::Level::ERROR => LogLevel::Error,
        tracing_core::Level::WARN => LogLevel::Warn,
        tracing_core::Level::INFO => LogLevel::Info,
        tracing_core::Level::DEBUG => LogLevel::Debug,
        _ => LogLevel::Trace,
    }
}

/// Whether an SDK client is bound where this thread or task would capture.
fn sdk_active() -> bool {
    Hub::with_current_client(|c| c.is_enabled()).unwrap_or(false)
}

/// Trace of a log emitted outside any span: the scope's propagation context (the
/// trace its events link to), read from the outgoing `sentry-trace` header.
fn scope_trace_id() -> TraceId {
    sentry_lite_core::trace_headers()
        .into_iter()
        .find(|(k, _)| *k == "sentry-trace")
        .and_then(|(_, v)| v.get(..32).and_then(|id| id.parse().ok()))
        .unwrap_or_else(fallback_trace_id)
}

fn fallback_trace_id() -> TraceId {
    static ID: OnceLock<TraceId> = OnceLock::new();
    *ID.get_or_init(TraceId::new)
}

impl<S> tracing_subscriber::Layer<S> for SentryLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !sentry_lite_core::is_enabled() {
            return;
        }
        let metadata = attrs.metadata();
        if !(self.span_filter)(metadata) {
            return;
        }
        let Some(span_ref) = ctx.span(id) else { return };
        let fields = metadata.fields();
        // Only spans with a naming field build (and drop) the naming strings.
        let naming = fields.iter().any(|f| is_special(f.name())).then(|| {
            let mut naming = SpanNaming::default();
            attrs.record(&mut naming);
            naming
        });
        let name = naming.as_ref().and_then(|n| n.name.as_deref()).unwrap_or(metadata.name());
        let op_field = naming.as_ref().and_then(|n| n.op.as_deref());
        let op = op_field.unwrap_or(DEFAULT_SPAN_OP);
        // Fields go in as initial attributes: one list, no lock per field.
        let attributes = || {
            let mut list = AttributeList { attributes: Vec::with_capacity(fields.len()) };
            if !fields.is_empty() {
                attrs.record(&mut list);
            }
            list.attributes
        };
        let child_of = |parent: &Span| {
            // An unsampled parent has non-recording children: skip the fields.
            let attributes = if parent.is_sampled() { attributes() } else { Vec::new() };
            match op_field {
                Some(op) => parent.start_child_with(name, op, Some(SPAN_ORIGIN), attributes),
                None => parent.start_child_with_static_op(name, DEFAULT_SPAN_OP, Some(SPAN_ORIGIN), attributes),
            }
        };
        // The nearest tracing ancestor holding a Sentry span is the parent; the
        // child starts under its extensions' read lock (no handle clone).
        // Each ancestor is looked up once (`scope()` from a `SpanRef` would look
        // it up again). The state goes in where the span starts (no moves of it
        // through an `Option`).
        let mut next = if attrs.is_root() { None } else { span_ref.parent() };
        while let Some(s) = next {
            let ext = s.extensions();
            if let Some(state) = ext.get::<SentrySpan>() {
                let span = child_of(&state.span);
                drop(ext);
                span_ref.extensions_mut().insert(SentrySpan { span });
                return;
            }
            drop(ext);
            next = s.parent();
        }
        // Whether the SDK is active here and which span is current: one hub lookup.
        let Some(current) = sentry_lite_core::current_span_if_active() else { return };
        let span = match current {
            // No tracing parent with a Sentry span: the SDK's current span (a
            // future's, an `enter_span`'s) is the parent, like `start_span`.
            Some(parent) if !attrs.is_root() => child_of(&parent),
            // A new segment: the sampler sees the attributes.
            _ => sentry_lite_core::start_root_span_with(name, op, SPAN_ORIGIN, attributes()),
        };
        span_ref.extensions_mut().insert(SentrySpan { span });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if !sentry_lite_core::is_enabled() {
            return;
        }
        let Some(span_ref) = ctx.span(id) else { return };
        let ext = span_ref.extensions();
        if let Some(state) = ext.get::<SentrySpan>() {
            if state.span.is_recording() {
                values.record(&mut SpanAttributes { span: &state.span });
            }
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if !sentry_lite_core::is_enabled() {
            return;
        }
        // Spans entered while unwinding (an instrumented future dropped by a
        // panic) are not made current: their extensions lock may be poisoned, and
        // a panic here would abort the process.
        if std::thread::panicking() {
            return;
        }
        let Some(span_ref) = ctx.span(id) else { return };
        let ext = span_ref.extensions();
        if let Some(state) = ext.get::<SentrySpan>() {
            state.span.enter_keyed(self.key, id.into_u64());
        }
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        if !sentry_lite_core::is_enabled() {
            return;
        }
        // By key: no registry lookup, no lock (exits also run while unwinding).
        Span::exit_keyed(self.key, id.into_u64());
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if !sentry_lite_core::is_enabled() {
            return;
        }
        let Some(span_ref) = ctx.span(&id) else { return };
        // Finished in place: the registry drops the state when it clears the
        // span's slot right after this, cheaper than a map removal here.
        let ext = span_ref.extensions();
        if let Some(state) = ext.get::<SentrySpan>() {
            state.span.finish();
        }
    }

    fn on_event(&self, event: &tracing_core::Event<'_>, ctx: Context<'_, S>) {
        if !sentry_lite_core::is_enabled() {
            return;
        }
        let metadata = event.metadata();
        let mut actions = (self.event_filter)(metadata);
        if actions.is_empty() {
            return;
        }
        let mut log_client = None;
        if actions.contains(EventFilter::Log) {
            if self.enable_logs != Some(false) {
                log_client = Hub::with_current_client(|c| {
                    (c.is_enabled() && self.enable_logs.unwrap_or_else(|| c.options().enable_logs)).then(|| c.clone())
                })
                .flatten();
            }
            if log_client.is_none() {
                actions = actions.without(EventFilter::Log);
            }
        }
        if actions == EventFilter::Breadcrumb {
            // The common case: fields go straight into the breadcrumb (the evicted
            // oldest one, recycled, once the ring is full), only once a client is found.
            sentry_lite_core::add_breadcrumb_with(|crumb| fill_crumb(crumb, event));
            return;
        }
        if actions.is_empty() || !sdk_active() {
            return;
        }
        let mut fields =
            EventFields { want_exceptions: actions.contains(EventFilter::Event), ..EventFields::default() };
        event.record(&mut fields);
        let span = if actions.contains(EventFilter::Event) || actions.contains(EventFilter::Log) {
            sentry_span_in(ctx.event_span(event))
        } else {
            None
        };

        if actions.contains(EventFilter::Event) {
            if *metadata.level() == tracing_core::Level::ERROR {
                if let Some(span) = &span {
                    span.set_status(SpanStatus::InternalError);
                }
            }
            capture(metadata, &fields);
        }
        if actions.contains(EventFilter::Breadcrumb) {
            sentry_lite_core::add_breadcrumb(breadcrumb(metadata, &fields));
        }
        if let Some(client) = log_client {
            self.logs.push(&client, log_item(metadata, &fields, span.as_ref()));
        }
    }
}

/// Writes `event` into `crumb` (a fresh or recycled breadcrumb, stamped now),
/// reusing its allocations: type, category and level, then message and data.
fn fill_crumb(crumb: &mut Breadcrumb, event: &tracing_core::Event<'_>) {
    let metadata = event.metadata();
    let level = *metadata.level();
    if level == tracing_core::Level::ERROR {
        set_str(&mut crumb.ty, "error");
    } else {
        crumb.ty = None;
    }
    set_str(&mut crumb.category, metadata.target());
    crumb.level = Some(breadcrumb_level(&level));
    CrumbFields::fill(crumb, event);
}

/// Sets `slot` to `value`, keeping the old string's allocation when there is one.
fn set_str(slot: &mut Option<String>, value: &str) {
    match slot {
        Some(s) => {
            s.clear();
            s.push_str(value);
        }
        None => *slot = Some(value.to_owned()),
    }
}

/// A breadcrumb with the event's type, category and level, without message and data.
fn crumb_shell(metadata: &Metadata<'_>) -> Breadcrumb {
    let level = *metadata.level();
    Breadcrumb {
        ty: (level == tracing_core::Level::ERROR).then(|| "error".to_owned()),
        category: Some(metadata.target().to_owned()),
        level: Some(breadcrumb_level(&level)),
        ..Breadcrumb::default()
    }
}

fn breadcrumb(metadata: &Metadata<'_>, fields: &EventFields) -> Breadcrumb {
    Breadcrumb {
        message: fields.message.clone(),
        data: fields.fields.iter().map(|(k, v)| ((*k).to_owned(), v.to_json())).collect(),
        ..crumb_shell(metadata)
    }
}

#[inline(never)]
fn capture(metadata: &Metadata<'_>, fields: &EventFields) {
    let mut event = Event::new();
    event.level = Some(breadcrumb_level(metadata.level()));
    event.logger = Some(metadata.target().to_owned());
    if let Some(message) = &fields.message {
        event.set_message(message.clone());
    }
    event.extra = fields.fields.iter().map(|(k, v)| ((*k).to_owned(), v.to_json())).collect();
    let backtrace = match &fields.exceptions {
        Some(values) => {
            let mut values: Vec<Exception> = values.clone();
            if let Some(outer) = values.last_mut() {
                if let Some(m) = &mut outer.mechanism {
                    m.ty = "tracing".into();
                }
            }
            event.exception = Some(Values { values });
            Some(RawBacktrace::capture())
        }
        None => None,
    };
    sentry_lite_core::capture_event_with_backtrace(event, backtrace);
}

fn log_item(metadata: &Metadata<'_>, fields: &EventFields, span: Option<&Span>) -> LogItem {
    let level = log_level(metadata.level());
    let mut attributes: BTreeMap<String, Attribute> = BTreeMap::new();
    let attr = |v: &FieldValue| Attribute::from(&v.to_attribute());
    if let Some(message) = &fields.message {
        if !fields.fields.is_empty() {
            attributes
                .insert("sentry.message.template".into(), Attribute::from(&AttributeValue::from(message.as_str())));
            // Fields are named, not positions in the message: the spec's
            // `sentry.message.parameter.<name>` form.
            for (k, v) in &fields.fields {
                attributes.insert(format!("sentry.message.parameter.{k}"), attr(v));
            }
        }
    }
    for (k, v) in &fields.fields {
        attributes.insert((*k).to_owned(), attr(v));
    }
    attributes.insert("sentry.origin".into(), Attribute::from(&AttributeValue::from("auto.log.tracing")));
    attributes.insert("logger.name".into(), Attribute::from(&AttributeValue::from(metadata.target())));
    let (trace_id, span_id) = match span.cloned().or_else(sentry_lite_core::current_span) {
        Some(s) => (s.trace_id(), Some(s.span_id())),
        None => (scope_trace_id(), None),
    };
    LogItem {
        timestamp: sentry_lite_core::protocol::Timestamp::now(),
        trace_id,
        span_id,
        level,
        body: fields.message.clone().unwrap_or_default(),
        severity_number: Some(level.severity_number()),
        attributes,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sentry_lite_core::{ClientOptions, Level, TestTransport};
    use serde_json::json;
    use tracing_subscriber::prelude::*;

    /// With a tiny ring breadcrumbs reuse evicted ones: no value of the recycled
    /// breadcrumb (message, level, stale data keys) may leak into the new one.
    #[test]
    fn recycled_breadcrumbs_hold_only_their_own_values() {
        macro_rules! many {
            ($target:literal) => {
                tracing::info!(
                    target: $target,
                    f0 = 0, f1 = 1, f2 = 2, f3 = 3, f4 = 4, f5 = 5, f6 = 6, f7 = 7, f8 = 8,
                    f9 = 9, f10 = 10, f11 = 11, f12 = 12, f13 = 13, f14 = 14, f15 = 15, f16 = 16, f17 = 17,
                    "many {}", 18
                )
            };
        }
        let transport = TestTransport::new();
        let _guard =
            sentry_lite_core::init(ClientOptions::new().with_max_breadcrumbs(3).with_transport(transport.clone()))
                .expect("init");
        let subscriber = tracing_subscriber::registry().with(super::layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "a", k1 = 1, s = "a long string value", "first");
            tracing::warn!(target: "b", "second");
            tracing::info!(target: "c", k2 = true);
            many!("d"); // evicts "first"
                        // Reuses "first": `s` refilled, `k1` dropped, no message.
            tracing::info!(target: "c", s = "z", k2 = false);
            // Reuses "second" (a warning): more fields than tracked in place.
            many!("e");
        });
        sentry_lite_core::capture_message("end", Level::Info);
        assert!(sentry_lite_core::flush(Duration::from_secs(5)));
        let events = transport.events();
        let crumbs: Vec<_> = events[0].breadcrumbs.as_ref().expect("breadcrumbs").values.iter().cloned().collect();
        assert_eq!(crumbs.len(), 3, "{crumbs:#?}");
        for (many, target) in [(&crumbs[0], "d"), (&crumbs[2], "e")] {
            assert_eq!(many.category.as_deref(), Some(target));
            assert_eq!(many.message.as_deref(), Some("many 18"));
            assert_eq!(many.ty, None);
            assert_eq!(many.level, Some(Level::Info));
            assert_eq!(many.data.len(), 18, "{:?}", many.data);
            assert_eq!(many.data["f17"], 17);
        }
        let reused = &crumbs[1];
        assert_eq!(reused.category.as_deref(), Some("c"));
        assert_eq!(reused.message, None);
        assert_eq!(serde_json::to_value(&reused.data).unwrap(), json!({"s": "z", "k2": false}));
        drop(_guard);

        // With `before_breadcrumb`, the hook sees (and may drop or change) each one
        // (on a fresh thread: a new thread hub bound to the new client).
        std::thread::spawn(|| {
            let transport = TestTransport::new();
            let _guard = sentry_lite_core::init(
                ClientOptions::new()
                    .with_max_breadcrumbs(1)
                    .with_before_breadcrumb(|mut b| {
                        (b.message.as_deref() != Some("drop me")).then(|| {
                            b.data.insert("seen".into(), json!(true));
                            b
                        })
                    })
                    .with_transport(transport.clone()),
            )
            .expect("init");
            let subscriber = tracing_subscriber::registry().with(super::layer());
            tracing::subscriber::with_default(subscriber, || {
                tracing::info!(n = 1, "kept");
                tracing::info!(n = 2, "drop me");
            });
            sentry_lite_core::capture_message("end", Level::Info);
            assert!(sentry_lite_core::flush(Duration::from_secs(5)));
            let events = transport.events();
            let crumbs = &events[0].breadcrumbs.as_ref().expect("breadcrumbs").values;
            assert_eq!(crumbs.len(), 1, "{crumbs:#?}");
            assert_eq!(crumbs[0].message.as_deref(), Some("kept"));
            assert_eq!(serde_json::to_value(&crumbs[0].data).unwrap(), json!({"n": 1, "seen": true}));
        })
        .join()
        .unwrap();
    }
}
