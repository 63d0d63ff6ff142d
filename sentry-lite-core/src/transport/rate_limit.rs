//! Rate limits: parsing `X-Sentry-Rate-Limits` and `Retry-After`, and the per-category
//! backoff deadlines the transport worker checks before sending.
//!
//! Header grammar (Sentry develop docs, "Rate Limiting"):
//! `X-Sentry-Rate-Limits: <limit>, <limit>, ...` where each limit is
//! `retry_after:categories:scope:reason_code:namespaces:...`. `retry_after` is seconds,
//! integer or float; `categories` is `;`-separated and empty means every category;
//! everything after `categories` is ignored, as are spaces and unknown categories.
//!
//! Choices made here:
//! - A limit listing only unknown categories (e.g. `security`, `metric_bucket`,
//!   `span_indexed`) is ignored entirely; unknown names next to known ones are dropped.
//! - A limit with no categories field at all (`60`) applies to every category, like an
//!   empty one.
//! - An unparsable, negative or non-finite `retry_after` skips that limit.
//! - Every duration is capped at one day (`MAX_RETRY_AFTER`): a bogus or overlong
//!   value can silence the SDK for at most a day before the next request asks again.
//! - Only the first 8 KiB of the header (cut at a limit boundary) and at most 64 limits
//!   are considered.
//! - `log_item` and `log_byte` are both quotas on logs: a limit on either limits both.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::protocol::DataCategory;

/// Longest backoff honored, whatever the server says.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Backoff for a 429 without usable headers.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Most bytes of `X-Sentry-Rate-Limits` looked at.
const MAX_HEADER_BYTES: usize = 8192;

/// Most limits taken from one header.
const MAX_LIMITS: usize = 64;

/// Longest numeric field accepted.
const MAX_NUMBER_LEN: usize = 32;

/// One limit from `X-Sentry-Rate-Limits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// How long the limit lasts (capped at one day).
    pub retry_after: Duration,
    /// The limited categories; empty means all of them.
    pub categories: Vec<DataCategory>,
}

