//! The default HTTP transport: `reqwest` (rustls, no OpenSSL) driven by a private
//! current-thread Tokio runtime that lives on the SDK's worker thread.
//!
//! # Threading
//! [`HttpTransport`] is built *on* the worker thread and owns its own runtime;
//! [`Transport::send`] blocks that thread with `Runtime::block_on`, bounded by the
//! request timeout. It must never be used from inside another Tokio runtime (in
//! particular never from the application's runtime): `block_on` would panic there, so
//! `send` detects the situation and returns [`SendOutcome::NetworkError`] instead.
//!
//! # Request
//! `POST {base}/api/{project_id}/envelope/` with `X-Sentry-Auth`, `User-Agent:
//! sentry.rust.lite/<version>` and `Content-Type: application/x-sentry-envelope`.
//! Bodies larger than [`GZIP_THRESHOLD`] bytes are gzip-compressed (at the fastest
//! level, with one compressor reused for every request) and sent with
//! `Content-Encoding: gzip`; smaller ones are sent as they are, where compression
//! would save little and cost CPU.
//!
//! # Concurrency
//! [`Transport::send_batch`] runs up to [`MAX_CONCURRENT_REQUESTS`] requests at once
//! on the runtime (one keep-alive connection each), so the worker is not limited to
//! one round trip at a time. A batch takes about as long as its slowest request,
//! bounded by the request timeout.
//!
//! # Secrets
//! The auth header carries the DSN's public (and, if any, secret) key. It is built
//! once in [`HttpTransport::new`], marked sensitive, and never appears in error
//! strings or in the `Debug` output, which shows only the endpoint URL (the key is
//! not part of that URL).
//!
//! Redirects are not followed: the auth header is a custom header that an HTTP client
//! would forward to whatever host a redirect names, and a redirected `POST` would turn
//! into a `GET`. A 3xx answer is reported as [`SendOutcome::Rejected`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use reqwest::redirect::Policy;
use reqwest::{Certificate, Proxy, Url};
use tokio::runtime::{Builder, Runtime};

use super::{SendOutcome, Transport};
use crate::protocol::Envelope;
use crate::{ClientOptions, Dsn};

/// Bodies strictly larger than this many bytes are gzip-compressed (1 KiB).
pub(crate) const GZIP_THRESHOLD: usize = 1024;

/// Requests a batch runs at once; also the number of idle connections kept.
pub(crate) const MAX_CONCURRENT_REQUESTS: usize = 8;

/// At most this many bytes of a response body are read (and discarded), so that the
/// connection can go back to the pool; larger bodies are abandoned with their
/// connection.
const MAX_DRAINED_BODY: usize = 64 * 1024;

/// Upper bound of the connect timeout; the request timeout wins when it is shorter.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Maximum length of a [`SendOutcome::NetworkError`] description.
const MAX_ERROR_LEN: usize = 240;

const ENVELOPE_CONTENT_TYPE: &str = "application/x-sentry-envelope";
const RATE_LIMITS_HEADER: &str = "x-sentry-rate-limits";
const AUTH_HEADER: &str = "x-sentry-auth";

/// Sends envelopes to Sentry over HTTP(S).
///
/// Created by the client on its worker thread; it owns a
/// current-thread Tokio runtime and a connection pool. Certificates are validated
/// against the bundled Mozilla roots (`webpki-roots`) plus
/// [`ClientOptions::extra_root_certs`]; `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY` from
/// the environment are honoured unless [`ClientOptions::http_proxy`] or
/// [`ClientOptions::https_proxy`] is set, in which case the options win.
pub struct HttpTransport {
    /// `Option` only so that `Drop` can move it out and shut it down without blocking.
    runtime: Option<Runtime>,
    client: reqwest::Client,
    url: Url,
    headers: HeaderMap,
    timeout: Duration,
    gzip: Gzip,
}

