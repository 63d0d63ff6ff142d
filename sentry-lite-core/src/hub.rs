//! The hub: which client and scopes the current unit of work uses.
//!
//! Lookup order: the hub bound to the running future (a `tokio` task-local set
//! while a [`HubFuture`] is polled), else the thread's hub, else the process main
//! hub. A new thread starts from a fork of the main hub; a spawned task starts from
//! a fork of its spawner's hub, so concurrent units of work never share tags or
//! breadcrumbs.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use once_cell::sync::Lazy;
use parking_lot::{Mutex, RwLock};

use crate::client::Client;
use crate::ids::EventId;
use crate::scope::Scope;

tokio::task_local! {
    static TASK_HUB: Arc<Hub>;
}

thread_local! {
    static THREAD_HUB: RefCell<Option<Arc<Hub>>> = const { RefCell::new(None) };
}

static MAIN_HUB: Lazy<Arc<Hub>> = Lazy::new(|| Arc::new(Hub::empty()));
static GLOBAL_SCOPE: Lazy<RwLock<Scope>> = Lazy::new(|| RwLock::new(Scope::default()));

/// How long the SDK's own scope reads wait for a lock. Normal writers hold it for
/// nanoseconds; only a panic inside a user's `configure_scope` callback on the same
/// thread holds it longer, and the panic hook must not deadlock on that.
const READ_PATIENCE: std::time::Duration = std::time::Duration::from_millis(100);

/// Set once a client is bound anywhere; lets every API call return at once while
/// the SDK was never initialized.
pub(crate) static EVER_ENABLED: AtomicBool = AtomicBool::new(false);

/// A client plus the isolation scope and the stack of current scopes of one unit of work.
pub struct Hub {
    client: RwLock<Option<Arc<Client>>>,
    isolation: Arc<Mutex<Scope>>,
    stack: Mutex<ScopeStack>,
    last_event_id: Mutex<Option<EventId>>,
}

/// The current scope and the ones `with_scope` pushed over it. The base is inline:
/// a hub is forked per request or task and most never push, so no `Vec` allocation.
///
/// Each pushed scope carries a number unique to its push, and leaves by that
/// number: when two threads share a hub, their `with_scope` calls may end in
/// any order, and each still removes exactly its own scope.
struct ScopeStack {
    base: Scope,
    pushed: Vec<(u64, Scope)>,
    next_push: u64,
}

impl ScopeStack {
    fn new(base: Scope) -> Self {
        Self { base, pushed: Vec::new(), next_push: 0 }
    }

    fn top(&self) -> &Scope {
        self.pushed.last().map_or(&self.base, |(_, s)| s)
    }

    fn top_mut(&mut self) -> &mut Scope {
        match self.pushed.last_mut() {
            Some((_, s)) => s,
            None => &mut self.base,
        }
    }

    fn push(&mut self, scope: Scope) -> u64 {
        self.next_push += 1;
        self.pushed.push((self.next_push, scope));
        self.next_push
    }

    /// Removes the scope of push `id`, wherever it is now.
    fn remove(&mut self, id: u64) {
        if let Some(i) = self.pushed.iter().rposition(|(p, _)| *p == id) {
            self.pushed.remove(i);
        }
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub").field("has_client", &self.client.read().is_some()).finish_non_exhaustive()
    }
}

impl Hub {
    fn empty() -> Self {
        Self::from_parts(None, Scope::default(), Scope::default())
    }

    fn from_parts(client: Option<Arc<Client>>, isolation: Scope, current: Scope) -> Self {
        Self {
            client: RwLock::new(client),
            isolation: Arc::new(Mutex::new(isolation)),
            stack: Mutex::new(ScopeStack::new(current)),
            last_event_id: Mutex::new(None),
        }
    }

    /// A new hub for a new unit of work (a request, a spawned task): same client,
    /// copies of `other`'s isolation and current scopes, which it then changes alone.
    pub fn new_from_top(other: &Hub) -> Self {
        let isolation = other.isolation.lock().clone();
        Self::from_parts(other.client(), isolation, other.current_scope())
    }

