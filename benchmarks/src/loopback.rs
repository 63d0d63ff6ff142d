//! The end-to-end throughput case: error events from one producer
//! thread, through an SDK's worker and its real HTTP transport, into a minimal
//! keep-alive HTTP/1.1 receiver on 127.0.0.1.
//!
//! Run for ours (gzip, 8 requests in flight), for sentry 0.49.5 with its own
//! reqwest transport (one request at a time, no compression, queue of 30), and
//! as a floor: bare reqwest posting our gzipped error envelope, 8 in flight,
//! with no SDK at all, which is what any reqwest-based transport pays per
//! request before doing anything of its own. All three share the receiver
//! code and the two cores with it, so their CPU figures compare.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Result of one run of the end-to-end throughput case.
#[derive(Clone, Debug, Default)]
pub(crate) struct Throughput {
    /// Error events captured by the producer during the run.
    pub(crate) sent: u64,
    /// Error events the loopback receiver got (envelopes with an `event` item).
    pub(crate) received: u64,
    /// HTTP requests the receiver got (events + client reports).
    pub(crate) requests: u64,
    /// Requests sent with `Content-Encoding: gzip`.
    pub(crate) gzipped: u64,
    /// Body bytes the receiver got on the wire.
    pub(crate) wire_bytes: u64,
    /// Errors the client dropped (queue overflow).
    pub(crate) dropped_queue: u64,
    /// Errors the client dropped for network / send errors.
    pub(crate) dropped_network: u64,
    /// Producer time (first capture to last capture).
    pub(crate) produce: Duration,
    /// Paced runs: the producer captured at the offered rate (its captures fit
    /// in the run's duration, give or take two 10 ms slots).
    pub(crate) kept_pace: bool,
    /// Wall time from the first capture to the end of the flush.
    pub(crate) elapsed: Duration,
    /// CPU time of the SDK's worker thread during the run (kernel time included).
    pub(crate) worker_cpu: Duration,
    /// CPU time of the producer thread during the run.
    pub(crate) producer_cpu: Duration,
    /// CPU time of the receiver's threads during the run.
    pub(crate) receiver_cpu: Duration,
}

impl Throughput {
    /// Delivered events per second of wall time, final flush included.
    pub(crate) fn delivered_per_s(&self) -> f64 {
        self.received as f64 / self.elapsed.as_secs_f64()
    }

    /// Every captured event arrived and nothing was dropped.
    pub(crate) fn complete(&self) -> bool {
        self.kept_pace && self.received == self.sent && self.dropped_queue == 0 && self.dropped_network == 0
    }

    /// CPU per delivered event, in µs.
    pub(crate) fn per_event_us(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / self.received.max(1) as f64
    }
}

#[derive(Default)]
struct RecvStats {
    events: AtomicU64,
    requests: AtomicU64,
    gzipped: AtomicU64,
    bytes: AtomicU64,
}

/// Thread name (as the kernel truncates it) of the receiver's threads.
const RECV_THREAD: &str = "loopback-recv";

/// On-CPU time of this process's threads whose name starts with `prefix`
/// (`/proc/self/task/*/schedstat`, nanoseconds); zero where `/proc` is missing.
fn threads_cpu(prefix: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Duration::ZERO };
    let mut ns = 0u64;
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        ns += schedstat_ns(&path.join("schedstat"));
    }
    Duration::from_nanos(ns)
}

/// On-CPU time of the calling thread.
fn own_cpu() -> Duration {
    Duration::from_nanos(schedstat_ns(std::path::Path::new("/proc/thread-self/schedstat")))
}

