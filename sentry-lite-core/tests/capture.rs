//! Capture API behaviour: scopes, breadcrumbs, error chains, stack traces, hooks.

mod common;

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{flush, test_hub};
use sentry_lite_core::{self as sentry, ClientOptions, FutureExt, Hub, Level};

#[derive(Debug)]
struct Outer(Inner);
#[derive(Debug)]
struct Inner(std::io::Error);

impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("outer failed")
    }
}
impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("inner failed")
    }
}
impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}
impl std::error::Error for Inner {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn chain() -> Outer {
    Outer(Inner(std::io::Error::new(std::io::ErrorKind::NotFound, "root cause")))
}

#[inline(never)]
fn app_function_that_captures() -> sentry::EventId {
    sentry::capture_error(&chain())
}

#[test]
fn error_chain_is_root_cause_first_with_stack_trace() {
    let (hub, transport, client) = test_hub(ClientOptions::new().with_in_app_include("capture"));
    let id = Hub::run(hub, app_function_that_captures);
    assert!(!id.is_nil());
    flush(&client);
    let event = &transport.events()[0];
    assert_eq!(event.event_id, id);
    let values = &event.exception.as_ref().unwrap().values;
    let texts: Vec<_> = values.iter().map(|e| e.value.as_deref().unwrap()).collect();
    assert_eq!(texts, ["root cause", "inner failed", "outer failed"]);
    assert_eq!(values[2].ty, "capture::Outer");
    let mechanism = values[2].mechanism.as_ref().unwrap();
    assert_eq!((&*mechanism.ty, mechanism.handled), ("generic", Some(true)));
    let frames = &values[2].stacktrace.as_ref().expect("stack trace on the outermost error").frames;
    let last = frames.last().unwrap();
    assert!(last.function.as_deref().unwrap().contains("app_function_that_captures"), "{last:?}");
    assert_eq!(last.in_app, Some(true));
    assert!(last.lineno.is_some() && last.abs_path.is_some());
    assert!(frames.iter().all(|f| !f.function.as_deref().unwrap_or("").starts_with("sentry_lite_core::api")));
    assert!(frames
        .iter()
        .filter(|f| f.function.as_deref().unwrap_or("").starts_with("std::"))
        .all(|f| f.in_app == Some(false)));
    assert_eq!(event.platform, "native");
    assert!(
        event.contexts.contains_key("os")
            && event.contexts.contains_key("runtime")
            && event.contexts.contains_key("trace")
    );
    assert_eq!(event.environment.as_deref(), Some("production"));
}

#[test]
fn breadcrumbs_recorded_deeper_show_on_later_capture() {
    let (hub, transport, client) = test_hub(ClientOptions::new());
    Hub::run(hub, || {
        fn deep() {
            sentry::with_scope(|s| s.set_tag("inner", "yes"), || sentry::add_breadcrumb("from deep inside"));
        }
        deep();
        sentry::capture_message("later", Level::Warning);
    });
    flush(&client);
    let event = &transport.events()[0];
    let crumbs: Vec<_> =
        event.breadcrumbs.as_ref().unwrap().values.iter().map(|b| b.message.clone().unwrap()).collect();
    assert_eq!(crumbs, ["from deep inside"]);
    assert!(!event.tags.contains_key("inner"), "with_scope tags must not leak outward");
    assert_eq!(event.level, Some(Level::Warning));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tasks_never_share_tags_or_breadcrumbs() {
    let (hub, transport, client) =
        test_hub(ClientOptions::new().with_attach_stacktrace(false).with_queue_capacity(10_000));
    let tasks = 400;
    let mut handles = Vec::new();
    for i in 0..tasks {
        let fut = async move {
            sentry::configure_scope(|s| s.set_tag("task", i));
            for step in 0..3 {
                sentry::add_breadcrumb(format!("task {i} step {step}").as_str());
                tokio::task::yield_now().await;
            }
            sentry::capture_message(&format!("done {i}"), Level::Info);
        };
        // Each task starts from a fork of the test hub, like `sentry::spawn` does.
        let task_hub = Arc::new(Hub::new_from_top(&hub));
        handles.push(tokio::spawn(fut.bind_hub(task_hub)));
    }
    for h in handles {
        h.await.unwrap();
    }
    flush(&client);
    let events = transport.events();
    assert_eq!(events.len(), tasks);
    for e in events {
        let msg = e.logentry.unwrap().message;
        let i = msg.strip_prefix("done ").unwrap();
        assert_eq!(e.tags.get("task").map(String::as_str), Some(i));
        let crumbs = e.breadcrumbs.unwrap().values;
        assert_eq!(crumbs.len(), 3, "{msg}");
        assert!(crumbs.iter().all(|b| b.message.as_deref().unwrap().starts_with(&format!("task {i} "))));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_helper_forks_the_spawners_scope() {
    let (hub, transport, client) = test_hub(ClientOptions::new());
    async {
        sentry::configure_scope(|s| s.set_tag("parent", "1"));
        let child = sentry::spawn(async {
            sentry::configure_scope(|s| s.set_tag("child", "1"));
            sentry::capture_message("in child", Level::Info);
        });
        child.await.unwrap();
        sentry::capture_message("in parent", Level::Info);
    }
    .bind_hub(hub)
    .await;
    flush(&client);
    let events = transport.events();
    let child = events.iter().find(|e| e.logentry.as_ref().unwrap().message == "in child").unwrap();
    let parent = events.iter().find(|e| e.logentry.as_ref().unwrap().message == "in parent").unwrap();
    assert_eq!(child.tags.get("parent").map(String::as_str), Some("1"));
    assert!(!parent.tags.contains_key("child"));
}

#[test]
fn before_send_and_sample_rate_drop_and_count() {
    let seen = Arc::new(AtomicUsize::new(0));
    let seen2 = seen.clone();
    let (hub, transport, client) = test_hub(ClientOptions::new().with_before_send(move |mut e| {
        seen2.fetch_add(1, Ordering::SeqCst);
        if e.logentry.as_ref().is_some_and(|l| l.message == "drop me") {
            return None;
        }
        e.tags.insert("touched".into(), "yes".into());
        Some(e)
    }));
    Hub::run(hub, || {
        sentry::capture_message("keep me", Level::Info);
        sentry::capture_message("drop me", Level::Info);
    });
    flush(&client);
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    let events = transport.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].tags.get("touched").map(String::as_str), Some("yes"));
    let reports: Vec<_> = transport.items_of(&sentry::protocol::ItemType::ClientReport).collect();
    let report = reports.last().expect("client report for the dropped event");
    assert_eq!(report["discarded_events"][0]["reason"], "before_send");
    assert_eq!(report["discarded_events"][0]["quantity"], 1);

    let (hub, transport, client) = test_hub(ClientOptions::new().with_sample_rate(0.0));
    Hub::run(hub, || {
        for _ in 0..10 {
            assert!(sentry::capture_message("sampled out", Level::Info).is_nil());
        }
    });
    flush(&client);
    assert!(transport.events().is_empty());
    let report = transport.items_of(&sentry::protocol::ItemType::ClientReport).last().unwrap();
    assert_eq!(report["discarded_events"][0]["reason"], "sample_rate");
    assert_eq!(report["discarded_events"][0]["quantity"], 10);
}

#[test]
fn disabled_sdk_is_a_no_op() {
    let guard = sentry::init(ClientOptions::new()).unwrap();
    assert!(!guard.is_enabled());
    assert!(sentry::capture_message("nobody listens", Level::Error).is_nil());
    assert!(sentry::flush(std::time::Duration::from_millis(10)));
}

#[test]
fn bad_dsn_is_a_typed_error_naming_the_problem() {
    for (dsn, needle) in [
        ("not a dsn", "whitespace"),
        ("https://host/1", "public key"),
        ("https://k@host/x", "not numeric"),
        ("gopher://k@h/1", "gopher"),
    ] {
        let err = sentry::init(ClientOptions::new().with_dsn(dsn)).unwrap_err();
        assert!(err.to_string().contains(needle), "{dsn}: {err}");
    }
}

#[test]
fn scope_data_reaches_the_event() {
    let (hub, transport, client) = test_hub(ClientOptions::new().with_release("r@1").with_environment("staging"));
    Hub::run(hub, || {
        sentry::configure_scope(|s| {
            s.set_extra("order", 42);
            s.set_fingerprint(Some(&["custom"]));
            s.set_transaction(Some("checkout"));
            s.set_level(Some(Level::Fatal));
        });
        sentry::set_user(Some(sentry::User {
            id: Some("u1".into()),
            ip_address: Some("10.1.1.1".into()),
            ..Default::default()
        }));
        sentry::capture_message("with data", Level::Error);
    });
    flush(&client);
    let e = &transport.events()[0];
    assert_eq!(e.extra["order"], 42);
    assert_eq!(e.fingerprint, ["custom"]);
    assert_eq!(e.transaction.as_deref(), Some("checkout"));
    assert_eq!(e.level, Some(Level::Fatal));
    assert_eq!(e.release.as_deref(), Some("r@1"));
    assert_eq!(e.environment.as_deref(), Some("staging"));
    let user = e.user.as_ref().unwrap();
    assert_eq!(user.id.as_deref(), Some("u1"));
    assert_eq!(user.ip_address, None, "no IP without send_default_pii");
}

#[test]
fn a_panic_inside_configure_scope_can_still_be_captured() {
    let (hub, transport, client) = test_hub(ClientOptions::new().with_attach_stacktrace(false));
    let hook_hub = hub.clone();
    let previous = std::panic::take_hook();
    // What a panic hook does: capture from the panicking thread, while the scope
    // lock is held by the `configure_scope` that panicked.
    std::panic::set_hook(Box::new(move |_| {
        Hub::run(hook_hub.clone(), || sentry::capture_message("panicked in configure_scope", Level::Fatal));
    }));
    let start = std::time::Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Hub::run(hub.clone(), || sentry::configure_scope::<()>(|_| panic!("inside the scope callback")))
    }));
    std::panic::set_hook(previous);
    assert!(result.is_err());
    assert!(start.elapsed() < std::time::Duration::from_secs(2), "the hook did not deadlock");
    flush(&client);
    assert_eq!(transport.events()[0].logentry.as_ref().unwrap().message, "panicked in configure_scope");
    // The scope is usable afterwards.
    Hub::run(hub, || sentry::configure_scope(|s| s.set_tag("after", "ok")));
}