    /// A hub that shares `other`'s isolation scope (breadcrumbs, user) but forks its
    /// current scope. Used for spans and `with_scope` inside one unit of work.
    pub fn fork_current(other: &Hub) -> Self {
        Self {
            client: RwLock::new(other.client()),
            isolation: other.isolation.clone(),
            stack: Mutex::new(ScopeStack::new(other.current_scope())),
            last_event_id: Mutex::new(None),
        }
    }

    /// The process main hub.
    pub fn main() -> Arc<Hub> {
        MAIN_HUB.clone()
    }

    /// The hub of the running task or thread.
    pub fn current() -> Arc<Hub> {
        Self::with_current(Arc::clone)
    }

    /// Runs `f` with the current hub without cloning it.
    pub fn with_current<R>(f: impl FnOnce(&Arc<Hub>) -> R) -> R {
        let mut f = Some(f);
        if let Ok(Some(r)) = TASK_HUB.try_with(|hub| f.take().map(|f| f(hub))) {
            return r;
        }
        let f = match f {
            Some(f) => f,
            // try_with only runs the closure when the task-local is set, and then returned above.
            None => unreachable_hub(),
        };
        THREAD_HUB.with(|cell| {
            // Common case: call `f` under a shared borrow, without touching the
            // reference count. A `Hub::run` inside `f` then finds the slot borrowed
            // and binds its hub task-locally, which lookups check first.
            if let Ok(slot) = cell.try_borrow() {
                if let Some(hub) = slot.as_ref() {
                    return f(hub);
                }
            }
            if let Ok(mut slot) = cell.try_borrow_mut() {
                let hub = slot.get_or_insert_with(new_thread_hub).clone();
                drop(slot);
                return f(&hub);
            }
            // Re-entered while the slot is being replaced: fall back to the main hub.
            f(&MAIN_HUB)
        })
    }