impl HttpTransport {
    /// Builds the transport for `dsn` with the network options of `options`.
    ///
    /// Call it on the thread that will call [`Transport::send`]. Fails with a
    /// description (never containing the DSN keys or proxy credentials) when a proxy
    /// URL is invalid, an extra root certificate is not valid PEM, the DSN yields an
    /// invalid URL or header value, or the runtime or HTTP client cannot be created.
    pub fn new(options: &ClientOptions, dsn: &Dsn) -> Result<Self, String> {
        let url = Url::parse(&dsn.envelope_url()).map_err(|e| format!("invalid envelope URL from the DSN: {e}"))?;

        let client_name = format!("{}/{}", crate::SDK_NAME, env!("CARGO_PKG_VERSION"));
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_str(&dsn.auth_header(&client_name))
            .map_err(|_| "the DSN yields an invalid X-Sentry-Auth header value".to_owned())?;
        auth.set_sensitive(true);
        headers.insert(AUTH_HEADER, auth);
        headers.insert(
            USER_AGENT,
            HeaderValue::from_str(&client_name).map_err(|_| "invalid User-Agent header value".to_owned())?,
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(ENVELOPE_CONTENT_TYPE));

        let timeout = options.request_timeout;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(MAX_CONCURRENT_REQUESTS)
            .redirect(Policy::none())
            .referer(false);

        for (name, value) in [("https_proxy", &options.https_proxy), ("http_proxy", &options.http_proxy)] {
            let Some(value) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
                continue;
            };
            let proxy_url = parse_proxy_url(value).map_err(|why| format!("invalid {name} option: {why}"))?;
            let proxy = if name == "https_proxy" { Proxy::https(proxy_url) } else { Proxy::http(proxy_url) };
            // `without_url`: the proxy URL may carry credentials.
            let proxy = proxy.map_err(|e| format!("invalid {name} option: {}", describe_chain(e.without_url())))?;
            builder = builder.proxy(proxy);
        }

        for (i, pem) in options.extra_root_certs.iter().enumerate() {
            let certs = Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("extra_root_certs[{i}] is not a valid PEM certificate: {}", describe_chain(e)))?;
            if certs.is_empty() {
                return Err(format!("extra_root_certs[{i}] contains no PEM certificate"));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }

        if options.accept_invalid_certs {
            builder = builder.danger_accept_invalid_certs(true);
        }

        let client = builder.build().map_err(|e| {
            // Root certificates are only decoded here, so a bad one surfaces now.
            let hint = if options.extra_root_certs.is_empty() { "" } else { " (check extra_root_certs)" };
            format!("cannot create the HTTP client{hint}: {}", describe_chain(e.without_url()))
        })?;
        // Last, so that no early return has to drop a runtime.
        let runtime = Builder::new_current_thread()
            .enable_all()
            .thread_name("sentry-lite-http")
            .build()
            .map_err(|e| format!("cannot create the transport's runtime: {e}"))?;