#[test]
fn a_thread_follows_re_init_of_the_main_client() {
    std::thread::spawn(|| {
        for round in 0..2 {
            let transport = sentry::TestTransport::new();
            let guard = sentry::init(ClientOptions::new().with_transport(transport.clone())).unwrap();
            sentry::capture_message(&format!("round {round}"), Level::Info);
            assert!(sentry::flush(std::time::Duration::from_secs(5)));
            assert_eq!(transport.events().len(), 1, "round {round}");
            drop(guard);
        }
    })
    .join()
    .unwrap();
}

#[test]
fn panicking_before_breadcrumb_and_traces_sampler_are_contained() {
    use sentry_lite_core::protocol::{DataCategory, DiscardReason};
    let options = ClientOptions::new()
        .with_before_breadcrumb(|_| panic!("before_breadcrumb exploded"))
        .with_traces_sampler(|_| panic!("traces_sampler exploded"));
    let (hub, transport, client) = test_hub(options);
    Hub::run(hub, || {
        sentry::add_breadcrumb("dropped");
        sentry::add_breadcrumb_with(|b| b.message = Some("dropped too".into()));
        let span = sentry::start_root_span("job", "task");
        assert!(!span.is_recording());
        span.finish();
        sentry::capture_message("still captured", Level::Error);
    });
    flush(&client);
    let events = transport.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(events[0].breadcrumbs.as_ref().is_none_or(|b| b.values.is_empty()), "{:?}", events[0].breadcrumbs);
    assert_eq!(client.discarded(DiscardReason::InternalSdkError, DataCategory::Span), 1);
}