fn schedstat_ns(path: &std::path::Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Minimal keep-alive HTTP/1.1 receiver: answers every request `200` with an
/// empty body and counts envelopes holding an `event` item. It inflates only
/// the first 2 KiB of each body (enough for the envelope and first item
/// headers), with one inflater per connection, so that it takes as little as
/// possible of the CPU the SDK's worker shares with it on this machine.
fn serve_connection(stream: TcpStream, stats: Arc<RecvStats>) {
    let _ = stream.set_nodelay(true);
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut line = String::new();
    let mut body = Vec::new();
    let mut inflate = flate2::Decompress::new(false);
    let mut head = Vec::with_capacity(2048);
    loop {
        // request line + headers
        let mut content_length = 0usize;
        let mut gzip = false;
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let l = line.trim_end();
            if l.is_empty() {
                if first {
                    continue;
                }
                break;
            }
            first = false;
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim();
                if k.eq_ignore_ascii_case("content-length") {
                    content_length = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("content-encoding") {
                    gzip = v.trim().eq_ignore_ascii_case("gzip");
                }
            }
        }
        body.resize(content_length, 0);
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_err() {
            return;
        }
        head.clear();
        if gzip {
            // A gzip member without optional header fields (what the SDK writes):
            // 10 header bytes, then raw deflate.
            if body.len() > 10 && body[..3] == [0x1f, 0x8b, 8] && body[3] == 0 {
                inflate.reset(false);
                let _ = inflate.decompress_vec(&body[10..], &mut head, flate2::FlushDecompress::Sync);
            }
        } else {
            head.extend_from_slice(&body[..body.len().min(2048)]);
        }
        let text = String::from_utf8_lossy(&head);
        // item headers: `{"length":…,"type":"event"}` (key order may vary)
        let events = text.lines().filter(|l| l.starts_with('{') && l.contains("\"type\":\"event\"")).count() as u64;
        stats.events.fetch_add(events, Ordering::Relaxed);
        stats.requests.fetch_add(1, Ordering::Relaxed);
        stats.gzipped.fetch_add(u64::from(gzip), Ordering::Relaxed);
        stats.bytes.fetch_add(content_length as u64, Ordering::Relaxed);
    }
}

/// A receiver running on its own threads until dropped.
pub(crate) struct Receiver {
    port: u16,
    stats: Arc<RecvStats>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let stats = Arc::new(RecvStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        {
            let stats = stats.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(RECV_THREAD.into())
                .spawn(move || {
                    for s in listener.incoming() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        if let Ok(s) = s {
                            let stats = stats.clone();
                            let _ = std::thread::Builder::new()
                                .name(RECV_THREAD.into())
                                .spawn(move || serve_connection(s, stats));
                        }
                    }
                })
                .expect("receiver thread");
        }
        Receiver { port, stats, stop }
    }

    /// `http://public@127.0.0.1:<port>/1`.
    pub(crate) fn dsn(&self) -> String {
        format!("http://public@127.0.0.1:{}/1", self.port)
    }

    fn counts(&self) -> [u64; 4] {
        let s = &self.stats;
        [&s.events, &s.requests, &s.gzipped, &s.bytes].map(|c| c.load(Ordering::Relaxed))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the accept loop
    }
}

/// An SDK under test, already sending to a [`Receiver`] and warmed up.
pub(crate) trait Sdk {
    /// Runs `f` with the SDK's hub bound (the producer loop runs inside).
    fn bound(&self, f: &mut dyn FnMut());
    /// Captures the benchmark's 3-level error chain.
    fn capture(&self);
    /// Waits until everything captured so far was sent.
    fn flush(&self);
    /// Error events dropped so far as (queue overflow, network or send error);
    /// zeros when the SDK does not count them.
    fn dropped(&self) -> (u64, u64);
    /// Kernel name (at most 15 bytes) of the thread that sends.
    fn worker_thread(&self) -> &'static str;
}

