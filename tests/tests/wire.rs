//! What goes on the wire is what Relay accepts, and what comes in cannot poison it:
//! trace continuation and propagation, checked on the envelopes a loopback receiver
//! gets from the real HTTP transport, with a real 32-digit DSN key.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use sentry_lite_core::{self as sentry, Client, ClientOptions, Dsn, Hub, TracePropagationTargets};
use sentry_lite_tests::fault_server::FaultServer;
use sentry_lite_tests::Envelope;

/// A public key as Sentry issues them: 32 hex digits.
const KEY: &str = "9f86d081884c4d659a2feaa0c55ad015";
/// Another organization's key.
const THEIR_KEY: &str = "2c26b46b68ffc68ff99b453c1d304134";
const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT: &str = "b7ad6b7169203331";

fn dsn(server: &FaultServer) -> String {
    format!("http://{KEY}@127.0.0.1:{}/1", server.port())
}

fn client_for(server: &FaultServer, options: ClientOptions) -> (Arc<Hub>, Arc<Client>) {
    let dsn: Dsn = dsn(server).parse().unwrap();
    let client = Arc::new(Client::new(options.with_traces_sample_rate(1.0), Some(dsn)));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    (hub, client)
}

fn envelopes(server: &FaultServer, client: &Client) -> Vec<Envelope> {
    assert!(client.flush(Duration::from_secs(10)), "flush timed out");
    server.requests().iter().map(|r| r.envelope().expect("a valid envelope")).collect()
}

/// The envelope `trace` header (the DSC) of the first span envelope.
fn span_dsc(envs: &[Envelope]) -> Value {
    envs.iter().find(|e| e.items_of("span").next().is_some()).expect("a span envelope").headers["trace"].clone()
}

fn spans(envs: &[Envelope]) -> Vec<Value> {
    envs.iter()
        .flat_map(|e| e.items_of("span").filter_map(|i| i.json().ok()).collect::<Vec<_>>())
        .flat_map(|v| v["items"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Continues `headers` in `hub` and sends one finished root span.
fn continue_and_send(hub: &Arc<Hub>, headers: &[(&str, &str)]) {
    Hub::run(hub.clone(), || {
        let ctx = sentry::continue_trace(headers.iter().copied());
        sentry::configure_scope(|s| s.set_propagation(ctx));
        sentry::start_root_span("GET /orders/{id}", "http.server").finish();
    });
}

fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|h| h.0 == name).map(|h| h.1.as_str())
}

#[test]
fn a_disabled_sdk_sends_no_baggage() {
    // Never initialised (this test binary's main hub has no client), and a client
    // without a DSN: `sentry-trace` only, never a DSC without a public key.
    let headers = sentry::trace_headers();
    assert_eq!(headers.iter().map(|h| h.0).collect::<Vec<_>>(), ["sentry-trace"]);
    let span = sentry::start_span("GET /", "http.client");
    assert!(header(&span.trace_headers(), "baggage").is_none());
    let client = Arc::new(Client::new(ClientOptions::new().with_traces_sample_rate(1.0), None));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client));
    Hub::run(hub, || {
        assert!(header(&sentry::trace_headers(), "baggage").is_none());
        assert!(header(&sentry::start_root_span("r", "task").trace_headers(), "baggage").is_none());
    });
}

#[test]
fn incoming_dsc_without_a_public_key_is_absent() {
    let server = FaultServer::start();
    let (hub, client) = client_for(&server, ClientOptions::new().with_release("shop@2.0"));
    let sentry_trace = format!("{TRACE}-{PARENT}-1");
    let baggage = format!("sentry-trace_id={TRACE},sentry-sample_rand=0.5,sentry-release=evil");
    continue_and_send(&hub, &[("sentry-trace", &sentry_trace), ("baggage", &baggage)]);
    let envs = envelopes(&server, &client);
    let dsc = span_dsc(&envs);
    // Same trace, but this service heads it: its own key, release and a rate.
    assert_eq!(dsc["trace_id"], TRACE);
    assert_eq!(dsc["public_key"], KEY);
    assert_eq!(dsc["release"], "shop@2.0");
    assert_eq!(dsc["sampled"], "true");
    // Continuing from `sentry-trace` alone keeps a sample rate in the DSC.
    assert_eq!(dsc["sample_rate"], "1");
    assert_eq!(spans(&envs)[0]["parent_span_id"], PARENT);
}