        Ok(HttpTransport { runtime: Some(runtime), client, url, headers, timeout, gzip: Gzip::new() })
    }

    /// The envelope endpoint this transport posts to (it contains no key).
    pub fn endpoint(&self) -> &str {
        self.url.as_str()
    }

    /// The request body: gzipped above [`GZIP_THRESHOLD`], else as it is.
    fn encode(&mut self, body: &[u8]) -> (Vec<u8>, bool) {
        if body.len() > GZIP_THRESHOLD {
            if let Some(gz) = self.gzip.compress(body) {
                return (gz, true);
            }
        }
        (body.to_vec(), false)
    }

    /// The runtime to block on, or why there is none to use here.
    fn runtime(&self) -> Result<&Runtime, SendOutcome> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(SendOutcome::NetworkError(
                "HttpTransport::send was called inside a Tokio runtime; it must run on its own thread".to_owned(),
            ));
        }
        self.runtime.as_ref().ok_or_else(|| SendOutcome::NetworkError("the transport's runtime is gone".to_owned()))
    }

    async fn send_async(&self, body: Vec<u8>, gzipped: bool) -> SendOutcome {
        // One timer for the whole exchange (reqwest's own timeout and a second one
        // for the body would register two more per request).
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let mut request = self.client.post(self.url.clone()).headers(self.headers.clone());
        if gzipped {
            request = request.header(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        request = request.body(body);

        let sent = tokio::select! {
            biased;
            sent = request.send() => sent,
            () = &mut deadline => return SendOutcome::NetworkError(format!("request timed out after {:?}", self.timeout)),
        };
        let mut response = match sent {
            Err(e) => return SendOutcome::NetworkError(describe_request_error(e, self.timeout)),
            Ok(response) => response,
        };

        let status = response.status();
        let rate_limits = header_string(response.headers(), RATE_LIMITS_HEADER);
        let retry_after = header_string(response.headers(), RETRY_AFTER.as_str());

        // The status is authoritative; drain the body so the connection can be
        // reused, but ignore failures and stop at the deadline or the size bound.
        let drain = async {
            let mut read = 0usize;
            while let Ok(Some(chunk)) = response.chunk().await {
                read += chunk.len();
                if read > MAX_DRAINED_BODY {
                    break;
                }
            }
        };
        tokio::select! {
            biased;
            () = drain => {}
            () = &mut deadline => {}
        }

        if status.is_success() {
            SendOutcome::Sent { rate_limits }
        } else {
            SendOutcome::Rejected { status: status.as_u16(), rate_limits, retry_after }
        }
    }
}

impl Transport for HttpTransport {
    fn send(&mut self, _envelope: &Envelope, body: &[u8]) -> SendOutcome {
        if let Err(outcome) = self.runtime() {
            return outcome;
        }
        let (body, gzipped) = self.encode(body);
        match self.runtime() {
            Ok(runtime) => runtime.block_on(self.send_async(body, gzipped)),
            Err(outcome) => outcome,
        }
    }

    /// Runs the requests concurrently, `MAX_CONCURRENT_REQUESTS` at a time.
    fn send_batch(&mut self, batch: &[(&Envelope, &[u8])]) -> Vec<SendOutcome> {
        if let Err(outcome) = self.runtime() {
            return vec![outcome; batch.len()];
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(MAX_CONCURRENT_REQUESTS) {
            let bodies: Vec<(Vec<u8>, bool)> = chunk.iter().map(|(_, body)| self.encode(body)).collect();
            let this = &*self;
            match this.runtime() {
                Ok(runtime) => outcomes.extend(runtime.block_on(join_all(
                    bodies.into_iter().map(|(body, gzipped)| this.send_async(body, gzipped)).collect(),
                ))),
                Err(outcome) => outcomes.extend(std::iter::repeat_n(outcome, chunk.len())),
            }
        }
        outcomes
    }

    fn max_batch(&self) -> usize {
        MAX_CONCURRENT_REQUESTS
    }
}

/// Polls all `futures` concurrently (on the current task) and returns their
/// outputs in order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

impl Drop for HttpTransport {
    fn drop(&mut self) {
        // Never blocks (a stuck DNS lookup must not hang shutdown) and never panics,
        // even when dropped inside an async context.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("endpoint", &self.url.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Parses a proxy option like `http://user:pass@proxy:3128` (a bare `proxy:3128`
/// means `http://`). Only http and https proxies are supported (no SOCKS in this
/// build). Errors never quote the URL, which may carry credentials.
fn parse_proxy_url(value: &str) -> Result<Url, String> {
    let with_scheme;
    let value = if value.contains("://") {
        value
    } else {
        with_scheme = format!("http://{value}");
        &with_scheme
    };
    let url = Url::parse(value).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("unsupported proxy scheme `{}` (expected http or https)", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the proxy URL has no host".to_owned());
    }
    Ok(url)
}

/// A gzip compressor reused across requests: creating one allocates and zeroes
/// a few hundred KiB of state, which cost more than compressing an event.
struct Gzip {
    deflate: Compress,
}

/// `Compression::fast()`. On the benchmark's error events (7.4 KB of JSON) the
/// output is about 20% larger than at the default level (1 860 vs 1 550 bytes),
/// for less CPU on the worker, which is what limits throughput.
const GZIP_LEVEL: u32 = 1;

impl Gzip {
    fn new() -> Self {
        // Raw deflate; the gzip header and trailer are written by hand.
        Gzip { deflate: Compress::new(Compression::new(GZIP_LEVEL), false) }
    }

    /// `body` as a gzip member; `None` on a compressor error (then sent raw).
    fn compress(&mut self, body: &[u8]) -> Option<Vec<u8>> {
        self.deflate.reset();
        let mut out = Vec::with_capacity(body.len() / 2 + 64);
        // ID1 ID2, CM = deflate, no flags, no mtime, XFL = 4 (fastest), OS = unknown.
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255]);
        loop {
            let consumed = usize::try_from(self.deflate.total_in()).ok()?;
            if out.len() == out.capacity() {
                out.reserve(body.len() / 4 + 64);
            }
            match self.deflate.compress_vec(&body[consumed..], &mut out, FlushCompress::Finish).ok()? {
                Status::StreamEnd => break,
                Status::Ok => {}
                Status::BufError => out.reserve(body.len() / 4 + 64),
            }
        }
        let mut crc = Crc::new();
        crc.update(body);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&crc.amount().to_le_bytes());
        Some(out)
    }
}

fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
}

