//! Trace propagation headers: `sentry-trace`, W3C `traceparent` and W3C `baggage`.
//!
//! Everything here is a pure function of its input. The parsers never panic, allocate
//! only for what they return, and do bounded work whatever the input size: incoming
//! `baggage` is considered up to [`MAX_BAGGAGE_BYTES`] bytes and [`MAX_BAGGAGE_MEMBERS`]
//! members, and outgoing `baggage` is kept within the same bounds.

use std::fmt;

use crate::ids::{SpanId, TraceId};

pub(crate) mod baggage;
mod targets;
pub use baggage::{Baggage, MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS};
pub use targets::TracePropagationTargets;

/// Longest numeric string accepted by the rate parsers (anything longer is garbage).
const MAX_NUMBER_LEN: usize = 64;

pub(super) fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Exactly `len` lowercase hex digits.
fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A non-nil trace id written as 32 lowercase hex digits.
fn parse_trace_id(s: &str) -> Option<TraceId> {
    if !is_lower_hex(s, 32) {
        return None;
    }
    s.parse::<TraceId>().ok().filter(|id| !id.is_nil())
}

/// A non-nil span id written as 16 lowercase hex digits.
fn parse_span_id(s: &str) -> Option<SpanId> {
    if !is_lower_hex(s, 16) {
        return None;
    }
    s.parse::<SpanId>().ok().filter(|id| !id.is_nil())
}

// ---------------------------------------------------------------------------------
// sentry-trace
// ---------------------------------------------------------------------------------

/// The `sentry-trace` header: `{trace_id}-{span_id}[-{1|0}]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SentryTrace {
    /// Trace id.
    pub trace_id: TraceId,
    /// Id of the span that made the outgoing request (the parent of ours).
    pub span_id: SpanId,
    /// The upstream sampling decision; `None` when it was deferred.
    pub sampled: Option<bool>,
}

impl SentryTrace {
    /// Parses a `sentry-trace` value. Surrounding whitespace is ignored; anything but
    /// 32 + 16 lowercase hex digits and an optional `1`/`0` flag, all separated by
    /// single dashes, is rejected, as are all-zero ids.
    pub fn parse(header: &str) -> Option<Self> {
        let s = header.trim();
        // 32 + 1 + 16 + 2: longer values cannot be valid, don't look at them.
        if s.len() > 51 {
            return None;
        }
        let mut parts = s.split('-');
        let trace_id = parse_trace_id(parts.next()?)?;
        let span_id = parse_span_id(parts.next()?)?;
        let sampled = match parts.next() {
            None => None,
            Some("1") => Some(true),
            Some("0") => Some(false),
            Some(_) => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Self { trace_id, span_id, sampled })
    }
}

impl fmt::Display for SentryTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.trace_id, self.span_id)?;
        match self.sampled {
            Some(true) => f.write_str("-1"),
            Some(false) => f.write_str("-0"),
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------
// traceparent
// ---------------------------------------------------------------------------------

/// The W3C `traceparent` header: `00-{trace_id}-{span_id}-{flags}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// Trace id.
    pub trace_id: TraceId,
    /// Id of the parent span.
    pub span_id: SpanId,
    /// The `sampled` trace flag (bit 0). Parsing always yields `Some`; `None` is
    /// written as not sampled (`00`), since the format has no "deferred" state.
    pub sampled: Option<bool>,
}

/// Length of a version-00 `traceparent`: `vv-` + 32 + `-` + 16 + `-ff`.
const TRACEPARENT_LEN: usize = 55;

