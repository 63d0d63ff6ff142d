//! Which outgoing requests carry trace headers, and which headers they carry.

use std::fmt;

/// The URLs of outgoing requests that get `sentry-trace` and `baggage` (and
/// `traceparent`, when [`ClientOptions::propagate_traceparent`] is on).
///
/// The default matches every URL, as Sentry's server SDKs do. A URL matches when it
/// contains one of the patterns (a plain, case-sensitive substring: the patterns of
/// other SDKs that are regular expressions without metacharacters mean the same);
/// the pattern `.*` matches every URL. An empty list sends trace headers nowhere.
///
/// Headers sent to a host outside your services tell it the trace id, this
/// SDK's public key, release, environment and the name of the current route: keep
/// the targets to your own services when requests also go to third parties.
///
/// [`ClientOptions::propagate_traceparent`]: crate::ClientOptions::propagate_traceparent
///
/// # Examples
/// ```
/// use sentry_lite_core::{ClientOptions, TracePropagationTargets};
/// let targets = TracePropagationTargets::matching(["https://api.internal.example/", "localhost"]);
/// assert!(targets.matches("https://api.internal.example/users/7"));
/// assert!(!targets.matches("https://api.stripe.com/v1/charges"));
/// let options = ClientOptions::new().with_trace_propagation_targets(targets);
/// # drop(options);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TracePropagationTargets {
    /// `None`: every URL.
    patterns: Option<Vec<String>>,
}

impl TracePropagationTargets {
    /// Every URL (the default).
    pub fn all() -> Self {
        Self { patterns: None }
    }

    /// No URL: trace headers are never attached to outgoing requests.
    pub fn none() -> Self {
        Self { patterns: Some(Vec::new()) }
    }

    /// URLs containing one of `patterns` (`.*` matches every URL).
    pub fn matching<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let patterns: Vec<String> = patterns.into_iter().map(Into::into).collect();
        if patterns.iter().any(|p| p == ".*") {
            return Self::all();
        }
        Self { patterns: Some(patterns) }
    }

    /// Whether a request to `url` gets trace headers.
    pub fn matches(&self, url: &str) -> bool {
        match &self.patterns {
            None => true,
            Some(patterns) => patterns.iter().any(|p| !p.is_empty() && url.contains(p.as_str())),
        }
    }
}

impl fmt::Debug for TracePropagationTargets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.patterns {
            None => f.write_str("TracePropagationTargets(all)"),
            Some(p) => f.debug_tuple("TracePropagationTargets").field(p).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_rules() {
        assert!(TracePropagationTargets::default().matches("https://anything.example/x"));
        assert!(!TracePropagationTargets::none().matches("https://anything.example/x"));
        let t = TracePropagationTargets::matching(["api.internal", ""]);
        assert!(t.matches("http://api.internal:8080/a"));
        assert!(!t.matches("http://API.INTERNAL/a"));
        assert!(!t.matches("http://other/a"));
        assert_eq!(TracePropagationTargets::matching(["x", ".*"]), TracePropagationTargets::all());
    }
}
