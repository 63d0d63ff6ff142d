//! What counts as personal or secret data in HTTP requests, for integrations and
//! for the event pipeline when `send_default_pii` is off.
//!
//! Headers go by an allowlist: a header not known to be harmless is left out, so
//! a new auth-proxy, CDN or vendor header never leaks by default. Query strings
//! keep their keys; values under keys that look secret become `[Filtered]`.

/// What a removed value is replaced with, as Sentry's own scrubbing writes it.
pub(crate) const FILTERED: &str = "[Filtered]";

/// Request headers sent without `send_default_pii` (lowercase, sorted): content
/// negotiation, caching, the user agent, CORS and fetch metadata, and the trace
/// headers of Sentry and W3C. Anything else (client addresses such as
/// `X-Forwarded-For` or `CF-Connecting-IP`, credentials such as `Authorization`,
/// `X-Auth` or `X-Signature`, identities set by auth proxies, `Referer` and
/// `Cookie`) is left out.
const HARMLESS_HEADERS: [&str; 37] = [
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "access-control-request-headers",
    "access-control-request-method",
    "cache-control",
    "connection",
    "content-encoding",
    "content-language",
    "content-length",
    "content-type",
    "dnt",
    "expect",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "keep-alive",
    "max-forwards",
    "pragma",
    "priority",
    "range",
    "sec-fetch-dest",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-user",
    "sentry-trace",
    "te",
    "traceparent",
    "upgrade",
    "upgrade-insecure-requests",
    "user-agent",
    "x-forwarded-proto",
    "x-requested-with",
];

/// Whether a request header may be sent without `send_default_pii`: it is on the
/// allowlist of headers known to carry no personal data or secrets (compared
/// case-insensitively). Client hints (`Sec-CH-UA*`) are allowed too.
///
/// # Examples
/// ```
/// use sentry_lite_core::is_harmless_header;
/// assert!(is_harmless_header("User-Agent"));
/// assert!(!is_harmless_header("CF-Connecting-IP"));
/// assert!(!is_harmless_header("X-Auth"));
/// assert!(!is_harmless_header("Referer"));
/// ```
pub fn is_harmless_header(name: &str) -> bool {
    if name.len() > 40 {
        return false;
    }
    let mut buf = [0u8; 40];
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name.as_bytes());
    lower.make_ascii_lowercase();
    let Ok(lower) = std::str::from_utf8(lower) else { return false };
    HARMLESS_HEADERS.binary_search(&lower).is_ok() || lower.starts_with("sec-ch-ua")
}

/// Whether a query-string or form key names a secret (case-insensitive
/// substring: `token`, `password`, `secret`, `auth`, `key`, `session`,
/// `sig`, `code`, `otp`, `csrf`, `jwt`, `credential`, `pass`, `pwd`, `bearer`,
/// `cookie`). Errs on the side of hiding: `author` or `zipcode` match too.
pub fn is_secret_key(key: &str) -> bool {
    const WORDS: [&str; 15] = [
        "token",
        "pass",
        "pwd",
        "secret",
        "auth",
        "key",
        "session",
        "sig",
        "code",
        "otp",
        "csrf",
        "jwt",
        "credential",
        "bearer",
        "cookie",
    ];
    let lower = key.to_ascii_lowercase();
    WORDS.iter().any(|w| lower.contains(w))
}

/// `query` with the values of secret-looking keys (see [`is_secret_key`])
/// replaced by `[Filtered]`, or every value with `all_values`. Keys, order and
/// separators are kept; a key without `=` stays as it is.
///
/// # Examples
/// ```
/// use sentry_lite_core::scrub_query;
/// assert_eq!(scrub_query("page=2&token=abc&api_key=k", false), "page=2&token=[Filtered]&api_key=[Filtered]");
/// assert_eq!(scrub_query("page=2&q=alice", true), "page=[Filtered]&q=[Filtered]");
/// ```
pub fn scrub_query(query: &str, all_values: bool) -> String {
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((key, value)) if !value.is_empty() && (all_values || is_secret_key(&percent_decoded(key))) => {
                out.push_str(key);
                out.push('=');
                out.push_str(FILTERED);
            }
            _ => out.push_str(pair),
        }
    }
    out
}

/// A query key as the application sees it (`%5F` is `_`, `+` is a space).
fn percent_decoded(key: &str) -> String {
    if !key.contains(['%', '+']) {
        return key.to_owned();
    }
    let b = key.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match u8::from_str_radix(key.get(i + 1..i + 3).unwrap_or("zz"), 16) {
                Ok(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_is_sorted_and_lowercase() {
        assert!(HARMLESS_HEADERS.windows(2).all(|w| w[0] < w[1]));
        assert!(HARMLESS_HEADERS.iter().all(|h| h.bytes().all(|b| !b.is_ascii_uppercase())));
    }

    #[test]
    fn headers() {
        for ok in ["accept", "Content-Type", "USER-AGENT", "sec-ch-ua-platform", "X-Forwarded-Proto"] {
            assert!(is_harmless_header(ok), "{ok}");
        }
        for bad in [
            "cf-connecting-ip",
            "true-client-ip",
            "x-forwarded-for",
            "x-real-ip",
            "forwarded",
            "x-client-ip",
            "authorization",
            "x-authorization",
            "authentication",
            "x-auth",
            "x-access-key",
            "x-signature",
            "x-auth-request-user",
            "x-forwarded-user",
            "x-forwarded-email",
            "remote-user",
            "referer",
            "cookie",
            "baggage",
            "x-api-key",
            "",
            "a-very-long-header-name-that-is-longer-than-forty-bytes",
        ] {
            assert!(!is_harmless_header(bad), "{bad}");
        }
    }

    #[test]
    fn query_scrubbing() {
        assert_eq!(
            scrub_query("token=t&password=p&x=1&API%5FKEY=k&sig=s&code=c&flag&empty=", false),
            "token=[Filtered]&password=[Filtered]&x=1&API%5FKEY=[Filtered]&sig=[Filtered]&code=[Filtered]&flag&empty="
        );
        assert_eq!(scrub_query("a=1&b=2", true), "a=[Filtered]&b=[Filtered]");
        assert_eq!(scrub_query("", false), "");
        assert_eq!(scrub_query("%zz=1&%4=2", false), "%zz=1&%4=2");
    }
}
