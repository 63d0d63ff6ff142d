//! The axum layer: per-request isolation, trace continuation, segment naming,
//! PII filtering, panic capture, layer placement and no state growth.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path};
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use sentry_lite_axum::SentryLayer;
use sentry_lite_core::protocol::ItemType;
use sentry_lite_core::{ClientOptions, Hub, InitGuard, Level, TestTransport};
use serde_json::Value;
use tower::ServiceExt;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn init(options: ClientOptions) -> (InitGuard, TestTransport) {
    let t = TestTransport::new();
    // A real (32 hex digits) public key: the DSC and `baggage` need one.
    let options = options.with_dsn("http://9f86d081884c4d659a2feaa0c55ad015@127.0.0.1:9/1");
    let guard = sentry_lite_core::init(options.with_transport(t.clone()).with_traces_sample_rate(1.0)).expect("init");
    (guard, t)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap()
}

fn spans(t: &TestTransport) -> Vec<Value> {
    t.items_of(&ItemType::Span).flat_map(|v| v["items"].as_array().cloned().unwrap_or_default()).collect()
}

fn segments(t: &TestTransport) -> Vec<Value> {
    spans(t).into_iter().filter(|s| s["is_segment"] == true).collect()
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]["value"]
}

fn flush() {
    assert!(sentry_lite_core::flush(Duration::from_secs(5)), "flush timed out");
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, String) {
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn get_req(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    addr
}

async fn work(Path(n): Path<u32>) -> String {
    sentry_lite_core::configure_scope(|s| s.set_tag("req", n));
    sentry_lite_core::add_breadcrumb(format!("crumb {n}").as_str());
    let step = sentry_lite_core::start_span("step", "function");
    tokio::time::sleep(Duration::from_millis(u64::from(n % 7) * 3)).await;
    step.finish();
    sentry_lite_core::capture_message(&format!("msg {n}"), Level::Info);
    format!("ok {n}")
}

#[test]
fn concurrent_requests_keep_their_own_trace_scope_and_spans() {
    let _serial = serial();
    let (guard, t) = init(ClientOptions::new());
    const N: u32 = 40;
    runtime().block_on(async {
        let addr = serve(Router::new().route("/work/{n}", get(work)).layer(SentryLayer::new())).await;
        let client = reqwest::Client::new();
        let mut tasks = Vec::new();
        for n in 1..=N {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let trace = format!("{:032x}", 0xabc000 + n);
                let parent = format!("{:016x}", 0xdef000 + n);
                let res = client
                    .get(format!("http://{addr}/work/{n}"))
                    .header("sentry-trace", format!("{trace}-{parent}-1"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                assert_eq!(res.text().await.unwrap(), format!("ok {n}"));
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
    flush();
    let events = t.events();
    assert_eq!(events.len(), N as usize);
    for e in &events {
        let msg = &e.logentry.as_ref().unwrap().message;
        let n: u32 = msg.strip_prefix("msg ").unwrap().parse().unwrap();
        assert_eq!(e.tags.get("req").map(String::as_str), Some(n.to_string().as_str()), "tags mixed: {e:?}");
        let crumbs: Vec<_> =
            e.breadcrumbs.iter().flat_map(|b| b.values.iter()).filter_map(|b| b.message.clone()).collect();
        assert_eq!(crumbs, vec![format!("crumb {n}")], "breadcrumbs mixed");
        let trace = serde_json::to_value(&e.contexts["trace"]).unwrap();
        assert_eq!(trace["trace_id"], format!("{:032x}", 0xabc000 + n), "event linked to the wrong trace");
        assert_eq!(e.transaction.as_deref(), Some("GET /work/{n}"));
        let url = e.request.as_ref().and_then(|r| r.url.clone()).unwrap_or_default();
        assert!(url.starts_with("http://127.0.0.1:") && url.ends_with(&format!("/work/{n}")), "{url}");
    }
    let all = spans(&t);
    let segs: Vec<_> = all.iter().filter(|s| s["is_segment"] == true).collect();
    assert_eq!(segs.len(), N as usize);
    for seg in &segs {
        let trace = seg["trace_id"].as_str().unwrap();
        let n = u32::from_str_radix(trace, 16).unwrap() - 0xabc000;
        assert_eq!(seg["parent_span_id"], format!("{:016x}", 0xdef000 + n));
        assert_eq!(seg["name"], "GET /work/{n}");
        assert_eq!(*attr(seg, "sentry.op"), "http.server");
        assert_eq!(*attr(seg, "http.response.status_code"), 200);
        assert_eq!(*attr(seg, "req"), n.to_string(), "segment carries its own request's tag");
        let children: Vec<_> = all.iter().filter(|s| s["parent_span_id"] == seg["span_id"]).collect();
        assert_eq!(children.len(), 1, "exactly the request's own child span");
        assert_eq!(children[0]["trace_id"], seg["trace_id"]);
        assert_eq!(children[0]["name"], "step");
    }
    drop(guard);
}

#[test]
fn a_handler_panic_is_one_event_and_a_500() {
    let _serial = serial();
    let (guard, t) = init(ClientOptions::new().with_integration(sentry_lite_panic::PanicIntegration::new()));
    runtime().block_on(async {
        let app = Router::new()
            .route(
                "/panic",
                get(|| async {
                    if std::hint::black_box(true) {
                        panic!("handler exploded");
                    }
                    "unreachable"
                }),
            )
            .route("/", get(|| async { "alive" }))
            .layer(SentryLayer::new());
        let addr = serve(app).await;
        let client = reqwest::Client::new();
        let res = client.get(format!("http://{addr}/panic")).send().await.unwrap();
        assert_eq!(res.status(), 500);
        let res = client.get(format!("http://{addr}/")).send().await.unwrap();
        assert_eq!(res.status(), 200, "the server keeps serving");
        assert_eq!(res.text().await.unwrap(), "alive");
    });
    flush();
    let events = t.events();
    assert_eq!(events.len(), 1, "exactly one event: {events:#?}");
    let e = &events[0];
    assert_eq!(e.level, Some(Level::Fatal));
    let exc = &e.exception.as_ref().unwrap().values[0];
    assert_eq!(exc.value.as_deref(), Some("handler exploded"));
    let mech = exc.mechanism.as_ref().unwrap();
    assert_eq!((&*mech.ty, mech.handled), ("panic", Some(false)));
    // The hook left the panic to the layer but kept its stack and location.
    let frames = &exc.stacktrace.as_ref().expect("a stack trace").frames;
    let top = frames.last().unwrap();
    assert!(top.function.as_deref().unwrap_or("").contains("a_handler_panic_is_one_event_and_a_500"), "{frames:#?}");
    let panic_ctx = serde_json::to_value(&e.contexts["panic"]).unwrap();
    assert!(panic_ctx["file"].as_str().unwrap().ends_with("axum.rs"), "{panic_ctx}");
    assert_eq!(top.lineno, panic_ctx["line"].as_u64().map(|l| l as u32), "the top frame is the panic's line");
    assert_eq!(e.transaction.as_deref(), Some("GET /panic"));
    let segs = segments(&t);
    let seg = segs.iter().find(|s| s["name"] == "GET /panic").expect("panic segment");
    assert_eq!(seg["status"], "error");
    assert_eq!(*attr(seg, "http.response.status_code"), 500);
    let trace = serde_json::to_value(&e.contexts["trace"]).unwrap();
    assert_eq!(trace["trace_id"], seg["trace_id"]);
    assert_eq!(trace["span_id"], seg["span_id"], "the event is linked to the segment");
    drop(guard);
}

#[test]
fn segments_are_named_after_the_route_else_the_url() {
    let _serial = serial();
    let (guard, t) = init(ClientOptions::new());
    runtime().block_on(async {
        let router = Router::new().route("/users/{id}", get(|Path(id): Path<u32>| async move { format!("user {id}") }));
        let layered = router.clone().layer(SentryLayer::new());
        assert_eq!(call(&layered, get_req("/users/42?x=1")).await, (StatusCode::OK, "user 42".into()));
        assert_eq!(call(&layered, get_req("/nowhere")).await.0, StatusCode::NOT_FOUND);
        // Wrapped around the whole router, the route is not known: the URL is used.
        let outer = tower::ServiceBuilder::new().layer(SentryLayer::new()).service(router);
        let res = outer.oneshot(get_req("/users/7")).await.unwrap();
        let _ = res.into_body().collect().await.unwrap();
    });
    flush();
    let segs = segments(&t);
    assert_eq!(segs.len(), 3);
    let route = segs.iter().find(|s| s["name"] == "GET /users/{id}").expect("route-named segment");
    assert_eq!(*attr(route, "sentry.span.source"), "route");
    assert_eq!(*attr(route, "http.route"), "/users/{id}");
    assert_eq!(*attr(route, "url.path"), "/users/42");
    assert_eq!(*attr(route, "http.request.method"), "GET");
    assert_eq!(route["status"], "ok");
    let missing = segs.iter().find(|s| s["name"] == "GET /nowhere").expect("url-named segment");
    assert_eq!(*attr(missing, "sentry.span.source"), "url");
    assert_eq!(*attr(missing, "http.response.status_code"), 404);
    assert_eq!(missing["status"], "ok", "4xx is not a server error");
    let outer = segs.iter().find(|s| s["name"] == "GET /users/7").expect("outer segment");
    assert_eq!(*attr(outer, "sentry.span.source"), "url");
    drop(guard);
}

async fn capture_request_data(pii: bool) -> (sentry_lite_core::Event, Value) {
    let (guard, t) = init(ClientOptions::new().with_send_default_pii(pii));
    let addr = serve(
        Router::new()
            .route(
                "/login",
                get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                    sentry_lite_core::capture_message("login", Level::Warning);
                    peer.to_string()
                }),
            )
            .layer(SentryLayer::new()),
    )
    .await;
    let res = reqwest::Client::new()
        .get(format!("http://{addr}/login?next=/home&token=tok-9f2&password=pw-hunter2"))
        .header("authorization", "Bearer s3cr3t")
        .header("cf-connecting-ip", "198.51.100.7")
        .header("true-client-ip", "198.51.100.8")
        .header("x-authorization", "Bearer leak-xauthz")
        .header("authentication", "Basic leak-authn")
        .header("x-auth", "leak-xauth")
        .header("x-access-key", "leak-access")
        .header("x-signature", "leak-signature")
        .header("x-forwarded-user", "leak-alice")
        .header("x-auth-request-email", "alice@example.com")
        .header("referer", "https://example.com/reset?token=leak-referer")
        .header("cookie", "session=abc")
        .header("x-api-key", "k")
        .header("user-agent", "pii-test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    flush();
    let event = t.events().pop().expect("event");
    let seg = segments(&t).pop().expect("segment");
    drop(guard);
    (event, seg)
}

#[test]
fn pii_is_filtered_without_send_default_pii() {
    let _serial = serial();
    let (event, seg) = runtime().block_on(capture_request_data(false));
    let req = event.request.as_ref().unwrap();
    assert_eq!(req.method.as_deref(), Some("GET"));
    assert_eq!(req.query_string.as_deref(), Some("next=/home&token=[Filtered]&password=[Filtered]"));
    assert_eq!(req.headers.get("User-Agent").map(String::as_str), Some("pii-test"));
    for h in ["Authorization", "Cookie", "X-Api-Key"] {
        assert!(!req.headers.contains_key(h), "{h} leaked: {req:?}");
    }
    assert!(req.cookies.is_none());
    assert!(req.env.is_empty());
    assert!(event.user.as_ref().and_then(|u| u.ip_address.as_ref()).is_none());
    assert!(seg["attributes"].get("client.address").is_none());
    let raw = serde_json::to_string(&event).unwrap();
    assert!(
        !raw.contains("s3cr3t")
            && !raw.contains("session=abc")
            && !raw.contains("REMOTE_ADDR")
            && !raw.contains("ip_address")
    );
    for leak in ["198.51.100", "leak-", "alice", "tok-9f2", "hunter2"] {
        assert!(!raw.contains(leak), "{leak} leaked: {raw}");
        assert!(!seg.to_string().contains(leak), "{leak} leaked on the span: {seg}");
    }
}

#[test]
fn pii_is_sent_with_send_default_pii() {
    let _serial = serial();
    let (event, seg) = runtime().block_on(capture_request_data(true));
    let req = event.request.as_ref().unwrap();
    assert_eq!(req.headers.get("Authorization").map(String::as_str), Some("Bearer s3cr3t"));
    assert_eq!(req.headers.get("Cf-Connecting-Ip").map(String::as_str), Some("198.51.100.7"));
    assert_eq!(req.query_string.as_deref(), Some("next=/home&token=tok-9f2&password=pw-hunter2"));
    assert_eq!(req.cookies.as_deref(), Some("session=abc"));
    assert_eq!(req.env.get("REMOTE_ADDR").map(String::as_str), Some("127.0.0.1"));
    assert_eq!(event.user.as_ref().and_then(|u| u.ip_address.as_deref()), Some("127.0.0.1"));
    assert_eq!(*attr(&seg, "client.address"), "127.0.0.1");
}

type Weaks = Arc<Mutex<Vec<Weak<Hub>>>>;

fn leak_app(weaks: Weaks) -> Router {
    Router::new().route(
        "/item/{id}",
        get(move |Path(id): Path<u32>| {
            let weaks = weaks.clone();
            async move {
                weaks.lock().unwrap().push(Arc::downgrade(&Hub::current()));
                sentry_lite_core::add_breadcrumb("handled");
                sentry_lite_core::configure_scope(|s| s.set_tag("item", id));
                sentry_lite_core::start_span("load", "db.query").finish();
                "ok"
            }
        }),
    )
}

#[test]
fn every_placement_gives_one_segment_per_request_and_no_growth() {
    let _serial = serial();
    let (guard, t) = init(ClientOptions::new());
    let noop = tower::util::MapRequestLayer::new(|r: Request<Body>| r);
    let weaks: Weaks = Arc::default();
    let apps: Vec<(&str, Router)> = vec![
        ("layer", leak_app(weaks.clone()).layer(SentryLayer::new())),
        ("route_layer", leak_app(weaks.clone()).route_layer(SentryLayer::new())),
        (
            "builder sentry first",
            leak_app(weaks.clone()).layer(tower::ServiceBuilder::new().layer(SentryLayer::new()).layer(noop.clone())),
        ),
        (
            "builder sentry last",
            leak_app(weaks.clone()).layer(tower::ServiceBuilder::new().layer(noop.clone()).layer(SentryLayer::new())),
        ),
    ];
    const PER_APP: usize = 250;
    let main_crumbs = || Hub::main().configure_isolation_scope(|s| s.breadcrumbs().count());
    let before = main_crumbs();
    runtime().block_on(async {
        for (label, app) in &apps {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..PER_APP {
                let app = app.clone();
                set.spawn(async move { call(&app, get_req(&format!("/item/{i}"))).await });
            }
            while let Some(r) = set.join_next().await {
                assert_eq!(r.unwrap().0, StatusCode::OK, "{label}");
            }
        }
    });
    flush();
    let segs = segments(&t);
    assert_eq!(segs.len(), PER_APP * apps.len(), "one segment per request");
    assert!(segs.iter().all(|s| s["name"] == "GET /item/{id}" && *attr(s, "sentry.op") == "http.server"));
    let children = spans(&t).into_iter().filter(|s| s["is_segment"] == false).count();
    assert_eq!(children, PER_APP * apps.len());
    let weaks = weaks.lock().unwrap();
    assert_eq!(weaks.len(), PER_APP * apps.len());
    assert_eq!(weaks.iter().filter(|w| w.strong_count() > 0).count(), 0, "request hubs outlive their requests");
    assert_eq!(main_crumbs(), before, "breadcrumbs leaked into the main hub");
    assert!(Hub::main().current_scope().tag("item").is_none(), "tags leaked into the main hub");
    drop(guard);
}

#[test]
fn a_dropped_request_future_is_recorded_as_cancelled() {
    let _serial = serial();
    let (guard, t) = init(ClientOptions::new());
    runtime().block_on(async {
        let app = Router::new()
            .route("/slow", get(|| async { tokio::time::sleep(Duration::from_secs(10)).await }))
            .layer(SentryLayer::new());
        let r = tokio::time::timeout(Duration::from_millis(50), app.oneshot(get_req("/slow"))).await;
        assert!(r.is_err());
    });
    flush();
    let segs = segments(&t);
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0]["status"], "error");
    assert_eq!(*attr(&segs[0], "http.request.cancelled"), true);
    drop(guard);
}

#[test]
fn outgoing_calls_continue_the_trace_in_an_http_client_span() {
    let _serial = serial();
    let (guard, t) = init(ClientOptions::new());
    runtime().block_on(async {
        let port = Arc::new(std::sync::OnceLock::<SocketAddr>::new());
        let p = port.clone();
        let app = Router::new()
            .route(
                "/front",
                get(move || {
                    let p = p.clone();
                    async move {
                        let addr = p.get().copied().unwrap();
                        let rb =
                            reqwest::Client::new().get(format!("http://{addr}/stub")).header("baggage", "vendor=1");
                        let res = sentry_lite_axum::outgoing::traced_send(rb).await.unwrap();
                        res.text().await.unwrap()
                    }
                }),
            )
            .route(
                "/stub",
                get(|headers: axum::http::HeaderMap| async move {
                    let b = headers.get("baggage").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                    assert!(b.starts_with("vendor=1,"), "{b}");
                    headers.get("sentry-trace").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
                }),
            )
            .layer(SentryLayer::new());
        let addr = serve(app).await;
        port.set(addr).unwrap();
        let res = reqwest::get(format!("http://{addr}/front")).await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(!res.text().await.unwrap().is_empty());
    });
    flush();
    let all = spans(&t);
    let front = all.iter().find(|s| s["name"] == "GET /front").unwrap();
    let client = all.iter().find(|s| *attr(s, "sentry.op") == "http.client").unwrap();
    let stub = all.iter().find(|s| s["name"] == "GET /stub").unwrap();
    assert_eq!(client["parent_span_id"], front["span_id"]);
    assert_eq!(stub["parent_span_id"], client["span_id"]);
    assert_eq!(stub["trace_id"], front["trace_id"]);
    assert_eq!(*attr(client, "http.response.status_code"), 200);
    assert!(client["name"].as_str().unwrap().starts_with("GET http://127.0.0.1:"));
    drop(guard);
}
