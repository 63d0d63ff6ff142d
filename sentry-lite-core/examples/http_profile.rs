//! CPU cost of the HTTP transport per request, for `perf` / callgrind:
//! `cargo run --release -p sentry-lite-core --example http_profile -- 20000 8`.
//! Posts N copies of one real error envelope (captured through a test
//! transport) to an in-process keep-alive receiver, in batches, and prints the
//! sending thread's CPU time per request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sentry_lite_core::transport::HttpTransport;
use sentry_lite_core::{Client, ClientOptions, Hub, TestTransport, Transport};

fn serve(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        let mut len = 0usize;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        body.resize(len, 0);
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_err() {
            return;
        }
    }
}

fn own_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(stat.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let batch: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(8);

    let test = TestTransport::new();
    let client = Arc::new(Client::new(
        ClientOptions::new().with_transport(test.clone()),
        Some("https://public@127.0.0.1:9/1".parse().unwrap()),
    ));
    let hub = Arc::new(Hub::new_from_top(&Hub::main()));
    hub.bind_client(Some(client.clone()));
    Hub::run(hub, || {
        let err = std::io::Error::other("connection reset by peer");
        sentry_lite_core::capture_error(&err);
    });
    // Long enough under valgrind.
    client.flush(Duration::from_secs(120));
    let envelope = test.take().pop().expect("one envelope");
    let body = envelope.to_vec();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || serve(s));
        }
    });
    let dsn = format!("http://public@127.0.0.1:{port}/1").parse().unwrap();
    let mut transport = HttpTransport::new(&ClientOptions::new(), &dsn).unwrap();
    let requests: Vec<_> = (0..batch).map(|_| (&envelope, body.as_slice())).collect();
    transport.send_batch(&requests);
    let (cpu0, t0) = (own_cpu(), Instant::now());
    let mut sent = 0;
    while sent < n {
        let outcomes = transport.send_batch(&requests);
        assert!(outcomes.iter().all(|o| matches!(o, sentry_lite_core::SendOutcome::Sent { .. })));
        sent += batch;
    }
    let (cpu, wall) = (own_cpu() - cpu0, t0.elapsed());
    println!(
        "{} B body, batches of {batch}: {:.2} µs CPU per request on the sending thread, {:.0} requests/s",
        body.len(),
        cpu.as_secs_f64() * 1e6 / sent as f64,
        sent as f64 / wall.as_secs_f64()
    );
}
