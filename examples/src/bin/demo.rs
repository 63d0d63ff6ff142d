//! The demo service: axum behind `SentryLayer`.
//!
//! ```text
//! cargo run -p sentry-lite-examples --bin demo                 # serves 127.0.0.1:$PORT (3000)
//! cargo run -p sentry-lite-examples --bin demo -- --selftest 50 # fires 50 requests at itself
//! ```
//!
//! Routes:
//! - `GET /`            ok
//! - `GET /users/{id}`  child spans `db.query` and `http.client` (to `/stub/profile`)
//! - `GET /error`       captures a three-level error chain, answers 500
//! - `GET /panic`       panics: one fatal event, a 500, and the server keeps serving
//! - `GET /slow`        200 ms of nested spans
//!
//! Without `SENTRY_DSN` envelopes go to the local inbox (`./sentry-inbox`). Ctrl-C or
//! SIGTERM shuts down gracefully: in-flight requests finish, everything captured is
//! flushed, exit code 0.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use sentry_lite_axum::outgoing::traced_send;
use sentry_lite_axum::SentryLayer;
use sentry_lite_core::{self as sentry, trace};

#[derive(Clone)]
struct AppState {
    http: reqwest::Client,
    base: String,
}

async fn index() -> &'static str {
    "sentry-lite demo: try /users/42, /error, /panic, /slow\n"
}

async fn user(State(app): State<AppState>, Path(id): Path<u64>) -> Result<String, (StatusCode, String)> {
    sentry::configure_scope(|s| s.set_tag("user.lookup", id));
    sentry::add_breadcrumb(format!("looking up user {id}").as_str());

    let name = trace("SELECT id, name FROM users WHERE id = $1", "db.query", async {
        if let Some(span) = sentry::current_span() {
            span.set_attribute("db.system", "postgresql");
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
        format!("user-{id}")
    })
    .await;

    let profile = traced_send(app.http.get(format!("{}/stub/profile?id={id}", app.base)))
        .await
        .map_err(|e| (StatusCode::BAD_GATEWAY, format!("profile service: {e}\n")))?;
    let profile = profile.text().await.map_err(|e| (StatusCode::BAD_GATEWAY, format!("{e}\n")))?;
    Ok(format!("{name}: {profile}\n"))
}

/// The "profile service": shows the trace it was called in.
async fn stub_profile(headers: HeaderMap) -> String {
    tokio::time::sleep(Duration::from_millis(5)).await;
    let trace = headers.get("sentry-trace").and_then(|v| v.to_str().ok()).unwrap_or("none");
    format!("profile (called in trace {trace})")
}

#[derive(Debug)]
struct CheckoutError(PaymentError);
#[derive(Debug)]
struct PaymentError(std::io::Error);

impl fmt::Display for CheckoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("checkout failed")
    }
}
impl std::error::Error for CheckoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}
impl fmt::Display for PaymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("payment provider rejected the charge")
    }
}
impl std::error::Error for PaymentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

async fn error() -> (StatusCode, String) {
    sentry::add_breadcrumb("charging card");
    let err = CheckoutError(PaymentError(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "connection reset by payment gateway",
    )));
    let id = sentry::capture_error(&err);
    (StatusCode::INTERNAL_SERVER_ERROR, format!("error captured: {id}\n"))
}

async fn panic_route() -> &'static str {
    sentry::add_breadcrumb("about to panic");
    if std::hint::black_box(true) {
        panic!("demo panic: the handler blew up");
    }
    "unreachable"
}

async fn slow() -> &'static str {
    trace("render report", "function", async {
        trace("load rows", "db.query", tokio::time::sleep(Duration::from_millis(80))).await;
        trace("aggregate", "function", async {
            for i in 0..4 {
                trace(&format!("chunk {i}"), "function", tokio::time::sleep(Duration::from_millis(30))).await;
            }
        })
        .await;
    })
    .await;
    "slow done\n"
}

fn app(base: String) -> Router {
    let state = AppState {
        http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("reqwest client"),
        base,
    };
    Router::new()
        .route("/", get(index))
        .route("/users/{id}", get(user))
        .route("/stub/profile", get(stub_profile))
        .route("/error", get(error))
        .route("/panic", get(panic_route))
        .route("/slow", get(slow))
        .layer(SentryLayer::new())
        .with_state(state)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    eprintln!("[demo] shutting down: finishing in-flight requests");
}

