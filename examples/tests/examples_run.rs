//! The example binaries run with no DSN against the embedded inbox, exit 0, and
//! write what they claim to.

use std::path::{Path, PathBuf};
use std::process::Command;

use sentry_lite_core::protocol::{Envelope, ItemType};

fn inbox(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sentry-lite-example-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn envelopes(dir: &Path) -> Vec<Envelope> {
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    paths.sort();
    paths.iter().filter_map(|p| Envelope::from_slice(&std::fs::read(p).ok()?).ok()).collect()
}

fn run(bin: &str, dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(bin)
        .args(args)
        .env_remove("SENTRY_DSN")
        .env("SENTRY_LITE_INBOX", dir)
        .output()
        .expect("example runs");
    assert!(out.status.success(), "{bin} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn quickstart_writes_two_isolated_error_events_and_a_message_to_the_inbox() {
    let dir = inbox("quickstart");
    let out = run(env!("CARGO_BIN_EXE_quickstart"), &dir, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SENTRY_DSN is unset"), "{stderr}");
    let events: Vec<_> = envelopes(&dir).iter().filter_map(Envelope::event).collect();
    assert_eq!(events.len(), 3, "two errors and one message");
    for task in ["a", "b"] {
        let e = events.iter().find(|e| e.tags.get("task").map(String::as_str) == Some(task)).expect("event of task");
        let crumbs: Vec<_> =
            e.breadcrumbs.as_ref().unwrap().values.iter().map(|b| b.message.clone().unwrap()).collect();
        assert_eq!(crumbs, [format!("working in {task}")]);
        assert_eq!(e.exception.as_ref().unwrap().values.len(), 3);
    }
    let message = events.iter().find(|e| e.logentry.is_some()).unwrap();
    assert_eq!(message.logentry.as_ref().unwrap().message, "quickstart finished");
    assert!(!message.tags.contains_key("task"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn spans_example_streams_span_batches() {
    let dir = inbox("spans");
    run(env!("CARGO_BIN_EXE_spans"), &dir, &[]);
    let envs = envelopes(&dir);
    let mut spans = 0;
    for env in &envs {
        for item in env.items.iter().filter(|i| i.ty() == &ItemType::Span) {
            let dsc = env.headers.trace.as_ref().expect("span envelopes carry the DSC");
            let payload = item.payload_json().unwrap();
            let items = payload["items"].as_array().unwrap();
            assert_eq!(item.quantity() as usize, items.len());
            assert!(items.len() <= 1000);
            assert!(items.iter().all(|s| s["trace_id"] == dsc.trace_id.to_string()));
            spans += items.len();
        }
        assert!(env.items.iter().filter(|i| i.ty() == &ItemType::Span).count() <= 1);
    }
    assert!(spans > 5_000, "the 5 000-span trace plus the others: {spans}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn demo_selftest_serves_and_reports() {
    let dir = inbox("demo");
    let out = run(env!("CARGO_BIN_EXE_demo"), &dir, &["--selftest", "20"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.is_empty());
    let events: Vec<_> = envelopes(&dir).iter().filter_map(Envelope::event).collect();
    assert!(events.iter().any(|e| e.exception.as_ref().is_some_and(|x| x.values.len() == 3)), "the /error chain");
    assert!(
        events.iter().any(|e| e
            .exception
            .as_ref()
            .is_some_and(|x| x.values.iter().any(|v| v.mechanism.as_ref().is_some_and(|m| m.ty == "panic")))),
        "the /panic report"
    );
    let _ = std::fs::remove_dir_all(dir);
}