    /// Runs `f` with `hub` as the thread's current hub (for synchronous code).
    pub fn run<R>(hub: Arc<Hub>, f: impl FnOnce() -> R) -> R {
        if TASK_HUB.try_with(|_| ()).is_ok() {
            // Inside a bound task the task-local wins; scope it there too.
            return TASK_HUB.sync_scope(hub, f);
        }
        let swapped = THREAD_HUB.with(|cell| match cell.try_borrow_mut() {
            Ok(mut slot) => Ok(slot.replace(hub)),
            Err(_) => Err(hub),
        });
        let previous = match swapped {
            Ok(previous) => previous,
            // Inside `with_current`'s callback the slot is borrowed: bind the hub
            // task-locally for `f` (lookups check that first; works outside tasks too).
            Err(hub) => return TASK_HUB.sync_scope(hub, f),
        };
        struct Restore(Option<Option<Arc<Hub>>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                if let Some(prev) = self.0.take() {
                    THREAD_HUB.with(|cell| {
                        if let Ok(mut slot) = cell.try_borrow_mut() {
                            *slot = prev;
                        }
                    });
                }
            }
        }
        let _restore = Restore(Some(previous));
        f()
    }

    /// The bound client, if any; hubs without one use the main hub's.
    pub fn client(&self) -> Option<Arc<Client>> {
        self.with_client(Arc::clone)
    }

    /// Runs `f` with the client without cloning it; `None` when there is none.
    pub fn with_client<R>(&self, f: impl FnOnce(&Arc<Client>) -> R) -> Option<R> {
        let own = self.client.read();
        if let Some(c) = own.as_ref() {
            return Some(f(c));
        }
        drop(own);
        if std::ptr::eq(self, &**MAIN_HUB) {
            return None;
        }
        MAIN_HUB.client.read().as_ref().map(f)
    }

    /// Whether a client is bound and enabled.
    pub fn is_active(&self) -> bool {
        self.with_client(|c| c.is_enabled()).unwrap_or(false)
    }

    /// Binds a client (or none) to this hub.
    pub fn bind_client(&self, client: Option<Arc<Client>>) {
        if client.is_some() {
            EVER_ENABLED.store(true, Ordering::Release);
        }
        *self.client.write() = client;
    }

    /// A copy of the current scope.
    pub fn current_scope(&self) -> Scope {
        self.stack.try_lock_for(READ_PATIENCE).map(|s| s.top().clone()).unwrap_or_default()
    }

    /// Changes the current scope.
    ///
    /// If `f` panics while holding the scope, the panic hook's capture does not
    /// deadlock: the SDK's own reads wait at most 100 ms and then proceed
    /// without the scope.
    pub fn configure_scope<R>(&self, f: impl FnOnce(&mut Scope) -> R) -> R {
        f(self.stack.lock().top_mut())
    }

    /// Reads the current scope under its lock, for SDK-internal lookups (the active
    /// span, the propagation context) that run no user code.
    pub(crate) fn read_scope<R>(&self, f: impl FnOnce(&Scope) -> R) -> R {
        match self.stack.try_lock_for(READ_PATIENCE) {
            Some(stack) => f(stack.top()),
            None => f(&Scope::default()),
        }
    }

    /// Reads the isolation scope under its lock; SDK-internal, like [`Hub::read_scope`].
    pub(crate) fn read_isolation_scope<R>(&self, f: impl FnOnce(&Scope) -> R) -> R {
        match self.isolation.try_lock_for(READ_PATIENCE) {
            Some(scope) => f(&scope),
            None => f(&Scope::default()),
        }
    }

    /// The scopes of a segment span, which only carries their tags and
    /// users: `None`, and no copy taken, when no scope has any (the usual case).
    pub(crate) fn span_tag_scopes(&self) -> Option<ScopeSnapshot> {
        let bare = |s: &Scope| s.tags.is_empty() && s.user.is_none();
        let current = self.read_scope(|s| (!bare(s)).then(|| s.clone()));
        let isolation = self.read_isolation_scope(|s| (!bare(s)).then(|| s.clone()));
        let global = GLOBAL_SCOPE.try_read_for(READ_PATIENCE).and_then(|s| (!bare(&s)).then(|| s.clone()));
        if current.is_none() && isolation.is_none() && global.is_none() {
            return None;
        }
        let mut global = global.unwrap_or_default();
        if !global.breadcrumbs.is_empty() {
            global.breadcrumbs = Default::default();
        }
        Some(ScopeSnapshot { global, isolation: isolation.unwrap_or_default(), current: current.unwrap_or_default() })
    }

    /// Changes the isolation scope (breadcrumbs and user of the unit of work).
    pub fn configure_isolation_scope<R>(&self, f: impl FnOnce(&mut Scope) -> R) -> R {
        f(&mut self.isolation.lock())
    }

    /// Runs `callback` in a fork of the current scope configured by `scope_config`;
    /// changes made inside do not leak out.
    pub fn with_scope<C, F, R>(&self, scope_config: C, callback: F) -> R
    where
        C: FnOnce(&mut Scope),
        F: FnOnce() -> R,
    {
        let mut scope = self.current_scope();
        scope_config(&mut scope);
        let id = self.stack.lock().push(scope);
        struct Pop<'a>(&'a Hub, u64);
        impl Drop for Pop<'_> {
            fn drop(&mut self) {
                self.0.stack.lock().remove(self.1);
            }
        }
        let _pop = Pop(self, id);
        callback()
    }

    /// Snapshots of the global, isolation and current scopes, for a capture.
    pub(crate) fn snapshot(&self) -> ScopeSnapshot {
        let mut current = self.current_scope();
        // A span entered on this thread (sync `trace`, the tracing layer) is the innermost.
        if let Some(span) = crate::trace::entered_span() {
            current.span = Some(span);
        }
        let isolation = self.isolation.try_lock_for(READ_PATIENCE).map(|s| s.clone()).unwrap_or_default();
        let global = GLOBAL_SCOPE.try_read_for(READ_PATIENCE).map(|s| s.clone()).unwrap_or_default();
        ScopeSnapshot { global, isolation, current }
    }

    /// The id of the last event captured through this hub.
    pub fn last_event_id(&self) -> Option<EventId> {
        *self.last_event_id.lock()
    }

    pub(crate) fn set_last_event_id(&self, id: EventId) {
        *self.last_event_id.lock() = Some(id);
    }
}

