//! Head sampling: one `sample_rand` per trace and the decision derived from it.
//!
//! The invariant `sample_rand < sample_rate ⇔ sampled` holds for every decision
//! this SDK makes, and a `sample_rand` derived for an incoming decision without one
//! is chosen inside the interval consistent with that decision (PROTOCOL §6).

use super::record::AttributeKey;
use crate::ids::random_u64;
use crate::options::ClientOptions;
use crate::protocol::AttributeValue;

/// Resolution of `sample_rand`: six decimals, as other SDKs send it.
const RAND_SCALE: f64 = 1_000_000.0;

/// What a traces sampler sees when a trace (a local root span) starts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SamplingContext<'a> {
    /// Name of the root span.
    pub name: &'a str,
    /// Op of the root span.
    pub op: Option<&'a str>,
    /// The upstream decision when continuing a trace (`None`: new trace or deferred).
    pub parent_sampled: Option<bool>,
    /// The upstream sample rate when continuing a trace, if it sent one.
    pub parent_sample_rate: Option<f64>,
    /// Attributes given when the span was started.
    pub attributes: &'a [(AttributeKey, AttributeValue)],
}

/// A fresh `sample_rand`: uniform in `[0, 1)` on a grid of 10⁻⁶, so the value sent
/// in baggage is exactly the value the decision used.
pub(crate) fn new_sample_rand() -> f64 {
    (random_u64() % RAND_SCALE as u64) as f64 / RAND_SCALE
}

/// A `sample_rand` consistent with an upstream decision that came without one:
/// in `[0, rate)` when sampled, in `[rate, 1)` when not, uniform otherwise.
pub(crate) fn derive_sample_rand(sampled: Option<bool>, rate: Option<f64>) -> f64 {
    let u = new_sample_rand();
    match (sampled, rate) {
        (Some(true), Some(r)) if r > 0.0 && r <= 1.0 => ((u * r) * RAND_SCALE).floor() / RAND_SCALE,
        (Some(false), Some(r)) if (0.0..1.0).contains(&r) => {
            let x = (((r + u * (1.0 - r)) * RAND_SCALE).ceil() / RAND_SCALE).min(1.0 - 1.0 / RAND_SCALE);
            x.max(r)
        }
        _ => u,
    }
}

/// The decision for a new local root.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Decision {
    /// `None`: tracing is off, the decision is deferred to downstream services.
    pub(crate) sampled: Option<bool>,
    /// The rate the decision used, when this SDK made it.
    pub(crate) rate: Option<f64>,
    /// Whether spans are recorded here (tracing enabled and sampled).
    pub(crate) record: bool,
}

/// Head sampling: `traces_sampler` wins, then the upstream decision, then
/// `traces_sample_rate`; without any, spans are not recorded and the upstream
/// decision (or none) is propagated.
pub(crate) fn decide(options: &ClientOptions, ctx: &SamplingContext<'_>, sample_rand: f64) -> Decision {
    if let Some(sampler) = &options.traces_sampler {
        let rate = sanitize(sampler(ctx));
        let sampled = sample_rand < rate;
        return Decision { sampled: Some(sampled), rate: Some(rate), record: sampled };
    }
    let tracing = options.traces_sample_rate.is_some();
    if let Some(parent) = ctx.parent_sampled {
        // Without the upstream's rate (a `sentry-trace` without baggage), the rate
        // of the decision taken is the decision itself: 1 or 0, which every
        // `sample_rand` is consistent with.
        let rate = ctx.parent_sample_rate.unwrap_or(if parent { 1.0 } else { 0.0 });
        return Decision { sampled: Some(parent), rate: Some(rate), record: parent && tracing };
    }
    match options.traces_sample_rate {
        Some(rate) => {
            let rate = sanitize(rate);
            let sampled = sample_rand < rate;
            Decision { sampled: Some(sampled), rate: Some(rate), record: sampled }
        }
        None => Decision { sampled: None, rate: None, record: false },
    }
}

fn sanitize(rate: f64) -> f64 {
    if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::propagation::format_sample_rand;

    fn ctx(parent: Option<bool>) -> SamplingContext<'static> {
        SamplingContext { name: "n", op: None, parent_sampled: parent, parent_sample_rate: None, attributes: &[] }
    }

    #[test]
    fn derived_rand_is_consistent_with_the_decision() {
        for _ in 0..10_000 {
            let r = derive_sample_rand(Some(true), Some(0.3));
            assert!(r < 0.3, "{r}");
            let r = derive_sample_rand(Some(false), Some(0.3));
            assert!((0.3..1.0).contains(&r), "{r}");
            let s: f64 = format_sample_rand(r).parse().unwrap();
            assert!((0.3..1.0).contains(&s));
        }
    }

    #[test]
    fn rand_invariant_holds_for_own_decisions() {
        let options = ClientOptions::new().with_traces_sample_rate(0.4);
        for _ in 0..10_000 {
            let rand = new_sample_rand();
            let d = decide(&options, &ctx(None), rand);
            let sent: f64 = format_sample_rand(rand).parse().unwrap();
            assert_eq!(d.sampled, Some(sent < 0.4));
        }
    }

    #[test]
    fn no_rate_defers_and_parent_wins() {
        let options = ClientOptions::new();
        assert_eq!(decide(&options, &ctx(None), 0.1), Decision { sampled: None, rate: None, record: false });
        assert_eq!(decide(&options, &ctx(Some(true)), 0.1).sampled, Some(true));
        let options = ClientOptions::new().with_traces_sample_rate(0.0);
        assert!(decide(&options, &ctx(Some(true)), 0.9).record);
    }
}
