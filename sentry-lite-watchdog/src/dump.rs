//! Thread dumps on demand.

use std::sync::Arc;

use sentry_lite_core::{Event, EventId, Hub, Level, RawBacktrace};
use serde_json::json;

use crate::report::{self, ThreadReport};

/// Sends one event listing every thread of the process with its name, id, state
/// and stack (the `threads` interface); the calling thread is marked current.
/// A thread that does not stop for its stack within ~100 ms is listed without it.
///
/// Returns the event's id (nil when the SDK is disabled).
///
/// # Examples
/// ```
/// let id = sentry_lite_watchdog::capture_thread_dump();
/// assert!(id.is_nil(), "no client bound");
/// ```
pub fn capture_thread_dump() -> EventId {
    let hub = Hub::current();
    if !hub.is_active() {
        return EventId::nil();
    }
    capture_thread_dump_with(&hub, "thread dump")
}

#[inline(never)]
pub(crate) fn capture_thread_dump_with(hub: &Arc<Hub>, message: &str) -> EventId {
    let me = report::current_tid();
    let threads: Vec<ThreadReport> = report::process_threads()
        .into_iter()
        .map(|tid| ThreadReport {
            tid,
            name: report::proc_name(tid),
            state: report::proc_state(tid),
            stack: if tid == me { Some(RawBacktrace::capture()) } else { report::stack_of(tid) },
            current: tid == me,
            ..ThreadReport::default()
        })
        .collect();
    let with_stacks = threads.iter().filter(|t| t.stack.as_ref().is_some_and(|s| !s.is_empty())).count();
    let mut event = Event::new();
    event.level = Some(Level::Info);
    event.set_message(format!("{message}: {} threads", threads.len()));
    event.contexts.insert(
        "watchdog".into(),
        report::context(vec![
            ("kind", json!("thread_dump")),
            ("threads", json!(threads.len())),
            ("threads_with_stacks", json!(with_stacks)),
        ]),
    );
    report::send(hub, event, None, threads)
}
