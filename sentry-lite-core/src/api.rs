//! The free-function API most users call.

use std::cell::Cell;
use std::error::Error;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::client::Client;
use crate::hub::{Hub, EVER_ENABLED};
use crate::ids::EventId;
use crate::pipeline::PendingEvent;
use crate::protocol::{Breadcrumb, Event, Level, Timestamp};
use crate::scope::Scope;
use crate::stacktrace::RawBacktrace;
use crate::{ClientOptions, Dsn, DsnParseError};

/// Why `init` failed. The SDK stays disabled; the application goes on.
#[derive(Debug)]
pub struct InitError {
    kind: InitErrorKind,
}

#[derive(Debug)]
enum InitErrorKind {
    Dsn(DsnParseError),
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            InitErrorKind::Dsn(e) => write!(f, "sentry-lite not initialized: {e}"),
        }
    }
}

impl Error for InitError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.kind {
            InitErrorKind::Dsn(e) => Some(e),
        }
    }
}

/// Keeps the SDK running; dropping it flushes within `shutdown_timeout` and stops
/// the worker of its client.
///
/// Guards may overlap (see [`init`]): the main hub is bound to the client of the
/// newest live guard, and dropping a guard never unbinds a newer client.
#[must_use = "dropping the guard shuts the SDK down"]
#[derive(Debug)]
pub struct InitGuard {
    client: Option<Arc<Client>>,
}

impl InitGuard {
    /// Whether the SDK is enabled (a DSN or a transport was given).
    pub fn is_enabled(&self) -> bool {
        self.client.as_ref().is_some_and(|c| c.is_enabled())
    }

    /// The client.
    pub fn client(&self) -> Option<&Arc<Client>> {
        self.client.as_ref()
    }
}

/// Clients of live [`InitGuard`]s, oldest first.
static LIVE_INITS: parking_lot::Mutex<Vec<Arc<Client>>> = parking_lot::Mutex::new(Vec::new());

impl Drop for InitGuard {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            {
                let mut live = LIVE_INITS.lock();
                live.retain(|c| !Arc::ptr_eq(c, &client));
                // Hand the main hub over before closing, so that captures go on
                // to the newest client still live (none after the last guard).
                let main = Hub::main();
                if main.with_client(|bound| Arc::ptr_eq(bound, &client)).unwrap_or(false) {
                    main.bind_client(live.last().cloned());
                }
            }
            let timeout = client.options().shutdown_timeout;
            client.close(timeout);
        }
    }
}

/// Initializes the SDK and binds a client to the main hub.
///
/// With no DSN (and no custom transport) the SDK is disabled and every call is a
/// cheap no-op. A malformed DSN is an error naming the problem; the SDK then stays
/// disabled.
///
/// Calling `init` again while an earlier guard lives binds the new client; the
/// earlier one keeps running until its own guard drops (what it queued is still
/// delivered). Dropping a guard closes its client and, if that client is still
/// bound, binds the client of the newest guard still alive, or none. So captures
/// always go to the newest live client, whatever order guards drop in, and a
/// capture that races with its client's close is counted as dropped by that client.
///
/// # Examples
/// ```
/// let guard = sentry_lite_core::init(sentry_lite_core::ClientOptions::new()).unwrap();
/// assert!(!guard.is_enabled());
/// let err = sentry_lite_core::init(sentry_lite_core::ClientOptions::new().with_dsn("https://host/1")).unwrap_err();
/// assert!(err.to_string().contains("public key"));
/// ```
pub fn init(mut options: ClientOptions) -> Result<InitGuard, InitError> {
    let dsn = match options.dsn.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(raw) => Some(raw.parse::<Dsn>().map_err(|e| InitError { kind: InitErrorKind::Dsn(e) })?),
        None => None,
    };
    let integrations = options.integrations.clone();
    for integration in &integrations {
        integration.setup(&mut options);
    }
    let client = Arc::new(Client::new(options, dsn));
    if client.options().debug {
        eprintln!("[sentry-lite] init: {:?}", client.options());
    }
    if !client.is_enabled() {
        return Ok(InitGuard { client: None });
    }
    {
        let mut live = LIVE_INITS.lock();
        live.push(client.clone());
        Hub::main().bind_client(Some(client.clone()));
    }
    for integration in &integrations {
        integration.install();
    }
    Ok(InitGuard { client: Some(client) })
}

