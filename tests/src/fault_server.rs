//! An in-process loopback HTTP/1.1 server that records requests and misbehaves on demand.
//!
//! ```no_run
//! use sentry_lite_tests::fault_server::{FaultServer, Mode};
//! use std::time::Duration;
//!
//! let server = FaultServer::start();
//! let dsn = server.dsn(42); // http://public@127.0.0.1:PORT/42
//! server.set_mode(Mode::Status(500));
//! // ... run the SDK against `dsn` ...
//! let reqs = server.wait_for_requests(1, Duration::from_secs(5));
//! assert_eq!(reqs[0].path, "/api/42/envelope/");
//! ```
//!
//! The mode is read when a request starts (and, for `Refuse`, applied immediately:
//! the listener and every open connection are closed). Requests that were read in full
//! are recorded whatever the mode, with the mode that answered them.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// 200 with `{"id": "<event_id>"}` (plus any [`FaultServer::set_response_headers`]).
    Ok,
    /// Nothing listens: connections are refused. Open connections are closed.
    Refuse,
    /// Read the request, never answer (until the server is dropped or set to `Refuse`).
    Hang,
    /// Answer 200 after the delay.
    Slow(Duration),
    /// Answer with this status code (e.g. 400, 403, 413, 500, 503).
    Status(u16),
    /// 429 with optional `X-Sentry-Rate-Limits` and `Retry-After` headers.
    TooManyRequests {
        /// Value of `X-Sentry-Rate-Limits`, e.g. `"60:error;transaction:organization"`.
        rate_limits: Option<String>,
        /// Value of `Retry-After`, e.g. `"30"`.
        retry_after: Option<String>,
    },
    /// Read some bytes, then reset the connection (SO_LINGER 0) without answering.
    ResetMidRequest,
    /// Read the request, send a status line and part of the headers, then stall.
    IncompleteResponse,
    /// Read the request, send non-HTTP garbage, close.
    GarbageHeaders,
}

/// A request the server received in full.
#[derive(Debug, Clone)]
pub struct Request {
    /// `POST`, `GET`, ...
    pub method: String,
    /// Path with query, e.g. `/api/42/envelope/`.
    pub path: String,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// Body after de-chunking and decompression (`gzip`, `deflate`).
    pub body: Vec<u8>,
    /// Body as it came off the wire (after de-chunking, before decompression).
    pub raw_body: Vec<u8>,
    /// True if the body was sent with `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// The mode that handled this request.
    pub mode: Mode,
    /// When the request was fully read.
    pub received_at: Instant,
}

impl Request {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as a Sentry envelope.
    pub fn envelope(&self) -> Result<crate::Envelope, String> {
        crate::parse_envelope(&self.body)
    }

    /// Parsed `X-Sentry-Auth` pairs (`sentry_key`, `sentry_version`, `sentry_client`, ...).
    pub fn sentry_auth(&self) -> Vec<(String, String)> {
        let Some(h) = self.header("x-sentry-auth") else { return Vec::new() };
        let h = h.trim();
        let h = h.strip_prefix("Sentry ").unwrap_or(h);
        h.split(',')
            .filter_map(|kv| {
                let (k, v) = kv.trim().split_once('=')?;
                Some((k.trim().to_string(), v.trim().to_string()))
            })
            .collect()
    }
}

struct Inner {
    port: u16,
    mode: Mutex<Mode>,
    extra_headers: Mutex<Vec<(String, String)>>,
    /// Bodies containing this text get this status instead of the mode's answer.
    poison: Mutex<Option<(String, u16)>>,
    listener: Mutex<Option<TcpListener>>,
    // Arc: readers copy the list under the lock and clone the requests outside it,
    // so polling `requests()` never stalls connection threads for long.
    requests: Mutex<Vec<Arc<Request>>>,
    requests_cv: Condvar,
    open: AtomicUsize,
    total: AtomicUsize,
    shutdown: AtomicBool,
    conn_threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Inner {
    fn mode(&self) -> Mode {
        self.mode.lock().unwrap().clone()
    }
    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst) || self.mode() == Mode::Refuse
    }
}

/// The server. Stops (all threads joined) when dropped.
pub struct FaultServer {
    inner: Arc<Inner>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FaultServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultServer")
            .field("url", &self.url())
            .field("mode", &self.inner.mode())
            .field("requests", &self.inner.requests.lock().unwrap().len())
            .finish()
    }
}

