//! Self-test of the harness: fault server modes, Relay normalizer, Bugsink round trip.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sentry_lite_tests::bugsink::Bugsink;
use sentry_lite_tests::fault_server::{FaultServer, Mode};
use sentry_lite_tests::{parse_envelope, relay};
use serde_json::{json, Value};

fn client(timeout_ms: u64) -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_millis(timeout_ms)).build().unwrap()
}

fn new_event_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn now_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

fn valid_event(event_id: &str) -> Value {
    json!({
        "event_id": event_id,
        "timestamp": now_secs(),
        "platform": "rust",
        "level": "error",
        "release": "harness@1.0.0",
        "environment": "harness",
        "tags": {"harness": "yes"},
        "breadcrumbs": {"values": [{"message": "crumb", "category": "test", "timestamp": now_secs()}]},
        "exception": {"values": [{
            "type": "HarnessError",
            "value": format!("boom {event_id}"),
            "mechanism": {"type": "generic", "handled": true},
            "stacktrace": {"frames": [{"function": "main", "filename": "src/main.rs", "lineno": 3, "in_app": true}]}
        }]}
    })
}

fn envelope_for(event: &Value) -> Vec<u8> {
    let payload = serde_json::to_vec(event).unwrap();
    let mut out = Vec::new();
    out.extend_from_slice(json!({"event_id": event["event_id"]}).to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(json!({"type": "event", "length": payload.len()}).to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&payload);
    out.push(b'\n');
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn fault_server_ok_records_gzip_envelope() {
    let server = FaultServer::start();
    assert!(server.dsn(7).starts_with("http://public@127.0.0.1:"));
    server.set_response_headers(vec![("X-Sentry-Rate-Limits".into(), "60:transaction:organization".into())]);
    let ev = valid_event(&new_event_id());
    let body = envelope_for(&ev);
    let resp = client(5000)
        .post(format!("{}/api/7/envelope/", server.url()))
        .header("Content-Encoding", "gzip")
        .header("X-Sentry-Auth", "Sentry sentry_version=7, sentry_key=public, sentry_client=t/1")
        .body(gzip(&body))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-sentry-rate-limits"], "60:transaction:organization");
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["id"], ev["event_id"]);

    let reqs = server.wait_for_requests(1, Duration::from_secs(5));
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/api/7/envelope/");
    assert_eq!(r.body, body, "gzip body is decompressed");
    assert_ne!(r.raw_body, body);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(r.sentry_auth().contains(&("sentry_key".into(), "public".into())));
    let env = r.envelope().unwrap();
    assert_eq!(env.items.len(), 1);
    // (not comparing whole events: serde_json's float parsing is not bit-exact for timestamps)
    assert_eq!(env.events()[0]["event_id"], ev["event_id"]);
    assert_eq!(env.events()[0]["exception"], ev["exception"]);
}

#[test]
fn fault_server_chunked_body() {
    let server = FaultServer::start();
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    s.write_all(
        b"POST /api/1/envelope/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          5\r\nhello\r\n7;ext=1\r\n world!\r\n0\r\nX-Trailer: 1\r\n\r\n",
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
    let reqs = server.wait_for_requests(1, Duration::from_secs(5));
    assert!(reqs[0].chunked);
    assert_eq!(reqs[0].body_str(), "hello world!");
}

#[tokio::test]
async fn fault_server_refuse_then_rebind_same_port() {
    let server = FaultServer::start();
    let url = format!("{}/api/1/envelope/", server.url());
    let c = client(2000);
    assert_eq!(c.post(&url).body("a").send().await.unwrap().status(), 200);
    server.set_mode(Mode::Refuse);
    assert_eq!(server.open_connections(), 0, "Refuse closes open connections");
    let err = TcpStream::connect(("127.0.0.1", server.port())).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(c.post(&url).body("b").send().await.is_err());
    server.set_mode(Mode::Ok);
    assert_eq!(c.post(&url).body("c").send().await.unwrap().status(), 200);
    let bodies: Vec<String> = server.requests().iter().map(|r| r.body_str()).collect();
    assert_eq!(bodies, ["a", "c"]);
}

#[tokio::test]
async fn fault_server_hang_slow_incomplete_garbage_reset() {
    let server = FaultServer::start();
    let url = format!("{}/api/1/envelope/", server.url());

    server.set_mode(Mode::Hang);
    let t = Instant::now();
    let err = client(300).post(&url).body("hang").send().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(server.wait_for_requests(1, Duration::from_secs(2))[0].mode, Mode::Hang);

    server.set_mode(Mode::Slow(Duration::from_millis(300)));
    let t = Instant::now();
    assert_eq!(client(5000).post(&url).body("slow").send().await.unwrap().status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(300));

    server.set_mode(Mode::IncompleteResponse);
    let err = client(300).post(&url).body("incomplete").send().await.unwrap_err();
    assert!(err.is_timeout() || err.is_request(), "{err:?}");

    server.set_mode(Mode::GarbageHeaders);
    let err = client(2000).post(&url).body("garbage").send().await.unwrap_err();
    assert!(!err.is_timeout(), "garbage must fail fast: {err:?}");

    server.set_mode(Mode::ResetMidRequest);
    let err = client(2000).post(&url).body(vec![b'x'; 256 * 1024]).send().await.unwrap_err();
    assert!(!err.is_timeout(), "reset must fail fast: {err:?}");

    let modes: Vec<Mode> = server.requests().into_iter().map(|r| r.mode).collect();
    assert!(modes.contains(&Mode::Slow(Duration::from_millis(300))));
    assert!(!modes.contains(&Mode::ResetMidRequest), "reset requests are never complete");

    // drop ends hung connections and all threads
    let t = Instant::now();
    drop(server);
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn fault_server_status_and_429() {
    let server = FaultServer::start();
    let url = format!("{}/api/1/envelope/", server.url());
    let c = client(2000);
    for code in [500u16, 413, 403, 400] {
        server.set_mode(Mode::Status(code));
        assert_eq!(c.post(&url).body("x").send().await.unwrap().status().as_u16(), code);
    }
    server.set_mode(Mode::TooManyRequests {
        rate_limits: Some("60:error;transaction:organization".into()),
        retry_after: Some("30".into()),
    });
    let resp = c.post(&url).body("x").send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["x-sentry-rate-limits"], "60:error;transaction:organization");
    assert_eq!(resp.headers()["retry-after"], "30");
    server.set_mode(Mode::TooManyRequests { rate_limits: None, retry_after: None });
    let resp = c.post(&url).body("x").send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_none());
    assert_eq!(server.requests().len(), 6);
    assert!(server.total_connections() >= 1);
}

#[test]
fn envelope_parser_is_strict() {
    let ok = b"{\"event_id\":\"abc\"}\n{\"type\":\"event\",\"length\":2}\n{}\n{\"type\":\"attachment\"}\nraw\n";
    let env = parse_envelope(ok).unwrap();
    assert_eq!(env.items.len(), 2);
    assert_eq!(env.items[1].payload, b"raw");
    assert!(parse_envelope(b"{}\n{\"type\":\"event\",\"length\":5}\n{}\n").is_err());
    assert!(parse_envelope(b"{}\n{\"length\":2}\n{}\n").is_err());
    assert!(parse_envelope(b"not json\n").is_err());
}

#[test]
fn relay_accepts_valid_and_reports_invalid() {
    if !relay::usable() {
        return;
    }
    let good = valid_event(&new_event_id());
    let bad = json!({"event_id": "not-hex", "timestamp": now_secs(), "platform": "rust", "level": "nonsense"});
    let results = relay::normalize(&[good.clone(), bad]);
    assert!(results[0].ok, "{:?}", results[0]);
    assert!(!results[1].ok);
    let names: Vec<&str> = results[1].errors.iter().filter_map(|e| e["name"].as_str()).collect();
    assert!(names.contains(&"level") && names.contains(&"event_id"), "{names:?}");
    relay::assert_valid(&good);
    // this Relay has no "rust" platform: it is rewritten silently (a note, not an error)
    assert!(results[0].notes.iter().any(|n| n.contains("platform")), "{:?}", results[0].notes);
    assert!(relay::normalize_one(&json!({"platform": "native"})).notes.is_empty());
}

#[test]
fn relay_assert_valid_panics() {
    if !relay::usable() {
        return;
    }
    let invalid = json!({"event_id": new_event_id(), "timestamp": "yesterday", "platform": "rust"});
    let panic = std::panic::catch_unwind(|| relay::assert_valid(&invalid)).expect_err("an invalid event must panic");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("Relay rejected"), "{message}");
}

