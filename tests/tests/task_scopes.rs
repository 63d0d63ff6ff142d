//! Scopes of plain `tokio::spawn` tasks, next to axum requests, under load.
//!
//! Hundreds of tasks spawned with plain `tokio::spawn` (no hub bound) and
//! concurrent requests through the axum layer (in-process with `oneshot`, and
//! over 127.0.0.1) each set their own tags, user and breadcrumbs, then capture
//! after `.await`s that move them between worker threads. Every captured event is
//! checked on the SDK's worker (`before_send`, after the scopes were applied):
//! it must carry its own unit's data, all of it, and nothing of any other unit.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use sentry_lite_axum::SentryLayer;
use sentry_lite_core::protocol::{DataCategory, DiscardReason};
use sentry_lite_core::{Breadcrumb, ClientOptions, Event, Hub, Level, TestTransport, User};
use tower::ServiceExt;

/// Plain tasks, and the captures each makes (one per step).
const TASKS: u64 = 500;
const STEPS: u64 = 200;
/// Every this many steps a task spawns a plain child task (which must not see
/// the parent's data) and waits for it.
const NESTED_EVERY: u64 = 40;
/// Request drivers per transport (in-process and over TCP), requests each, captures per request.
const DRIVERS: u64 = 8;
const REQUESTS: u64 = 40;
const REQUEST_CAPTURES: u64 = 12;
/// The SDK's queue, and the captures in flight (captured, not yet checked on the
/// worker) before producers wait: well below it, so it never overflows.
const QUEUE: usize = 10_000;
const IN_FLIGHT: u64 = 2_000;
/// Breadcrumbs kept per unit of work: every event carries and is checked with this many.
const MAX_BREADCRUMBS: usize = 8;
/// One event in this many also goes on to the in-memory transport.
const PASS_THROUGH: u64 = 500;

/// What the worker saw.
struct Checks {
    /// One permit per capture that may be in flight; the worker gives them back.
    in_flight: tokio::sync::Semaphore,
    captured: AtomicU64,
    checked: AtomicU64,
    task_events: AtomicU64,
    nested_events: AtomicU64,
    request_events: AtomicU64,
    /// Events carrying data of another unit of work.
    leaks: AtomicU64,
    /// Task events missing their own task's tag or user.
    lost: AtomicU64,
    problems: Mutex<Vec<String>>,
}

impl Checks {
    fn new() -> Self {
        Self {
            in_flight: tokio::sync::Semaphore::new(IN_FLIGHT as usize),
            captured: AtomicU64::new(0),
            checked: AtomicU64::new(0),
            task_events: AtomicU64::new(0),
            nested_events: AtomicU64::new(0),
            request_events: AtomicU64::new(0),
            leaks: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            problems: Mutex::new(Vec::new()),
        }
    }

    fn fail(&self, counter: &AtomicU64, what: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut problems = self.problems.lock().unwrap();
        if problems.len() < 20 {
            problems.push(what);
        }
    }

    /// Waits for room in the SDK's queue: at most [`IN_FLIGHT`] captures are
    /// queued at once, so the bounded queue never overflows (an overflow would
    /// show as events never checked). Also an `.await` that may move the task.
    async fn room(&self) {
        let permit = tokio::time::timeout(Duration::from_secs(60), self.in_flight.acquire()).await;
        permit.expect("the SDK's worker stopped checking events").expect("never closed").forget();
    }

    /// Captures `message` (after [`Checks::room`]).
    fn capture(&self, message: &str) {
        self.captured.fetch_add(1, Ordering::Relaxed);
        sentry_lite_core::capture_message(message, Level::Info);
    }