impl TraceParent {
    /// Parses a `traceparent` value per W3C Trace Context: lowercase hex only,
    /// version `ff` invalid, all-zero ids invalid, version `00` exactly 55 characters.
    /// Higher (future) versions may carry more fields after a dash, which are ignored.
    pub fn parse(header: &str) -> Option<Self> {
        let s = header.trim();
        let b = s.as_bytes();
        if b.len() < TRACEPARENT_LEN {
            return None;
        }
        let version = s.get(0..2)?;
        if !is_lower_hex(version, 2) || version == "ff" {
            return None;
        }
        if version == "00" && b.len() != TRACEPARENT_LEN {
            return None;
        }
        if b.len() > TRACEPARENT_LEN && b.get(TRACEPARENT_LEN) != Some(&b'-') {
            return None;
        }
        if b.get(2) != Some(&b'-') || b.get(35) != Some(&b'-') || b.get(52) != Some(&b'-') {
            return None;
        }
        let trace_id = parse_trace_id(s.get(3..35)?)?;
        let span_id = parse_span_id(s.get(36..52)?)?;
        let flags = s.get(53..55)?;
        if !is_lower_hex(flags, 2) {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(Self { trace_id, span_id, sampled: Some(flags & 1 == 1) })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = if self.sampled == Some(true) { "01" } else { "00" };
        write!(f, "00-{}-{}-{}", self.trace_id, self.span_id, flags)
    }
}

// ---------------------------------------------------------------------------------
// sample rates
// ---------------------------------------------------------------------------------

fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() || s.len() > MAX_NUMBER_LEN {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    // Normalizes -0.0.
    v.is_finite().then_some(v + 0.0)
}

/// Parses a `sample_rand`: a finite decimal in `[0, 1)`.
pub fn parse_sample_rand(s: &str) -> Option<f64> {
    parse_number(s).filter(|v| (0.0..1.0).contains(v))
}

/// Parses a `sample_rate`: a finite decimal in `[0, 1]`.
pub fn parse_sample_rate(s: &str) -> Option<f64> {
    parse_number(s).filter(|v| (0.0..=1.0).contains(v))
}

/// Formats a rate compactly and exactly: the shortest decimal that reads back as the
/// same `f64`, never in exponent notation (`1`, `0.25`, `0.032856`). A `sample_rand`
/// drawn in steps of 10⁻⁶ therefore never gets more than 6 decimals; for an arbitrary
/// value use [`format_sample_rand`]. Values are clamped to `[0, 1]`; NaN gives `0`.
pub fn format_rate(v: f64) -> String {
    if v.is_nan() || v <= 0.0 {
        return "0".to_owned();
    }
    if v >= 1.0 {
        return "1".to_owned();
    }
    // Rust's `Display` for floats is the shortest round-trip form without exponent.
    format!("{v}")
}

/// Formats a `sample_rand` with at most 6 decimals, truncating (never rounding up, so
/// the result stays below 1 and never exceeds the value). Clamped to `[0, 0.999999]`.
pub fn format_sample_rand(v: f64) -> String {
    if v.is_nan() || v <= 0.0 {
        return "0".to_owned();
    }
    if v >= 1.0 {
        return "0.999999".to_owned();
    }
    // Fast path: away from a multiple of 1e-6, scaling cannot move the value across
    // one (the scaling error and the distance to the shortest form are ~1e-10), so
    // the integer part of `v * 1e6` is the truncated shortest form's digits.
    let scaled = v * 1e6;
    // This SDK draws `sample_rand` in steps of 1e-6: when `v` is the double nearest
    // to k / 1e6, its shortest form is that decimal (any other decimal with at most
    // six places is 1e-6 away), so the digits are k's.
    let nearest = scaled.round();
    if nearest / 1e6 == v && nearest < 1e6 {
        return six_decimals(nearest as u32);
    }
    let whole = scaled.floor();
    let frac = scaled - whole;
    if frac > 1e-6 && frac < 1.0 - 1e-6 && whole < 1e6 {
        return six_decimals(whole as u32);
    }
    format_sample_rand_exact(v)
}

/// `0.dddddd` without trailing zeros (`0` for zero), for `k` millionths.
fn six_decimals(k: u32) -> String {
    if k == 0 {
        return "0".to_owned();
    }
    let mut out = *b"0.000000";
    let mut n = k;
    for digit in out[2..].iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let zeros = out.iter().rev().take_while(|d| **d == b'0').count();
    String::from_utf8_lossy(&out[..out.len() - zeros]).into_owned()
}

/// [`format_sample_rand`] through the shortest form as text, for values near a
/// multiple of 1e-6, where scaling could round across it.
fn format_sample_rand_exact(v: f64) -> String {
    // Truncate the exact shortest form as text: no floating-point error from scaling.
    let full = format!("{v}");
    let end = full.find('.').map_or(full.len(), |dot| full.len().min(dot + 7));
    let truncated = full.get(..end).unwrap_or("0").trim_end_matches('0').trim_end_matches('.');
    if truncated.is_empty() {
        "0".to_owned()
    } else {
        truncated.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::random_u64;

    const TRACE: &str = "771a43a4192642f0b136d5159a501700";
    const SPAN: &str = "b0e6f15b45c36b12";

    #[test]
    fn sentry_trace_valid() {
        let t = SentryTrace::parse(&format!("{TRACE}-{SPAN}-1")).unwrap();
        assert_eq!(t.trace_id.to_string(), TRACE);
        assert_eq!(t.span_id.to_string(), SPAN);
        assert_eq!(t.sampled, Some(true));
        assert_eq!(SentryTrace::parse(&format!("{TRACE}-{SPAN}-0")).unwrap().sampled, Some(false));
        assert_eq!(SentryTrace::parse(&format!("  {TRACE}-{SPAN}\t")).unwrap().sampled, None);
    }

    #[test]
    fn sentry_trace_invalid() {
        for bad in [
            String::new(),
            "-".into(),
            TRACE.into(),
            format!("{TRACE}-"),
            format!("{TRACE}-{SPAN}-"),
            format!("{TRACE}-{SPAN}-2"),
            format!("{TRACE}-{SPAN}-true"),
            format!("{TRACE}-{SPAN}-1-1"),
            format!("{TRACE}0-{SPAN}"),
            format!("{TRACE}-{SPAN}0"),
            format!("{}-{SPAN}", TRACE.to_uppercase()),
            format!("{}-{SPAN}", "0".repeat(32)),
            format!("{TRACE}-{}", "0".repeat(16)),
            format!("{TRACE}--{SPAN}"),
            format!("{TRACE} -{SPAN}"),
            format!("+{}-{SPAN}", &TRACE[1..]),
            format!("{}g-{SPAN}", &TRACE[1..]),
        ] {
            assert_eq!(SentryTrace::parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sentry_trace_round_trip() {
        for sampled in [None, Some(true), Some(false)] {
            let t = SentryTrace { trace_id: TraceId::new(), span_id: SpanId::new(), sampled };
            assert_eq!(SentryTrace::parse(&t.to_string()), Some(t));
        }
        let s = format!("{TRACE}-{SPAN}-1");
        assert_eq!(SentryTrace::parse(&s).unwrap().to_string(), s);
    }

    #[test]
    fn traceparent_valid() {
        let t = TraceParent::parse(&format!("00-{TRACE}-{SPAN}-01")).unwrap();
        assert_eq!((t.trace_id.to_string(), t.span_id.to_string(), t.sampled), (TRACE.into(), SPAN.into(), Some(true)));
        assert_eq!(TraceParent::parse(&format!(" 00-{TRACE}-{SPAN}-00 ")).unwrap().sampled, Some(false));
        // Other flag bits are ignored.
        assert_eq!(TraceParent::parse(&format!("00-{TRACE}-{SPAN}-03")).unwrap().sampled, Some(true));
        assert_eq!(TraceParent::parse(&format!("00-{TRACE}-{SPAN}-fe")).unwrap().sampled, Some(false));
        // Future versions may append fields.
        assert!(TraceParent::parse(&format!("01-{TRACE}-{SPAN}-01")).is_some());
        assert!(TraceParent::parse(&format!("cc-{TRACE}-{SPAN}-01-what-the-future-holds")).is_some());
    }

    #[test]
    fn traceparent_invalid() {
        for bad in [
            String::new(),
            format!("ff-{TRACE}-{SPAN}-01"),
            format!("00-{TRACE}-{SPAN}-01-extra"),
            format!("00-{TRACE}-{SPAN}-1"),
            format!("00-{TRACE}-{SPAN}"),
            format!("0-{TRACE}-{SPAN}-01"),
            format!("cc-{TRACE}-{SPAN}-01extra"),
            format!("00-{}-{SPAN}-01", "0".repeat(32)),
            format!("00-{TRACE}-{}-01", "0".repeat(16)),
            format!("00-{}-{SPAN}-01", TRACE.to_uppercase()),
            format!("00-{TRACE}-{SPAN}-0G"),
            format!("0g-{TRACE}-{SPAN}-01"),
            format!("00_{TRACE}-{SPAN}-01"),
            format!("00-{TRACE}a-{}-01", &SPAN[1..]),
            format!("00-{TRACE}-{SPAN}-é"),
        ] {
            assert_eq!(TraceParent::parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn traceparent_round_trip() {
        for sampled in [Some(true), Some(false)] {
            let t = TraceParent { trace_id: TraceId::new(), span_id: SpanId::new(), sampled };
            assert_eq!(TraceParent::parse(&t.to_string()), Some(t));
        }
        let none = TraceParent { trace_id: TraceId::new(), span_id: SpanId::new(), sampled: None };
        assert!(none.to_string().ends_with("-00"));
        assert_eq!(
            format!("00-{TRACE}-{SPAN}-01"),
            TraceParent::parse(&format!("00-{TRACE}-{SPAN}-01")).unwrap().to_string()
        );
    }

    #[test]
    fn sample_rate_and_rand_parsing() {
        assert_eq!(parse_sample_rand("0.5"), Some(0.5));
        assert_eq!(parse_sample_rand(" 0 "), Some(0.0));
        assert_eq!(parse_sample_rand("-0"), Some(0.0));
        assert_eq!(parse_sample_rand("1"), None);
        assert_eq!(parse_sample_rand("1.0"), None);
        assert_eq!(parse_sample_rand("-0.1"), None);
        assert_eq!(parse_sample_rand("NaN"), None);
        assert_eq!(parse_sample_rand("inf"), None);
        assert_eq!(parse_sample_rand(""), None);
        assert_eq!(parse_sample_rand("abc"), None);
        assert_eq!(parse_sample_rate("1"), Some(1.0));
        assert_eq!(parse_sample_rate("1.0"), Some(1.0));
        assert_eq!(parse_sample_rate("0.01337"), Some(0.01337));
        assert_eq!(parse_sample_rate("1.0000001"), None);
        assert_eq!(parse_sample_rate("-inf"), None);
        assert_eq!(parse_sample_rate(&"0".repeat(100)), None);
    }

    #[test]
    fn rate_formatting() {
        assert_eq!(format_rate(1.0), "1");
        assert_eq!(format_rate(0.25), "0.25");
        assert_eq!(format_rate(0.032856), "0.032856");
        assert_eq!(format_rate(0.0), "0");
        assert_eq!(format_rate(1e-7), "0.0000001");
        assert_eq!(format_rate(f64::NAN), "0");
        assert_eq!(format_rate(-1.0), "0");
        assert_eq!(format_rate(2.0), "1");
        assert_eq!(format_sample_rand(0.032856), "0.032856");
        assert_eq!(format_sample_rand(0.0328569999), "0.032856");
        assert_eq!(format_sample_rand(0.9999999999), "0.999999");
        assert_eq!(format_sample_rand(0.5), "0.5");
        assert_eq!(format_sample_rand(1e-7), "0");
        assert_eq!(format_sample_rand(0.57), "0.57");
        for _ in 0..10_000 {
            let v = crate::ids::random_f64();
            let rate = format_rate(v);
            assert!(!rate.contains('e'));
            assert_eq!(parse_sample_rate(&rate), Some(v));
            let rand = format_sample_rand(v);
            let parsed = parse_sample_rand(&rand).unwrap();
            assert!(parsed <= v && v - parsed < 1e-6 + 1e-12, "{v} {rand}");
            assert!(rand.len() <= 8);
            // Values drawn in steps of 1e-6 keep at most 6 decimals with format_rate too.
            let stepped = (random_u64() % 1_000_000) as f64 / 1_000_000.0;
            assert!(format_rate(stepped).len() <= 8, "{stepped}");
        }
    }

    #[test]
    fn sample_rand_fast_path_matches_the_text_form() {
        let mut values: Vec<f64> = (0..200_000).map(|_| crate::ids::random_f64()).collect();
        // Near and at multiples of 1e-6, and tiny values.
        values.extend((0..100_000).map(|_| super::super::sampling::new_sample_rand()));
        values.extend((0..1_000_000).step_by(7).map(|k| f64::from(k) / 1e6));
        for k in [0u32, 1, 7, 10, 100_000, 570_000, 999_999] {
            let base = f64::from(k) / 1e6;
            values.extend([base, base + 1e-12, base - 1e-12, base + 5e-7, f64::from_bits(base.to_bits() + 1)]);
        }
        values.extend([1e-7, 9.99999e-7, 1.0000001e-6, 0.1 + 0.2, 0.9999999999, 1.0 - f64::EPSILON]);
        for v in values {
            if v > 0.0 && v < 1.0 {
                assert_eq!(format_sample_rand(v), format_sample_rand_exact(v), "{v}");
            }
        }
    }

    #[test]
    fn fuzz_no_panic() {
        const ALPHABET: &[u8] = b"0123456789abcdefABCDEF-=,;% \t\"\\sentry_+.\xc3\xa9\xff\x00";
        for i in 0..20_000 {
            let len = (random_u64() % 120) as usize;
            let bytes: Vec<u8> = if i % 2 == 0 {
                (0..len).map(|_| random_u64() as u8).collect()
            } else {
                (0..len).map(|_| ALPHABET[(random_u64() % ALPHABET.len() as u64) as usize]).collect()
            };
            let s = String::from_utf8_lossy(&bytes);
            let _ = SentryTrace::parse(&s);
            let _ = TraceParent::parse(&s);
            let _ = parse_sample_rand(&s);
            let _ = parse_sample_rate(&s);
            let b = Baggage::parse(&s);
            let trace_id = TraceId::new();
            let dsc = b.to_dsc(trace_id).unwrap_or_else(|| crate::protocol::DynamicSamplingContext {
                trace_id,
                public_key: Some("0123456789abcdef0123456789abcdef".into()),
                ..Default::default()
            });
            let header = Baggage::header_value(&dsc, b.third_party());
            assert!(header.len() <= MAX_BAGGAGE_BYTES);
            // What we write parses back to the same thing.
            let again = Baggage::parse(&header);
            assert_eq!(again.third_party(), b.third_party());
            assert_eq!(again.to_dsc(dsc.trace_id), Some(dsc));
        }
        // Structured fuzz around valid headers.
        let valid = format!("00-{TRACE}-{SPAN}-01");
        for _ in 0..5_000 {
            let mut bytes = valid.clone().into_bytes();
            let pos = (random_u64() % bytes.len() as u64) as usize;
            bytes[pos] = random_u64() as u8;
            let s = String::from_utf8_lossy(&bytes);
            let _ = TraceParent::parse(&s);
            let _ = SentryTrace::parse(s.get(3..).unwrap_or(""));
        }
    }
}
