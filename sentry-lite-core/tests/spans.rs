//! Span behaviour: parents under concurrency, sampling, propagation, span v2
//! envelopes, `before_send_span`, `ignore_spans` and static mode.

mod common;

use std::sync::Arc;

use serde_json::Value;

use common::{flush, test_hub};
use sentry_lite_core::protocol::{DataCategory, DiscardReason, Envelope, ItemType};
use sentry_lite_core::{
    continue_trace, current_span, start_root_span, start_span, trace, trace_headers, ClientOptions, FutureExt, Hub,
    SpanPattern, TraceLifecycle,
};

fn traced() -> ClientOptions {
    ClientOptions::new().with_traces_sample_rate(1.0)
}

/// All span v2 payload items, with their envelope.
fn spans(envelopes: &[Envelope]) -> Vec<Value> {
    envelopes
        .iter()
        .flat_map(|e| e.items.iter().filter(|i| i.ty() == &ItemType::Span).filter_map(|i| i.payload_json()))
        .flat_map(|v| v["items"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn by_name<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no span {name}"))
}

async fn fetch(url: &str) -> String {
    let span = start_span(format!("GET {url}"), "http.client");
    tokio::task::yield_now().await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let parent = span.parent_span_id();
    span.finish();
    parent.map(|p| p.to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_roots_under_join_each_parent_their_own_children() {
    let (hub, transport, client) = test_hub(traced());
    async {
        let (a, b) = tokio::join!(
            trace("t1", "task", async { (current_span().unwrap().span_id(), fetch("https://example.com/f1").await) }),
            trace("t2", "task", async { (current_span().unwrap().span_id(), fetch("https://example.com/f2").await) }),
        );
        assert_eq!(a.0.to_string(), a.1);
        assert_eq!(b.0.to_string(), b.1);
    }
    .bind_hub(hub)
    .await;
    flush(&client);
    let all = spans(&transport.envelopes());
    let t1 = by_name(&all, "t1");
    let t2 = by_name(&all, "t2");
    assert_eq!(by_name(&all, "GET https://example.com/f1")["parent_span_id"], t1["span_id"]);
    assert_eq!(by_name(&all, "GET https://example.com/f2")["parent_span_id"], t2["span_id"]);
    assert_eq!(t1["is_segment"], true);
    assert_eq!(by_name(&all, "GET https://example.com/f1")["is_segment"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_concurrent_tasks_keep_their_parents() {
    let (hub, transport, client) = test_hub(traced());
    let mut handles = Vec::new();
    for i in 0..300 {
        let fut = async move {
            trace(&format!("root-{i}"), "task", async move {
                let child = |j: usize| {
                    trace(&format!("child-{i}-{j}"), "work", async move {
                        tokio::task::yield_now().await;
                        fetch(&format!("/{i}/{j}")).await
                    })
                };
                tokio::join!(child(0), child(1), child(2))
            })
            .await
        };
        handles.push(tokio::spawn(fut.bind_hub(hub.clone())));
    }
    for h in handles {
        h.await.unwrap();
    }
    flush(&client);
    let all = spans(&transport.envelopes());
    assert_eq!(all.len(), 300 * 7);
    for i in 0..300 {
        let root = by_name(&all, &format!("root-{i}"));
        for j in 0..3 {
            let child = by_name(&all, &format!("child-{i}-{j}"));
            assert_eq!(child["parent_span_id"], root["span_id"]);
            assert_eq!(child["trace_id"], root["trace_id"]);
            assert_eq!(by_name(&all, &format!("GET /{i}/{j}"))["parent_span_id"], child["span_id"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_levels_across_spawn() {
    let (hub, transport, client) = test_hub(traced());
    async {
        trace("level1", "task", async {
            sentry_lite_core::spawn(async {
                trace("level2", "task", async {
                    sentry_lite_core::spawn(async { start_span("level3", "task").finish() }).await.unwrap();
                })
                .await
            })
            .await
            .unwrap();
        })
        .await
    }
    .bind_hub(hub)
    .await;
    flush(&client);
    let all = spans(&transport.envelopes());
    assert_eq!(by_name(&all, "level2")["parent_span_id"], by_name(&all, "level1")["span_id"]);
    assert_eq!(by_name(&all, "level3")["parent_span_id"], by_name(&all, "level2")["span_id"]);
}

#[test]
fn unsampled_spans_are_non_recording() {
    let (hub, transport, client) = test_hub(ClientOptions::new().with_traces_sample_rate(0.0));
    Hub::run(hub, || {
        let root = start_root_span("root", "task");
        assert!(!root.is_recording());
        assert!(!root.is_sampled());
        let child = root.start_child("child", "work");
        assert!(!child.is_recording());
        assert_eq!(child.trace_id(), root.trace_id());
        assert_eq!(child.parent_span_id(), Some(root.span_id()));
        child.set_attribute("k", "v");
        child.finish();
        root.finish();
        let headers = root.trace_headers();
        assert!(headers[0].1.ends_with("-0"), "{headers:?}");
    });
    flush(&client);
    assert!(spans(&transport.envelopes()).is_empty());
    assert_eq!(client.discarded(DiscardReason::SampleRate, DataCategory::Span), 1);
}

#[test]
fn without_a_rate_traces_still_propagate() {
    let (hub, _transport, _client) = test_hub(ClientOptions::new());
    Hub::run(hub, || {
        let root = start_root_span("root", "task");
        assert!(!root.is_recording());
        let headers = root.trace_headers();
        // Deferred: no sampled flag.
        assert_eq!(headers[0].1, format!("{}-{}", root.trace_id(), root.span_id()));
        let h = trace_headers();
        // `traceparent` only on opt-in.
        assert_eq!(h.iter().map(|h| h.0).collect::<Vec<_>>(), ["sentry-trace", "baggage"]);
    });
}

#[test]
fn sampler_sees_the_parent_decision() {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s = seen.clone();
    let options = ClientOptions::new().with_traces_sampler(move |ctx| {
        s.lock().push((ctx.name.to_owned(), ctx.op.map(str::to_owned), ctx.parent_sampled));
        if ctx.parent_sampled == Some(false) {
            0.0
        } else {
            1.0
        }
    });
    let (hub, _t, _c) = test_hub(options);
    Hub::run(hub.clone(), || {
        let ctx = continue_trace([("sentry-trace", "0123456789abcdef0123456789abcdef-0123456789abcdef-0")]);
        hub.configure_scope(|s| s.set_propagation(ctx));
        let root = start_root_span("incoming", "http.server");
        assert!(!root.is_recording());
        assert_eq!(root.trace_id().to_string(), "0123456789abcdef0123456789abcdef");
    });
    let (hub2, _t, _c) = test_hub(ClientOptions::new().with_traces_sampler(|_| 1.0));
    Hub::run(hub2, || assert!(start_root_span("fresh", "task").is_recording()));
    assert_eq!(seen.lock()[0], ("incoming".to_owned(), Some("http.server".to_owned()), Some(false)));
}

#[test]
fn sample_rand_invariant_in_the_dsc() {
    let (hub, _t, _c) = test_hub(ClientOptions::new().with_traces_sample_rate(0.5));
    Hub::run(hub, || {
        for _ in 0..500 {
            let root = start_root_span("r", "task");
            let baggage = root.trace_headers()[1].1.clone();
            let get = |k: &str| {
                baggage
                    .split(',')
                    .find_map(|m| m.strip_prefix(&format!("sentry-{k}=")))
                    .map(str::to_owned)
                    .unwrap_or_default()
            };
            let rand: f64 = get("sample_rand").parse().unwrap();
            let rate: f64 = get("sample_rate").parse().unwrap();
            assert_eq!(rand < rate, root.is_sampled());
            assert_eq!(get("sampled"), root.is_sampled().to_string());
        }
    });
}

#[test]
fn continuing_with_a_decision_but_no_rand_derives_a_consistent_one() {
    let (hub, _t, _c) = test_hub(traced());
    Hub::run(hub.clone(), || {
        for sampled in ["1", "0"] {
            let st = format!("0123456789abcdef0123456789abcdef-0123456789abcdef-{sampled}");
            let ctx = continue_trace([
                ("sentry-trace", st.as_str()),
                ("baggage", "sentry-sample_rate=0.3,sentry-public_key=0123456789abcdef0123456789abcdef"),
            ]);
            let rand = ctx.sample_rand();
            assert_eq!(rand < 0.3, sampled == "1", "{rand}");
            assert!(ctx.dsc().unwrap().sample_rand.is_some());
        }
    });
}

#[test]
fn propagation_round_trip() {
    let (hub, _t, _c) = test_hub(traced().with_propagate_traceparent(true));
    Hub::run(hub.clone(), || {
        let incoming = [
            ("Sentry-Trace", "0123456789abcdef0123456789abcdef-0123456789abcdef-1"),
            ("BAGGAGE", "othervendor=x,sentry-trace_id=0123456789abcdef0123456789abcdef,sentry-sample_rate=0.5,sentry-sample_rand=0.25,sentry-sampled=true,sentry-public_key=f0e1d2c3b4a5968778695a4b3c2d1e0f,sentry-transaction=upstream"),
        ];
        let ctx = continue_trace(incoming);
        hub.configure_scope(|s| s.set_propagation(ctx));
        let root = start_root_span("GET /me", "http.server");
        assert!(root.is_recording());
        assert_eq!(root.parent_span_id().unwrap().to_string(), "0123456789abcdef");
        let child = root.start_child("call", "http.client");
        let headers = child.trace_headers();
        assert_eq!(headers[0], ("sentry-trace", format!("0123456789abcdef0123456789abcdef-{}-1", child.span_id())));
        let baggage = &headers[1].1;
        // Frozen incoming DSC goes out unchanged; other vendors' entries are not forwarded.
        assert!(baggage.contains("sentry-transaction=upstream"), "{baggage}");
        assert!(baggage.contains("sentry-public_key=f0e1d2c3b4a5968778695a4b3c2d1e0f"));
        assert!(baggage.contains("sentry-sample_rand=0.25"));
        assert!(!baggage.contains("othervendor"));
        assert_eq!(headers[2], ("traceparent", format!("00-0123456789abcdef0123456789abcdef-{}-01", child.span_id())));
    });
}

#[test]
fn foreign_org_starts_a_new_trace() {
    let transport = sentry_lite_core::TestTransport::new();
    let dsn: sentry_lite_core::Dsn = "https://key@o42.ingest.sentry.io/1".parse().unwrap();
    let client = Arc::new(sentry_lite_core::Client::new(traced().with_transport(transport), Some(dsn)));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client));
    Hub::run(hub, || {
        let st = "0123456789abcdef0123456789abcdef-0123456789abcdef-1";
        let other = continue_trace([("sentry-trace", st), ("baggage", "sentry-org_id=7")]);
        assert_ne!(other.trace_id().to_string(), "0123456789abcdef0123456789abcdef");
        let same = continue_trace([("sentry-trace", st), ("baggage", "sentry-org_id=42")]);
        assert_eq!(same.trace_id().to_string(), "0123456789abcdef0123456789abcdef");
    });
}

#[test]
fn dsc_is_frozen_once_propagated() {
    let (hub, transport, client) = test_hub(traced());
    Hub::run(hub, || {
        let root = start_root_span("first name", "http.server");
        let before = root.trace_headers()[1].1.clone();
        assert!(before.contains("sentry-transaction=first%20name"), "{before}");
        root.set_name("second name");
        assert_eq!(root.trace_headers()[1].1, before);
        root.finish();
    });
    flush(&client);
    let envs = transport.envelopes();
    let dsc = envs[0].headers.trace.as_ref().unwrap();
    assert_eq!(dsc.transaction.as_deref(), Some("first name"));
    // The span itself carries the final name.
    assert_eq!(spans(&envs)[0]["name"], "second name");
}

#[test]
fn url_names_stay_out_of_the_dsc() {
    let (hub, _t, _c) = test_hub(traced());
    Hub::run(hub, || {
        let root = start_root_span("GET /users/123", "http.server");
        root.set_source("url");
        assert!(!root.trace_headers()[1].1.contains("sentry-transaction"));
    });
}

#[test]
fn span_v2_envelopes_are_valid() {
    let options = traced().with_release("app@1.0");
    let (hub, transport, client) = test_hub(options);
    Hub::run(hub, || {
        for t in 0..3 {
            let root = start_root_span(format!("root {t}"), "task");
            root.set_source("route");
            for i in 0..1_200 {
                let c = root.start_child(format!("c{i}"), "work");
                c.set_attribute("n", i as i64);
                c.finish();
            }
            root.finish();
        }
    });
    flush(&client);
    let envs = transport.envelopes();
    let mut total = 0;
    for env in envs.iter().filter(|e| e.items.iter().any(|i| i.ty() == &ItemType::Span)) {
        let containers: Vec<_> = env.items.iter().filter(|i| i.ty() == &ItemType::Span).collect();
        assert_eq!(containers.len(), 1, "one span container per envelope");
        let item = containers[0];
        let payload = item.payload_json().unwrap();
        assert_eq!(payload["version"], 2);
        let items = payload["items"].as_array().unwrap();
        assert!(!items.is_empty() && items.len() <= 1000);
        assert_eq!(item.header("item_count").and_then(Value::as_u64), Some(items.len() as u64));
        assert_eq!(
            item.header("content_type").and_then(Value::as_str),
            Some("application/vnd.sentry.items.span.v2+json")
        );
        let dsc = serde_json::to_value(env.headers.trace.as_ref().expect("DSC")).unwrap();
        for (k, v) in dsc.as_object().unwrap() {
            assert!(v.is_string(), "DSC value {k} is not a string");
        }
        assert_eq!(dsc["sample_rate"], "1");
        for span in items {
            assert_eq!(span["trace_id"], dsc["trace_id"]);
            let attrs = &span["attributes"];
            for key in [
                "sentry.release",
                "sentry.environment",
                "sentry.sdk.name",
                "sentry.sdk.version",
                "sentry.segment.name",
                "sentry.segment.id",
                "sentry.op",
                "sentry.origin",
                "thread.id",
                "os.name",
            ] {
                assert!(attrs.get(key).is_some(), "missing {key} in {span}");
            }
            assert_eq!(attrs["sentry.release"]["value"], "app@1.0");
            if span["is_segment"] == true {
                assert_eq!(attrs["sentry.span.source"]["value"], "route");
            } else {
                assert!(attrs.get("sentry.span.source").is_none());
                assert_eq!(attrs["n"]["type"], "integer");
            }
            assert!(span["end_timestamp"].as_f64() >= span["start_timestamp"].as_f64());
        }
        total += items.len();
    }
    assert_eq!(total, 3 * 1_201);
}

#[test]
fn children_read_the_segment_name_at_flush_time() {
    let (hub, transport, client) = test_hub(traced());
    Hub::run(hub, || {
        let root = start_root_span("GET", "http.server");
        root.start_child("handler", "function").finish();
        root.set_name("GET /users/{id}");
        root.finish();
    });
    flush(&client);
    let all = spans(&transport.envelopes());
    assert_eq!(by_name(&all, "handler")["attributes"]["sentry.segment.name"]["value"], "GET /users/{id}");
}

#[test]
fn error_in_span_links_to_it() {
    let (hub, transport, client) = test_hub(traced());
    let (trace_id, span_id, parent) = Hub::run(hub, || {
        let root = start_root_span("GET /x", "http.server");
        let _g = sentry_lite_core::enter_span(&root);
        let child = start_span("SELECT", "db.query");
        let _g2 = sentry_lite_core::enter_span(&child);
        sentry_lite_core::capture_message("boom", sentry_lite_core::Level::Error);
        (child.trace_id(), child.span_id(), root.span_id())
    });
    flush(&client);
    let envs = transport.envelopes();
    let env = envs.iter().find(|e| e.items.iter().any(|i| i.ty() == &ItemType::Event)).unwrap();
    let event = env.event().unwrap();
    let Some(sentry_lite_core::protocol::Context::Trace(tc)) = event.contexts.get("trace") else {
        panic!("no trace context")
    };
    assert_eq!(tc.trace_id, trace_id);
    assert_eq!(tc.span_id, span_id);
    assert_eq!(tc.parent_span_id, Some(parent));
    assert_eq!(tc.op.as_deref(), Some("db.query"));
    assert_eq!(env.headers.trace.as_ref().unwrap().trace_id, trace_id);
    assert_eq!(event.transaction.as_deref(), Some("GET /x"));
}

#[test]
fn before_send_span_modifies() {
    let options = traced().with_before_send_span(|span| {
        span.name = format!("renamed {}", span.name);
        span.attributes.remove("thread.name");
    });
    let (hub, transport, client) = test_hub(options);
    Hub::run(hub, || start_root_span("x", "task").finish());
    flush(&client);
    let all = spans(&transport.envelopes());
    assert_eq!(all[0]["name"], "renamed x");
    assert!(all[0]["attributes"].get("thread.name").is_none());
}

#[test]
fn ignored_spans_are_counted_and_not_sent() {
    let options =
        traced().with_ignored_span(SpanPattern::name("GET /health*")).with_ignored_span(SpanPattern::op("cache.get"));
    let (hub, transport, client) = test_hub(options);
    Hub::run(hub, || {
        let health = start_root_span("GET /healthz", "http.server");
        assert!(!health.is_recording());
        health.start_child("inner", "work").finish();
        let root = start_root_span("GET /users", "http.server");
        let c = root.start_child("get key", "cache.get");
        assert!(!c.is_recording());
        root.start_child("kept", "db.query").finish();
        root.finish();
    });
    flush(&client);
    let all = spans(&transport.envelopes());
    assert_eq!(all.len(), 2);
    assert_eq!(client.discarded(DiscardReason::Ignored, DataCategory::Span), 3);
}

#[test]
fn static_mode_sends_one_transaction_per_segment() {
    let options = traced().with_trace_lifecycle(TraceLifecycle::Static).with_release("app@2");
    let (hub, transport, client) = test_hub(options);
    Hub::run(hub, || {
        let root = start_root_span("GET /users/{id}", "http.server");
        root.set_source("route");
        let _g = sentry_lite_core::enter_span(&root);
        sentry_lite_core::configure_scope(|s| s.set_tag("tier", "gold"));
        let child = start_span("SELECT users", "db.query");
        child.set_attribute("db.system", "postgresql");
        child.start_child("fetch row", "db.fetch").finish();
        child.finish();
        drop(_g);
        root.finish();
    });
    flush(&client);
    let envs = transport.envelopes();
    assert!(spans(&envs).is_empty());
    let tx: Vec<Value> = transport.items_of(&ItemType::Transaction).collect();
    assert_eq!(tx.len(), 1);
    let tx = &tx[0];
    assert_eq!(tx["type"], "transaction");
    assert_eq!(tx["transaction"], "GET /users/{id}");
    assert_eq!(tx["transaction_info"]["source"], "route");
    assert_eq!(tx["contexts"]["trace"]["op"], "http.server");
    assert!(tx["start_timestamp"].as_f64().unwrap() <= tx["timestamp"].as_f64().unwrap());
    let children = tx["spans"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    let select = children.iter().find(|s| s["description"] == "SELECT users").unwrap();
    assert_eq!(select["parent_span_id"], tx["contexts"]["trace"]["span_id"]);
    assert_eq!(select["data"]["db.system"], "postgresql");
    let fetch = children.iter().find(|s| s["description"] == "fetch row").unwrap();
    assert_eq!(fetch["parent_span_id"], select["span_id"]);
    assert_eq!(tx["tags"]["tier"], "gold");
    let env = envs.iter().find(|e| e.items.iter().any(|i| i.ty() == &ItemType::Transaction)).unwrap();
    assert_eq!(env.headers.trace.as_ref().unwrap().transaction.as_deref(), Some("GET /users/{id}"));
}

#[test]
fn static_mode_caps_children() {
    let (hub, transport, client) = test_hub(traced().with_trace_lifecycle(TraceLifecycle::Static));
    Hub::run(hub, || {
        let root = start_root_span("big", "task");
        for _ in 0..1_010 {
            root.start_child("c", "work").finish();
        }
        root.finish();
    });
    flush(&client);
    let tx: Vec<Value> = transport.items_of(&ItemType::Transaction).collect();
    assert_eq!(tx[0]["spans"].as_array().unwrap().len(), 1000);
    assert_eq!(client.discarded(DiscardReason::BufferOverflow, DataCategory::Span), 10);
}

#[test]
fn sync_trace_nests() {
    let (hub, transport, client) = test_hub(traced());
    Hub::run(hub, || {
        trace("outer", "task", || {
            trace("inner", "task", || {
                assert!(current_span().unwrap().is_recording());
            })
        })
    });
    flush(&client);
    let all = spans(&transport.envelopes());
    assert_eq!(by_name(&all, "inner")["parent_span_id"], by_name(&all, "outer")["span_id"]);
}
