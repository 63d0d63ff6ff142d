//! Span names and ops: stored inline or shared, so starting a span with a literal
//! (or a short) name and a well-known op allocates nothing.

use std::fmt;
use std::sync::Arc;

/// Inline capacity of a [`SpanName`].
const INLINE: usize = 30;

/// A span name: up to 30 bytes inline (no allocation), longer ones owned.
#[doc(hidden)]
#[derive(Clone)]
pub struct SpanName(NameRepr);

#[derive(Clone)]
enum NameRepr {
    Inline(u8, [u8; INLINE]),
    Owned(String),
}

impl Default for SpanName {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl SpanName {
    pub(crate) const EMPTY: SpanName = SpanName(NameRepr::Inline(0, [0; INLINE]));

    /// Sets the name to a copy of `s`, in place: a short name is written
    /// straight into the buffer of an inline name (a child's slot), not built
    /// and then moved (moving a struct right after writing it byte-wise stalls
    /// the loads that copy it).
    #[inline]
    pub(crate) fn set(&mut self, s: &str) {
        match &mut self.0 {
            NameRepr::Inline(len, buf) if s.len() <= INLINE => {
                buf[..s.len()].copy_from_slice(s.as_bytes());
                *len = s.len() as u8;
            }
            _ => *self = Self::copy(s),
        }
    }

    #[inline]
    fn copy(s: &str) -> Self {
        if s.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            SpanName(NameRepr::Inline(s.len() as u8, buf))
        } else {
            SpanName(NameRepr::Owned(s.to_owned()))
        }
    }
}

impl SpanName {
    /// Length in bytes (without the UTF-8 check of `deref`).
    pub(crate) fn byte_len(&self) -> usize {
        match &self.0 {
            NameRepr::Inline(len, _) => usize::from(*len),
            NameRepr::Owned(s) => s.len(),
        }
    }
}

impl std::ops::Deref for SpanName {
    type Target = str;
    fn deref(&self) -> &str {
        match &self.0 {
            // Copied from a `str` at a char boundary (its whole length).
            NameRepr::Inline(len, buf) => std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or_default(),
            NameRepr::Owned(s) => s,
        }
    }
}

impl fmt::Debug for SpanName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// What a span name can be given as: `&str` (copied, inline when short), `String`
/// (moved), `&String`, `Box<str>`, `Cow<str>`.
pub trait IntoSpanName {
    #[doc(hidden)]
    fn into_span_name(self) -> SpanName;

    /// Writes the name into `slot` (an empty name).
    #[doc(hidden)]
    #[inline]
    fn write_into(self, slot: &mut SpanName)
    where
        Self: Sized,
    {
        *slot = self.into_span_name();
    }
}

impl IntoSpanName for &str {
    #[inline]
    fn into_span_name(self) -> SpanName {
        SpanName::copy(self)
    }

    #[inline]
    fn write_into(self, slot: &mut SpanName) {
        slot.set(self);
    }
}

impl IntoSpanName for &mut str {
    fn into_span_name(self) -> SpanName {
        SpanName::copy(self)
    }
}

impl IntoSpanName for String {
    fn into_span_name(self) -> SpanName {
        SpanName(NameRepr::Owned(self))
    }
}

impl IntoSpanName for &String {
    fn into_span_name(self) -> SpanName {
        SpanName::copy(self)
    }
}

impl IntoSpanName for Box<str> {
    fn into_span_name(self) -> SpanName {
        SpanName(NameRepr::Owned(self.into()))
    }
}

impl IntoSpanName for std::borrow::Cow<'_, str> {
    fn into_span_name(self) -> SpanName {
        match self {
            std::borrow::Cow::Borrowed(s) => SpanName::copy(s),
            std::borrow::Cow::Owned(s) => SpanName(NameRepr::Owned(s)),
        }
    }
}

impl IntoSpanName for SpanName {
    fn into_span_name(self) -> SpanName {
        self
    }
}

/// An op or origin: well-known values are static, others shared.
#[derive(Clone, Debug)]
pub(crate) enum SharedStr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl std::ops::Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            SharedStr::Static(s) => s,
            SharedStr::Shared(s) => s,
        }
    }
}

/// Ops and origins common enough to never allocate: a `match`, which compiles
/// to a switch on the length and fixed-size compares (a scan of a list called
/// `memcmp` per entry of the same length: ~45 instructions for `db.query`).
macro_rules! well_known {
    ($($s:literal),* $(,)?) => {
        #[inline]
        fn well_known(s: &str) -> Option<&'static str> {
            match s {
                $($s => Some($s),)*
                _ => None,
            }
        }
    };
}

well_known![
    "db",
    "db.query",
    "db.sql.query",
    "db.redis",
    "db.sql",
    "http.client",
    "http.server",
    "function",
    "task",
    "work",
    "default",
    "cache.get",
    "cache.put",
    "cache.remove",
    "cache.flush",
    "queue.process",
    "queue.publish",
    "file.read",
    "file.write",
    "rpc",
    "grpc.client",
    "grpc.server",
    "middleware.handle",
    "template.render",
    "serialize",
    "ui.render",
    "graphql.execute",
    "websocket.server",
    "manual",
    "auto.tracing",
    "auto.http.axum",
    "auto.http.reqwest",
];

impl SharedStr {
    /// `None` for the empty string.
    #[inline]
    pub(crate) fn new(s: &str) -> Option<SharedStr> {
        if s.is_empty() {
            return None;
        }
        Some(match well_known(s) {
            Some(k) => SharedStr::Static(k),
            None => SharedStr::Shared(Arc::from(s)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::SharedStr;

    #[test]
    fn well_known_ops_are_static_others_shared() {
        assert!(matches!(SharedStr::new("db.query"), Some(SharedStr::Static("db.query"))));
        assert!(matches!(SharedStr::new("auto.http.reqwest"), Some(SharedStr::Static(_))));
        // Same length as a well-known op, different bytes.
        assert!(matches!(SharedStr::new("db.quers"), Some(SharedStr::Shared(s)) if &*s == "db.quers"));
        assert!(SharedStr::new("").is_none());
    }
}