/// Seconds as an integer or float; `None` when not a finite non-negative number.
fn parse_seconds(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() || s.len() > MAX_NUMBER_LEN {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    if v >= MAX_RETRY_AFTER.as_secs_f64() {
        return Some(MAX_RETRY_AFTER);
    }
    Some(Duration::try_from_secs_f64(v).unwrap_or(Duration::ZERO))
}

/// The limits of a header, and whether any group had a valid `retry_after` at all
/// (a header of pure garbage is treated as absent on a 429).
fn parse_header(header: &str) -> (Vec<RateLimit>, bool) {
    let mut limits = Vec::new();
    let mut any_valid = false;
    for group in crate::limits::comma_bounded_prefix(header, MAX_HEADER_BYTES).split(',') {
        if limits.len() >= MAX_LIMITS {
            break;
        }
        let group = group.trim();
        if group.is_empty() {
            continue;
        }
        let mut fields = group.split(':');
        let Some(retry_after) = fields.next().and_then(parse_seconds) else { continue };
        any_valid = true;
        let mut categories = Vec::new();
        let mut listed = false;
        for name in fields.next().unwrap_or("").split(';') {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            listed = true;
            if let Some(category) = DataCategory::parse(name) {
                if !categories.contains(&category) {
                    categories.push(category);
                }
            }
        }
        if listed && categories.is_empty() {
            // Only categories this SDK does not know: not about us.
            continue;
        }
        limits.push(RateLimit { retry_after, categories });
    }
    (limits, any_valid)
}

/// Parses an `X-Sentry-Rate-Limits` value. Never panics; bounded work on any input.
/// An empty `categories` vector means the limit applies to every category.
pub fn parse_rate_limits(header: &str) -> Vec<RateLimit> {
    parse_header(header).0
}

/// Unix seconds of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the HTTP-date
/// form servers must send. The obsolete RFC 850 and asctime forms are not accepted.
fn parse_http_date(s: &str) -> Option<u64> {
    fn number(s: &str, digits: usize) -> Option<u64> {
        if s.len() != digits || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }
    let mut parts = s.split_ascii_whitespace();
    let weekday = parts.next()?;
    if weekday.len() != 4 || !weekday.ends_with(',') {
        return None;
    }
    let day = number(parts.next()?, 2)?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year = number(parts.next()?, 4)?;
    let mut time = parts.next()?.split(':');
    let hour = number(time.next()?, 2)?;
    let minute = number(time.next()?, 2)?;
    let second = number(time.next()?, 2)?;
    if time.next().is_some() || parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 || year < 1970 {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// A `Retry-After` value: seconds (integer or float) or an HTTP-date, relative to
/// `wall_now`. Anything else gives the 60 s default. Capped at one day.
fn parse_retry_after(value: &str, wall_now: SystemTime) -> Duration {
    if let Some(d) = parse_seconds(value) {
        return d;
    }
    let Some(secs) = parse_http_date(value.trim()) else { return DEFAULT_RETRY_AFTER };
    let Some(at) = UNIX_EPOCH.checked_add(Duration::from_secs(secs)) else { return MAX_RETRY_AFTER };
    // A date in the past means "retry now".
    at.duration_since(wall_now).unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER)
}

/// Backoff deadlines per data category, plus one for all categories. Longest wins.
#[derive(Debug, Default, Clone)]
pub struct RateLimits {
    all: Option<Instant>,
    categories: BTreeMap<DataCategory, Instant>,
}

impl RateLimits {
    /// No limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the rate limits of one response into account. `X-Sentry-Rate-Limits` is
    /// honored whatever the status (it may come with a 200). On a 429 without it (or with
    /// one holding nothing parsable), `Retry-After` limits every category, and with
    /// neither header every category is limited for 60 s.
    pub fn update(
        &mut self,
        status: u16,
        rate_limits_header: Option<&str>,
        retry_after_header: Option<&str>,
        now: Instant,
    ) {
        self.prune(now);
        let mut handled = false;
        if let Some(header) = rate_limits_header.filter(|h| !h.trim().is_empty()) {
            let (limits, any_valid) = parse_header(header);
            for limit in &limits {
                self.apply(limit, now);
            }
            handled = any_valid;
        }
        if status == 429 && !handled {
            let retry_after = match retry_after_header {
                Some(value) => parse_retry_after(value, SystemTime::now()),
                None => DEFAULT_RETRY_AFTER,
            };
            self.apply(&RateLimit { retry_after, categories: Vec::new() }, now);
        }
    }

    /// Extends the deadlines of one limit (never shortens one).
    fn apply(&mut self, limit: &RateLimit, now: Instant) {
        let Some(until) = now.checked_add(limit.retry_after.min(MAX_RETRY_AFTER)) else { return };
        if limit.categories.is_empty() {
            self.all = Some(self.all.map_or(until, |d| d.max(until)));
        }
        for category in &limit.categories {
            let deadline = self.categories.entry(*category).or_insert(until);
            *deadline = (*deadline).max(until);
        }
    }

    /// Forgets expired deadlines.
    fn prune(&mut self, now: Instant) {
        if self.all.is_some_and(|d| d <= now) {
            self.all = None;
        }
        self.categories.retain(|_, d| *d > now);
    }

    fn category_limited(&self, category: DataCategory, now: Instant) -> bool {
        self.categories.get(&category).is_some_and(|d| *d > now)
    }

    /// Whether items of `category` must be dropped now. `Error` covers the `default`
    /// wire category; logs are limited by either `log_item` or `log_byte`.
    pub fn is_limited(&self, category: DataCategory, now: Instant) -> bool {
        if self.all.is_some_and(|d| d > now) {
            return true;
        }
        match category {
            DataCategory::LogItem | DataCategory::LogByte => {
                self.category_limited(DataCategory::LogItem, now) || self.category_limited(DataCategory::LogByte, now)
            }
            other => self.category_limited(other, now),
        }
    }

    /// Whether any category (or all of them) is limited now.
    pub fn any_limited(&self, now: Instant) -> bool {
        self.all.is_some_and(|d| d > now) || self.categories.values().any(|d| *d > now)
    }

    /// Whether a limit on all categories is in force (e.g. a 429 without headers).
    pub fn all_limited(&self, now: Instant) -> bool {
        self.all.is_some_and(|d| d > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::random_u64;

    const ALL: [DataCategory; 9] = DataCategory::ALL;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn limited(limits: &RateLimits, at: Instant) -> Vec<DataCategory> {
        ALL.iter().copied().filter(|c| limits.is_limited(*c, at)).collect()
    }

    #[test]
    fn parses_docs_examples() {
        assert_eq!(
            parse_rate_limits("60:transaction:key, 2700:default;error;security:organization"),
            vec![
                RateLimit { retry_after: secs(60), categories: vec![DataCategory::Transaction] },
                RateLimit { retry_after: secs(2700), categories: vec![DataCategory::Error] },
            ]
        );
        assert_eq!(
            parse_rate_limits("60::organization, 2700::organization"),
            vec![
                RateLimit { retry_after: secs(60), categories: vec![] },
                RateLimit { retry_after: secs(2700), categories: vec![] },
            ]
        );
        assert_eq!(parse_rate_limits("2700:metric_bucket:organization:quota_exceeded:custom"), vec![]);
    }

    #[test]
    fn bugsink_header_limits_transaction_and_span_only() {
        let now = Instant::now();
        let mut limits = RateLimits::new();
        limits.update(429, Some("86400:transaction;span:organization"), None, now);
        assert_eq!(limited(&limits, now), [DataCategory::Transaction, DataCategory::Span]);
        assert!(!limits.is_limited(DataCategory::Error, now));
        assert!(limits.is_limited(DataCategory::Span, now + secs(86_399)));
        assert!(!limits.is_limited(DataCategory::Span, now + secs(86_400)));
        assert!(limits.any_limited(now));
        assert!(!limits.any_limited(now + secs(86_401)));
    }

    #[test]
    fn spaces_floats_and_trailing_fields() {
        assert_eq!(
            parse_rate_limits("  1.5 : error ; log_item : org : reason : ns : future : more ,, "),
            vec![RateLimit {
                retry_after: Duration::from_millis(1500),
                categories: vec![DataCategory::Error, DataCategory::LogItem]
            }]
        );
        // No categories field at all: everything.
        assert_eq!(parse_rate_limits("30"), vec![RateLimit { retry_after: secs(30), categories: vec![] }]);
        // Duplicates collapse; `default` is `error`.
        assert_eq!(parse_rate_limits("5:error;default;error")[0].categories, [DataCategory::Error]);
    }

    #[test]
    fn unknown_categories() {
        // Only unknown: ignored entirely (not "all").
        assert_eq!(parse_rate_limits("60:security;metric_bucket;span_indexed:organization"), vec![]);
        // Mixed: the known ones stay.
        assert_eq!(
            parse_rate_limits("60:security;session;bogus:organization"),
            vec![RateLimit { retry_after: secs(60), categories: vec![DataCategory::Session] }]
        );
        let now = Instant::now();
        let mut limits = RateLimits::new();
        limits.update(200, Some("60:security:organization"), None, now);
        assert!(!limits.any_limited(now));
        // A 429 whose header only names unknown categories limits nothing we send.
        limits.update(429, Some("60:security:organization"), Some("30"), now);
        assert!(!limits.any_limited(now));
    }

    #[test]
    fn invalid_retry_after_skips_the_limit() {
        assert_eq!(
            parse_rate_limits("abc:error, -5:error, nan:error, inf:error, :error, 1e400:error, 7:session"),
            vec![RateLimit { retry_after: secs(7), categories: vec![DataCategory::Session] }]
        );
    }

    #[test]
    fn absurd_values_are_capped_at_a_day() {
        assert_eq!(parse_rate_limits("99999999999:error")[0].retry_after, MAX_RETRY_AFTER);
        assert_eq!(parse_rate_limits("1e300:error")[0].retry_after, MAX_RETRY_AFTER);
        let now = Instant::now();
        let mut limits = RateLimits::new();
        limits.update(429, None, Some("999999999"), now);
        assert!(limits.is_limited(DataCategory::Error, now + secs(86_399)));
        assert!(!limits.is_limited(DataCategory::Error, now + secs(86_401)));
    }

    #[test]
    fn rate_limits_header_applies_whatever_the_status() {
        let now = Instant::now();
        let mut limits = RateLimits::new();
        limits.update(200, Some("60:error:org"), None, now);
        assert_eq!(limited(&limits, now), [DataCategory::Error]);
        // It takes precedence over Retry-After on a 429.
        let mut limits = RateLimits::new();
        limits.update(429, Some("10:session:org"), Some("3600"), now);
        assert_eq!(limited(&limits, now), [DataCategory::Session]);
        assert!(!limits.is_limited(DataCategory::Session, now + secs(11)));
        // A plain error status without headers limits nothing.
        let mut limits = RateLimits::new();
        limits.update(500, None, Some("60"), now);
        limits.update(413, None, None, now);
        assert!(!limits.any_limited(now));
    }

    #[test]
    fn status_429_without_headers_is_60s_for_all() {
        let now = Instant::now();
        let mut limits = RateLimits::new();
        limits.update(429, None, None, now);
        assert_eq!(limited(&limits, now + secs(59)), ALL);
        assert!(!limits.any_limited(now + secs(60)));
        // An empty or pure-garbage X-Sentry-Rate-Limits counts as absent.
        for header in ["", "  ", "garbage", ",,,", "x:error"] {
            let mut limits = RateLimits::new();
            limits.update(429, Some(header), None, now);
            assert_eq!(limited(&limits, now + secs(59)), ALL, "{header:?}");
            assert!(!limits.any_limited(now + secs(60)));
        }
    }

    #[test]
    fn retry_after_values() {
        let now = Instant::now();
        let mut limits = RateLimits::new();
        limits.update(429, None, Some("5"), now);
        assert_eq!(limited(&limits, now + secs(4)), ALL);
        assert!(!limits.any_limited(now + secs(5)));

        let mut limits = RateLimits::new();
        limits.update(429, None, Some("soon"), now);
        assert!(limits.is_limited(DataCategory::Error, now + secs(59)));
        assert!(!limits.any_limited(now + secs(60)));

        let wall = UNIX_EPOCH + secs(784_111_777);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT"), Some(1_709_251_199));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", wall), secs(30));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", wall), Duration::ZERO);
        assert_eq!(parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", wall), MAX_RETRY_AFTER);
        assert_eq!(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", wall), DEFAULT_RETRY_AFTER);
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 UTC", wall), DEFAULT_RETRY_AFTER);
        assert_eq!(parse_retry_after(" 2.5 ", wall), Duration::from_millis(2500));
        assert_eq!(parse_retry_after("-1", wall), DEFAULT_RETRY_AFTER);
    }

    #[test]
    fn longest_wins() {
        let now = Instant::now();
        let mut limits = RateLimits::new();
        limits.update(200, Some("100:error, 10:error, 50::org"), None, now);
        limits.update(200, Some("5:error"), None, now + secs(1));
        assert!(limits.is_limited(DataCategory::Error, now + secs(99)));
        assert!(!limits.is_limited(DataCategory::Error, now + secs(100)));
        assert!(limits.is_limited(DataCategory::Span, now + secs(49)));
        assert!(!limits.is_limited(DataCategory::Span, now + secs(50)));
        // A shorter "all" limit does not shorten a category one, nor the reverse.
        limits.update(429, None, Some("1"), now + secs(2));
        assert!(limits.is_limited(DataCategory::Error, now + secs(99)));
        assert!(limits.is_limited(DataCategory::Span, now + secs(49)));
    }

    #[test]
    fn log_limits_cover_both_log_categories() {
        let now = Instant::now();
        let mut limits = RateLimits::new();
        limits.update(200, Some("60:log_byte:org"), None, now);
        assert_eq!(limited(&limits, now), [DataCategory::LogItem, DataCategory::LogByte]);
        let mut limits = RateLimits::new();
        limits.update(200, Some("60:log_item:org"), None, now);
        assert!(limits.is_limited(DataCategory::LogItem, now));
        assert!(!limits.is_limited(DataCategory::Error, now));
    }

    #[test]
    fn huge_headers_are_bounded() {
        let start = Instant::now();
        let many = "1:error,".repeat(200_000);
        assert!(parse_rate_limits(&many).len() <= MAX_LIMITS);
        let long_categories = format!("60:{}", "error;".repeat(200_000));
        // Cut mid-limit: dropped rather than misread.
        assert_eq!(parse_rate_limits(&long_categories), vec![]);
        let cut = format!("60:{}x,86400:error", "a".repeat(MAX_HEADER_BYTES));
        assert_eq!(parse_rate_limits(&cut), vec![]);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn fuzz_no_panic() {
        const ALPHABET: &[u8] = b"0123456789.:;, -eE+errortransactionspanlog_itemdefault\xc3\xa9";
        let now = Instant::now();
        for i in 0..20_000 {
            let len = (random_u64() % 80) as usize;
            let bytes: Vec<u8> = if i % 2 == 0 {
                (0..len).map(|_| random_u64() as u8).collect()
            } else {
                (0..len).map(|_| ALPHABET[(random_u64() % ALPHABET.len() as u64) as usize]).collect()
            };
            let s = String::from_utf8_lossy(&bytes);
            for limit in parse_rate_limits(&s) {
                assert!(limit.retry_after <= MAX_RETRY_AFTER);
            }
            let mut limits = RateLimits::new();
            limits.update(429, Some(&s), Some(&s), now);
            limits.update(200, None, Some(&s), now);
            let _ = parse_http_date(&s);
            assert!(!limits.any_limited(now + MAX_RETRY_AFTER + secs(1)));
        }
    }
}
