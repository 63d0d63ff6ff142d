//! Building the event for a panic.

use std::any::Any;
use std::panic::{Location, PanicHookInfo};

use sentry_lite_core::protocol::{Context, Event, Exception, Frame, Level, Mechanism, Stacktrace, Thread, Values};

/// The `contexts` key holding the panic's location.
const CONTEXT_KEY: &str = "panic";

/// The panic payload as text: `&str` and `String` payloads as they are, anything
/// else `Box<dyn Any>` (what std prints too).
///
/// # Examples
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
/// assert_eq!(sentry_lite_panic::panic_message(&*payload), "boom 1");
/// let payload = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
/// assert_eq!(sentry_lite_panic::panic_message(&*payload), "Box<dyn Any>");
/// ```
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

/// Builds the fatal event for a panic seen by a panic hook: an exception of type
/// `panic` with the payload as value and mechanism `{type: panic, handled: false}`,
/// the crashed current thread, and the location in `contexts.panic`. No stack trace:
/// the hook captures it and the worker symbolicates it.
///
/// The same function serves code that caught a panic itself (e.g. with
/// `catch_unwind`): pass the payload and, when known, the location.
///
/// # Examples
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("boom")).unwrap_err();
/// let event = sentry_lite_panic::event_from_panic(&*payload, None);
/// let exc = &event.exception.as_ref().unwrap().values[0];
/// assert_eq!(exc.value.as_deref(), Some("boom"));
/// assert_eq!(exc.mechanism.as_ref().unwrap().handled, Some(false));
/// ```
pub fn event_from_panic(payload: &(dyn Any + Send), location: Option<&Location<'_>>) -> Event {
    event_from_parts(panic_message(payload), location.map(PanicLocation::from))
}

/// Where a panic happened, owned (a hook's `Location` does not outlive the hook).
#[derive(Debug, Clone)]
pub(crate) struct PanicLocation {
    file: String,
    line: u32,
    column: u32,
}

impl From<&Location<'_>> for PanicLocation {
    fn from(loc: &Location<'_>) -> Self {
        PanicLocation { file: loc.file().to_owned(), line: loc.line(), column: loc.column() }
    }
}

/// [`event_from_panic`] from the payload's text and the location.
pub(crate) fn event_from_parts(message: &str, location: Option<PanicLocation>) -> Event {
    let thread = std::thread::current();
    let thread_id = thread_id_number(&thread);
    let thread_name = thread.name().map(str::to_owned);

    let mut event = Event::new();
    event.level = Some(Level::Fatal);
    event.exception = Some(Values {
        values: vec![Exception {
            ty: "panic".into(),
            value: Some(message.to_owned()),
            thread_id: Some(thread_id),
            mechanism: Some(Mechanism { ty: "panic".into(), handled: Some(false), ..Mechanism::default() }),
            ..Exception::default()
        }],
    });
    event.threads = Some(Values {
        values: vec![Thread {
            id: thread_id,
            main: Some(thread_name.as_deref() == Some("main")),
            name: thread_name,
            crashed: Some(true),
            current: Some(true),
            stacktrace: None,
            ..Thread::default()
        }],
    });
    if let Some(loc) = location {
        let joined = format!("{}:{}:{}", loc.file, loc.line, loc.column);
        event.contexts.insert(
            CONTEXT_KEY.into(),
            Context::other([
                ("file", serde_json::Value::from(loc.file)),
                ("line", loc.line.into()),
                ("column", loc.column.into()),
                ("location", joined.into()),
            ]),
        );
    }
    event
}

/// [`event_from_panic`] for the argument of a panic hook.
pub(crate) fn event_from_hook_info(info: &PanicHookInfo<'_>) -> Event {
    event_from_panic(info.payload(), info.location())
}

/// The numeric part of `ThreadId(N)`: stable per thread for the life of the process.
fn thread_id_number(thread: &std::thread::Thread) -> u64 {
    let debug = format!("{:?}", thread.id());
    debug.chars().filter(char::is_ascii_digit).collect::<String>().parse().unwrap_or(0)
}

/// Makes the panic location the crashing frame when the symbolicated stack does not
/// already show it near the top (e.g. no debug info, or a trimmed stack).
pub(crate) fn add_location_frame(mut event: Event) -> Event {
    let Some(Context::Other(panic)) = event.contexts.get(CONTEXT_KEY) else { return event };
    let (Some(file), Some(line)) =
        (panic.get("file").and_then(|v| v.as_str()), panic.get("line").and_then(|v| v.as_u64()))
    else {
        return event;
    };
    let line = u32::try_from(line).unwrap_or(u32::MAX);
    let column = panic.get("column").and_then(|v| v.as_u64()).and_then(|c| u32::try_from(c).ok());
    let Some(exc) = event
        .exception
        .as_mut()
        .and_then(|e| e.values.last_mut())
        .filter(|e| e.mechanism.as_ref().is_some_and(|m| m.ty == "panic"))
    else {
        return event;
    };
    let file = file.to_owned();
    let stacktrace = exc.stacktrace.get_or_insert_with(Stacktrace::default);
    let already_shown = stacktrace.frames.iter().rev().take(6).any(|f| frame_is_at(f, &file, line));
    if !already_shown {
        let short = std::path::Path::new(&file).file_name().map(|n| n.to_string_lossy().into_owned());
        let in_app = !(file.contains("/rustc/") || file.contains("/.cargo/registry/") || file.starts_with("library/"));
        stacktrace.frames.push(Frame {
            filename: short.or_else(|| Some(file.clone())),
            abs_path: Some(file),
            lineno: Some(line),
            colno: column,
            in_app: Some(in_app),
            ..Frame::default()
        });
    }
    event
}

fn frame_is_at(frame: &Frame, file: &str, line: u32) -> bool {
    if frame.lineno != Some(line) {
        return false;
    }
    let file = file.trim_start_matches("./");
    frame.abs_path.as_deref().is_some_and(|p| p.ends_with(file))
        || frame.filename.as_deref().is_some_and(|f| std::path::Path::new(file).file_name().is_some_and(|n| n == f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_texts() {
        let p: Box<dyn Any + Send> = Box::new("static");
        assert_eq!(panic_message(&*p), "static");
        let p: Box<dyn Any + Send> = Box::new(String::from("owned"));
        assert_eq!(panic_message(&*p), "owned");
        let p: Box<dyn Any + Send> = Box::new(42i32);
        assert_eq!(panic_message(&*p), "Box<dyn Any>");
    }

    #[test]
    fn event_shape_and_location_frame() {
        let payload: Box<dyn Any + Send> = Box::new("boom");
        let loc = Location::caller();
        let event = event_from_panic(&*payload, Some(loc));
        assert_eq!(event.level, Some(Level::Fatal));
        let thread = event.threads.as_ref().unwrap().values[0].clone();
        assert_eq!((thread.crashed, thread.current), (Some(true), Some(true)));
        assert!(thread.id > 0);
        let event = add_location_frame(event);
        let exc = &event.exception.as_ref().unwrap().values[0];
        assert_eq!(exc.thread_id, Some(thread.id));
        let top = exc.stacktrace.as_ref().unwrap().frames.last().unwrap();
        assert_eq!(top.lineno, Some(loc.line()));
        assert_eq!(top.abs_path.as_deref(), Some(loc.file()));
        // Idempotent: the frame is not added twice.
        let event = add_location_frame(event);
        assert_eq!(event.exception.unwrap().values[0].stacktrace.as_ref().unwrap().frames.len(), 1);
    }
}
