//! More faults (resets, stalls, garbage, TLS), resource leaks, the app's runtime
//! staying responsive, and the security defaults.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sentry_lite_core::protocol::{DataCategory, DiscardReason};
use sentry_lite_core::{self as sentry, Client, ClientOptions, Dsn, Hub, Level};
use sentry_lite_tests::fault_server::{FaultServer, Mode};

fn client(dsn: &str, options: ClientOptions) -> (Arc<Hub>, Arc<Client>) {
    let dsn: Dsn = dsn.parse().unwrap();
    let client = Arc::new(Client::new(options.with_attach_stacktrace(false), Some(dsn)));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    (hub, client)
}

fn capture(hub: &Arc<Hub>, n: usize) {
    Hub::run(hub.clone(), || {
        for i in 0..n {
            sentry::capture_message(&format!("m{i}"), Level::Error);
        }
    });
}

#[test]
fn resets_stalls_and_garbage_are_network_errors_counted_exactly() {
    for mode in [Mode::ResetMidRequest, Mode::IncompleteResponse, Mode::GarbageHeaders] {
        let server = FaultServer::start();
        server.set_mode(mode.clone());
        let (hub, client) =
            client(&server.dsn(1), ClientOptions::new().with_request_timeout(Duration::from_millis(500)));
        let start = Instant::now();
        capture(&hub, 5);
        // Blocking would take the 500 ms request timeout.
        assert!(start.elapsed() < Duration::from_millis(200), "{mode:?}: captures blocked");
        assert!(client.flush(Duration::from_secs(10)), "{mode:?}");
        assert_eq!(client.discarded(DiscardReason::NetworkError, DataCategory::Error), 5, "{mode:?}");
        server.set_mode(Mode::Ok);
        capture(&hub, 1);
        assert!(client.flush(Duration::from_secs(5)));
        assert!(!server.wait_for_requests(1, Duration::from_secs(5)).is_empty(), "{mode:?}: delivery resumes");
    }
}

#[test]
fn tls_to_a_plain_http_port_is_a_network_error() {
    let server = FaultServer::start();
    let dsn = format!("https://public@127.0.0.1:{}/1", server.port());
    let (hub, client) = client(&dsn, ClientOptions::new().with_request_timeout(Duration::from_secs(2)));
    capture(&hub, 3);
    assert!(client.flush(Duration::from_secs(10)));
    assert_eq!(client.discarded(DiscardReason::NetworkError, DataCategory::Error), 3);
}