#[test]
fn sentry_trace_without_baggage_keeps_a_sample_rate() {
    let server = FaultServer::start();
    let (hub, client) = client_for(&server, ClientOptions::new());
    let sentry_trace = format!("{TRACE}-{PARENT}-1");
    continue_and_send(&hub, &[("sentry-trace", &sentry_trace)]);
    let dsc = span_dsc(&envelopes(&server, &client));
    assert_eq!(dsc["public_key"], KEY);
    assert_eq!(dsc["sample_rate"], "1");
    let rand: f64 = dsc["sample_rand"].as_str().unwrap().parse().unwrap();
    assert!((0.0..1.0).contains(&rand));
}

#[test]
fn unparsable_incoming_values_are_dropped() {
    let server = FaultServer::start();
    let (hub, client) = client_for(&server, ClientOptions::new());
    let sentry_trace = format!("{TRACE}-{PARENT}-1");
    let baggage = format!(
        "sentry-public_key={THEIR_KEY},sentry-sample_rate=abc,sentry-sampled=maybe,sentry-replay_id=42,\
         sentry-org_id=x1,sentry-transaction=checkout,sentry-sample_rand=0.25"
    );
    continue_and_send(&hub, &[("sentry-trace", &sentry_trace), ("baggage", &baggage)]);
    let dsc = span_dsc(&envelopes(&server, &client));
    assert_eq!(dsc["public_key"], THEIR_KEY, "a valid incoming DSC is frozen");
    assert_eq!(dsc["transaction"], "checkout");
    assert_eq!(dsc["sample_rand"], "0.25");
    for dropped in ["sample_rate", "sampled", "replay_id", "org_id"] {
        assert!(dsc.get(dropped).is_none(), "{dropped} in {dsc}");
    }
}

#[test]
fn other_vendors_baggage_is_never_forwarded() {
    let server = FaultServer::start();
    let (hub, _client) = client_for(&server, ClientOptions::new());
    let sentry_trace = format!("{TRACE}-{PARENT}-1");
    let baggage = format!("acme-session=s3cr3t,sentry-public_key={THEIR_KEY},other=1");
    Hub::run(hub, || {
        let ctx = sentry::continue_trace([("sentry-trace", sentry_trace.as_str()), ("baggage", baggage.as_str())]);
        sentry::configure_scope(|s| s.set_propagation(ctx));
        let out = sentry::trace_headers();
        let bag = header(&out, "baggage").unwrap();
        assert!(bag.contains(&format!("sentry-public_key={THEIR_KEY}")), "{bag}");
        assert!(!bag.contains("acme") && !bag.contains("other="), "{bag}");
        let root = sentry::start_root_span("r", "task");
        let bag = root.trace_headers().into_iter().find(|h| h.0 == "baggage").unwrap().1;
        assert!(!bag.contains("acme"), "{bag}");
    });
}

#[test]
fn organizations_are_checked_before_continuing() {
    let sentry_trace = format!("{TRACE}-{PARENT}-1");
    let with_org = |org: &str| format!("sentry-public_key={THEIR_KEY},sentry-org_id={org},sentry-sample_rate=1");
    let cases: [(bool, Option<u64>, Option<String>, bool); 7] = [
        // (strict, our org, their baggage, continued)
        (false, Some(42), Some(with_org("42")), true),
        (false, Some(42), Some(with_org("7")), false),
        (false, Some(42), Some(format!("sentry-public_key={THEIR_KEY}")), true),
        (false, None, Some(with_org("7")), true),
        (true, Some(42), Some(format!("sentry-public_key={THEIR_KEY}")), false),
        (true, None, Some(with_org("7")), false),
        (true, None, None, true),
    ];
    for (strict, ours, baggage, continued) in cases {
        let server = FaultServer::start();
        let mut options = ClientOptions::new().with_strict_trace_continuation(strict);
        if let Some(org) = ours {
            options = options.with_org_id(org);
        }
        let (hub, client) = client_for(&server, options);
        let mut headers = vec![("sentry-trace", sentry_trace.as_str())];
        if let Some(b) = &baggage {
            headers.push(("baggage", b.as_str()));
        }
        continue_and_send(&hub, &headers);
        let envs = envelopes(&server, &client);
        let dsc = span_dsc(&envs);
        let case = format!("strict={strict} ours={ours:?} baggage={baggage:?}");
        assert_eq!(dsc["trace_id"] == TRACE, continued, "{case}: {dsc}");
        if !continued {
            // A refused trace leaves nothing of the caller's: our key, no parent.
            assert_eq!(dsc["public_key"], KEY, "{case}");
            assert!(spans(&envs)[0].get("parent_span_id").is_none_or(Value::is_null), "{case}");
        }
        if let Some(org) = ours.filter(|_| !continued) {
            assert_eq!(dsc["org_id"], org.to_string(), "{case}");
        }
    }
}