fn bind(port: u16) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(128)?;
    let l: TcpListener = sock.into();
    l.set_nonblocking(true)?;
    Ok(l)
}

impl FaultServer {
    /// Starts on `127.0.0.1:<free port>` in [`Mode::Ok`].
    pub fn start() -> Self {
        let listener = bind(0).expect("bind fault server on 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let inner = Arc::new(Inner {
            port,
            mode: Mutex::new(Mode::Ok),
            extra_headers: Mutex::new(Vec::new()),
            poison: Mutex::new(None),
            listener: Mutex::new(Some(listener)),
            requests: Mutex::new(Vec::new()),
            requests_cv: Condvar::new(),
            open: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            conn_threads: Mutex::new(Vec::new()),
        });
        let i2 = inner.clone();
        let accept = std::thread::Builder::new()
            .name(format!("fault-server-{port}"))
            .spawn(move || accept_loop(i2))
            .expect("spawn accept thread");
        FaultServer { inner, accept: Some(accept) }
    }

    /// Switches the mode. `Refuse` closes the listener and all open connections before
    /// returning; leaving `Refuse` re-binds the same port before returning.
    pub fn set_mode(&self, mode: Mode) {
        let refuse = mode == Mode::Refuse;
        *self.inner.mode.lock().unwrap() = mode;
        let mut l = self.inner.listener.lock().unwrap();
        if refuse {
            *l = None;
            drop(l);
            let deadline = Instant::now() + Duration::from_secs(2);
            while self.open_connections() > 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        } else if l.is_none() {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match bind(self.inner.port) {
                    Ok(new) => {
                        *l = Some(new);
                        break;
                    }
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => panic!("fault server: cannot re-bind 127.0.0.1:{}: {e}", self.inner.port),
                }
            }
        }
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.inner.mode()
    }

    /// Extra headers added to successful (2xx) answers, e.g. `X-Sentry-Rate-Limits`.
    pub fn set_response_headers(&self, headers: Vec<(String, String)>) {
        *self.inner.extra_headers.lock().unwrap() = headers;
    }

    /// Answers every request whose (decompressed) body contains `needle` with
    /// `status`, whatever the mode; `None` turns it off. For envelopes that a
    /// server always refuses while it accepts the others.
    pub fn set_poison(&self, poison: Option<(&str, u16)>) {
        *self.inner.poison.lock().unwrap() = poison.map(|(needle, status)| (needle.to_owned(), status));
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.inner.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// `http://public@127.0.0.1:PORT/<project_id>`
    pub fn dsn(&self, project_id: u64) -> String {
        format!("http://public@127.0.0.1:{}/{project_id}", self.inner.port)
    }

    /// All requests received in full so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests_since(0)
    }

    /// Requests received in full after the first `n` (cheap incremental polling).
    pub fn requests_since(&self, n: usize) -> Vec<Request> {
        let list: Vec<Arc<Request>> = {
            let reqs = self.inner.requests.lock().unwrap();
            reqs.get(n..).map(|s| s.to_vec()).unwrap_or_default()
        };
        list.iter().map(|r| (**r).clone()).collect()
    }

    /// Number of requests received in full so far (no copying).
    pub fn request_count(&self) -> usize {
        self.inner.requests.lock().unwrap().len()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.inner.requests.lock().unwrap().clear();
    }

    /// Waits until at least `n` requests were received or `timeout` passed; returns
    /// all requests received so far (check the length).
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Request> {
        let deadline = Instant::now() + timeout;
        let mut reqs = self.inner.requests.lock().unwrap();
        while reqs.len() < n {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            reqs = self.inner.requests_cv.wait_timeout(reqs, deadline - now).unwrap().0;
        }
        drop(reqs);
        self.requests()
    }

    /// Connections currently open.
    pub fn open_connections(&self) -> usize {
        self.inner.open.load(Ordering::SeqCst)
    }

    /// Connections accepted since start.
    pub fn total_connections(&self) -> usize {
        self.inner.total.load(Ordering::SeqCst)
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.inner.shutdown.store(true, Ordering::SeqCst);
        *self.inner.listener.lock().unwrap() = None;
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        let threads: Vec<_> = std::mem::take(&mut *self.inner.conn_threads.lock().unwrap());
        for t in threads {
            let _ = t.join();
        }
    }
}