/// A TLS server with a self-signed certificate (openssl + Python), answering 200.
struct SelfSignedServer {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl SelfSignedServer {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("sentry-lite-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
            // rustls checks the SAN, not the CN, and refuses CA certificates as leaves.
            .args(["-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .stderr(Stdio::null())
            .status()
            .expect("openssl is installed");
        assert!(status.success());
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let script = format!(
            r#"
import http.server, ssl, threading, os
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get('content-length') or 0); self.rfile.read(n)
        self.send_response(200); self.send_header('content-length', '2'); self.end_headers(); self.wfile.write(b'{{}}')
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(('127.0.0.1', {port}), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain('{cert}', '{key}')
s.socket = ctx.wrap_socket(s.socket, server_side=True)
threading.Timer(120, lambda: os._exit(0)).start()
s.serve_forever()
"#,
            cert = dir.join("cert.pem").display(),
            key = dir.join("key.pem").display()
        );
        let mut child = Command::new(sentry_lite_tests::python())
            .args(["-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .expect("python runs");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "TLS server did not start");
            if let Ok(Some(status)) = child.try_wait() {
                panic!("TLS server exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port, dir }
    }
}

impl Drop for SelfSignedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn tls_certificates_are_validated_by_default_and_extra_roots_are_trusted() {
    let server = SelfSignedServer::start();
    let dsn = format!("https://public@127.0.0.1:{}/1", server.port);
    let (hub, default_client) = client(&dsn, ClientOptions::new().with_request_timeout(Duration::from_secs(5)));
    capture(&hub, 1);
    assert!(default_client.flush(Duration::from_secs(10)));
    assert_eq!(default_client.discarded(DiscardReason::NetworkError, DataCategory::Error), 1, "self-signed rejected");

    let mut options = ClientOptions::new().with_request_timeout(Duration::from_secs(5));
    options.extra_root_certs.push(std::fs::read(server.dir.join("cert.pem")).unwrap());
    let (hub, trusting) = client(&dsn, options);
    capture(&hub, 1);
    assert!(trusting.flush(Duration::from_secs(10)));
    assert_eq!(
        trusting.discarded(DiscardReason::NetworkError, DataCategory::Error),
        0,
        "explicitly trusted root accepted"
    );
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// Set in the child process that runs the leak test alone.
const ISOLATED_VAR: &str = "SENTRY_LITE_LEAK_TEST_ALONE";

#[test]
fn a_thousand_failures_leak_no_threads_or_file_descriptors() {
    // Descriptor and thread counts are per process, and the other tests of this binary
    // open sockets and start runtimes in parallel: count in a child that runs only this test.
    if std::env::var_os(ISOLATED_VAR).is_none() {
        let name = "a_thousand_failures_leak_no_threads_or_file_descriptors";
        let status = Command::new(std::env::current_exe().expect("current_exe"))
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(ISOLATED_VAR, "1")
            .status()
            .expect("run the isolated leak test");
        assert!(status.success(), "isolated leak test failed: {status}");
        return;
    }
    let server = FaultServer::start();
    server.set_mode(Mode::ResetMidRequest);
    let (hub, client) = client(&server.dsn(1), ClientOptions::new().with_queue_capacity(2_000));
    capture(&hub, 10);
    assert!(client.flush(Duration::from_secs(10)));
    let (fds, tasks) = (open_fds(), threads());
    capture(&hub, 1_000);
    assert!(client.flush(Duration::from_secs(60)));
    assert_eq!(client.discarded(DiscardReason::NetworkError, DataCategory::Error), 1_010);
    // Slack for the fault server's own accept thread and a pooled connection.
    assert!(open_fds() <= fds + 2, "fds {} -> {}", fds, open_fds());
    assert!(threads() <= tasks + 2, "threads {} -> {}", tasks, threads());
}

#[test]
fn the_apps_runtime_keeps_ticking_while_the_sdk_suffers() {
    let server = FaultServer::start();
    server.set_mode(Mode::Hang);
    let (hub, client) = client(&server.dsn(1), ClientOptions::new().with_request_timeout(Duration::from_secs(30)));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let lateness = rt.spawn({
        let stop = stop.clone();
        async move {
            let mut worst = Duration::ZERO;
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let before = Instant::now();
                tokio::time::sleep(Duration::from_millis(1)).await;
                let late = before.elapsed().saturating_sub(Duration::from_millis(1));
                worst = worst.max(late);
                samples.push(late);
            }
            samples.sort();
            (worst, samples[samples.len() / 2], samples[samples.len() * 99 / 100])
        }
    });
    let producers: Vec<_> = (0..4)
        .map(|_| {
            let hub = hub.clone();
            rt.spawn(async move {
                for i in 0..2_500 {
                    Hub::run(hub.clone(), || sentry::capture_message(&format!("under fault {i}"), Level::Error));
                    if i % 100 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    rt.block_on(async {
        for p in producers {
            p.await.unwrap();
        }
        // The SDK's flush blocks its caller by design; the app's tasks must not notice.
        let flushed = tokio::task::spawn_blocking(move || client.flush(Duration::from_millis(500))).await.unwrap();
        assert!(!flushed, "the server never answers");
    });
    stop.store(true, Ordering::Relaxed);
    let (worst, p50, p99) = rt.block_on(lateness).unwrap();
    println!("tick lateness while the SDK suffers: p50 {p50:?}, p99 {p99:?}, worst {worst:?}");
    // Generous: this is a loaded 2-core machine; a blocked runtime would be late by seconds.
    assert!(worst < Duration::from_millis(250), "worst tick lateness {worst:?}");
}

#[test]
fn debug_logs_never_show_the_dsn_secret_or_auth_header() {
    if std::env::var("SENTRY_LITE_DEBUG_CHILD").is_ok() {
        let guard = sentry::init(ClientOptions::from_env().with_request_timeout(Duration::from_millis(200))).unwrap();
        sentry::capture_message("debug child", Level::Error);
        sentry::flush(Duration::from_secs(2));
        drop(guard);
        let _ = std::io::stderr().flush();
        return;
    }
    let closed_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "debug_logs_never_show_the_dsn_secret_or_auth_header", "--nocapture"])
        .env("SENTRY_LITE_DEBUG_CHILD", "1")
        .env("SENTRY_DEBUG", "1")
        .env("SENTRY_DSN", format!("http://publickey:topsecretvalue@127.0.0.1:{closed_port}/1"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[sentry-lite]"), "debug output is on: {stderr}");
    assert!(!stderr.contains("topsecretvalue"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("x-sentry-auth") && !stderr.contains("sentry_key="), "{stderr}");
}

#[test]
fn header_values_cannot_inject_headers() {
    assert!("https://pub\r\nX-Evil: 1@host/1".parse::<Dsn>().is_err());
    assert!("https://pub@host/1\r\nX-Evil: 1".parse::<Dsn>().is_err());
    let incoming = [
        ("sentry-trace", "0123456789abcdef0123456789abcdef-0123456789abcdef-1"),
        ("baggage", "sentry-release=a\r\nX-Evil: 1,other=x\r\ny,sentry-environment=prod%0D%0AX-Evil:%201"),
    ];
    let ctx = sentry::continue_trace(incoming);
    let (headers, _) = sentry::test::with_captured_envelopes(ClientOptions::new().with_traces_sample_rate(1.0), || {
        sentry::configure_scope(|s| s.set_propagation(ctx));
        let span = sentry::start_root_span("outgoing", "http.client");
        span.trace_headers()
    });
    for (name, value) in headers {
        assert!(!value.contains('\r') && !value.contains('\n'), "{name}: {value:?}");
        assert!(http_header_safe(&value), "{name}: {value:?}");
    }
}

fn http_header_safe(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// DNS failure, produced without any traffic leaving the machine: the child runs in a
/// fresh network namespace (`unshare --net`), where no resolver is reachable.
#[test]
fn dns_failures_are_network_errors_counted_exactly() {
    if std::env::var("SENTRY_LITE_DNS_CHILD").is_ok() {
        let (hub, client) = client(
            "http://public@sentry-lite-dns-failure.invalid/1",
            ClientOptions::new().with_request_timeout(Duration::from_secs(5)),
        );
        let start = Instant::now();
        capture(&hub, 3);
        // Blocking on the resolver would take seconds.
        assert!(start.elapsed() < Duration::from_millis(200), "captures blocked");
        assert!(client.flush(Duration::from_secs(20)));
        println!("dns-network-errors={}", client.discarded(DiscardReason::NetworkError, DataCategory::Error));
        return;
    }
    let out = Command::new("unshare")
        .arg("--net")
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "dns_failures_are_network_errors_counted_exactly", "--nocapture"])
        .env("SENTRY_LITE_DNS_CHILD", "1")
        .output()
        .expect("unshare (util-linux) runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("dns-network-errors=3"), "{stdout}");
}