/// One run of `duration`: unpaced (`rate` = `None`: capture as fast as the
/// producer can), or `rate` events/s paced in 10 ms slots. Flushes at the end.
pub(crate) fn run(receiver: &Receiver, sdk: &dyn Sdk, duration: Duration, rate: Option<u64>) -> Throughput {
    let base = receiver.counts();
    let dropped0 = sdk.dropped();
    let worker = sdk.worker_thread();
    let cpu0 = (threads_cpu(worker), own_cpu(), threads_cpu(RECV_THREAD));
    let t0 = Instant::now();
    let mut sent = 0u64;
    sdk.bound(&mut || match rate {
        None => {
            while t0.elapsed() < duration {
                for _ in 0..64 {
                    sdk.capture();
                }
                sent += 64;
            }
        }
        Some(rate) => {
            let slot = Duration::from_millis(10);
            let per_slot = (rate / 100).max(1);
            let mut next = t0;
            while next.duration_since(t0) < duration {
                for _ in 0..per_slot {
                    sdk.capture();
                }
                sent += per_slot;
                next += slot;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        }
    });
    let produce = t0.elapsed();
    let kept_pace = rate.is_none() || produce <= duration + Duration::from_millis(20);
    sdk.flush();
    let elapsed = t0.elapsed();
    let cpu1 = (threads_cpu(worker), own_cpu(), threads_cpu(RECV_THREAD));
    let counts = receiver.counts();
    let dropped = sdk.dropped();
    Throughput {
        sent,
        received: counts[0] - base[0],
        requests: counts[1] - base[1],
        gzipped: counts[2] - base[2],
        wire_bytes: counts[3] - base[3],
        dropped_queue: dropped.0 - dropped0.0,
        dropped_network: dropped.1 - dropped0.1,
        produce,
        kept_pace,
        elapsed,
        worker_cpu: cpu1.0.saturating_sub(cpu0.0),
        producer_cpu: cpu1.1.saturating_sub(cpu0.1),
        receiver_cpu: cpu1.2.saturating_sub(cpu0.2),
    }
}

/// The highest offered rate (from `rates`, tried in increasing order, stopping
/// at the first failure) that is delivered in full, with no drops, in a run of
/// `duration` each. Returns every run tried.
pub(crate) fn paced(receiver: &Receiver, sdk: &dyn Sdk, duration: Duration, rates: &[u64]) -> Vec<(u64, Throughput)> {
    let mut runs = Vec::new();
    for &rate in rates {
        let t = run(receiver, sdk, duration, Some(rate));
        let ok = t.complete();
        runs.push((rate, t));
        if !ok {
            break;
        }
    }
    runs
}

/// Result of the bare-reqwest floor.
#[derive(Clone, Debug, Default)]
pub(crate) struct Floor {
    pub(crate) requests: u64,
    pub(crate) elapsed: Duration,
    /// CPU time of the sending thread (its current-thread runtime included).
    pub(crate) sender_cpu: Duration,
    pub(crate) receiver_cpu: Duration,
}

impl Floor {
    pub(crate) fn per_s(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub(crate) fn per_request_us(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }
}

/// Bare reqwest 0.12 (our transport's client, same builder basics) on a
/// current-thread runtime: POSTs `body` with the transport's headers,
/// `in_flight` requests at a time, for `duration`. No SDK, no queue, no
/// serialization or compression: only what the HTTP client and the kernel cost.
pub(crate) fn reqwest_floor(receiver: &Receiver, body: Vec<u8>, in_flight: usize, duration: Duration) -> Floor {
    let url = format!("http://127.0.0.1:{}/api/1/envelope/", receiver.port);
    let body = bytes::Bytes::from(body);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(in_flight)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client");
    let batch = |client: &reqwest::Client| {
        rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..in_flight {
                let request = client
                    .post(&url)
                    .header("content-type", "application/x-sentry-envelope")
                    .header("content-encoding", "gzip")
                    .header("x-sentry-auth", "Sentry sentry_version=7, sentry_key=public, sentry_client=bench/1")
                    .body(body.clone());
                set.spawn(async move {
                    let response = request.send().await.expect("floor request");
                    assert!(response.status().is_success());
                    let _ = response.bytes().await;
                });
            }
            while set.join_next().await.is_some() {}
        })
    };
    batch(&client); // connect
    let base = receiver.counts()[1];
    let cpu0 = (own_cpu(), threads_cpu(RECV_THREAD));
    let t0 = Instant::now();
    while t0.elapsed() < duration {
        batch(&client);
    }
    let elapsed = t0.elapsed();
    Floor {
        requests: receiver.counts()[1] - base,
        elapsed,
        sender_cpu: own_cpu().saturating_sub(cpu0.0),
        receiver_cpu: threads_cpu(RECV_THREAD).saturating_sub(cpu0.1),
    }
}