    /// Checks one event; its message names the unit of work that captured it.
    fn check(&self, event: &Event) {
        let message = event.logentry.as_ref().map(|l| l.message.clone()).unwrap_or_default();
        let words: Vec<&str> = message.split(' ').collect();
        let tag = |k: &str| event.tags.get(k).map(String::as_str);
        let user = event.user.as_ref().and_then(|u| u.id.as_deref());
        let crumbs: Vec<&str> =
            event.breadcrumbs.iter().flat_map(|b| b.values.iter()).filter_map(|b| b.message.as_deref()).collect();
        if tag("service") != Some("stress") {
            self.fail(&self.lost, format!("global scope tag missing: {message}"));
        }
        match words.as_slice() {
            ["task", t, "step", s] => {
                self.task_events.fetch_add(1, Ordering::Relaxed);
                let own_user = format!("task-{t}");
                if tag("task") != Some(t) || user != Some(own_user.as_str()) {
                    let counter = if tag("task").is_none() && user.is_none() { &self.lost } else { &self.leaks };
                    self.fail(counter, format!("{message}: task tag {:?}, user {user:?}", tag("task")));
                }
                if tag("step") != Some(s) {
                    self.fail(&self.lost, format!("{message}: step tag {:?}", tag("step")));
                }
                let prefix = format!("task {t} ");
                if crumbs.last() != Some(&message.as_str()) || crumbs.iter().any(|c| !c.starts_with(&prefix)) {
                    self.fail(&self.leaks, format!("{message}: breadcrumbs {crumbs:?}"));
                }
                if tag("req").is_some() || tag("nested").is_some() {
                    self.fail(&self.leaks, format!("{message}: foreign tags {:?}", event.tags));
                }
            }
            ["nested", parent, k] => {
                self.nested_events.fetch_add(1, Ordering::Relaxed);
                let own = format!("{parent}-{k}");
                if tag("nested") != Some(own.as_str()) {
                    self.fail(&self.lost, format!("{message}: nested tag {:?}", tag("nested")));
                }
                // A plain `tokio::spawn` child starts from the main hub, not from its parent.
                if tag("task").is_some() || tag("req").is_some() || tag("step").is_some() || user.is_some() {
                    self.fail(&self.leaks, format!("{message}: tags {:?}, user {user:?}", event.tags));
                }
                if crumbs != [message.as_str()] {
                    self.fail(&self.leaks, format!("{message}: breadcrumbs {crumbs:?}"));
                }
            }
            ["req", r, "capture", c] => {
                self.request_events.fetch_add(1, Ordering::Relaxed);
                let own_user = format!("req-{r}");
                if tag("req") != Some(r) || user != Some(own_user.as_str()) {
                    self.fail(&self.leaks, format!("{message}: req tag {:?}, user {user:?}", tag("req")));
                }
                if tag("task").is_some() || tag("step").is_some() || tag("nested").is_some() {
                    self.fail(&self.leaks, format!("{message}: foreign tags {:?}", event.tags));
                }
                let prefix = format!("req {r} ");
                let expected = (c.parse::<usize>().unwrap_or(0) + 1).min(MAX_BREADCRUMBS);
                if crumbs.last() != Some(&message.as_str())
                    || crumbs.len() != expected
                    || crumbs.iter().any(|c| !c.starts_with(&prefix))
                {
                    self.fail(&self.leaks, format!("{message}: breadcrumbs {crumbs:?}"));
                }
                if event.transaction.as_deref() != Some("GET /job/{id}") {
                    self.fail(&self.leaks, format!("{message}: transaction {:?}", event.transaction));
                }
            }
            _ => self.fail(&self.leaks, format!("unexpected event {message:?}")),
        }
        self.checked.fetch_add(1, Ordering::Relaxed);
        self.in_flight.add_permits(1);
    }
}

/// Gives the running task a chance to move to another worker thread, one of
/// several ways.
async fn migrate(step: u64) {
    match step % 16 {
        // Woken by a task finishing on whichever worker ran it.
        1 | 5 | 9 => tokio::spawn(tokio::task::yield_now()).await.unwrap(),
        // Woken by the timer, from any worker.
        3 | 11 => tokio::time::sleep(Duration::from_micros(200)).await,
        // This worker becomes a blocking thread for a moment; its queue moves on.
        7 => {
            tokio::task::block_in_place(std::thread::yield_now);
            tokio::task::yield_now().await;
        }
        _ => tokio::task::yield_now().await,
    }
}

fn thread_id() -> std::thread::ThreadId {
    std::thread::current().id()
}

/// A plain task: its own user and tag once, then a step tag, a breadcrumb and a
/// capture per step, across `.await`s. Returns how many threads it ran on.
async fn plain_task(checks: Arc<Checks>, t: u64) -> usize {
    sentry_lite_core::set_user(Some(User { id: Some(format!("task-{t}")), ..User::default() }));
    sentry_lite_core::configure_scope(|s| s.set_tag("task", t));
    let mut threads = HashSet::new();
    for s in 0..STEPS {
        sentry_lite_core::configure_scope(|scope| scope.set_tag("step", s));
        sentry_lite_core::add_breadcrumb(Breadcrumb::new(format!("task {t} step {s}")));
        migrate(s + t).await;
        checks.room().await;
        threads.insert(thread_id());
        if s % 16 == 13 {
            // Inside block_in_place the task is still the current unit of work.
            tokio::task::block_in_place(|| checks.capture(&format!("task {t} step {s}")));
        } else {
            checks.capture(&format!("task {t} step {s}"));
        }
        if s % NESTED_EVERY == NESTED_EVERY - 1 {
            let checks = checks.clone();
            tokio::spawn(async move {
                let name = format!("nested {t} {s}");
                sentry_lite_core::configure_scope(|scope| scope.set_tag("nested", format!("{t}-{s}")));
                sentry_lite_core::add_breadcrumb(Breadcrumb::new(name.as_str()));
                migrate(s).await;
                checks.room().await;
                checks.capture(&name);
            })
            .await
            .unwrap();
        }
    }
    threads.len()
}