fn describe_request_error(err: reqwest::Error, timeout: Duration) -> String {
    let err = err.without_url();
    let kind = if err.is_timeout() {
        return truncate(format!("request timed out after {timeout:?}: {}", describe_chain(err)));
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "invalid response body"
    } else {
        "request failed"
    };
    truncate(format!("{kind}: {}", describe_chain(err)))
}

/// `error: source: source…`, skipping messages already contained in the previous one.
fn describe_chain(err: impl std::error::Error) -> String {
    let mut out = err.to_string();
    let mut last = out.clone();
    let mut source = err.source();
    while let Some(e) = source {
        let msg = e.to_string();
        if !msg.is_empty() && !last.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        last = msg;
        source = e.source();
    }
    truncate(out)
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;
    use std::thread;
    use std::time::Instant;

    use flate2::read::GzDecoder;

    use super::*;

    /// One request as the test server saw it: lower-cased header names.
    struct Seen {
        request_line: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
        }
    }

    fn read_request(stream: &TcpStream) -> Seen {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(':').unwrap();
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        let len: usize =
            headers.iter().find(|(n, _)| n == "content-length").map(|(_, v)| v.parse().unwrap()).unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        Seen { request_line: request_line.trim_end().to_owned(), headers, body }
    }

    /// Serves one request with `response` and hands the request back.
    fn serve_once(response: &'static str) -> (String, mpsc::Receiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let seen = read_request(&stream);
            stream.write_all(response.as_bytes()).unwrap();
            stream.flush().unwrap();
            let _ = tx.send(seen);
        });
        (format!("http://pubkey:s3cr3t@127.0.0.1:{port}/42"), rx)
    }

    fn transport(dsn: &str, timeout_ms: u64) -> HttpTransport {
        let options = ClientOptions { request_timeout: Duration::from_millis(timeout_ms), ..Default::default() };
        HttpTransport::new(&options, &dsn.parse().unwrap()).unwrap()
    }

    #[test]
    fn posts_headers_and_gzipped_body() {
        let (dsn, rx) =
            serve_once("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Sentry-Rate-Limits: 60:error:org\r\n\r\n{}");
        let mut t = transport(&dsn, 2000);
        let body: Vec<u8> = (0..5000u32).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        let outcome = t.send(&Envelope::new(), &body);
        assert_eq!(outcome, SendOutcome::Sent { rate_limits: Some("60:error:org".into()) });

        let seen = rx.recv_timeout(Duration::from_secs(2)).unwrap();
        assert_eq!(seen.request_line, "POST /api/42/envelope/ HTTP/1.1");
        let ua = format!("sentry.rust.lite/{}", env!("CARGO_PKG_VERSION"));
        assert_eq!(seen.header("user-agent"), Some(ua.as_str()));
        assert_eq!(seen.header("content-type"), Some("application/x-sentry-envelope"));
        assert_eq!(seen.header("content-encoding"), Some("gzip"));
        let auth = seen.header("x-sentry-auth").unwrap();
        assert!(auth.starts_with("Sentry sentry_version=7, "), "{auth}");
        assert!(auth.contains(&format!("sentry_client={ua}")), "{auth}");
        assert!(auth.contains("sentry_key=pubkey"), "{auth}");
        assert!(seen.body.len() < body.len());
        let mut plain = Vec::new();
        GzDecoder::new(&seen.body[..]).read_to_end(&mut plain).unwrap();
        assert_eq!(plain, body);
    }

    #[test]
    fn a_batch_runs_its_requests_concurrently() {
        // The server answers only once both requests have arrived, on two connections:
        // sequential sends would time out.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            let streams: Vec<TcpStream> = (0..2).map(|_| listener.accept().unwrap().0).collect();
            let seen: Vec<Seen> = streams.iter().map(read_request).collect();
            for (mut stream, seen) in streams.into_iter().zip(seen) {
                let status = if seen.body.len() > 100 { "200 OK" } else { "500 Internal Server Error" };
                let response = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                stream.write_all(response.as_bytes()).unwrap();
            }
        });
        let mut t = transport(&format!("http://k@127.0.0.1:{port}/1"), 1500);
        let big: Vec<u8> = (0..3000u32).flat_map(|i| format!("{i}\n").into_bytes()).collect();
        let (a, b) = (Envelope::new(), Envelope::new());
        let start = Instant::now();
        let outcomes = t.send_batch(&[(&a, &big[..]), (&b, b"{}\n")]);
        assert!(start.elapsed() < Duration::from_millis(1000), "{:?}", start.elapsed());
        // In order; the gzipped one decodes to more than 100 bytes on the wire.
        assert_eq!(outcomes[0], SendOutcome::sent());
        assert!(matches!(outcomes[1], SendOutcome::Rejected { status: 500, .. }), "{:?}", outcomes[1]);
    }

    #[test]
    fn reused_compressor_output_round_trips() {
        let mut gzip = Gzip::new();
        for n in [2000u32, 50, 9000] {
            let body: Vec<u8> = (0..n).flat_map(|i| format!("{{\"line\":{i}}}\n").into_bytes()).collect();
            let gz = gzip.compress(&body).unwrap();
            let mut plain = Vec::new();
            GzDecoder::new(&gz[..]).read_to_end(&mut plain).unwrap();
            assert_eq!(plain, body);
        }
    }

    #[test]
    fn small_bodies_are_sent_raw() {
        let (dsn, rx) = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let mut t = transport(&dsn, 2000);
        assert_eq!(t.send(&Envelope::new(), b"{}\n"), SendOutcome::Sent { rate_limits: None });
        let seen = rx.recv_timeout(Duration::from_secs(2)).unwrap();
        assert_eq!(seen.header("content-encoding"), None);
        assert_eq!(seen.body, b"{}\n");
    }

    #[test]
    fn rate_limited_maps_to_rejected_with_headers() {
        let (dsn, _rx) = serve_once(
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 60\r\nX-Sentry-Rate-Limits: 60::organization\r\nContent-Length: 5\r\n\r\nslow!",
        );
        let mut t = transport(&dsn, 2000);
        assert_eq!(
            t.send(&Envelope::new(), b"{}\n"),
            SendOutcome::Rejected {
                status: 429,
                rate_limits: Some("60::organization".into()),
                retry_after: Some("60".into()),
            }
        );
    }

    #[test]
    fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        thread::spawn(move || {
            let (_stream, _) = listener.accept().unwrap();
            // Hold the connection open without answering.
            let _ = done_rx.recv_timeout(Duration::from_secs(3));
        });
        let mut t = transport(&format!("http://k@127.0.0.1:{port}/1"), 300);
        let start = Instant::now();
        let outcome = t.send(&Envelope::new(), b"{}\n");
        let elapsed = start.elapsed();
        let _ = done_tx.send(());
        match outcome {
            SendOutcome::NetworkError(msg) => assert!(msg.contains("timed out"), "{msg}"),
            other => panic!("expected a network error, got {other:?}"),
        }
        assert!(elapsed >= Duration::from_millis(250) && elapsed < Duration::from_millis(1500), "{elapsed:?}");
    }

    #[test]
    fn connection_refused_is_a_quick_network_error() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut t = transport(&format!("http://secretkey@127.0.0.1:{port}/1"), 5000);
        let start = Instant::now();
        let outcome = t.send(&Envelope::new(), b"{}\n");
        assert!(start.elapsed() < Duration::from_secs(2));
        match outcome {
            SendOutcome::NetworkError(msg) => {
                assert!(msg.contains("connection failed"), "{msg}");
                assert!(!msg.contains("secretkey"), "{msg}");
            }
            other => panic!("expected a network error, got {other:?}"),
        }
    }

    #[test]
    fn garbage_response_is_a_network_error() {
        let (dsn, _rx) = serve_once("this is not HTTP at all\r\n\r\n");
        let mut t = transport(&dsn, 2000);
        assert!(matches!(t.send(&Envelope::new(), b"{}\n"), SendOutcome::NetworkError(_)));
    }

    #[test]
    fn bad_options_are_errors_without_secrets() {
        let dsn: Dsn = "https://pubkey:s3cr3t@o1.ingest.sentry.io/1".parse().unwrap();
        let options = ClientOptions { https_proxy: Some("http://user:pw@[not a proxy".into()), ..Default::default() };
        let err = HttpTransport::new(&options, &dsn).unwrap_err();
        assert!(err.contains("https_proxy"), "{err}");
        assert!(!err.contains("pw") && !err.contains("s3cr3t"), "{err}");

        let options = ClientOptions { http_proxy: Some("ftp://proxy:1".into()), ..Default::default() };
        let err = HttpTransport::new(&options, &dsn).unwrap_err();
        assert!(err.contains("http_proxy"), "{err}");

        let options = ClientOptions { extra_root_certs: vec![b"not a certificate".to_vec()], ..Default::default() };
        let err = HttpTransport::new(&options, &dsn).unwrap_err();
        assert!(err.contains("extra_root_certs[0]"), "{err}");

        let bad_pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec();
        let options = ClientOptions { extra_root_certs: vec![bad_pem], ..Default::default() };
        let err = HttpTransport::new(&options, &dsn).unwrap_err();
        assert!(err.contains("extra_root_certs"), "{err}");
    }

    #[test]
    fn debug_shows_only_the_endpoint() {
        let t = transport("https://pubkey:s3cr3t@o1.ingest.sentry.io/7", 1000);
        let debug = format!("{t:?}");
        assert!(debug.contains("https://o1.ingest.sentry.io/api/7/envelope/"), "{debug}");
        assert!(!debug.contains("pubkey") && !debug.contains("s3cr3t"), "{debug}");
        assert_eq!(t.endpoint(), "https://o1.ingest.sentry.io/api/7/envelope/");
    }

    #[test]
    fn refuses_to_block_inside_a_runtime() {
        let mut t = transport("http://k@127.0.0.1:9/1", 1000);
        let rt = Builder::new_current_thread().build().unwrap();
        let outcome = rt.block_on(async { t.send(&Envelope::new(), b"{}\n") });
        assert!(matches!(outcome, SendOutcome::NetworkError(msg) if msg.contains("inside a Tokio runtime")));
        // Dropping inside an async context must not panic either.
        rt.block_on(async move { drop(t) });
    }
}
