//! The panic hook delivers its event before the process dies.
//!
//! Each case re-runs this test binary as a child (`PANIC_CHILD=<mode>` selects the
//! [`child`] entry point) with a DSN pointing at the loopback [`FaultServer`]. The child
//! forgets its `InitGuard`, so nothing but the hook's own flush can deliver the events.
//!
//! * `unwind`: plain unwinding; the test thread's panic ends the child with exit code 101.
//! * `abort`: a hook installed *before* ours calls `std::process::abort()`; ours chains to
//!   it, so the process dies right after reporting, exactly like `panic = "abort"` (whose
//!   runtime calls `abort` after the hook). The test binary cannot be rebuilt with
//!   `-C panic=abort` at run time, hence the chained abort.
//! * `exit`: the chained hook calls `std::process::exit(3)` (no destructors, no atexit flush).
//!
//! A hook that ends the process on any thread's panic is invisible to ours, so the
//! `abort` and `exit` children turn on `with_flush_on_every_panic`; by default only a
//! panic that ends the process waits for delivery (checked in-process below).
//!
//! The real `panic = "abort"` build of the `panic` example is checked by the ignored
//! `release_abort_example_delivers_both_events` (a release build: slow on small machines):
//! `cargo test -p sentry-lite-tests --test panic -- --ignored`.

use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use sentry_lite_core::{self as sentry, ClientOptions, Hub};
use sentry_lite_panic::PanicIntegration;
use sentry_lite_tests::fault_server::{FaultServer, Mode};
use serde_json::Value;

const MODE_VAR: &str = "PANIC_CHILD";
const DSN_VAR: &str = "PANIC_CHILD_DSN";

/// Entry point of the child process; a no-op in a normal test run.
#[test]
fn child() {
    let Ok(mode) = std::env::var(MODE_VAR) else { return };
    let flush_on_every_panic = mode != "unwind";
    let dsn = std::env::var(DSN_VAR).expect("PANIC_CHILD_DSN");
    match mode.as_str() {
        "abort" | "exit" => {
            let default = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                default(info);
                // Like `panic = "abort"`: the first panic (the worker thread's) ends
                // the process as soon as the hooks return.
                if mode == "abort" {
                    std::process::abort();
                }
                std::process::exit(3);
            }));
        }
        _ => {}
    }
    let options = ClientOptions::new()
        .with_dsn(dsn)
        .with_release("panic-test@1")
        // An upper bound only: the hook returns as soon as the event is delivered.
        // Generous, for a loaded machine.
        .with_shutdown_timeout(Duration::from_secs(15))
        .with_integration(PanicIntegration::new().with_flush_on_every_panic(flush_on_every_panic));
    let guard = sentry::init(options).expect("init");
    // Only the hook's own flush may deliver: no flush on drop.
    std::mem::forget(guard);
    // libtest runs the test on a thread of its own: the work runs on a thread named
    // like the process's main thread, and its panic ends the process (exit code 101,
    // as when `main` unwinds) without any flush but the hook's.
    let main = std::thread::Builder::new().name("main".into()).spawn(|| {
        Hub::run(Hub::main(), || {
            sentry::configure_scope(|s| s.set_tag("example", "panic"));
            sentry::add_breadcrumb("about to panic");
            sentry::set_user(Some(sentry::User { id: Some("42".into()), ..Default::default() }));
            let worker =
                std::thread::Builder::new().name("worker".into()).spawn(|| panic!("worker exploded")).expect("spawn");
            let _ = worker.join();
            panic!("main exploded");
        })
    });
    let _ = main.expect("spawn").join();
    std::process::exit(101);
}

fn run_child(mode: &str, server: &FaultServer) -> ExitStatus {
    let exe = std::env::current_exe().expect("current_exe");
    let started = Instant::now();
    let out = Command::new(exe)
        .args(["--exact", "child", "--nocapture"])
        .env(MODE_VAR, mode)
        .env(DSN_VAR, server.dsn(1))
        .env_remove("SENTRY_DSN")
        .output()
        .expect("run child");
    assert!(started.elapsed() < Duration::from_secs(30), "child took {:?}", started.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("main exploded") || stderr.contains("worker exploded"), "previous hook ran: {stderr}");
    out.status
}

/// Events received so far (already there when the child exited: no waiting).
fn received_events(server: &FaultServer) -> Vec<Value> {
    server.requests().iter().filter_map(|r| r.envelope().ok()).flat_map(|e| e.events()).collect()
}

fn exception(event: &Value) -> &Value {
    &event["exception"]["values"][0]
}

fn check_panic_event(event: &Value, message: &str, thread_name: Option<&str>) {
    let exc = exception(event);
    assert_eq!(exc["type"], "panic");
    assert_eq!(exc["value"], message);
    assert_eq!(exc["mechanism"]["type"], "panic");
    assert_eq!(exc["mechanism"]["handled"], false);
    assert_eq!(event["level"], "fatal");
    assert_eq!(event["tags"]["example"], "panic", "{event}");
    assert_eq!(event["user"]["id"], "42");
    let crumbs = event["breadcrumbs"]["values"].as_array().expect("breadcrumbs");
    assert!(crumbs.iter().any(|c| c["message"] == "about to panic"), "{crumbs:?}");
    let thread = &event["threads"]["values"][0];
    assert_eq!(thread["crashed"], true);
    assert_eq!(thread["current"], true);
    match thread_name {
        Some(name) => assert_eq!(thread["name"], name),
        // libtest names the thread after the test (or runs it on "main").
        None => assert!(thread["name"].is_string(), "{thread}"),
    }
    assert!(thread["id"].as_u64().is_some_and(|id| id > 0));
    assert_eq!(exc["thread_id"], thread["id"]);
    assert!(event["contexts"]["panic"]["file"].as_str().is_some_and(|f| f.ends_with("panic.rs")), "{event}");
    assert!(event["contexts"]["trace"]["trace_id"].as_str().is_some_and(|t| t.len() == 32));
    // The crashing frame is the panic site, not the hook or std's panic machinery.
    let frames = exc["stacktrace"]["frames"].as_array().expect("frames");
    let top = frames.last().expect("a frame");
    let top_text = top.to_string();
    assert!(!top_text.contains("sentry_lite") && !top_text.contains("panicking"), "top frame: {top}");
    assert!(
        top["abs_path"].as_str().or(top["filename"].as_str()).is_some_and(|f| f.ends_with("panic.rs")),
        "top frame: {top}"
    );
    assert_eq!(top["in_app"], true);
}

