//! # sentry-lite-watchdog
//!
//! Reports the failures that send nothing by themselves: a tokio worker blocked by
//! synchronous work inside async code, a deadlock among parking_lot locks, and, on
//! demand, a dump of every thread of the process. Each report carries the stacks
//! of the threads involved, taken while they are stuck.
//!
//! ```text
//! worker thread                       watchdog thread (one, every threshold/20)
//! poll of a watched future ─ start ─► heartbeat: when this thread's poll began
//!                          ─ end ───►   older than the threshold? ── signal ──┐
//! signal handler (on the stuck thread): registers out, wait ≤ 200 ms  ◄───────┘
//!                                     copy its stack (/proc/self/mem), release it
//!                                     unwind the copy, event ─► client's worker
//!                                     (symbolicated there like every event)
//! ```
//!
//! What counts as one poll: a future wrapped with [`WatchExt::watched`], every
//! request through [`WatchdogLayer`], or, when the program is built with
//! `--cfg tokio_unstable`, every task of a runtime passed to
//! [`instrument_runtime`]. Deadlocks need the `deadlock` feature (parking_lot's
//! detector, which records every lock and unlock).
//!
//! Stacks of other threads are taken on Linux only (x86_64 unwinds fully; other
//! architectures give the stopped instruction); elsewhere reports come without them.
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use sentry_lite_watchdog::{Watchdog, WatchdogLayer, WatchdogOptions};
//!
//! # async fn run() {
//! let _sentry = sentry_lite_core::init(sentry_lite_core::ClientOptions::from_env()).unwrap();
//! let _watchdog = Watchdog::start(WatchdogOptions::new().with_threshold(Duration::from_secs(1)));
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "ok" }))
//!     .layer(WatchdogLayer::new());
//! # let _ = app;
//! # }
//! ```

mod deadlock;
mod dump;
mod heartbeat;
mod options;
mod report;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod signal;
mod watchdog;
mod watched;

pub use dump::capture_thread_dump;
pub use options::WatchdogOptions;
pub use watchdog::Watchdog;
pub use watched::{instrument_runtime, WatchExt, WatchdogLayer, WatchdogService, Watched};
