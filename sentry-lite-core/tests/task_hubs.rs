//! Hubs of tokio tasks with no hub bound, and the `debug` warning about scope
//! writes on a runtime thread outside any task.
//!
//! Each test that needs a fresh process (the warning is once per process) runs
//! this binary again as a child with `TASK_HUBS_CHILD` set and reads its stderr.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use sentry_lite_core::{ClientOptions, FutureExt as _, Hub, Level, TestTransport};

const WARNING: &str = "outside any task and with no hub bound";

/// Runs test `name` of this binary in a child process in `mode`; its stderr.
fn child_stderr(name: &str, mode: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("TASK_HUBS_CHILD", mode)
        .output()
        .expect("run child");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child failed: {stderr}");
    stderr
}

fn init_debug() -> sentry_lite_core::InitGuard {
    let options = ClientOptions::new().with_transport(TestTransport::new()).with_debug(true);
    sentry_lite_core::init(options).expect("init")
}

fn tag() {
    sentry_lite_core::configure_scope(|s| s.set_tag("written", "yes"));
}

#[test]
fn scope_writes_on_a_runtime_thread_outside_tasks_are_warned_once() {
    match std::env::var("TASK_HUBS_CHILD").as_deref() {
        Ok("quiet") => {
            let _guard = init_debug();
            // Inside tasks (plain, bound, blocking) and on a plain thread: no warning.
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
            rt.block_on(async {
                tokio::spawn(async { tag() }).await.unwrap();
                tokio::spawn(async { tag() }.bind_hub(Hub::new_unit())).await.unwrap();
                tokio::task::spawn_blocking(tag).await.unwrap();
            });
            std::thread::spawn(tag).join().unwrap();
        }
        Ok("warn") => {
            let _guard = init_debug();
            // Runtime hooks run on worker threads, outside any task: every worker writes.
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(3).on_thread_start(tag).build().unwrap();
            rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
            rt.shutdown_timeout(Duration::from_secs(5));
        }
        Ok(other) => panic!("unknown child mode {other}"),
        Err(_) => {
            let name = "scope_writes_on_a_runtime_thread_outside_tasks_are_warned_once";
            let quiet = child_stderr(name, "quiet");
            assert!(!quiet.contains(WARNING), "warned inside tasks: {quiet}");
            let warned = child_stderr(name, "warn");
            assert_eq!(warned.matches(WARNING).count(), 1, "{warned}");
        }
    }
}

#[test]
fn a_plain_task_keeps_its_scope_across_awaits_and_tasks_do_not_share() {
    let (_, envelopes) = sentry_lite_core::test::with_captured_envelopes(ClientOptions::new(), || {
        // The client is bound to this thread's hub: give it to the tasks' main-hub fallback.
        let client = Hub::current().client();
        Hub::main().bind_client(client);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap();
        rt.block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|n| {
                    tokio::spawn(async move {
                        sentry_lite_core::configure_scope(|s| s.set_tag("n", n));
                        let own = Hub::current();
                        for _ in 0..5 {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            assert!(Arc::ptr_eq(&own, &Hub::current()), "task {n} lost its hub");
                        }
                        sentry_lite_core::capture_message(&format!("task {n}"), Level::Info);
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        Hub::main().bind_client(None);
    });
    let events: Vec<_> = envelopes.iter().filter_map(|e| e.event()).collect();
    assert_eq!(events.len(), 8);
    for e in events {
        let n = e.logentry.as_ref().unwrap().message.strip_prefix("task ").unwrap().to_owned();
        assert_eq!(e.tags.get("n"), Some(&n));
    }
    assert!(Hub::main().current_scope().tag("n").is_none());
}
