//! Stack traces whose frames are already JSON.
//!
//! Symbolicated frames repeat from event to event (the same instruction pointers
//! resolve to the same frames), so the worker keeps each frame serialized once and
//! writes those bytes into every event that contains it, instead of cloning ~50
//! frames' strings into the [`Event`] and serializing them again.
//!
//! Such an event holds an empty placeholder [`Stacktrace`] where the frames go;
//! [`serialize_event`] registers the placeholder (by address, for the duration of
//! the call) with its frames, and the `stacktrace` fields of [`Exception`] and
//! [`Thread`] write the registered frames when they serialize that placeholder.
//! Any other stack trace, including an empty one, serializes as usual.
//!
//! [`Exception`]: super::Exception
//! [`Thread`]: super::Thread

use std::cell::RefCell;
use std::rc::Rc;

use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::{Event, Stacktrace};

/// One serialized frame, shared by every event that contains it.
pub(crate) type RawFrame = Rc<RawValue>;

thread_local! {
    /// The placeholder being serialized on this thread and its frames.
    static CURRENT: RefCell<Option<(*const Stacktrace, Vec<RawFrame>)>> = const { RefCell::new(None) };
}

/// Serializes `event` as JSON into `out`; `placeholder` (inside `event`) is written
/// as a stack trace of `frames`.
pub(crate) fn serialize_event(
    event: &Event,
    placeholder: &Stacktrace,
    frames: Vec<RawFrame>,
    out: &mut Vec<u8>,
) -> serde_json::Result<()> {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            // Also on unwinding: a stale entry must not outlive this call.
            let _ = CURRENT.try_with(|c| c.borrow_mut().take());
        }
    }
    CURRENT.with(|c| *c.borrow_mut() = Some((placeholder as *const Stacktrace, frames)));
    let _reset = Reset;
    serde_json::to_writer(out, event)
}

/// `serialize_with` of the `stacktrace` fields: the registered frames for the
/// registered placeholder, else the stack trace itself.
pub(crate) fn serialize_stacktrace<S: Serializer>(value: &Option<Stacktrace>, s: S) -> Result<S::Ok, S::Error> {
    let Some(st) = value else { return s.serialize_none() };
    if !st.frames.is_empty() {
        return st.serialize(s);
    }
    let registered =
        CURRENT.try_with(|c| c.borrow().as_ref().is_some_and(|(ptr, _)| std::ptr::eq(*ptr, st))).unwrap_or(false);
    if !registered {
        return st.serialize(s);
    }
    CURRENT.with(|c| {
        let current = c.borrow();
        let frames = current.as_ref().map_or(&[][..], |(_, frames)| frames.as_slice());
        let mut out = s.serialize_struct("Stacktrace", 1)?;
        out.serialize_field("frames", &Frames(frames))?;
        out.end()
    })
}

struct Frames<'a>(&'a [RawFrame]);

impl Serialize for Frames<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for frame in self.0 {
            seq.serialize_element(&**frame)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Exception, Frame, Values};

    fn raw(frame: &Frame) -> RawFrame {
        Rc::from(serde_json::value::to_raw_value(frame).unwrap())
    }

    #[test]
    fn placeholder_is_written_as_the_registered_frames() {
        let frames = vec![
            Frame { function: Some("main".into()), in_app: Some(true), ..Default::default() },
            Frame { function: Some("a\"b".into()), lineno: Some(7), in_app: Some(false), ..Default::default() },
        ];
        let mut full = Event::new();
        full.exception = Some(Values {
            values: vec![Exception {
                ty: "E".into(),
                stacktrace: Some(Stacktrace { frames: frames.clone() }),
                ..Default::default()
            }],
        });
        let mut placeheld = full.clone();
        let slot = &mut placeheld.exception.as_mut().unwrap().values[0].stacktrace;
        *slot = Some(Stacktrace::default());
        let placeholder = placeheld.exception.as_ref().unwrap().values[0].stacktrace.as_ref().unwrap();

        let mut out = Vec::new();
        serialize_event(&placeheld, placeholder, frames.iter().map(raw).collect(), &mut out).unwrap();
        assert_eq!(out, serde_json::to_vec(&full).unwrap());
        // Registered only during the call: afterwards the placeholder is an empty trace.
        let after: serde_json::Value = serde_json::to_value(&placeheld).unwrap();
        assert_eq!(after["exception"]["values"][0]["stacktrace"], serde_json::json!({"frames": []}));
    }

    #[test]
    fn other_empty_stack_traces_are_not_replaced() {
        let mut event = Event::new();
        let exc = |ty: &'static str| Exception {
            ty: ty.into(),
            stacktrace: Some(Stacktrace::default()),
            ..Default::default()
        };
        event.exception = Some(Values { values: vec![exc("A"), exc("B")] });
        let placeholder = event.exception.as_ref().unwrap().values[1].stacktrace.as_ref().unwrap();
        let frame = raw(&Frame { function: Some("f".into()), ..Default::default() });
        let mut out = Vec::new();
        serialize_event(&event, placeholder, vec![frame], &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["exception"]["values"][0]["stacktrace"], serde_json::json!({"frames": []}));
        assert_eq!(v["exception"]["values"][1]["stacktrace"], serde_json::json!({"frames": [{"function": "f"}]}));
    }
}
