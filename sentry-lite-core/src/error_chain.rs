//! Turning `std::error::Error` chains into Sentry exceptions.

use std::borrow::Cow;
use std::error::Error;

use crate::protocol::{Exception, Mechanism};

/// Longest chain walked; deeper (or cyclic) `source()` chains are cut here.
pub(crate) const MAX_CHAIN: usize = 64;

/// The exception values for `error` and its `source()` chain, root cause first
/// and the outermost error last, linked through `exception_id` / `parent_id`.
/// `outer_type` names the outermost error's type when the caller knows it
/// (`std::any::type_name`); other types are read from `Debug` output.
pub fn exceptions_from_error(error: &(dyn Error + 'static), outer_type: Option<&'static str>) -> Vec<Exception> {
    // The caller's thread pays for this: no allocation beyond the exceptions' own
    // strings. Wide pointers: a struct and its first field share an address but not
    // a vtable.
    let mut seen: [Option<*const dyn Error>; MAX_CHAIN] = [None; MAX_CHAIN];
    let mut chain: Vec<Exception> = Vec::with_capacity(4);
    let mut current: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(err) = current {
        let ptr = err as *const dyn Error;
        #[allow(ambiguous_wide_pointer_comparisons)]
        let cyclic = seen[..chain.len()].iter().flatten().any(|p| std::ptr::eq(*p, ptr));
        if chain.len() >= MAX_CHAIN || cyclic {
            break;
        }
        seen[chain.len()] = Some(ptr);
        let ty = match outer_type {
            Some(outer) if chain.is_empty() => Cow::Borrowed(short_type_name(outer)),
            _ => type_name_of(err),
        };
        chain.push(Exception { ty, value: Some(display_string(err)), ..Exception::default() });
        current = err.source();
    }
    for (i, exc) in chain.iter_mut().enumerate() {
        // The outermost error (i == 0, last once reversed) is the headline, so its
        // mechanism names the capture; the causes are chained to it.
        exc.mechanism = Some(Mechanism {
            ty: Cow::Borrowed(if i == 0 { "generic" } else { "chained" }),
            handled: Some(true),
            exception_id: Some(i as u32),
            parent_id: if i == 0 { None } else { Some(i as u32 - 1) },
            source: (i > 0).then_some(Cow::Borrowed("source")),
            ..Mechanism::default()
        });
    }
    chain.reverse();
    chain
}

/// `err.to_string()` with room for a usual message reserved up front: one
/// allocation instead of a growing buffer, and no panic if `Display` fails.
fn display_string(err: &dyn Error) -> String {
    let mut out = String::with_capacity(64);
    let _ = std::fmt::write(&mut out, format_args!("{err}"));
    out
}

/// Longest type name kept from `Debug` output.
const MAX_TYPE_NAME: usize = 128;

/// A readable type name for an error whose concrete type is unknown: `Debug`
/// output up to the first delimiter is usually the type or variant name.
fn type_name_of(err: &(dyn Error + 'static)) -> Cow<'static, str> {
    // `io::Error`'s Debug output starts with its representation (`Custom`, `Os`,
    // `Kind`), not its type.
    if err.is::<std::io::Error>() {
        return Cow::Borrowed(IO_ERROR);
    }
    // Keeps the leading name characters of the Debug output on the stack and stops
    // the formatting at the first other character: the fields after it (possibly
    // huge, or recursing without end in deep or cyclic chains) are never formatted.
    struct NamePrefix {
        buf: [u8; MAX_TYPE_NAME],
        len: usize,
    }
    impl std::fmt::Write for NamePrefix {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let room = MAX_TYPE_NAME - self.len;
            let bytes = s.as_bytes();
            let mut take = 0;
            let mut done = false;
            while take < bytes.len() {
                let width = match bytes[take] {
                    b if b.is_ascii_alphanumeric() || b == b'_' || b == b':' => 1,
                    b if b.is_ascii() => 0,
                    _ => s[take..].chars().next().filter(|c| c.is_alphanumeric()).map_or(0, char::len_utf8),
                };
                if width == 0 || take + width > room {
                    done = true;
                    break;
                }
                take += width;
            }
            self.buf[self.len..self.len + take].copy_from_slice(&bytes[..take]);
            self.len += take;
            if done {
                Err(std::fmt::Error)
            } else {
                Ok(())
            }
        }
    }
    let mut out = NamePrefix { buf: [0; MAX_TYPE_NAME], len: 0 };
    let _ = std::fmt::write(&mut out, format_args!("{err:?}"));
    // Whole characters only were copied, so this is valid UTF-8.
    let name = std::str::from_utf8(&out.buf[..out.len]).unwrap_or("");
    if name.is_empty() || name.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        Cow::Borrowed("Error")
    } else {
        interned(name)
    }
}

/// Type names kept for the life of the process; beyond this many, names are
/// allocated per capture. At most `MAX_INTERNED * MAX_TYPE_NAME` bytes (8 KiB).
const MAX_INTERNED: usize = 64;

static INTERNED: parking_lot::Mutex<Vec<&'static str>> = parking_lot::Mutex::new(Vec::new());

/// `name` as a `'static` string: an app has a handful of error types, so each
/// name is leaked once and later captures of it allocate nothing.
fn interned(name: &str) -> Cow<'static, str> {
    // Never wait for another capturing thread: it is cheaper to allocate.
    let Some(mut names) = INTERNED.try_lock() else { return Cow::Owned(name.to_owned()) };
    if let Some(known) = names.iter().find(|n| n.len() == name.len() && **n == name) {
        return Cow::Borrowed(known);
    }
    if names.len() >= MAX_INTERNED {
        return Cow::Owned(name.to_owned());
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.push(leaked);
    Cow::Borrowed(leaked)
}

/// How `std::io::Error` is named, wherever it is in the chain.
const IO_ERROR: &str = "std::io::Error";

/// A type's path without generic arguments; `std::io::error::Error` is named
/// as in the docs, the same as when it is found as a source.
fn short_type_name(full: &str) -> &str {
    if full == "std::io::error::Error" {
        return IO_ERROR;
    }
    full.split('<').next().unwrap_or(full)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Outer(Middle);
    #[derive(Debug)]
    struct Middle(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("config failed")
        }
    }
    impl fmt::Display for Middle {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("parse failed")
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }
    impl Error for Middle {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn chain_is_root_cause_first() {
        let err = Outer(Middle(std::io::Error::new(std::io::ErrorKind::NotFound, "no file")));
        let values = exceptions_from_error(&err, Some(std::any::type_name::<Outer>()));
        let values_text: Vec<_> = values.iter().map(|e| e.value.clone().unwrap()).collect();
        assert_eq!(values_text, ["no file", "parse failed", "config failed"]);
        assert!(values[2].ty.ends_with("Outer"));
        assert_eq!(values[1].ty, "Middle");
        assert_eq!(values[2].mechanism.as_ref().unwrap().ty, "generic");
        assert_eq!(values[2].mechanism.as_ref().unwrap().handled, Some(true));
        assert_eq!(values[0].mechanism.as_ref().unwrap().parent_id, Some(1));
    }

    #[derive(Debug)]
    struct Cyclic;
    impl fmt::Display for Cyclic {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("cyclic")
        }
    }
    static CYCLIC: Cyclic = Cyclic;
    impl Error for Cyclic {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&CYCLIC)
        }
    }

    #[test]
    fn cyclic_chains_stop() {
        let values = exceptions_from_error(&CYCLIC, None);
        assert_eq!(values.len(), 1);
    }

    struct Named(&'static str);
    impl fmt::Debug for Named {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)?;
            f.write_str("(")?;
            unreachable!("formatting stops at the first delimiter")
        }
    }
    impl fmt::Display for Named {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("named")
        }
    }
    impl Error for Named {}

    #[test]
    fn type_names_from_debug_output() {
        assert_eq!(type_name_of(&Named("Timeout")), "Timeout");
        assert_eq!(type_name_of(&Named("déjà_vu::Fehler")), "déjà_vu::Fehler");
        assert_eq!(type_name_of(&Named("")), "Error");
        assert_eq!(type_name_of(&Named("404")), "Error");
        // Cut at 128 bytes, on a character boundary.
        let long: &'static str = "é".repeat(100).leak();
        assert_eq!(type_name_of(&Named(long)), "é".repeat(64));
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        assert_eq!(type_name_of(&io), "std::io::Error", "not its representation's name");
        assert_eq!(type_name_of(&std::io::Error::from_raw_os_error(2)), "std::io::Error");
        // The same name when io::Error is the captured (outermost) error.
        let chain = exceptions_from_error(&io, Some(std::any::type_name::<std::io::Error>()));
        assert_eq!(chain[0].ty, "std::io::Error");
    }

    #[test]
    fn repeated_type_names_are_shared_and_the_table_is_bounded() {
        // A capture on another test thread may hold the table for a moment.
        let shared = |name| {
            (0..1_000)
                .find_map(|_| match type_name_of(&Named(name)) {
                    Cow::Borrowed(s) => Some(s),
                    Cow::Owned(_) => None,
                })
                .expect("interned")
        };
        assert!(std::ptr::eq(shared("RepeatedName"), shared("RepeatedName")), "one copy for the process");
        // Past the cap names are still right, just allocated per capture.
        for i in 0..MAX_INTERNED + 8 {
            let name: &'static str = format!("Distinct{i}").leak();
            assert_eq!(type_name_of(&Named(name)), name);
        }
        assert!(INTERNED.lock().len() <= MAX_INTERNED);
    }

    #[derive(Debug)]
    struct BrokenDisplay;
    impl fmt::Display for BrokenDisplay {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("half a message")?;
            Err(fmt::Error)
        }
    }
    impl Error for BrokenDisplay {}

    #[test]
    fn a_failing_display_gives_what_it_wrote_instead_of_a_panic() {
        // `to_string()` panics here; a capture must not.
        let values = exceptions_from_error(&BrokenDisplay, None);
        assert_eq!(values[0].value.as_deref(), Some("half a message"));
        assert_eq!(values[0].ty, "BrokenDisplay");
    }
}