async fn job(Path(r): Path<u64>, checks: Arc<Checks>) -> String {
    sentry_lite_core::set_user(Some(User { id: Some(format!("req-{r}")), ..User::default() }));
    sentry_lite_core::configure_scope(|s| s.set_tag("req", r));
    for c in 0..REQUEST_CAPTURES {
        let message = format!("req {r} capture {c}");
        sentry_lite_core::add_breadcrumb(Breadcrumb::new(message.as_str()));
        migrate(c + r).await;
        checks.room().await;
        checks.capture(&message);
    }
    format!("done {r}")
}

fn app(checks: Arc<Checks>) -> Router {
    Router::new()
        .route(
            "/job/{id}",
            get(move |path: Path<u64>| {
                let checks = checks.clone();
                async move { job(path, checks).await }
            }),
        )
        .layer(SentryLayer::new())
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[test]
fn plain_tasks_and_requests_keep_their_own_scopes_across_threads() {
    let transport = TestTransport::new();
    let checks = Arc::new(Checks::new());
    let on_worker = checks.clone();
    let guard = sentry_lite_core::init(
        ClientOptions::new()
            .with_transport(transport.clone())
            .with_before_send(move |event| {
                on_worker.check(&event);
                (on_worker.checked.load(Ordering::Relaxed) % PASS_THROUGH == 0).then_some(event)
            })
            .with_max_breadcrumbs(MAX_BREADCRUMBS)
            .with_queue_capacity(QUEUE),
    )
    .expect("init");
    sentry_lite_core::configure_global_scope(|s| s.set_tag("service", "stress"));

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    let threads_per_task = rt.block_on(async {
        let app = app(checks.clone());
        let addr = serve(app.clone()).await;
        let mut drivers = Vec::new();
        for d in 0..DRIVERS {
            // In-process: the request's future is polled inside this plain task.
            let app = app.clone();
            drivers.push(tokio::spawn(async move {
                for i in 0..REQUESTS {
                    let r = d * REQUESTS + i;
                    let req = Request::get(format!("/job/{r}")).body(Body::empty()).unwrap();
                    let response = app.clone().oneshot(req).await.unwrap();
                    assert_eq!(response.status(), StatusCode::OK);
                }
            }));
            // Over TCP: axum's connection tasks poll it.
            drivers.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                for i in 0..REQUESTS {
                    let r = (DRIVERS + d) * REQUESTS + i;
                    let response = client.get(format!("http://{addr}/job/{r}")).send().await.unwrap();
                    assert_eq!(response.status(), 200);
                    assert_eq!(response.text().await.unwrap(), format!("done {r}"));
                }
            }));
        }
        let tasks: Vec<_> = (0..TASKS).map(|t| tokio::spawn(plain_task(checks.clone(), t))).collect();
        let mut threads = Vec::new();
        for task in tasks {
            threads.push(task.await.unwrap());
        }
        for driver in drivers {
            driver.await.unwrap();
        }
        threads
    });
    assert!(sentry_lite_core::flush(Duration::from_secs(60)), "flush timed out");
    rt.shutdown_timeout(Duration::from_secs(5));

    let client = guard.client().unwrap();
    assert_eq!(client.discarded(DiscardReason::QueueOverflow, DataCategory::Error), 0);
    let problems = checks.problems.lock().unwrap().clone();
    let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
    assert_eq!(count(&checks.leaks), 0, "data leaked between units of work: {problems:#?}");
    assert_eq!(count(&checks.lost), 0, "units lost their own data: {problems:#?}");
    assert_eq!(count(&checks.task_events), TASKS * STEPS);
    assert_eq!(count(&checks.nested_events), TASKS * (STEPS / NESTED_EVERY));
    assert_eq!(count(&checks.request_events), 2 * DRIVERS * REQUESTS * REQUEST_CAPTURES);
    assert_eq!(count(&checks.checked), count(&checks.captured), "captures never checked");
    assert!(count(&checks.checked) >= 100_000, "only {} events", count(&checks.checked));

    // The test means something only if tasks did move between threads.
    let moved = threads_per_task.iter().filter(|&&n| n > 1).count();
    assert!(moved as u64 >= TASKS / 2, "only {moved} of {TASKS} tasks ran on more than one thread");

    // What went on to the transport carries the same scopes on the wire.
    let events = transport.events();
    assert!(!events.is_empty());
    for event in &events {
        let before = count(&checks.leaks) + count(&checks.lost);
        checks.check(event);
        assert_eq!(count(&checks.leaks) + count(&checks.lost), before, "{event:?}");
    }
    // Nothing a task or request wrote reached the main hub.
    let main = Hub::main().current_scope();
    assert!(["task", "step", "req", "nested"].iter().all(|k| main.tag(k).is_none()), "{main:?}");
    drop(guard);
}