#[cold]
fn unreachable_hub() -> ! {
    unreachable!("task-local hub closure consumed without a result")
}

fn new_thread_hub() -> Arc<Hub> {
    if std::thread::current().name() == Some("main") {
        MAIN_HUB.clone()
    } else {
        // No client of its own: the thread keeps following the main hub's client, so a
        // later `init` (or a re-`init` after the guard dropped) reaches it too.
        let isolation = MAIN_HUB.isolation.lock().clone();
        Arc::new(Hub::from_parts(None, isolation, MAIN_HUB.current_scope()))
    }
}

/// Changes the global scope, applied to everything the process captures.
pub fn configure_global_scope<R>(f: impl FnOnce(&mut Scope) -> R) -> R {
    f(&mut GLOBAL_SCOPE.write())
}

/// The three scopes of a capture, outermost first.
#[derive(Clone, Debug, Default)]
pub(crate) struct ScopeSnapshot {
    pub(crate) global: Scope,
    pub(crate) isolation: Scope,
    pub(crate) current: Scope,
}

pin_project_lite::pin_project! {
    /// A future that runs with a hub bound as the current one while polled.
    #[derive(Debug)]
    pub struct HubFuture<F> {
        hub: Arc<Hub>,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for HubFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let hub = this.hub.clone();
        let future = this.future;
        TASK_HUB.sync_scope(hub, || future.poll(cx))
    }
}

/// Binds hubs to futures.
pub trait FutureExt: Future + Sized {
    /// Runs this future with `hub` as the current hub.
    fn bind_hub(self, hub: Arc<Hub>) -> HubFuture<Self> {
        HubFuture { hub, future: self }
    }

    /// Runs this future in a new unit of work forked from the current hub: its
    /// tags and breadcrumbs stay its own.
    fn in_current_hub(self) -> HubFuture<Self> {
        self.bind_hub(fork_for_new_unit())
    }
}

impl<F: Future> FutureExt for F {}

/// `tokio::spawn` that carries the SDK context: the task runs in a fork of the
/// spawner's hub, with the spawner's active span as its parent.
///
/// Must be called within a tokio runtime, like `tokio::spawn`.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.in_current_hub())
}

/// `std::thread::spawn` that carries the SDK context like [`spawn`].
pub fn spawn_thread<F, T>(f: F) -> std::thread::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let hub = fork_for_new_unit();
    std::thread::spawn(move || Hub::run(hub, f))
}

/// A new hub for a spawned unit of work: a fork of the current one whose active
/// span is the current span (an entered span wins over the scope's).
fn fork_for_new_unit() -> Arc<Hub> {
    let hub = Hub::with_current(|h| Arc::new(Hub::new_from_top(h)));
    if let Some(span) = crate::trace::entered_span() {
        hub.configure_scope(|s| s.set_span(Some(span)));
    }
    hub
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_inside_with_current_binds_the_inner_hub() {
        std::thread::spawn(|| {
            let outer = Arc::new(Hub::empty());
            let inner = Arc::new(Hub::empty());
            Hub::run(outer.clone(), || {
                Hub::with_current(|h| {
                    assert!(Arc::ptr_eq(h, &outer));
                    Hub::run(inner.clone(), || Hub::with_current(|h| assert!(Arc::ptr_eq(h, &inner))));
                    Hub::with_current(|h| assert!(Arc::ptr_eq(h, &outer)));
                });
            });
        })
        .join()
        .unwrap();
    }

    #[test]
    fn with_scope_pushes_over_the_base_and_pops() {
        let hub = Hub::empty();
        hub.configure_scope(|s| s.set_tag("base", 1));
        hub.with_scope(
            |s| s.set_tag("inner", 2),
            || {
                assert_eq!(hub.current_scope().tag("inner"), Some("2"));
                hub.configure_scope(|s| s.set_tag("base", 3));
            },
        );
        let scope = hub.current_scope();
        assert_eq!(scope.tag("inner"), None);
        assert_eq!(scope.tag("base"), Some("1"));
    }
}
