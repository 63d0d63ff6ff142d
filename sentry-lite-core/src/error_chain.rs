//! Turning `std::error::Error` chains into Sentry exceptions.

use std::error::Error;

use crate::protocol::{Exception, Mechanism};

/// Longest chain walked; deeper (or cyclic) `source()` chains are cut here.
pub(crate) const MAX_CHAIN: usize = 64;

/// The exception values for `error` and its `source()` chain, root cause first
/// and the outermost error last, linked through `exception_id` / `parent_id`.
/// `outer_type` names the outermost error's type when the caller knows it
/// (`std::any::type_name`); other types are read from `Debug` output.
pub fn exceptions_from_error(error: &(dyn Error + 'static), outer_type: Option<&str>) -> Vec<Exception> {
    let mut chain: Vec<Exception> = Vec::new();
    // Wide pointers: a struct and its first field share an address but not a vtable.
    let mut seen: Vec<*const dyn Error> = Vec::new();
    let mut current: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(err) = current {
        let ptr = err as *const dyn Error;
        #[allow(ambiguous_wide_pointer_comparisons)]
        let cyclic = seen.iter().any(|p| std::ptr::eq(*p, ptr));
        if chain.len() >= MAX_CHAIN || cyclic {
            break;
        }
        seen.push(ptr);
        let ty = if chain.is_empty() { outer_type.map(short_type_name) } else { None };
        chain.push(Exception {
            ty: ty.map(str::to_owned).unwrap_or_else(|| type_name_of(err)),
            value: Some(err.to_string()),
            ..Exception::default()
        });
        current = err.source();
    }
    let len = chain.len();
    for (i, exc) in chain.iter_mut().enumerate() {
        exc.mechanism = Some(Mechanism {
            ty: if i == 0 { "generic".into() } else { "chained".into() },
            handled: Some(true),
            exception_id: Some(i as u32),
            parent_id: if i == 0 { None } else { Some(i as u32 - 1) },
            source: (i > 0).then(|| "source".to_owned()),
            ..Mechanism::default()
        });
    }
    chain.reverse();
    if len > 0 {
        // Sentry reads the last value as the headline; its mechanism names the capture.
        let last = &mut chain[len - 1];
        if let Some(m) = &mut last.mechanism {
            m.ty = "generic".into();
        }
    }
    chain
}

/// A readable type name for an error whose concrete type is unknown: `Debug`
/// output up to the first delimiter is usually the type or variant name.
fn type_name_of(err: &dyn Error) -> String {
    // Debug output can be huge or recurse without end (deep or cyclic chains): stop
    // formatting once the name part is known.
    struct Bounded(String);
    impl std::fmt::Write for Bounded {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            if self.0.len() + s.len() > 160 {
                let room = 160usize.saturating_sub(self.0.len());
                let cut = (0..=room.min(s.len())).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
                self.0.push_str(&s[..cut]);
                return Err(std::fmt::Error);
            }
            self.0.push_str(s);
            Ok(())
        }
    }
    let mut out = Bounded(String::new());
    let _ = std::fmt::write(&mut out, format_args!("{err:?}"));
    let debug = out.0;
    let end = debug.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(debug.len());
    let name = &debug[..end.min(128)];
    if name.is_empty() || name.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        "Error".to_owned()
    } else {
        name.to_owned()
    }
}

/// `std::io::error::Error` → `std::io::Error`-style: keep the path, drop generic noise.
fn short_type_name(full: &str) -> &str {
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
}
