//! The worker's half of an event capture: everything that can wait.

use std::cell::RefCell;
use std::rc::Rc;

mod context;

pub(crate) use context::JobContext;

use crate::hub::ScopeSnapshot;
use crate::protocol::raw_frames::RawFrame;
use crate::protocol::{Context, DataCategory, DiscardReason, DynamicSamplingContext, Envelope, Event, Stacktrace};
use crate::scope::Scope;
use crate::stacktrace::{AddrMap, InAppRules, RawBacktrace, SymbolCache};
use crate::trace::PropagationContext;
use crate::worker::{Loss, SingleJob};

thread_local! {
    /// Symbolicated frames by instruction pointer. Events are finished on the
    /// client's worker thread, so this is that worker's cache (bounded, see
    /// [`SymbolCache`](crate::stacktrace::SymbolCache)); it goes away with the thread.
    static SYMBOLS: RefCell<SymbolCache> = RefCell::default();
    /// The same frames serialized, with `in_app` as decided by the client's rules.
    static FRAME_JSON: RefCell<FrameJson> = RefCell::default();
}

/// Serialized frames by `(instruction pointer, inline index)`; see
/// [`raw_frames`](crate::protocol::raw_frames). Bounded like the symbol cache.
#[derive(Default)]
struct FrameJson {
    /// The client whose in-app rules the cached frames follow (its address).
    owner: usize,
    frames: AddrMap<(usize, usize), RawFrame>,
}

/// Serialized frames a [`FrameJson`] holds before it starts over.
const FRAME_JSON_CAPACITY: usize = 20_000;

/// Where the stack trace of a capture went.
enum TraceSlot {
    /// Not attached (the event had its own).
    None,
    /// As owned frames.
    Frames,
    /// As a placeholder for these serialized frames, on the last exception or thread.
    Raw(Vec<RawFrame>, bool),
}

/// An event on its way to the worker, with what is needed to finish it there.
pub(crate) struct PendingEvent {
    pub(crate) event: Event,
    pub(crate) backtrace: Option<RawBacktrace>,
    /// Set by the client when it captures the event.
    pub(crate) scopes: Option<ScopeSnapshot>,
}

impl PendingEvent {
    pub(crate) fn new(event: Event, backtrace: Option<RawBacktrace>) -> Box<Self> {
        Box::new(Self { event, backtrace, scopes: None })
    }
}