fn by_message<'a>(events: &'a [Value], message: &str) -> &'a Value {
    events
        .iter()
        .find(|e| exception(e)["value"] == message)
        .unwrap_or_else(|| panic!("no event {message:?} in {events:#?}"))
}

#[test]
fn unwinding_panics_on_two_threads_are_reported_before_exit() {
    let server = FaultServer::start();
    let status = run_child("unwind", &server);
    assert_eq!(status.code(), Some(101), "{status}");
    let events = received_events(&server);
    assert_eq!(events.len(), 2, "{events:#?}");
    check_panic_event(by_message(&events, "worker exploded"), "worker exploded", Some("worker"));
    check_panic_event(by_message(&events, "main exploded"), "main exploded", Some("main"));
    sentry_lite_tests::relay::assert_all_valid(&events);
}

#[test]
fn abort_right_after_the_hook_still_delivers() {
    let server = FaultServer::start();
    let status = run_child("abort", &server);
    assert!(!status.success() && status.code().is_none(), "killed by SIGABRT: {status}");
    let events = received_events(&server);
    // Under abort the first panic (the worker thread's) ends the process.
    assert_eq!(events.len(), 1, "{events:#?}");
    check_panic_event(&events[0], "worker exploded", Some("worker"));
    sentry_lite_tests::relay::assert_all_valid(&events);
}

#[test]
fn exit_right_after_the_hook_still_delivers() {
    let server = FaultServer::start();
    let status = run_child("exit", &server);
    assert_eq!(status.code(), Some(3), "{status}");
    let events = received_events(&server);
    assert_eq!(events.len(), 1, "{events:#?}");
    check_panic_event(&events[0], "worker exploded", Some("worker"));
}

/// The `panic` example built with `panic = "abort"` (profile `release-abort`).
#[test]
#[ignore = "builds the example in release mode (slow); run with --ignored"]
fn release_abort_example_delivers_both_events() {
    let root = sentry_lite_tests::repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--profile", "release-abort", "-p", "sentry-lite-examples", "--bin", "panic"])
        .status()
        .expect("cargo build");
    assert!(build.success());
    let target =
        std::env::var("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| root.join("target"));
    let server = FaultServer::start();
    let out = Command::new(target.join("release-abort/panic"))
        .env("SENTRY_DSN", server.dsn(1))
        .output()
        .expect("run example");
    assert!(out.status.code().is_none(), "aborted: {}", out.status);
    let events = received_events(&server);
    // `panic = "abort"`: the worker thread's panic is the last thing the process does.
    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert_eq!(exception(event)["value"], "worker exploded");
    assert_eq!(exception(event)["mechanism"]["handled"], false);
    assert_eq!(event["level"], "fatal");
    assert_eq!(event["tags"]["example"], "panic");
    assert_eq!(event["threads"]["values"][0]["name"], "worker");
    sentry_lite_tests::relay::assert_all_valid(&events);
}

/// The hook waits for delivery only when the panic ends the process. A current-thread
/// runtime driven from `main`: a panic in a spawned task (which Tokio catches)
/// returns at once, a panic of the `main` thread itself waits up to `shutdown_timeout`.
#[test]
fn only_a_panic_that_ends_the_process_waits_for_delivery() {
    let server = FaultServer::start();
    // Slower than the shutdown timeout: a waiting hook waits all of it.
    server.set_mode(Mode::Slow(Duration::from_secs(5)));
    let shutdown_timeout = Duration::from_secs(3);
    let options = ClientOptions::new()
        .with_dsn(server.dsn(1))
        .with_shutdown_timeout(shutdown_timeout)
        .with_request_timeout(Duration::from_secs(10))
        .with_integration(PanicIntegration::new());
    let guard = sentry::init(options).expect("init");
    let (task_panic, main_panic) = std::thread::Builder::new()
        .name("main".into())
        .spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let start = Instant::now();
                let joined = tokio::spawn(async { panic!("task exploded") }).await;
                assert!(joined.unwrap_err().is_panic());
                let task_panic = start.elapsed();
                let start = Instant::now();
                let _ = std::panic::catch_unwind(|| panic!("main exploded"));
                (task_panic, start.elapsed())
            })
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(task_panic < Duration::from_millis(1500), "a task's panic held the runtime for {task_panic:?}");
    assert!(
        main_panic >= shutdown_timeout - Duration::from_millis(500),
        "the main thread's panic waited {main_panic:?}"
    );
    server.set_mode(Mode::Ok);
    assert!(sentry::flush(Duration::from_secs(20)));
    drop(guard);
    let events = received_events(&server);
    let messages: Vec<&Value> = events.iter().map(|e| &exception(e)["value"]).collect();
    assert!(messages.contains(&&Value::from("task exploded")), "the task's event was still sent: {messages:?}");
}