#[test]
fn concurrent_with_scope_on_a_shared_hub_leaves_no_scope_behind() {
    use std::sync::mpsc::channel;
    let (hub, _transport, _client) = test_hub(ClientOptions::new());
    // A enters, B enters over it, A leaves first, then B.
    let (a_in_tx, a_in) = channel::<()>();
    let (b_in_tx, b_in) = channel::<()>();
    let (a_out_tx, a_out) = channel::<()>();
    let a = {
        let hub = hub.clone();
        std::thread::spawn(move || {
            hub.with_scope(
                |s| s.set_tag("owner", "a"),
                || {
                    a_in_tx.send(()).unwrap();
                    b_in.recv().unwrap();
                },
            );
            a_out_tx.send(()).unwrap();
        })
    };
    let b = {
        let hub = hub.clone();
        std::thread::spawn(move || {
            a_in.recv().unwrap();
            hub.with_scope(
                |s| s.set_tag("owner", "b"),
                || {
                    b_in_tx.send(()).unwrap();
                    a_out.recv().unwrap();
                },
            );
        })
    };
    a.join().unwrap();
    b.join().unwrap();
    assert_eq!(hub.current_scope().tag("owner"), None, "a scope was left on the hub");
    // Many interleaved scopes: none left behind either.
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let hub = hub.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    hub.with_scope(|s| s.set_tag("owner", format!("{t}-{i}")), std::thread::yield_now);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(hub.current_scope().tag("owner"), None, "a scope was left on the hub");
}