/// Serves `listener` until `shutdown` completes, then waits for in-flight requests.
async fn serve(
    listener: tokio::net::TcpListener,
    base: String,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(base).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

const ROUTES: [&str; 5] = ["/", "/users/{id}", "/error", "/panic", "/slow"];

async fn selftest(n: usize) -> bool {
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("[demo] bind: {e}");
            return false;
        }
    };
    let addr = listener.local_addr().expect("local addr");
    let base = format!("http://{addr}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, base.clone(), async {
        let _ = stopped.await;
    }));
    println!("selftest: {n} concurrent requests against {base}");

    let client = reqwest::Client::new();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let route = ROUTES[i % ROUTES.len()];
        let url = format!("{base}{}", route.replace("{id}", &i.to_string()));
        let client = client.clone();
        set.spawn(async move { (route, client.get(url).send().await.map(|r| r.status().as_u16())) });
    }
    let mut counts: BTreeMap<(&str, String), usize> = BTreeMap::new();
    let mut ok = true;
    while let Some(joined) = set.join_next().await {
        let Ok((route, result)) = joined else {
            ok = false;
            continue;
        };
        let expected = if matches!(route, "/error" | "/panic") { 500 } else { 200 };
        let shown = match result {
            Ok(status) => {
                ok &= status == expected;
                status.to_string()
            }
            Err(e) => {
                ok = false;
                format!("failed: {e}")
            }
        };
        *counts.entry((route, shown)).or_default() += 1;
    }
    let _ = stop.send(());
    let _ = server.await;

    println!("{:<14} {:<8} {:>5}", "route", "status", "count");
    for ((route, status), count) in &counts {
        println!("{route:<14} {status:<8} {count:>5}");
    }
    let served = |route: &str, status: &str| counts.get(&(route, status.to_owned())).copied().unwrap_or(0);
    let users = served("/users/{id}", "200");
    println!(
        "captured: {} error events (/error), {} fatal panic events (/panic), {} http.server segments ({} requests + {} /stub/profile calls)",
        served("/error", "500"),
        served("/panic", "500"),
        n + users,
        n,
        users
    );
    ok
}

fn destination() -> String {
    match std::env::var("SENTRY_DSN").ok().filter(|d| !d.trim().is_empty()).and_then(|d| d.parse::<sentry::Dsn>().ok())
    {
        Some(dsn) => format!("Sentry at {} (project {})", dsn.host(), dsn.project_id()),
        None => {
            let dir = sentry::InboxTransport::default_dir();
            let shown = dir.canonicalize().unwrap_or(dir);
            format!("inbox directory {}", shown.display())
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let selftest_n = match args.iter().position(|a| a == "--selftest") {
        Some(i) => match args.get(i + 1).map(|n| n.parse::<usize>()) {
            Some(Ok(n)) => Some(n),
            None => Some(50),
            Some(Err(_)) => {
                eprintln!("usage: demo [--selftest N]");
                std::process::exit(2);
            }
        },
        None => None,
    };

    let options = sentry_lite_examples::options_from_env()
        .with_traces_sample_rate(1.0)
        .with_release(concat!("sentry-lite-demo@", env!("CARGO_PKG_VERSION")))
        .with_integration(sentry_lite_panic::PanicIntegration::new());
    let guard = match sentry::init(options) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let ok = runtime.block_on(async {
        if let Some(n) = selftest_n {
            return selftest(n).await;
        }
        let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("[demo] cannot bind 127.0.0.1:{port}: {e}");
                return false;
            }
        };
        let base = format!("http://127.0.0.1:{port}");
        println!("demo listening on {base} (routes: / /users/{{id}} /error /panic /slow); Ctrl-C to stop");
        if let Err(e) = serve(listener, base, shutdown_signal()).await {
            eprintln!("[demo] server error: {e}");
            return false;
        }
        true
    });
    drop(runtime);

    let flushed = sentry::flush(Duration::from_secs(5));
    println!("envelopes went to: {}{}", destination(), if flushed { "" } else { " (flush timed out)" });
    drop(guard);
    std::process::exit(if ok { 0 } else { 1 });
}