#[inline]
fn enabled() -> bool {
    EVER_ENABLED.load(Ordering::Relaxed)
}

/// Whether a client was ever bound: a single atomic load, for integrations that
/// want to skip work entirely while the SDK is not initialized.
#[inline]
pub fn is_enabled() -> bool {
    enabled()
}

/// Captures an error and its `source()` chain, with the capture site's stack trace.
///
/// # Examples
/// ```
/// let err = std::io::Error::new(std::io::ErrorKind::Other, "disk on fire");
/// let id = sentry_lite_core::capture_error(&err);
/// assert!(id.is_nil()); // not initialized: a no-op
/// ```
#[inline(never)]
pub fn capture_error<E: Error + 'static>(error: &E) -> EventId {
    let ty = std::any::type_name::<E>();
    capture_error_inner(error, (!ty.contains("dyn ")).then_some(ty))
}

/// Captures a type-erased error (e.g. from a `Box<dyn Error>`).
#[inline(never)]
pub fn capture_error_dyn(error: &(dyn Error + 'static)) -> EventId {
    capture_error_inner(error, None)
}

fn capture_error_inner(error: &(dyn Error + 'static), type_name: Option<&'static str>) -> EventId {
    if !enabled() {
        return EventId::nil();
    }
    Hub::with_current(|hub| {
        hub.with_client(|client| {
            let job = client.event_from_error(error, type_name);
            client.capture(hub, job)
        })
        .unwrap_or_default()
    })
}

/// Captures a message at `level`.
pub fn capture_message(message: &str, level: Level) -> EventId {
    if !enabled() {
        return EventId::nil();
    }
    let mut job = PendingEvent::new(Event::new(), None);
    job.event.level = Some(level);
    job.event.set_message(message);
    capture_boxed(job)
}

/// Captures a fully built event.
pub fn capture_event(event: Event) -> EventId {
    capture_event_with_backtrace(event, None)
}

/// Captures an event with an unresolved stack trace taken by the caller (used by
/// integrations such as the panic hook).
pub fn capture_event_with_backtrace(event: Event, backtrace: Option<RawBacktrace>) -> EventId {
    if !enabled() {
        return EventId::nil();
    }
    capture_boxed(PendingEvent::new(event, backtrace))
}

fn capture_boxed(job: Box<PendingEvent>) -> EventId {
    Hub::with_current(|hub| hub.with_client(|c| c.capture(hub, job)).unwrap_or_default())
}

/// Queues a ready-made envelope (e.g. a batch of logs) through the current client's
/// worker. Never blocks; a full queue drops it and counts the drop.
pub fn capture_envelope(envelope: crate::protocol::Envelope) {
    if !enabled() || envelope.is_empty() {
        return;
    }
    Hub::with_current(|hub| {
        hub.with_client(|c| c.submit(Box::new(crate::worker::EnvelopeJob(envelope))));
    });
}

/// The id of the last event captured in the current hub.
pub fn last_event_id() -> Option<EventId> {
    if !enabled() {
        return None;
    }
    Hub::with_current(|hub| hub.last_event_id())
}

/// Records a breadcrumb in the current unit of work (its isolation scope), so it
/// shows on every capture made later in that unit, however deep it was added.
pub fn add_breadcrumb(breadcrumb: impl Into<Breadcrumb>) {
    if !enabled() {
        return;
    }
    Hub::with_current(|hub| {
        hub.with_client(|client| {
            let options = client.options();
            let mut crumb = breadcrumb.into();
            if let Some(f) = &options.before_breadcrumb {
                match contain_before_breadcrumb(client, || f(crumb)) {
                    Some(c) => crumb = c,
                    None => return,
                }
            }
            let max = options.max_breadcrumbs;
            let evicted = hub.configure_isolation_scope(|scope| scope.push_breadcrumb(crumb, max));
            drop(evicted); // outside the lock
        });
    });
}

/// Runs `before_breadcrumb` on the caller's thread: a panic in it drops the
/// breadcrumb (breadcrumbs have no data category to count) and goes no further.
fn contain_before_breadcrumb(client: &Client, f: impl FnOnce() -> Option<Breadcrumb>) -> Option<Breadcrumb> {
    let loss = crate::worker::Loss::of(crate::protocol::DataCategory::Error, 0);
    let kept = crate::worker::guarded(&client.inner().reports, loss, f);
    if kept.is_none() {
        client.inner().debug("before_breadcrumb panicked; the breadcrumb was dropped");
    }
    kept.flatten()
}

/// Like [`add_breadcrumb`], but `fill` writes the breadcrumb in place. Once the
/// breadcrumb ring is full, the breadcrumb handed to `fill` is one this thread
/// evicted before (kept aside per thread), so its strings and map can be cleared
/// and refilled without allocating.
///
/// The breadcrumb comes stamped now but otherwise holds stale values (or defaults):
/// `fill` must set every other field (`ty`, `category`, `level`, `message`, `data`).
/// `fill` runs outside any scope lock, only when a client is bound.
///
/// # Examples
/// ```
/// sentry_lite_core::add_breadcrumb_with(|b| {
///     b.ty = None;
///     b.level = None;
///     b.data.clear();
///     b.category.get_or_insert_with(String::new).clear();
///     let m = b.message.get_or_insert_with(String::new);
///     m.clear();
///     m.push_str("cache miss");
/// });
/// ```
pub fn add_breadcrumb_with(fill: impl FnOnce(&mut Breadcrumb)) {
    if !enabled() {
        return;
    }
    Hub::with_current(|hub| {
        hub.with_client(|client| {
            let options = client.options();
            let max = options.max_breadcrumbs;
            if let Some(f) = &options.before_breadcrumb {
                let mut crumb = Breadcrumb::default();
                fill(&mut crumb);
                if let Some(crumb) = contain_before_breadcrumb(client, || f(crumb)) {
                    hub.configure_isolation_scope(|scope| scope.push_breadcrumb(crumb, max));
                }
                return;
            }
            if max == 0 {
                return;
            }
            // The breadcrumb evicted by this thread's previous push, recycled: one lock.
            let mut crumb = SPARE_CRUMB.with(Cell::take).unwrap_or_default();
            crumb.timestamp = Timestamp::now();
            // Outside the lock: `fill` may run user `Debug` impls.
            fill(&mut crumb);
            if let Some(evicted) = hub.configure_isolation_scope(|scope| scope.push_breadcrumb(crumb, max)) {
                SPARE_CRUMB.with(|spare| spare.set(Some(evicted)));
            }
        });
    });
}

thread_local! {
    /// The breadcrumb last evicted by [`add_breadcrumb_with`] on this thread, kept
    /// for its allocations to fill the next one.
    static SPARE_CRUMB: Cell<Option<Breadcrumb>> = const { Cell::new(None) };
}

impl From<&str> for Breadcrumb {
    fn from(message: &str) -> Self {
        Breadcrumb::new(message)
    }
}

/// Changes the current scope (tags, extra, contexts, level, fingerprint, ...).
pub fn configure_scope<R: Default>(f: impl FnOnce(&mut Scope) -> R) -> R {
    if !enabled() {
        return R::default();
    }
    Hub::with_current(|hub| hub.configure_scope(f))
}

/// Sets the user of the current unit of work.
pub fn set_user(user: Option<crate::protocol::User>) {
    if !enabled() {
        return;
    }
    Hub::with_current(|hub| hub.configure_isolation_scope(|s| s.set_user(user)));
}

/// Runs `callback` in a forked current scope configured by `scope_config`.
pub fn with_scope<C, F, R>(scope_config: C, callback: F) -> R
where
    C: FnOnce(&mut Scope),
    F: FnOnce() -> R,
{
    if !enabled() {
        return callback();
    }
    Hub::with_current(Arc::clone).with_scope(scope_config, callback)
}

/// Sends everything queued so far; `false` if `timeout` passed first.
pub fn flush(timeout: Duration) -> bool {
    if !enabled() {
        return true;
    }
    Hub::with_current(|hub| hub.with_client(|c| c.flush(timeout)).unwrap_or(true))
}
