//! Overlapping `init` guards: the main hub keeps the newest live client, whatever
//! order guards drop in, and concurrent inits lose nothing without a count.
//! (Its own test binary: it owns the process's main hub.)

use std::sync::{Arc, Barrier};
use std::time::Duration;

use sentry_lite_core::protocol::{DataCategory, DiscardReason};
use sentry_lite_core::{self as sentry, ClientOptions, Level, TestTransport};

fn options(transport: &TestTransport) -> ClientOptions {
    ClientOptions::new().with_transport(transport.clone()).with_attach_stacktrace(false).with_queue_capacity(10_000)
}

#[test]
fn guards_overlap_without_losing_anything() {
    // Dropping an older guard keeps the newer client bound.
    let (first, second) = (TestTransport::new(), TestTransport::new());
    let g1 = sentry::init(options(&first)).unwrap();
    let g2 = sentry::init(options(&second)).unwrap();
    drop(g1);
    assert!(!sentry::capture_message("after the older guard dropped", Level::Error).is_nil());
    assert!(sentry::flush(Duration::from_secs(5)));
    assert_eq!(second.take().len(), 1, "the newer client got it");
    // Dropping the newer guard first hands the hub back to the older live one.
    let g3 = sentry::init(options(&first)).unwrap();
    let g4 = sentry::init(options(&first)).unwrap();
    drop(g4);
    assert!(!sentry::capture_message("back to the older live client", Level::Error).is_nil());
    drop(g3);
    drop(g2);
    assert!(sentry::capture_message("no guard left", Level::Error).is_nil());
    let _ = first.take();

    // 16 threads init concurrently, capture while their guard lives, and drop it
    // at different times: every capture goes to a live client, and each is
    // either delivered or counted by the client that had it.
    let transport = TestTransport::new();
    let threads = 16;
    let per_thread = 100;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (transport, barrier) = (transport.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let guard = sentry::init(options(&transport)).unwrap();
                let client = guard.client().unwrap().clone();
                let mut nil = 0;
                for i in 0..per_thread {
                    nil += usize::from(sentry::capture_message(&format!("t{t} e{i}"), Level::Error).is_nil());
                    if i % 10 == t % 10 {
                        std::thread::yield_now();
                    }
                }
                drop(guard);
                (nil, client)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let nil: usize = results.iter().map(|(n, _)| n).sum();
    assert_eq!(nil, 0, "captures made while a guard lived found no client");
    let counted: u64 = results
        .iter()
        .map(|(_, c)| {
            [DiscardReason::QueueOverflow, DiscardReason::InternalSdkError]
                .into_iter()
                .map(|r| c.discarded(r, DataCategory::Error))
                .sum::<u64>()
        })
        .sum();
    let delivered = transport.take().iter().filter(|e| e.event().is_some()).count() as u64;
    assert_eq!(delivered + counted, (threads * per_thread) as u64, "delivered {delivered}, counted {counted}");
}
