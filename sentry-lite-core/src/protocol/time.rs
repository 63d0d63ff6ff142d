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
        format!(
            "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:06}Z",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60,
            d.subsec_micros()
        )
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
            // Other SDKs send RFC 3339; we only need ordering-preserving round trips of our own.
            Raw::Text(_) => Ok(Self::from_secs_f64(0.0)),
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
    }

    #[test]
    fn bad_floats_clamp_to_epoch() {
        assert_eq!(Timestamp::from_secs_f64(f64::NAN).as_secs_f64(), 0.0);
        assert_eq!(Timestamp::from_secs_f64(-5.0).as_secs_f64(), 0.0);
    }
}
