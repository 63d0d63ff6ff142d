use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, serialized as float seconds since the Unix epoch (µs precision).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(SystemTime);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self(SystemTime::now())
    }

    /// Wraps a `SystemTime`.
    pub fn from_system_time(t: SystemTime) -> Self {
        Self(t)
    }

    /// The wrapped `SystemTime`.
    pub fn system_time(&self) -> SystemTime {
        self.0
    }

    /// Seconds since the epoch as a float.
    pub fn as_secs_f64(&self) -> f64 {
        epoch_seconds(self.0)
    }

    /// Builds a timestamp from float seconds since the epoch; negative or
    /// non-finite values clamp to the epoch.
    pub fn from_secs_f64(secs: f64) -> Self {
        let secs = if secs.is_finite() && secs > 0.0 { secs } else { 0.0 };
        Self(UNIX_EPOCH + Duration::from_secs_f64(secs))
    }

    /// RFC 3339 in UTC with microseconds, as `sent_at` wants it.
    pub fn to_rfc3339(&self) -> String {
        let d = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = d.as_secs() as i64;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, dd) = civil_from_days(days);
        // Written digit by digit into a fixed buffer: `format!` costs ~3 k
        // instructions, and every envelope carries one of these.
        let mut buf = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, v: i64| {
            let mut v = v.clamp(0, 999_999);
            for slot in buf[at..at + width].iter_mut().rev() {
                *slot = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, y);
        put(5, 2, m.into());
        put(8, 2, dd.into());
        put(11, 2, rem / 3600);
        put(14, 2, (rem % 3600) / 60);
        put(17, 2, rem % 60);
        put(20, 6, d.subsec_micros().into());
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl Default for Timestamp {
    fn default() -> Self {
        Self::now()
    }
}

impl std::fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Float seconds since the Unix epoch, rounded to microseconds.
pub fn epoch_seconds(t: SystemTime) -> f64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    d.as_secs() as f64 + f64::from(d.subsec_micros()) / 1e6
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac][Z|±HH:MM]` into epoch seconds.
fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        frac = format!("0.{}", &r[..digits]).parse().ok()?;
        rest = &r[digits..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let v = num_at(o, 1..3)? * 3600 + num_at(o, 4..6)? * 60;
            if o.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset) as f64 + frac)
}

fn num_at(s: &str, r: std::ops::Range<usize>) -> Option<i64> {
    s.get(r)?.parse().ok()
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// Howard Hinnant's days-to-civil algorithm; avoids pulling in a date crate for one format.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_secs_f64())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Self::from_secs_f64(s)),
            Raw::Text(text) => parse_rfc3339(&text)
                .map(Self::from_secs_f64)
                .ok_or_else(|| serde::de::Error::custom("invalid RFC 3339 timestamp")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instant() {
        let t = Timestamp::from_secs_f64(1_795_450_503.843_301);
        assert_eq!(t.to_rfc3339(), "2026-11-23T16:15:03.843301Z");
        assert_eq!(Timestamp::from_secs_f64(0.0).to_rfc3339(), "1970-01-01T00:00:00.000000Z");
        // Leap day, every field zero-padded.
        let t = Timestamp::from_system_time(UNIX_EPOCH + std::time::Duration::new(951_786_123, 4_000));
        assert_eq!(t.to_rfc3339(), "2000-02-29T01:02:03.000004Z");
    }

    #[test]
    fn rfc3339_parses_back() {
        let t: Timestamp = serde_json::from_str("\"2026-11-23T16:15:03.843301Z\"").unwrap();
        assert!((t.as_secs_f64() - 1_795_450_503.843_301).abs() < 1e-5);
        let t: Timestamp = serde_json::from_str("\"2026-11-23T17:15:03+01:00\"").unwrap();
        assert_eq!(t.as_secs_f64(), 1_795_450_503.0);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }

    #[test]
    fn bad_floats_clamp_to_epoch() {
        assert_eq!(Timestamp::from_secs_f64(f64::NAN).as_secs_f64(), 0.0);
        assert_eq!(Timestamp::from_secs_f64(-5.0).as_secs_f64(), 0.0);
    }
}
