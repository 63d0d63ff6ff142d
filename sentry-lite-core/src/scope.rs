//! Scopes: the data applied to everything captured in a unit of work.
//!
//! A [`Scope`] is a bundle of `Arc`-shared fields, so forking one (per `with_scope`,
//! per spawned task, per span) is a handful of reference-count increments, and a
//! capture snapshots it the same way. Writing to a field copies only that field,
//! and only when a snapshot still shares it.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::protocol::{Breadcrumb, Context, Event, Level, Request, User};
use crate::trace::{PropagationContext, Span};

/// A processor run on every event captured under the scope; `None` drops the event
/// (counted as `event_processor`).
pub type EventProcessor = Arc<dyn Fn(Event) -> Option<Event> + Send + Sync>;

/// The scope's HTTP request: built, or built from raw parts only when an event is
/// captured (most requests never capture one, so integrations defer the work).
#[derive(Clone)]
pub(crate) enum ScopeRequest {
    Built(Arc<Request>),
    Deferred(Arc<dyn Fn() -> Request + Send + Sync>),
}

impl ScopeRequest {
    fn to_request(&self) -> Request {
        match self {
            ScopeRequest::Built(r) => Request::clone(r),
            ScopeRequest::Deferred(build) => build(),
        }
    }
}

/// Data applied to captured events and spans.
///
/// Obtain one through [`crate::configure_scope`] or [`crate::with_scope`].
///
/// A scope is one `Arc`: snapshotting it for a capture is a single reference-count
/// increment; the first write after a snapshot copies the outer struct (a dozen
/// `Arc` increments) and the one field written.
#[derive(Clone)]
pub struct Scope(Arc<ScopeData>);

/// The fields of a [`Scope`], each behind its own `Arc` so a copy is shallow.
#[derive(Clone, Default)]
// Reached only through `Scope`'s `Deref`; its fields are crate-private.
#[allow(unreachable_pub)]
pub struct ScopeData {
    pub(crate) level: Option<Level>,
    pub(crate) fingerprint: Option<Arc<[String]>>,
    pub(crate) transaction: Option<Arc<str>>,
    pub(crate) user: Option<Arc<User>>,
    pub(crate) request: Option<ScopeRequest>,
    pub(crate) tags: Arc<BTreeMap<String, String>>,
    pub(crate) extra: Arc<BTreeMap<String, Value>>,
    pub(crate) contexts: Arc<BTreeMap<String, Context>>,
    pub(crate) breadcrumbs: Arc<VecDeque<Breadcrumb>>,
    pub(crate) processors: Arc<Vec<EventProcessor>>,
    pub(crate) span: Option<Span>,
    pub(crate) propagation: Option<Arc<PropagationContext>>,
}

static EMPTY: once_cell::sync::Lazy<Arc<ScopeData>> = once_cell::sync::Lazy::new(|| Arc::new(ScopeData::default()));

impl Default for Scope {
    /// An empty scope; shares one allocation until written to.
    fn default() -> Self {
        Scope(EMPTY.clone())
    }
}

impl std::ops::Deref for Scope {
    type Target = ScopeData;

    fn deref(&self) -> &ScopeData {
        &self.0
    }
}

impl std::ops::DerefMut for Scope {
    fn deref_mut(&mut self) -> &mut ScopeData {
        Arc::make_mut(&mut self.0)
    }
}

impl fmt::Debug for ScopeData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeData").field("tags", &self.tags).finish_non_exhaustive()
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("level", &self.level)
            .field("transaction", &self.transaction)
            .field("tags", &self.tags)
            .field("breadcrumbs", &self.breadcrumbs.len())
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

impl Scope {
    /// Sets a tag. Tags are indexed and searchable in Sentry.
    ///
    /// Re-setting an existing tag allocates only the new value, not the key.
    ///
    /// # Examples
    /// ```
    /// sentry_lite_core::configure_scope(|s| {
    ///     s.set_tag("shard", 3);
    ///     s.set_tag(String::from("region"), "eu-west");
    /// });
    /// ```
    pub fn set_tag(&mut self, key: impl AsRef<str> + Into<String>, value: impl ToString) {
        // `to_string` is specialized for strings and integers; formatting into the
        // old value's buffer through `fmt::Write` measured slower than that plus a
        // fresh allocation.
        let value = value.to_string();
        let tags = Arc::make_mut(&mut self.tags);
        match tags.get_mut(key.as_ref()) {
            Some(slot) => *slot = value,
            None => {
                tags.insert(key.into(), value);
            }
        }
    }

    /// Removes a tag.
    pub fn remove_tag(&mut self, key: &str) {
        if self.tags.contains_key(key) {
            Arc::make_mut(&mut self.tags).remove(key);
        }
    }

    /// Sets an extra value.
    pub fn set_extra(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        Arc::make_mut(&mut self.extra).insert(key.into(), value.into());
    }

    /// Sets a context, e.g. `"app"`.
    pub fn set_context(&mut self, key: impl Into<String>, context: Context) {
        Arc::make_mut(&mut self.contexts).insert(key.into(), context);
    }

