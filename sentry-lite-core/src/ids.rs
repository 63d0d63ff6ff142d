//! Event, trace and span identifiers, and the fast id generator behind them.
//!
//! Ids come from a thread-local wyrand generator seeded once per thread from the
//! standard library's randomly keyed hasher: no syscall and no lock per id.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
    );
    hasher.write_usize(&hasher as *const _ as usize);
    hasher.finish() | 1
}

/// A fast non-cryptographic random `u64` (wyrand). Good for ids and sampling, not secrets.
pub(crate) fn random_u64() -> u64 {
    RNG.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

/// A uniformly distributed float in `[0, 1)` with 53 bits of precision.
pub(crate) fn random_f64() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Error returned when an id does not have the expected hex form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseIdError {
    expected_len: usize,
}

impl fmt::Display for ParseIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {} lowercase or uppercase hex digits", self.expected_len)
    }
}

impl std::error::Error for ParseIdError {}

fn parse_hex(s: &str, expected_len: usize) -> Result<u128, ParseIdError> {
    let err = ParseIdError { expected_len };
    if s.len() != expected_len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err);
    }
    u128::from_str_radix(s, 16).map_err(|_| err)
}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $repr:ty, $width:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name($repr);

        impl $name {
            /// A new random id (never all zeros).
            pub fn new() -> Self {
                loop {
                    let v = Self::from_random();
                    if v.0 != 0 {
                        return v;
                    }
                }
            }

            /// The all-zero id, which Sentry treats as "no id".
            pub const fn nil() -> Self {
                Self(0)
            }

            /// Whether this is the all-zero id.
            pub const fn is_nil(&self) -> bool {
                self.0 == 0
            }

            /// The id as an integer.
            pub const fn as_int(&self) -> $repr {
                self.0
            }

            /// Builds an id from its integer form.
            pub const fn from_int(v: $repr) -> Self {
                Self(v)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:0width$x}", self.0, width = $width)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex(s, $width).map(|v| Self(v as $repr))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                // Event ids may arrive as dashed UUIDs from other SDKs.
                let compact: String = s.chars().filter(|c| *c != '-').collect();
                compact.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_id!(
    /// A 32-hex-digit event id.
    EventId, u128, 32
);
hex_id!(
    /// A 32-hex-digit trace id.
    TraceId, u128, 32
);
hex_id!(
    /// A 16-hex-digit span id.
    SpanId, u64, 16
);

impl EventId {
    fn from_random() -> Self {
        // Keep the UUIDv4 shape so receivers that parse event ids as UUIDs accept them.
        let raw = (u128::from(random_u64()) << 64) | u128::from(random_u64());
        let bytes = uuid::Builder::from_random_bytes(raw.to_be_bytes()).into_uuid();
        Self(bytes.as_u128())
    }
}

impl TraceId {
    fn from_random() -> Self {
        Self((u128::from(random_u64()) << 64) | u128::from(random_u64()))
    }
}

impl SpanId {
    fn from_random() -> Self {
        Self(random_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_format_as_fixed_width_lowercase_hex() {
        assert_eq!(SpanId::from_int(0xab).to_string(), "00000000000000ab");
        assert_eq!(TraceId::from_int(1).to_string().len(), 32);
        let id = EventId::new();
        assert_eq!(id.to_string().len(), 32);
        assert_eq!(id.to_string().parse::<EventId>().unwrap(), id);
    }

    #[test]
    fn parse_rejects_wrong_length_and_non_hex() {
        assert!("abc".parse::<SpanId>().is_err());
        assert!("zzzzzzzzzzzzzzzz".parse::<SpanId>().is_err());
        assert!("+bcdef0123456789".parse::<SpanId>().is_err());
    }

    #[test]
    fn random_f64_is_in_unit_interval() {
        for _ in 0..10_000 {
            let v = random_f64();
            assert!((0.0..1.0).contains(&v));
        }
    }

    #[test]
    fn event_ids_deserialize_from_dashed_uuids() {
        let id: EventId = serde_json::from_str("\"0123456789abcdef0123456789abcdef\"").unwrap();
        let dashed: EventId = serde_json::from_str("\"01234567-89ab-cdef-0123-456789abcdef\"").unwrap();
        assert_eq!(id, dashed);
    }
}
