//! The user of a segment's scopes, innermost first and down to the global scope,
//! reaches the segment in both trace lifecycles. A process of its own: the global
//! scope is process-wide.

mod common;

use common::{flush, test_hub};
use sentry_lite_core::protocol::{ItemType, User};
use sentry_lite_core::{self as sentry, ClientOptions, Hub, TraceLifecycle};
use serde_json::Value;

fn user(id: &str) -> Option<User> {
    Some(User { id: Some(id.into()), username: Some(format!("name-{id}")), ..Default::default() })
}

fn segment_attributes(transport: &sentry::TestTransport) -> Vec<Value> {
    transport
        .items_of(&ItemType::Span)
        .flat_map(|item| item["items"].as_array().cloned().unwrap_or_default())
        .filter(|span| span["is_segment"] == true)
        .map(|span| span["attributes"].clone())
        .collect()
}

#[test]
fn the_global_scopes_user_reaches_segments_in_both_lifecycles() {
    sentry::configure_global_scope(|scope| scope.set_user(user("global")));
    let traced = || ClientOptions::new().with_traces_sample_rate(1.0);

    // Stream: `user.*` attributes on the segment, with `send_default_pii`.
    let (hub, transport, client) = test_hub(traced().with_send_default_pii(true));
    Hub::run(hub, || {
        sentry::start_root_span("global user", "task").finish();
        sentry::with_scope(|scope| scope.set_user(user("inner")), || sentry::start_root_span("inner", "task").finish());
    });
    flush(&client);
    let ids: Vec<Value> = segment_attributes(&transport).iter().map(|a| a["user.id"]["value"].clone()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&Value::from("global")) && ids.contains(&Value::from("inner")), "{ids:?}");

    // Static: the transaction's user, the same scopes in the same order.
    let (hub, transport, client) = test_hub(traced().with_trace_lifecycle(TraceLifecycle::Static));
    Hub::run(hub, || {
        sentry::start_root_span("global user", "task").finish();
        sentry::with_scope(|scope| scope.set_user(user("inner")), || sentry::start_root_span("inner", "task").finish());
    });
    flush(&client);
    let users: Vec<(Value, Value)> = transport
        .items_of(&ItemType::Transaction)
        .map(|tx| (tx["transaction"].clone(), tx["user"]["id"].clone()))
        .collect();
    assert_eq!(users.len(), 2);
    assert!(users.contains(&("global user".into(), "global".into())), "{users:?}");
    assert!(users.contains(&("inner".into(), "inner".into())), "{users:?}");
}