#[test]
fn a_traceparent_never_turns_sampling_off() {
    let server = FaultServer::start();
    let (hub, client) = client_for(&server, ClientOptions::new());
    let traceparent = format!("00-{TRACE}-{PARENT}-00");
    continue_and_send(&hub, &[("traceparent", &traceparent)]);
    let envs = envelopes(&server, &client);
    let spans = spans(&envs);
    assert_eq!(spans.len(), 1, "traces_sample_rate 1 decides, not another tracer's flag");
    assert_eq!(spans[0]["trace_id"], TRACE);
    assert_eq!(spans[0]["parent_span_id"], PARENT);
}

#[test]
fn sentry_trace_and_baggage_win_over_traceparent() {
    let server = FaultServer::start();
    let (hub, client) = client_for(&server, ClientOptions::new());
    let other_trace = "11111111111111111111111111111111";
    let traceparent = format!("00-{other_trace}-{PARENT}-01");
    let sentry_trace = format!("{TRACE}-{PARENT}-0");
    continue_and_send(&hub, &[("traceparent", &traceparent), ("sentry-trace", &sentry_trace)]);
    // Not sampled upstream: nothing is sent, whatever `traceparent` said.
    assert!(spans(&envelopes(&server, &client)).is_empty());

    // Deferred `sentry-trace`, `sentry-sampled=false` in baggage, a sampled traceparent.
    let deferred = format!("{TRACE}-{PARENT}");
    let baggage = format!("sentry-public_key={THEIR_KEY},sentry-sampled=false,sentry-sample_rate=0.1");
    continue_and_send(&hub, &[("traceparent", &traceparent), ("sentry-trace", &deferred), ("baggage", &baggage)]);
    assert!(spans(&envelopes(&server, &client)).is_empty());
}

#[test]
fn propagation_targets_and_traceparent_opt_in() {
    let server = FaultServer::start();
    let targets = TracePropagationTargets::matching(["internal.example", "127.0.0.1"]);
    let (hub, _client) = client_for(&server, ClientOptions::new().with_trace_propagation_targets(targets));
    Hub::run(hub, || {
        assert!(sentry::trace_headers_for("https://api.thirdparty.example/pay").is_empty());
        let span = sentry::start_root_span("r", "task");
        assert!(span.trace_headers_for("https://api.thirdparty.example/pay").is_empty());
        let headers = span.trace_headers_for("https://users.internal.example/7");
        assert_eq!(headers.iter().map(|h| h.0).collect::<Vec<_>>(), ["sentry-trace", "baggage"]);
        assert!(header(&headers, "baggage").unwrap().contains(&format!("sentry-public_key={KEY}")));
    });
    let (hub, _client) = client_for(&server, ClientOptions::new().with_propagate_traceparent(true));
    Hub::run(hub, || {
        let span = sentry::start_root_span("r", "task");
        let headers = span.trace_headers_for("https://anywhere.example/");
        let tp = header(&headers, "traceparent").expect("traceparent on opt-in");
        assert_eq!(tp, format!("00-{}-{}-01", span.trace_id(), span.span_id()));
    });
}

#[test]
fn the_reqwest_helper_honours_targets_and_maps_client_errors() {
    use sentry_lite_tests::fault_server::Mode;
    let collector = FaultServer::start();
    let callee = FaultServer::start();
    callee.set_mode(Mode::Status(404));
    let targets = TracePropagationTargets::matching([format!("127.0.0.1:{}", callee.port())]);
    let (hub, client) = client_for(&collector, ClientOptions::new().with_trace_propagation_targets(targets));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let http = reqwest::Client::new();
    let other = FaultServer::start();
    Hub::run(hub, || {
        let root = sentry::start_root_span("job", "task");
        rt.block_on(async {
            let _ = sentry_lite_axum::outgoing::traced_send(http.get(format!("{}/item", callee.url()))).await;
            let _ = sentry_lite_axum::outgoing::traced_send(http.get(format!("{}/x", other.url()))).await;
        });
        root.finish();
    });
    let to_callee = &callee.requests()[0];
    assert!(to_callee.header("sentry-trace").is_some());
    assert!(to_callee.header("baggage").unwrap().contains(&format!("sentry-public_key={KEY}")));
    assert!(to_callee.header("traceparent").is_none(), "traceparent is opt-in");
    let to_other = &other.requests()[0];
    assert!(to_other.header("sentry-trace").is_none() && to_other.header("baggage").is_none());
    let envs = envelopes(&collector, &client);
    let spans = spans(&envs);
    let call = spans.iter().find(|s| s["name"].as_str().is_some_and(|n| n.ends_with("/item"))).unwrap();
    assert_eq!(call["status"], "error", "a 404 answer is an error: {call}");
}