impl SingleJob<JobContext> for PendingEvent {
    fn loss(&self) -> Loss {
        Loss::of(DataCategory::Error, 1)
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Option<Envelope> {
        finish_event(self, ctx)
    }
}

/// Applies scopes and defaults, symbolicates, runs processors and `before_send`,
/// enforces size limits and wraps the event in an envelope with the trace's DSC.
pub(crate) fn finish_event(pending: Box<PendingEvent>, client: &JobContext) -> Option<Envelope> {
    let PendingEvent { mut event, backtrace, scopes } = *pending;
    let scopes = scopes.unwrap_or_default();
    let options = &client.options;
    let max_crumbs = options.max_breadcrumbs;

    // Innermost first: fields already set win.
    for scope in [&scopes.current, &scopes.isolation, &scopes.global] {
        scope.apply_to_event(&mut event, max_crumbs);
    }
    if let Some(b) = &mut event.breadcrumbs {
        b.values.make_contiguous().sort_by_key(|c| c.timestamp);
    }

    let dsc = link_trace(&mut event, &scopes.current, &scopes.isolation, client);

    if event.release.is_none() {
        event.release = options.release.as_deref().map(str::to_owned);
    }
    if event.dist.is_none() {
        event.dist = options.dist.as_deref().map(str::to_owned);
    }
    if event.environment.is_none() {
        event.environment = Some(options.effective_environment().to_owned());
    }
    if event.server_name.is_none() {
        event.server_name = client.server_name.clone();
    }
    for (k, v) in &client.contexts {
        event.contexts.entry(k.clone()).or_insert_with(|| v.clone());
    }
    event.sdk = Some(client.sdk.clone());
    if !options.send_default_pii {
        strip_pii(&mut event);
    }
    if options.scrub_all_query_values {
        if let Some(q) = event.request.as_mut().and_then(|r| r.query_string.as_mut()) {
            *q = crate::privacy::scrub_query(q, true);
        }
    }

    // Nothing will look at the frames before serialization: write them from the
    // worker's cache of serialized frames instead of cloning them into the event.
    let frames_untouched = scopes.global.processors.is_empty()
        && scopes.isolation.processors.is_empty()
        && scopes.current.processors.is_empty()
        && options.integrations.is_empty()
        && options.before_send.is_none();
    let mut slot = TraceSlot::None;
    if let Some(bt) = backtrace {
        let rules = client.in_app_rules();
        let raw = if frames_untouched { raw_frames(&bt, &rules, client) } else { None };
        match raw {
            Some(frames) => {
                if let Some(in_thread) = attach_stacktrace(&mut event, Stacktrace::default()) {
                    slot = TraceSlot::Raw(frames, in_thread);
                }
            }
            None => {
                // `try_with`: during thread teardown the cache may be gone; resolve directly then.
                let resolved = SYMBOLS
                    .try_with(|cache| match cache.try_borrow_mut() {
                        Ok(mut cache) => bt.resolve_cached(&rules, &mut cache),
                        Err(_) => bt.resolve(&rules),
                    })
                    .unwrap_or_else(|_| bt.resolve(&rules));
                if let Some(stacktrace) = resolved {
                    if attach_stacktrace(&mut event, stacktrace).is_some() {
                        slot = TraceSlot::Frames;
                    }
                }
            }
        }
    } else {
        // Frames set by integrations (e.g. a panic hook) still get in_app rules.
        let rules = client.in_app_rules();
        for exc in event.exception.iter_mut().flat_map(|e| e.values.iter_mut()) {
            for frame in exc.stacktrace.iter_mut().flat_map(|s| s.frames.iter_mut()) {
                if frame.in_app.is_none() {
                    frame.in_app = Some(rules.is_in_app(frame));
                }
            }
        }
    }
    let processors = scopes
        .global
        .processors
        .iter()
        .chain(scopes.isolation.processors.iter())
        .chain(scopes.current.processors.iter());
    for processor in processors {
        match processor(event) {
            Some(e) => event = e,
            None => {
                client.reports.record(DiscardReason::EventProcessor, DataCategory::Error, 1);
                return None;
            }
        }
    }
    for integration in &options.integrations {
        match integration.process_event(event, options) {
            Some(e) => event = e,
            None => {
                client.reports.record(DiscardReason::EventProcessor, DataCategory::Error, 1);
                return None;
            }
        }
    }
    if let Some(before_send) = &options.before_send {
        match before_send(event) {
            Some(e) => event = e,
            None => {
                client.reports.record(DiscardReason::BeforeSend, DataCategory::Error, 1);
                return None;
            }
        }
    }

    crate::limits::enforce(&mut event);
    let mut envelope = match to_envelope(&event, &slot) {
        Ok(env) => env,
        Err(_) => {
            Loss::of(DataCategory::Error, 1).record(&client.reports, DiscardReason::InternalSdkError);
            return None;
        }
    };
    if envelope.items.first().is_some_and(|i| i.payload().len() > crate::limits::MAX_EVENT_BYTES) {
        crate::limits::shrink(&mut event);
        envelope = to_envelope(&event, &slot).ok()?;
    }
    envelope.headers.trace = Some(dsc);
    envelope.headers.sdk = None;
    Some(envelope)
}

/// Sets `contexts.trace` from the active span (or the scope's propagation context)
/// and returns the DSC for the envelope header.
fn link_trace(event: &mut Event, current: &Scope, isolation: &Scope, client: &JobContext) -> DynamicSamplingContext {
    if let Some(span) = current.span.as_ref().or(isolation.span.as_ref()) {
        event.contexts.insert("trace".into(), Context::Trace(span.trace_context()));
        if event.transaction.is_none() {
            event.transaction = span.segment_name();
        }
        if let Some(dsc) = span.dsc() {
            return dsc;
        }
    }
    let propagation = current
        .propagation
        .as_deref()
        .or(isolation.propagation.as_deref())
        .cloned()
        .unwrap_or_else(PropagationContext::new_random);
    if !event.contexts.contains_key("trace") {
        event.contexts.insert("trace".into(), Context::Trace(propagation.trace_context()));
    }
    propagation.dsc_for(Some(client))
}

/// Puts the captured stack trace on the outermost exception (unless it has one)
/// or, without exceptions, on a thread entry; `Some(on_a_thread)` when attached.
fn attach_stacktrace(event: &mut Event, stacktrace: Stacktrace) -> Option<bool> {
    match event.exception.as_mut().and_then(|e| e.values.last_mut()) {
        Some(exc) if exc.stacktrace.is_none() => {
            exc.stacktrace = Some(stacktrace);
            Some(false)
        }
        Some(_) => None,
        None => {
            let thread = crate::protocol::Thread {
                id: 0,
                name: std::thread::current().name().map(str::to_owned),
                current: Some(true),
                stacktrace: Some(stacktrace),
                ..Default::default()
            };
            event.threads.get_or_insert_with(Default::default).values.push(thread);
            Some(true)
        }
    }
}

/// The frames `bt` keeps, serialized (through this thread's caches); `None` when
/// the caches are unavailable (thread teardown) or no frame is kept.
fn raw_frames(bt: &RawBacktrace, rules: &InAppRules<'_>, client: &JobContext) -> Option<Vec<RawFrame>> {
    let owner = client as *const JobContext as usize;
    SYMBOLS
        .try_with(|symbols| {
            let mut symbols = symbols.try_borrow_mut().ok()?;
            FRAME_JSON
                .try_with(|json| {
                    let mut json = json.try_borrow_mut().ok()?;
                    if json.owner != owner {
                        json.frames.clear();
                        json.owner = owner;
                    }
                    let kept = bt.kept_cached(&mut symbols)?;
                    if json.frames.len() + kept.len() > FRAME_JSON_CAPACITY {
                        json.frames.clear();
                    }
                    let mut out = Vec::with_capacity(kept.len());
                    for k in kept {
                        let raw = match json.frames.get(&(k.ip, k.inline)) {
                            Some(raw) => raw.clone(),
                            None => {
                                let mut frame = k.frame.clone();
                                frame.in_app = Some(rules.is_in_app(k.frame));
                                let raw: RawFrame = Rc::from(serde_json::value::to_raw_value(&frame).ok()?);
                                json.frames.insert((k.ip, k.inline), raw.clone());
                                raw
                            }
                        };
                        out.push(raw);
                    }
                    Some(out)
                })
                .ok()
                .flatten()
        })
        .ok()
        .flatten()
}

/// The event's envelope, its placeholder stack trace (if any) written from the
/// serialized frames.
fn to_envelope(event: &Event, slot: &TraceSlot) -> serde_json::Result<Envelope> {
    if let TraceSlot::Raw(frames, in_thread) = slot {
        let placeholder = if *in_thread {
            event.threads.as_ref().and_then(|t| t.values.last()).and_then(|t| t.stacktrace.as_ref())
        } else {
            event.exception.as_ref().and_then(|e| e.values.last()).and_then(|e| e.stacktrace.as_ref())
        };
        if let Some(placeholder) = placeholder {
            return Envelope::from_event_with_frames(event, placeholder, frames.clone());
        }
    }
    Envelope::from_event(event)
}

/// Without `send_default_pii`: no IP, cookies, bodies, headers outside the
/// allowlist of harmless ones, or values of secret-looking query keys, whatever
/// integrations or users put on the scope.
fn strip_pii(event: &mut Event) {
    if let Some(user) = &mut event.user {
        user.ip_address = None;
    }
    if let Some(req) = &mut event.request {
        req.cookies = None;
        req.data = None;
        req.env.clear();
        req.headers.retain(|k, _| crate::privacy::is_harmless_header(k));
        if let Some(q) = &mut req.query_string {
            *q = crate::privacy::scrub_query(q, false);
        }
    }
}

/// Headers that carry credentials or personal data.
pub fn is_sensitive_header(name: &str) -> bool {
    const EXACT: [&str; 8] = [
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-forwarded-for",
        "x-real-ip",
        "forwarded",
        "x-sentry-auth",
    ];
    // Case-insensitive and allocation-free: integrations call this per request
    // header. One pass, dispatching on the byte a sensitive word starts with.
    let n = name.as_bytes();
    let has_at =
        |i: usize, word: &str| n.len() - i >= word.len() && n[i..i + word.len()].eq_ignore_ascii_case(word.as_bytes());
    EXACT.iter().any(|e| n.eq_ignore_ascii_case(e.as_bytes()))
        || (0..n.len()).any(|i| match n[i].to_ascii_lowercase() {
            b'a' => has_at(i, "api-key") || has_at(i, "apikey"),
            b't' => has_at(i, "token"),
            b's' => has_at(i, "secret") || has_at(i, "session"),
            b'p' => has_at(i, "password"),
            b'c' => has_at(i, "csrf"),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::{Client, ClientOptions, Hub, TestTransport};

    /// The stack trace JSON of one error captured through a client with `options`,
    /// always from the same call site.
    fn captured_stacktrace(options: ClientOptions) -> serde_json::Value {
        let transport = TestTransport::new();
        let dsn = "https://public@127.0.0.1:9/1".parse().unwrap();
        let client = Arc::new(Client::new(options.with_transport(transport.clone()), Some(dsn)));
        let hub = Arc::new(Hub::new_from_top(&Hub::main()));
        hub.bind_client(Some(client.clone()));
        for _ in 0..2 {
            // Twice: the second capture hits the worker's caches.
            Hub::run(hub.clone(), || crate::capture_error(&std::io::Error::other("boom")));
        }
        client.flush(Duration::from_secs(10));
        let envelopes = transport.take();
        assert_eq!(envelopes.len(), 2);
        let payloads: Vec<serde_json::Value> =
            envelopes.iter().map(|e| e.items[0].payload_json().unwrap()["exception"]["values"][0].clone()).collect();
        assert_eq!(payloads[0]["stacktrace"], payloads[1]["stacktrace"]);
        payloads[1]["stacktrace"].clone()
    }

    #[test]
    fn serialized_frames_match_owned_frames() {
        // Without callbacks the frames are written from the serialized-frame cache;
        // a `before_send` needs them owned. Both must give the same JSON.
        let fast = captured_stacktrace(ClientOptions::new());
        let owned = captured_stacktrace(ClientOptions::new().with_before_send(Some));
        assert!(fast["frames"].as_array().is_some_and(|f| !f.is_empty()), "{fast}");
        assert_eq!(fast, owned);
    }

    /// The `request` of one message captured with `request` on the scope.
    fn captured_request(options: ClientOptions, request: crate::protocol::Request) -> serde_json::Value {
        let transport = TestTransport::new();
        let client = Arc::new(Client::new(options.with_transport(transport.clone()), None));
        let hub = Arc::new(Hub::new_from_top(&Hub::main()));
        hub.bind_client(Some(client.clone()));
        Hub::run(hub, || {
            crate::configure_scope(|s| s.set_request(Some(request)));
            crate::capture_message("m", crate::Level::Info);
        });
        client.flush(Duration::from_secs(10));
        transport.take()[0].items[0].payload_json().unwrap()["request"].clone()
    }

    #[test]
    fn requests_set_by_hand_are_filtered_too() {
        let mut request =
            crate::protocol::Request { query_string: Some("q=shoes&access_token=abc".into()), ..Default::default() };
        request.headers.insert("X-Auth".into(), "secret".into());
        request.headers.insert("Accept".into(), "*/*".into());
        let got = captured_request(ClientOptions::new(), request.clone());
        assert_eq!(got["query_string"], "q=shoes&access_token=[Filtered]");
        assert_eq!(got["headers"], serde_json::json!({"Accept": "*/*"}));
        let got = captured_request(ClientOptions::new().with_send_default_pii(true), request.clone());
        assert_eq!(got["query_string"], "q=shoes&access_token=abc");
        let all = ClientOptions::new().with_send_default_pii(true).with_scrub_all_query_values(true);
        assert_eq!(captured_request(all, request)["query_string"], "q=[Filtered]&access_token=[Filtered]");
    }

    #[test]
    fn sensitive_headers() {
        for h in ["Authorization", "cookie", "X-API-Key", "x-auth-token", "X-Forwarded-For"] {
            assert!(is_sensitive_header(h), "{h}");
        }
        for h in ["X-CSRF-Token", "x-session-id", "MY_SECRET", "x-apikey", "x-password", "Set-Cookie", "x-real-ip"] {
            assert!(is_sensitive_header(h), "{h}");
        }
        for h in ["accept", "user-agent", "content-type", "host", "x-forwarded-proto", "tok", "x-api"] {
            assert!(!is_sensitive_header(h), "{h}");
        }
    }
}