fn accept_loop(inner: Arc<Inner>) {
    while !inner.shutdown.load(Ordering::SeqCst) {
        let accepted = {
            let l = inner.listener.lock().unwrap();
            match l.as_ref() {
                Some(l) => match l.accept() {
                    Ok((s, _)) => Some(s),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => None,
                    Err(_) => None,
                },
                None => None,
            }
        };
        match accepted {
            Some(stream) => {
                inner.open.fetch_add(1, Ordering::SeqCst);
                inner.total.fetch_add(1, Ordering::SeqCst);
                let i2 = inner.clone();
                let t = std::thread::spawn(move || {
                    handle_conn(&i2, stream);
                    i2.open.fetch_sub(1, Ordering::SeqCst);
                });
                let mut threads = inner.conn_threads.lock().unwrap();
                threads.retain(|t| !t.is_finished());
                threads.push(t);
            }
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// A reading helper over a stream with a short read timeout, so that shutdown and
/// `Refuse` are noticed while waiting for bytes.
struct Conn<'a> {
    inner: &'a Inner,
    stream: TcpStream,
    buf: Vec<u8>,
}

enum Stop {
    /// Peer closed, error, server shutting down, or Refuse.
    Closed,
}

impl Conn<'_> {
    /// Reads more bytes into `buf`; Err when the connection should end.
    fn fill(&mut self) -> Result<(), Stop> {
        let mut tmp = [0u8; 16 * 1024];
        loop {
            if self.inner.stopping() {
                return Err(Stop::Closed);
            }
            match self.stream.read(&mut tmp) {
                Ok(0) => return Err(Stop::Closed),
                Ok(n) => {
                    self.buf.extend_from_slice(&tmp[..n]);
                    return Ok(());
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                Err(_) => return Err(Stop::Closed),
            }
        }
    }

    fn take_until(&mut self, pat: &[u8], limit: usize) -> Result<Vec<u8>, Stop> {
        loop {
            if let Some(i) = find(&self.buf, pat) {
                let mut out: Vec<u8> = self.buf.drain(..i + pat.len()).collect();
                out.truncate(i);
                return Ok(out);
            }
            if self.buf.len() > limit {
                return Err(Stop::Closed);
            }
            self.fill()?;
        }
    }

    fn take_exact(&mut self, n: usize) -> Result<Vec<u8>, Stop> {
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Sleeps up to `d`, returning early (Err) on shutdown/Refuse.
    fn pause(&self, d: Duration) -> Result<(), Stop> {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            if self.inner.stopping() {
                return Err(Stop::Closed);
            }
            std::thread::sleep(Duration::from_millis(5).min(deadline - Instant::now()));
        }
        Ok(())
    }

    /// Keeps the connection open without answering until shutdown/Refuse/peer close.
    fn stall(&mut self) {
        while self.fill().is_ok() {
            self.buf.clear();
        }
    }
}

fn find(hay: &[u8], pat: &[u8]) -> Option<usize> {
    hay.windows(pat.len()).position(|w| w == pat)
}

fn handle_conn(inner: &Inner, stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_nodelay(true);
    let mut c = Conn { inner, stream, buf: Vec::new() };
    loop {
        // wait for the first byte of the next request
        while c.buf.is_empty() {
            if c.fill().is_err() {
                return;
            }
        }
        let mode = inner.mode();
        if mode == Mode::ResetMidRequest {
            // some bytes were read; close with SO_LINGER 0 so the peer gets an RST
            let _ = socket2::SockRef::from(&c.stream).set_linger(Some(Duration::ZERO));
            return;
        }
        let Ok(req) = read_request(&mut c, mode.clone()) else { return };
        let poisoned = inner
            .poison
            .lock()
            .unwrap()
            .as_ref()
            .filter(|(needle, _)| find(&req.body, needle.as_bytes()).is_some())
            .map(|(_, status)| *status);
        let mode = match poisoned {
            Some(status) if !matches!(mode, Mode::Refuse | Mode::Hang) => Mode::Status(status),
            _ => mode,
        };
        let close = req.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let event_id = event_id_of(&req.body);
        {
            let mut reqs = inner.requests.lock().unwrap();
            reqs.push(Arc::new(req));
            inner.requests_cv.notify_all();
        }
        let body = format!("{{\"id\":\"{event_id}\"}}");
        let extra = inner.extra_headers.lock().unwrap().clone();
        let result = match mode {
            Mode::Ok => respond(&mut c.stream, 200, &extra, &body),
            Mode::Slow(d) => c.pause(d).and_then(|_| respond(&mut c.stream, 200, &extra, &body)),
            Mode::Status(code) => {
                let extra = if (200..300).contains(&code) { extra } else { Vec::new() };
                let b = if (200..300).contains(&code) {
                    body
                } else {
                    format!("{{\"detail\":\"fault server status {code}\"}}")
                };
                respond(&mut c.stream, code, &extra, &b)
            }
            Mode::TooManyRequests { rate_limits, retry_after } => {
                let mut h = Vec::new();
                if let Some(v) = rate_limits {
                    h.push(("X-Sentry-Rate-Limits".to_string(), v));
                }
                if let Some(v) = retry_after {
                    h.push(("Retry-After".to_string(), v));
                }
                respond(&mut c.stream, 429, &h, "{\"detail\":\"rate limited\"}")
            }
            Mode::Hang => {
                c.stall();
                return;
            }
            Mode::IncompleteResponse => {
                let _ = c.stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Len");
                let _ = c.stream.flush();
                c.stall();
                return;
            }
            Mode::GarbageHeaders => {
                let _ = c.stream.write_all(b"\x00\x13\xffGARBAGE this is not http at all \x7f\r\n\xfe\xfd\r\n\r\n");
                let _ = c.stream.flush();
                let _ = c.stream.shutdown(Shutdown::Both);
                return;
            }
            Mode::Refuse | Mode::ResetMidRequest => return,
        };
        if result.is_err() || close {
            let _ = c.stream.shutdown(Shutdown::Both);
            return;
        }
    }
}

fn event_id_of(body: &[u8]) -> String {
    let first = body.split(|&b| b == b'\n').next().unwrap_or_default();
    serde_json::from_slice::<serde_json::Value>(first)
        .ok()
        .and_then(|v| v.get("event_id").and_then(|e| e.as_str()).map(String::from))
        .unwrap_or_default()
}

fn respond(s: &mut TcpStream, code: u16, headers: &[(String, String)], body: &str) -> Result<(), Stop> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut out =
        format!("HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    s.write_all(out.as_bytes()).map_err(|_| Stop::Closed)?;
    s.flush().map_err(|_| Stop::Closed)
}

fn read_request(c: &mut Conn<'_>, mode: Mode) -> Result<Request, Stop> {
    let head = c.take_until(b"\r\n\r\n", 256 * 1024)?;
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let get = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    if get("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        let _ = c.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let chunked = get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let raw_body = if chunked {
        let mut body = Vec::new();
        loop {
            let size_line = c.take_until(b"\r\n", 1024)?;
            let size_str = String::from_utf8_lossy(&size_line);
            let size_str = size_str.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_str, 16).map_err(|_| Stop::Closed)?;
            if size == 0 {
                // trailers until an empty line
                loop {
                    if c.take_until(b"\r\n", 64 * 1024)?.is_empty() {
                        break;
                    }
                }
                break;
            }
            body.extend(c.take_exact(size)?);
            c.take_exact(2)?;
        }
        body
    } else {
        let len = get("content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
        c.take_exact(len)?
    };
    let body = match get("content-encoding").map(|v| v.to_ascii_lowercase()) {
        Some(enc) if enc == "gzip" || enc == "x-gzip" => {
            let mut out = Vec::new();
            match flate2::read::GzDecoder::new(&raw_body[..]).read_to_end(&mut out) {
                Ok(_) => out,
                Err(_) => raw_body.clone(),
            }
        }
        Some(enc) if enc == "deflate" => {
            let mut out = Vec::new();
            match flate2::read::ZlibDecoder::new(&raw_body[..]).read_to_end(&mut out) {
                Ok(_) => out,
                Err(_) => raw_body.clone(),
            }
        }
        _ => raw_body.clone(),
    };
    Ok(Request { method, path, headers, body, raw_body, chunked, mode, received_at: Instant::now() })
}
