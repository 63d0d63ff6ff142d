//! End to end against a real receiver: Bugsink, started by `scripts/test.sh`.
//! Without Bugsink it skips, unless `SENTRY_LITE_E2E=1` makes it fail.

use std::time::Duration;

use sentry_lite_core::protocol::{DataCategory, DiscardReason, Event};
use sentry_lite_core::{self as sentry, ClientOptions};
use sentry_lite_tests::bugsink::Bugsink;
use serde_json::Value;

fn frames_of(exception: &Value) -> Vec<Value> {
    exception["stacktrace"]["frames"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_events_are_stored_with_chain_frames_tags_and_breadcrumbs() {
    let Some(bugsink) = Bugsink::for_test() else { return };
    let options = ClientOptions::new()
        .with_dsn(bugsink.dsn.clone())
        .with_release("e2e@1.0.0")
        .with_environment("ci")
        .with_in_app_include("sentry_lite_examples");
    let guard = sentry::init(options).expect("Bugsink DSN parses");
    let log_offset = bugsink.log_offset();

    let [a, b, message] = sentry_lite_examples::quickstart::run().await;
    assert!(sentry::flush(Duration::from_secs(10)), "flush to Bugsink timed out");

    for (id, task) in [(a, "a"), (b, "b")] {
        let stored = bugsink.wait_for_event(&id.to_string(), Duration::from_secs(20)).await;
        let stored = stored.unwrap_or_else(|| {
            panic!(
                "event {id} of task {task} was not stored; validation errors: {:?}",
                bugsink.validation_errors_since(log_offset)
            )
        });
        let data = &stored["data"];
        let values = data["exception"]["values"].as_array().expect("exception values");
        let texts: Vec<&str> = values.iter().map(|v| v["value"].as_str().unwrap_or("")).collect();
        assert_eq!(texts.len(), 3, "{texts:?}");
        assert!(texts[0].contains("settings.toml missing"), "root cause first: {texts:?}");
        assert_eq!(texts[2], "could not load configuration");
        assert_eq!(values[2]["type"], "sentry_lite_examples::quickstart::ConfigError");
        assert_eq!(values[2]["mechanism"]["type"], "generic");
        assert_eq!(values[2]["mechanism"]["handled"], true);
        let frames = frames_of(&values[2]);
        assert!(!frames.is_empty(), "outermost exception has frames");
        let in_app: Vec<&Value> = frames.iter().filter(|f| f["in_app"] == true).collect();
        assert!(in_app.iter().any(|f| f["function"].as_str().unwrap_or("").contains("quickstart::work")), "{frames:?}");
        assert!(frames
            .iter()
            .filter(|f| f["function"].as_str().unwrap_or("").starts_with("tokio::"))
            .all(|f| f["in_app"] == false));
        assert_eq!(data["tags"]["task"], task, "tags: {}", data["tags"]);
        let crumbs: Vec<&str> = data["breadcrumbs"]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["message"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(crumbs, [format!("working in {task}")], "only this task's breadcrumb");
        assert_eq!(data["release"], "e2e@1.0.0");
        assert_eq!(data["environment"], "ci");
    }
    let stored = bugsink.wait_for_event(&message.to_string(), Duration::from_secs(20)).await.expect("message stored");
    assert_eq!(stored["data"]["logentry"]["message"], "quickstart finished");
    assert!(stored["data"]["tags"].get("task").is_none(), "main's message carries no task tag");
    assert!(
        bugsink.validation_errors_since(log_offset).is_empty(),
        "{:?}",
        bugsink.validation_errors_since(log_offset)
    );

    // Bugsink answers `X-Sentry-Rate-Limits: 86400:transaction;span:organization` on every
    // response: a correct SDK now drops transactions and spans before sending.
    let client = guard.client().expect("enabled").clone();
    let mut transaction = Event::new();
    transaction.ty = Some("transaction".into());
    transaction.transaction = Some("GET /limited".into());
    transaction.start_timestamp = Some(transaction.timestamp);
    sentry::capture_event(transaction);
    let error_id = sentry::capture_message("errors still flow", sentry::Level::Error);
    assert!(sentry::flush(Duration::from_secs(10)));
    assert_eq!(client.discarded(DiscardReason::RatelimitBackoff, DataCategory::Transaction), 1);
    assert_eq!(client.discarded(DiscardReason::RatelimitBackoff, DataCategory::Span), 1);
    assert_eq!(client.discarded(DiscardReason::RatelimitBackoff, DataCategory::Error), 0);
    assert!(
        bugsink.wait_for_event(&error_id.to_string(), Duration::from_secs(20)).await.is_some(),
        "errors are not rate limited"
    );
    drop(guard);
}
