//! W3C `baggage`: Sentry's `sentry-` entries become the DSC, every other vendor's
//! entries are kept verbatim, and both directions stay within the W3C bounds.

use std::collections::BTreeMap;

use super::is_ows;
use crate::ids::TraceId;
use crate::protocol::DynamicSamplingContext;

/// Most bytes of an incoming `baggage` value that are looked at (the rest is ignored),
/// and most bytes of an outgoing one. This is the W3C baggage size limit.
pub const MAX_BAGGAGE_BYTES: usize = 8192;

/// Most list-members kept from an incoming `baggage` value, and written to an outgoing
/// one. W3C allows up to 180 but only requires propagators to support 64; staying at
/// 64 keeps what we forward acceptable to every conforming downstream service.
pub const MAX_BAGGAGE_MEMBERS: usize = 64;

/// Prefix of Sentry's entries in `baggage`.
const SENTRY_PREFIX: &str = "sentry-";

/// The DSC keys with a field of their own, in the order they are written.
const KNOWN_KEYS: [&str; 9] = [
    "trace_id",
    "public_key",
    "sample_rate",
    "sample_rand",
    "sampled",
    "release",
    "environment",
    "org_id",
    "transaction",
];

/// A parsed W3C `baggage` value: Sentry's `sentry-` entries (decoded) and every other
/// vendor's entries (verbatim, in order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baggage {
    sentry: BTreeMap<String, String>,
    third_party: Vec<String>,
}

/// RFC 7230 `tchar`: what a baggage key may contain.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// W3C `baggage-octet`: printable ASCII except space, `"`, `,`, `;` and `\`.
fn is_baggage_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// One well-formed list-member: `key OWS "=" OWS value *( OWS ";" property )`.
/// Returns the key and the (still encoded) value; properties are checked loosely.
fn parse_member(member: &str) -> Option<(&str, &str)> {
    // Baggage is ASCII-only on the wire (values percent-encode everything else);
    // control characters are never valid.
    if !member.bytes().all(|b| (0x20..0x7F).contains(&b) || b == b'\t') {
        return None;
    }
    let (key, rest) = member.split_once('=')?;
    let key = key.trim_matches(is_ows);
    if !is_token(key) {
        return None;
    }
    let value = rest.split(';').next().unwrap_or("").trim_matches(is_ows);
    if !value.bytes().all(is_baggage_octet) {
        return None;
    }
    Some((key, value))
}