    /// Sets (or clears) the user.
    pub fn set_user(&mut self, user: Option<User>) {
        self.user = user.map(Arc::new);
    }

    /// Sets the level of captured events.
    pub fn set_level(&mut self, level: Option<Level>) {
        self.level = level;
    }

    /// Sets the grouping fingerprint.
    pub fn set_fingerprint(&mut self, fingerprint: Option<&[&str]>) {
        self.fingerprint = fingerprint.map(|f| f.iter().map(|s| (*s).to_owned()).collect());
    }

    /// Sets the transaction name of captured events.
    pub fn set_transaction(&mut self, name: Option<&str>) {
        self.transaction = name.map(Arc::from);
    }

    /// Sets the HTTP request (integrations filter PII before they set it).
    pub fn set_request(&mut self, request: Option<Request>) {
        self.request = request.map(|r| ScopeRequest::Built(Arc::new(r)));
    }

    /// Sets the HTTP request, built by `build` only when an event is captured under
    /// this scope (on the capture path or the worker). `build` must apply the PII
    /// rules itself, like a request given to [`Scope::set_request`].
    ///
    /// # Examples
    /// ```
    /// use sentry_lite_core::protocol::Request;
    /// let url = "https://example.com/users/7".to_owned();
    /// sentry_lite_core::configure_scope(|s| {
    ///     s.set_request_with(move || Request { url: Some(url.clone()), ..Request::default() })
    /// });
    /// ```
    pub fn set_request_with(&mut self, build: impl Fn() -> Request + Send + Sync + 'static) {
        self.request = Some(ScopeRequest::Deferred(Arc::new(build)));
    }

    /// Adds an event processor.
    pub fn add_event_processor(&mut self, processor: impl Fn(Event) -> Option<Event> + Send + Sync + 'static) {
        Arc::make_mut(&mut self.processors).push(Arc::new(processor));
    }

    /// Records a breadcrumb on this scope, keeping at most `max` (oldest dropped
    /// first). Returns the last evicted breadcrumb, for its allocations to be reused
    /// (and, at least, dropped outside any lock).
    pub(crate) fn push_breadcrumb(&mut self, breadcrumb: Breadcrumb, max: usize) -> Option<Breadcrumb> {
        if max == 0 {
            return None;
        }
        let crumbs = Arc::make_mut(&mut self.breadcrumbs);
        let mut evicted = None;
        while crumbs.len() >= max {
            evicted = crumbs.pop_front();
        }
        crumbs.push_back(breadcrumb);
        evicted
    }

    /// Removes all breadcrumbs.
    pub fn clear_breadcrumbs(&mut self) {
        self.breadcrumbs = Arc::default();
    }

    /// The active span of this scope.
    pub fn span(&self) -> Option<&Span> {
        self.span.as_ref()
    }

    /// Makes `span` the active span.
    pub fn set_span(&mut self, span: Option<Span>) {
        self.span = span;
    }

    /// Makes `context` the trace of this scope: root spans started here continue
    /// it and events captured without a span are linked to it. See
    /// [`crate::continue_trace`].
    pub fn set_propagation(&mut self, context: PropagationContext) {
        self.propagation = Some(Arc::new(context));
    }

    /// The trace of this scope, if one was set.
    pub fn propagation(&self) -> Option<&PropagationContext> {
        self.propagation.as_deref()
    }

    /// A tag's value.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    /// The user.
    pub fn user(&self) -> Option<&User> {
        self.user.as_deref()
    }

    /// The breadcrumbs, oldest first.
    pub fn breadcrumbs(&self) -> impl Iterator<Item = &Breadcrumb> {
        self.breadcrumbs.iter()
    }

    /// Applies this scope's data to an event. Fields already set on the event win,
    /// so apply the innermost scope first.
    pub(crate) fn apply_to_event(&self, event: &mut Event, max_breadcrumbs: usize) -> bool {
        if event.level.is_none() {
            event.level = self.level;
        } else if let Some(level) = self.level {
            // A scope level overrides the capture's default error level.
            if event.level == Some(Level::Error) {
                event.level = Some(level);
            }
        }
        if event.fingerprint.is_empty() {
            if let Some(f) = &self.fingerprint {
                event.fingerprint = f.to_vec();
            }
        }
        if event.transaction.is_none() {
            event.transaction = self.transaction.as_deref().map(str::to_owned);
        }
        if event.user.is_none() {
            event.user = self.user.as_deref().cloned();
        }
        if event.request.is_none() {
            event.request = self.request.as_ref().map(ScopeRequest::to_request);
        }
        for (k, v) in self.tags.iter() {
            event.tags.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in self.extra.iter() {
            event.extra.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in self.contexts.iter() {
            event.contexts.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if !self.breadcrumbs.is_empty() {
            let crumbs = &mut event.breadcrumbs.get_or_insert_with(Default::default).values;
            // Outer scopes are applied later but hold older breadcrumbs: prepend them.
            for b in self.breadcrumbs.iter().rev() {
                crumbs.push_front(b.clone());
            }
            while crumbs.len() > max_breadcrumbs {
                crumbs.pop_front();
            }
        }
        true
    }
}
