//! The watchdog thread: reads the heartbeats every tick, reports stalls, and with
//! the `deadlock` feature asks parking_lot for deadlocks.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use sentry_lite_core::protocol::{Breadcrumb, Context, TraceContext};
use sentry_lite_core::{Event, Hub, Level, SpanId, TraceId};
use serde_json::json;

use crate::heartbeat::{self, Beat};
use crate::options::WatchdogOptions;
use crate::report::{self, ThreadReport};

/// Stall locations remembered, so that a location is reported once; beyond it
/// the memory starts over.
const MAX_LOCATIONS: usize = 1024;

/// A running watchdog; dropping it stops the watchdog thread (within one tick).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use sentry_lite_watchdog::{Watchdog, WatchdogOptions};
///
/// let _watchdog = Watchdog::start(WatchdogOptions::new().with_threshold(Duration::from_secs(1)));
/// ```
#[derive(Debug)]
#[must_use = "dropping the watchdog stops it"]
pub struct Watchdog {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Watchdog {
    /// Starts the watchdog thread. Reports go through the hub current on the
    /// calling thread (its client and scopes).
    pub fn start(options: WatchdogOptions) -> Self {
        let shared = Arc::new(Shared { stop: Mutex::new(false), wake: Condvar::new() });
        let hub = Hub::current();
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("sentry-watchdog".into())
                .spawn(move || Monitor::new(options, hub).run(&shared))
                .ok()
        };
        Self { shared, thread }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A stall being watched: one thread inside one poll.
struct Stall {
    /// The poll's start (heartbeat timestamp): a new value is a new poll.
    since: u64,
    /// When it was last seen stalled.
    last_seen: u64,
    location: u64,
}

struct Monitor {
    options: WatchdogOptions,
    hub: Arc<Hub>,
    /// By thread id.
    stalls: HashMap<i32, Stall>,
    reported: HashSet<u64>,
}

impl Monitor {
    fn new(options: WatchdogOptions, hub: Arc<Hub>) -> Self {
        Self { options, hub, stalls: HashMap::new(), reported: HashSet::new() }
    }

    fn run(mut self, shared: &Shared) {
        let tick = self.options.tick();
        let mut since_deadlock_check = Duration::ZERO;
        loop {
            {
                let mut stop = shared.stop.lock();
                if !*stop {
                    shared.wake.wait_for(&mut stop, tick);
                }
                if *stop {
                    return;
                }
            }
            // A bug here must not take the host down, nor stop the watching.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.check_stalls()));
            since_deadlock_check += tick;
            if since_deadlock_check >= self.options.deadlock_interval {
                since_deadlock_check = Duration::ZERO;
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| crate::deadlock::check(&self.hub)));
            }
        }
    }

    fn check_stalls(&mut self) {
        let now = heartbeat::now();
        let beats = heartbeat::beats();
        for beat in &beats {
            let since = beat.busy_since.load(Ordering::Relaxed);
            let stalled = since != 0 && heartbeat::between(since, now) >= self.options.threshold;
            let known = self.stalls.get(&beat.tid).filter(|s| s.since == since).is_some();
            if stalled && !known {
                self.recovered(beat.tid, now);
                let location = self.report_stall(beat, since, now);
                self.stalls.insert(beat.tid, Stall { since, last_seen: now, location });
            } else if stalled {
                if let Some(s) = self.stalls.get_mut(&beat.tid) {
                    s.last_seen = now;
                }
            } else {
                self.recovered(beat.tid, now);
            }
        }
        // Threads that ended while stalled.
        let live: HashSet<i32> = beats.iter().map(|b| b.tid).collect();
        let gone: Vec<i32> = self.stalls.keys().copied().filter(|t| !live.contains(t)).collect();
        for tid in gone {
            self.recovered(tid, now);
        }
    }

    /// Ends the stall of `tid`, if any: its duration becomes a breadcrumb, so the
    /// next event of the process shows how long the worker was stuck.
    fn recovered(&mut self, tid: i32, now: u64) {
        let Some(stall) = self.stalls.remove(&tid) else { return };
        // The poll ended between the last tick that saw it and this one: halfway.
        let ended = stall.last_seen + now.saturating_sub(stall.last_seen) / 2;
        let duration = heartbeat::between(stall.since, ended);
        let mut crumb = Breadcrumb::new(format!("thread {tid} recovered from a stall of {} ms", duration.as_millis()));
        crumb.category = Some("watchdog".into());
        crumb.level = Some(Level::Info);
        crumb.data.insert("thread.id".into(), json!(tid));
        crumb.data.insert("stall_duration_ms".into(), json!(duration.as_millis() as u64));
        crumb.data.insert("location".into(), json!(format!("{:016x}", stall.location)));
        Hub::run(self.hub.clone(), || sentry_lite_core::add_breadcrumb(crumb));
    }

    /// Takes the stalled thread's stack and reports it unless its location was
    /// reported before; returns the location.
    fn report_stall(&mut self, beat: &Beat, since: u64, now: u64) -> u64 {
        let stack = if self.options.capture_stacks { report::stack_of(beat.tid) } else { None };
        // Return addresses only: the stopped instruction moves within a busy loop.
        let location = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            stack.as_ref().map(|s| s.ips().get(1..).unwrap_or(&[]).to_vec()).hash(&mut h);
            h.finish()
        };
        if self.reported.len() >= MAX_LOCATIONS {
            self.reported.clear();
        }
        if !self.reported.insert(location) {
            return location;
        }
        let stalled_for = heartbeat::between(since, now);
        let name = beat.name.clone().or_else(|| report::proc_name(beat.tid));
        let runtime = beat.runtime.lock().clone();
        let shown = name.as_deref().unwrap_or("unnamed");
        let value = match &runtime {
            Some(rt) => format!(
                "thread '{shown}' of runtime '{rt}' has been inside one poll for {} ms",
                stalled_for.as_millis()
            ),
            None => format!("thread '{shown}' has been inside one poll for {} ms", stalled_for.as_millis()),
        };
        let mut event = Event::new();
        event.level = Some(Level::Warning);
        event.fingerprint = vec!["sentry-lite-watchdog".into(), "stall".into(), "{{ default }}".into()];
        event.contexts.insert(
            "watchdog".into(),
            report::context(vec![
                ("kind", json!("stall")),
                ("stall_duration_ms", json!(stalled_for.as_millis() as u64)),
                ("threshold_ms", json!(self.options.threshold.as_millis() as u64)),
                ("thread.id", json!(beat.tid)),
                ("thread.name", json!(name)),
                ("runtime", json!(runtime)),
                ("stack_captured", json!(stack.is_some())),
            ]),
        );
        let trace = (u128::from(beat.trace_hi.load(Ordering::Relaxed)) << 64)
            | u128::from(beat.trace_lo.load(Ordering::Relaxed));
        let span = beat.span.load(Ordering::Relaxed);
        if trace != 0 && span != 0 {
            event.contexts.insert(
                "trace".into(),
                Context::Trace(TraceContext {
                    trace_id: TraceId::from_int(trace),
                    span_id: SpanId::from_int(span),
                    ..TraceContext::default()
                }),
            );
        }
        let thread = ThreadReport {
            tid: beat.tid,
            name,
            state: report::proc_state(beat.tid),
            stack,
            crashed: true,
            ..ThreadReport::default()
        };
        let exception = report::exception("Stall", value, true);
        report::send(&self.hub, event, Some(exception), vec![thread]);
        location
    }
}