#[tokio::test]
async fn bugsink_round_trip_and_validation_errors() {
    let Some(bs) = Bugsink::for_test() else { return };
    let ev = valid_event(&new_event_id());
    let (status, _) = bs.post_envelope(envelope_for(&ev)).await.unwrap();
    assert_eq!(status, 200);
    let stored = bs
        .wait_for_event(ev["event_id"].as_str().unwrap(), Duration::from_secs(20))
        .await
        .expect("event stored in Bugsink");
    let data = &stored["data"];
    assert_eq!(data["exception"]["values"][0]["type"], "HarnessError");
    assert_eq!(data["exception"]["values"][0]["stacktrace"]["frames"][0]["function"], "main");
    assert_eq!(data["tags"]["harness"], "yes");
    assert_eq!(data["release"], "harness@1.0.0");
    assert_eq!(data["environment"], "harness");
    assert_eq!(data["breadcrumbs"]["values"][0]["message"], "crumb");

    // an invalid event is answered 200 but not stored, and logs a ValidationError
    let offset = bs.log_offset();
    let mut bad = valid_event(&new_event_id());
    bad["level"] = json!("nonsense");
    let (status, _) = bs.post_envelope(envelope_for(&bad)).await.unwrap();
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while bs.validation_errors_since(offset).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let errs = bs.validation_errors_since(offset);
    assert!(errs.iter().any(|l| l.contains("nonsense")), "{errs:?}");
    assert!(bs.log_contains_validation_error());
    assert!(bs.find_event(bad["event_id"].as_str().unwrap()).await.unwrap().is_none());
}