/// A Relay project key: 32 hex digits.
fn is_project_key(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An organization id: a decimal number that fits a `u64`.
pub(crate) fn parse_org_id(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes a value. A `%` not followed by two hex digits is kept as is;
/// a result that is not UTF-8 gives `None`. `+` stays `+` (this is not form encoding).
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(h), Some(l)) =
                (b.get(i + 1).copied().and_then(hex_value), b.get(i + 2).copied().and_then(hex_value))
            {
                out.push((h << 4) | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Whether a byte is written as is in an outgoing value: RFC 3986 unreserved
/// characters only. Everything else (including `%`, `+`, `@`, non-ASCII) becomes
/// `%XX`, which every baggage decoder (percent-decoding, `decodeURIComponent`,
/// form decoding) reads back identically.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn percent_encoded_len(s: &str) -> usize {
    s.bytes().map(|b| if is_unreserved(b) { 1 } else { 3 }).sum()
}

fn percent_encode_into(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
}

/// Appends one `key=value` member if it fits the byte and member bounds.
struct BaggageWriter {
    out: String,
    members: usize,
}

impl BaggageWriter {
    /// Whether a member of `len` bytes still fits.
    fn fits(&self, len: usize) -> bool {
        let sep = usize::from(!self.out.is_empty());
        self.members < MAX_BAGGAGE_MEMBERS && self.out.len() + sep + len <= MAX_BAGGAGE_BYTES
    }

    fn start_member(&mut self) {
        if !self.out.is_empty() {
            self.out.push(',');
        }
        self.members += 1;
    }

    fn push_sentry(&mut self, key: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        let len = SENTRY_PREFIX.len() + key.len() + 1 + percent_encoded_len(value);
        if !self.fits(len) {
            return;
        }
        self.start_member();
        self.out.push_str(SENTRY_PREFIX);
        self.out.push_str(key);
        self.out.push('=');
        percent_encode_into(value, &mut self.out);
    }

    fn push_verbatim(&mut self, member: &str) {
        if !self.fits(member.len()) {
            return;
        }
        self.start_member();
        self.out.push_str(member);
    }
}

impl Baggage {
    /// Parses one or more `baggage` header values (several headers may be joined with
    /// `,`). `sentry-` values are percent-decoded; when a Sentry key repeats, the first
    /// one wins. Other vendors' members are kept verbatim and in order. Malformed members
    /// are skipped. Only the first [`MAX_BAGGAGE_BYTES`] bytes (cut at a member boundary)
    /// and the first [`MAX_BAGGAGE_MEMBERS`] well-formed members are considered.
    pub fn parse(header: &str) -> Self {
        let mut baggage = Self::default();
        let mut members = 0;
        for raw in crate::limits::comma_bounded_prefix(header, MAX_BAGGAGE_BYTES).split(',') {
            if members >= MAX_BAGGAGE_MEMBERS {
                break;
            }
            let member = raw.trim_matches(is_ows);
            let Some((key, value)) = parse_member(member) else { continue };
            members += 1;
            match key.strip_prefix(SENTRY_PREFIX) {
                Some(sentry_key) => {
                    if sentry_key.is_empty() || value.is_empty() || baggage.sentry.contains_key(sentry_key) {
                        continue;
                    }
                    if let Some(decoded) = percent_decode(value) {
                        baggage.sentry.insert(sentry_key.to_owned(), decoded);
                    }
                }
                None => baggage.third_party.push(member.to_owned()),
            }
        }
        baggage
    }

    /// Sentry's values, keyed without the `sentry-` prefix, decoded.
    pub fn sentry_values(&self) -> &BTreeMap<String, String> {
        &self.sentry
    }

    /// Other vendors' members, verbatim (`key=value[;properties]`), in order.
    pub fn third_party(&self) -> &[String] {
        &self.third_party
    }

    /// The incoming dynamic sampling context, or `None` when the baggage carries no
    /// valid `sentry-public_key` (32 hex digits): Relay rejects a DSC without one,
    /// so such baggage is treated as absent and this service heads the trace.
    /// `trace_id` is the one of the trace being continued (from `sentry-trace`), not
    /// `sentry-trace_id`, so the DSC always matches the trace it travels with. Known
    /// keys whose values Relay could not parse (`sample_rate`, `sample_rand`,
    /// `sampled`, `org_id`, `replay_id`) are dropped; unknown `sentry-` keys go to
    /// `other`; values are kept as received otherwise (an incoming DSC is frozen).
    pub fn to_dsc(&self, trace_id: TraceId) -> Option<DynamicSamplingContext> {
        let public_key = self.sentry.get("public_key").filter(|k| is_project_key(k))?;
        let mut dsc = DynamicSamplingContext {
            trace_id,
            public_key: Some(public_key.clone()),
            ..DynamicSamplingContext::default()
        };
        for (key, raw) in &self.sentry {
            let value = Some(raw.clone());
            match key.as_str() {
                "trace_id" | "public_key" => {}
                "sample_rate" => dsc.sample_rate = value.filter(|v| super::parse_sample_rate(v).is_some()),
                "sample_rand" => dsc.sample_rand = value.filter(|v| super::parse_sample_rand(v).is_some()),
                "sampled" => dsc.sampled = value.filter(|v| v == "true" || v == "false"),
                "release" => dsc.release = value,
                "environment" => dsc.environment = value,
                "org_id" => dsc.org_id = value.filter(|v| parse_org_id(v).is_some()),
                "transaction" => dsc.transaction = value,
                "replay_id" => {
                    if raw.parse::<uuid::Uuid>().is_ok() {
                        dsc.other.insert(key.clone(), raw.clone());
                    }
                }
                _ => {
                    dsc.other.insert(key.clone(), raw.clone());
                }
            }
        }
        Some(dsc)
    }

    /// The outgoing `baggage` value: the DSC as `sentry-` members (known keys first, in
    /// a fixed order, then `other` keys that are valid tokens; values percent-encoded,
    /// empty ones omitted), followed by the given third-party members. Third-party
    /// members that are malformed or use the `sentry-` prefix are never forwarded.
    /// The result stays within [`MAX_BAGGAGE_BYTES`] and [`MAX_BAGGAGE_MEMBERS`]:
    /// third-party members that don't fit are dropped first, then any Sentry member
    /// too large to fit.
    pub fn header_value(dsc: &DynamicSamplingContext, third_party: &[String]) -> String {
        let mut w = BaggageWriter { out: String::with_capacity(256), members: 0 };
        let trace_id = dsc.trace_id.to_string();
        let known = [
            Some(trace_id.as_str()),
            dsc.public_key.as_deref(),
            dsc.sample_rate.as_deref(),
            dsc.sample_rand.as_deref(),
            dsc.sampled.as_deref(),
            dsc.release.as_deref(),
            dsc.environment.as_deref(),
            dsc.org_id.as_deref(),
            dsc.transaction.as_deref(),
        ];
        for (key, value) in KNOWN_KEYS.iter().zip(known) {
            if let Some(value) = value {
                w.push_sentry(key, value);
            }
        }
        for (key, value) in &dsc.other {
            if is_token(key) && !KNOWN_KEYS.contains(&key.as_str()) {
                w.push_sentry(key, value);
            }
        }
        for member in third_party {
            let member = member.trim_matches(is_ows);
            match parse_member(member) {
                Some((key, _)) if !key.starts_with(SENTRY_PREFIX) && !member.contains(',') => w.push_verbatim(member),
                _ => {}
            }
        }
        w.out
    }
}
#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::ids::random_u64;

    const TRACE: &str = "771a43a4192642f0b136d5159a501700";
    const KEY: &str = "49d0f7386ad645858ae85020e393bef3";

    #[test]
    fn baggage_parses_sentry_and_third_party() {
        let b = Baggage::parse(
            "other-vendor-value-1=foo;bar;baz, sentry-trace_id=771a43a4192642f0b136d5159a501700, \
             sentry-public_key=49d0f7386ad645858ae85020e393bef3, sentry-sample_rate=0.01337, \
             sentry-user_id=Am%C3%A9lie,other-vendor-value-2=foo;bar;",
        );
        let v = b.sentry_values();
        assert_eq!(v["trace_id"], TRACE);
        assert_eq!(v["public_key"], "49d0f7386ad645858ae85020e393bef3");
        assert_eq!(v["sample_rate"], "0.01337");
        assert_eq!(v["user_id"], "Amélie");
        assert_eq!(b.third_party(), ["other-vendor-value-1=foo;bar;baz", "other-vendor-value-2=foo;bar;"]);

        let dsc = b.to_dsc(TRACE.parse().unwrap()).unwrap();
        assert_eq!(dsc.public_key.as_deref(), Some("49d0f7386ad645858ae85020e393bef3"));
        assert_eq!(dsc.sample_rate.as_deref(), Some("0.01337"));
        assert_eq!(dsc.other.get("user_id").map(String::as_str), Some("Amélie"));
        assert!(!dsc.other.contains_key("trace_id"));
    }

    #[test]
    fn baggage_multiple_headers_and_malformed_members() {
        let b = Baggage::parse(
            "a=1,,  ,=x, novalue, sentry-release=r1 ; prop=1 ,bad key=1,b=has space,c=\"q\",sentry-=x,\
             sentry-release=r2,sentry-environment=%ZZ%4,d=é,e=ok,sentry-bad=%FF,sentry-empty=",
        );
        assert_eq!(b.sentry_values().get("release").map(String::as_str), Some("r1"));
        assert_eq!(b.sentry_values().get("environment").map(String::as_str), Some("%ZZ%4"));
        assert!(!b.sentry_values().contains_key("bad"));
        assert!(!b.sentry_values().contains_key("empty"));
        assert!(!b.sentry_values().contains_key(""));
        assert_eq!(b.third_party(), ["a=1", "e=ok"]);
    }

    #[test]
    fn dsc_to_baggage_and_back() {
        let mut dsc = DynamicSamplingContext {
            trace_id: TRACE.parse().unwrap(),
            public_key: Some(KEY.into()),
            sample_rate: Some("0.25".into()),
            sample_rand: Some("0.032856".into()),
            sampled: Some("true".into()),
            release: Some("my-app@1.0.0+build 7, \"final\"; 100% ☃".into()),
            environment: Some("production".into()),
            org_id: Some("1".into()),
            transaction: Some("GET /users/{id}".into()),
            other: BTreeMap::new(),
        };
        dsc.other.insert("replay_id".into(), "8a5e5a1c-2f00-4c5e-9c4e-0123456789ab".into());
        dsc.other.insert("user_segment".into(), "r=1,2".into());
        dsc.other.insert("bad key".into(), "x".into());
        dsc.other.insert("release".into(), "duplicate".into());
        let third = vec!["vendor=1;p".to_owned(), "sentry-evil=1".into(), "bad,member=1".into(), " spaced=2 ".into()];
        let header = Baggage::header_value(&dsc, &third);
        assert!(
            header.starts_with(&format!("sentry-trace_id={TRACE},sentry-public_key={KEY},sentry-sample_rate=0.25,"))
        );
        assert!(header.ends_with(",vendor=1;p,spaced=2"), "{header}");
        assert!(!header.contains("evil") && !header.contains("bad") && !header.contains("duplicate"));
        assert!(header.is_ascii() && !header.contains(' '));

        let back = Baggage::parse(&header);
        assert_eq!(back.third_party(), ["vendor=1;p", "spaced=2"]);
        let mut expected = dsc.clone();
        expected.other.remove("bad key");
        expected.other.remove("release");
        assert_eq!(back.to_dsc(dsc.trace_id), Some(expected));
    }

    #[test]
    fn dsc_needs_a_valid_public_key() {
        let trace: TraceId = TRACE.parse().unwrap();
        for bad in ["", "sentry-public_key=abc,", "sentry-public_key=0123456789abcdef0123456789abcdeg,"] {
            let b = Baggage::parse(&format!("{bad}sentry-trace_id={TRACE},sentry-sample_rand=0.5"));
            assert_eq!(b.to_dsc(trace), None, "{bad}");
        }
        let b = Baggage::parse(&format!("sentry-public_key={KEY}"));
        assert_eq!(b.to_dsc(trace).unwrap().public_key.as_deref(), Some(KEY));
    }

    #[test]
    fn unparsable_known_values_are_dropped() {
        let b = Baggage::parse(&format!(
            "sentry-public_key={KEY},sentry-sample_rate=abc,sentry-sample_rand=1.5,sentry-sampled=yes,\
             sentry-org_id=o1,sentry-replay_id=not-a-uuid,sentry-release=r,sentry-user_segment=x"
        ));
        let dsc = b.to_dsc(TRACE.parse().unwrap()).unwrap();
        assert_eq!((dsc.sample_rate, dsc.sample_rand, dsc.sampled, dsc.org_id), (None, None, None, None));
        assert!(!dsc.other.contains_key("replay_id"));
        assert_eq!(dsc.release.as_deref(), Some("r"));
        assert_eq!(dsc.other.get("user_segment").map(String::as_str), Some("x"));
        let ok = Baggage::parse(&format!(
            "sentry-public_key={KEY},sentry-sample_rate=1e-5,sentry-sampled=false,sentry-org_id=17,\
             sentry-replay_id=0123456789abcdef0123456789abcdef"
        ));
        let dsc = ok.to_dsc(TRACE.parse().unwrap()).unwrap();
        assert_eq!(dsc.sample_rate.as_deref(), Some("1e-5"));
        assert_eq!(dsc.sampled.as_deref(), Some("false"));
        assert_eq!(dsc.org_id.as_deref(), Some("17"));
        assert!(dsc.other.contains_key("replay_id"));
    }

    #[test]
    fn percent_encoding_round_trip() {
        for _ in 0..500 {
            let s: String = (0..(random_u64() % 40))
                .map(|_| char::from_u32((random_u64() % 0x3000) as u32).unwrap_or('x'))
                .collect();
            let mut enc = String::new();
            percent_encode_into(&s, &mut enc);
            assert_eq!(enc.len(), percent_encoded_len(&s));
            assert!(enc.bytes().all(is_baggage_octet));
            assert_eq!(percent_decode(&enc).as_deref(), Some(s.as_str()));
        }
        // '+' is not a space.
        assert_eq!(percent_decode("a+b%2B").as_deref(), Some("a+b+"));
    }

    #[test]
    fn huge_baggage_is_bounded() {
        let inputs = [
            "vendor=value,".repeat(80_000),
            "x".repeat(1 << 20),
            format!("sentry-release={}", "%41".repeat(350_000)),
            ",".repeat(1 << 20),
            format!("{}sentry-release=late", " a=b ,".repeat(200_000)),
            "é".repeat(500_000),
        ];
        for input in &inputs {
            let start = Instant::now();
            let b = Baggage::parse(input);
            assert!(start.elapsed() < Duration::from_millis(500));
            assert!(b.third_party().len() + b.sentry_values().len() <= MAX_BAGGAGE_MEMBERS);
            let total: usize = b.third_party().iter().map(String::len).sum::<usize>()
                + b.sentry_values().iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
            assert!(total <= MAX_BAGGAGE_BYTES);
            assert!(!b.sentry_values().contains_key("release"));
        }
        // A member cut by the byte bound is dropped, not misread.
        let cut = format!("{}=1,k={}", "a".repeat(8000), "v".repeat(500));
        assert_eq!(Baggage::parse(&cut).third_party().len(), 1);
    }

    #[test]
    fn outgoing_baggage_is_bounded() {
        let dsc = DynamicSamplingContext {
            trace_id: TRACE.parse().unwrap(),
            release: Some("r".into()),
            transaction: Some("☃".repeat(5000)),
            ..DynamicSamplingContext::default()
        };
        let third: Vec<String> = (0..2000).map(|i| format!("vendor{i}=abcdefghij")).collect();
        let header = Baggage::header_value(&dsc, &third);
        assert!(header.len() <= MAX_BAGGAGE_BYTES);
        assert!(header.split(',').count() <= MAX_BAGGAGE_MEMBERS);
        assert!(header.starts_with(&format!("sentry-trace_id={TRACE},sentry-release=r,vendor0=")));
        assert!(!header.contains("transaction"));
        // Sentry entries win over third-party ones.
        let big: Vec<String> = vec![format!("v={}", "x".repeat(8142))];
        let dsc = DynamicSamplingContext { trace_id: TRACE.parse().unwrap(), ..DynamicSamplingContext::default() };
        assert!(Baggage::header_value(&dsc, &big) == format!("sentry-trace_id={TRACE}"));
        let fits: Vec<String> = vec![format!("v={}", "x".repeat(8141))];
        assert_eq!(Baggage::header_value(&dsc, &fits).len(), MAX_BAGGAGE_BYTES);
    }
}
