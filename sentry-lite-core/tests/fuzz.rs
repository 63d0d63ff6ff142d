//! Bounded property fuzzing of every parser fed by the outside world: DSNs,
//! trace headers, rate-limit headers and envelopes. None may panic, and 1 MB
//! inputs stay bounded in time and memory.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use sentry_lite_core::protocol::Envelope;
use sentry_lite_core::trace::propagation::{Baggage, SentryTrace, TraceParent};
use sentry_lite_core::transport::{parse_rate_limits, RateLimits};
use sentry_lite_core::Dsn;

fn config() -> ProptestConfig {
    ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() }
}

/// Strings biased towards the grammar of each header, plus arbitrary noise.
fn header_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9a-fA-F\\-:;,= %@/._+]{0,200}",
        "(sentry-[a-z_]{1,12}=[^,]{0,20},?){0,20}",
        "[0-9a-f]{32}-[0-9a-f]{16}(-[01x])?",
        "0[0-9a-f]-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.*)?",
        "([0-9.]{0,6}:[a-z_;]{0,30}:[a-z]{0,12}(:.*)?, ?){0,5}",
        "(https?|ftp)://[a-z0-9:@\\[\\]]{0,20}/[a-z0-9/]{0,20}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn dsn_parser_never_panics(s in header_like()) {
        if let Ok(dsn) = s.parse::<Dsn>() {
            // A parsed DSN always yields a usable endpoint.
            prop_assert!(dsn.envelope_url().contains("/api/"));
        }
    }

    #[test]
    fn trace_header_parsers_never_panic(s in header_like()) {
        if let Some(t) = SentryTrace::parse(&s) {
            prop_assert_eq!(SentryTrace::parse(&t.to_string()), Some(t));
        }
        if let Some(t) = TraceParent::parse(&s) {
            prop_assert!(TraceParent::parse(&t.to_string()).is_some());
        }
        let baggage = Baggage::parse(&s);
        let dsc = baggage.to_dsc(Default::default()).unwrap_or_default();
        let out = Baggage::header_value(&dsc, baggage.third_party());
        prop_assert!(out.len() <= 8192);
    }

    #[test]
    fn rate_limit_parser_never_panics(s in header_like(), status in 100u16..600) {
        let _ = parse_rate_limits(&s);
        let mut limits = RateLimits::new();
        limits.update(status, Some(&s), Some(&s), Instant::now());
    }

    #[test]
    fn envelope_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), s in header_like()) {
        let _ = Envelope::from_slice(&bytes);
        let framed = format!("{{}}\n{{\"type\":\"event\",\"length\":{}}}\n{s}", s.len());
        let env = Envelope::from_slice(framed.as_bytes());
        prop_assert!(env.is_ok());
        let env = env.unwrap();
        prop_assert_eq!(env.items[0].payload(), s.as_bytes());
    }
}

/// Each parser on 1 MB of hostile input finishes quickly and returns bounded output.
#[test]
fn megabyte_inputs_stay_bounded() {
    let inputs = [
        "a".repeat(1 << 20),
        "sentry-trace_id=1,".repeat((1 << 20) / 18),
        format!("{}:error:org, ", "9".repeat(100)).repeat((1 << 20) / 110),
        "{\"type\":\"event\"}\n".repeat((1 << 20) / 17),
        "%".repeat(1 << 20),
    ];
    for input in &inputs {
        let start = Instant::now();
        let _ = input.parse::<Dsn>();
        let _ = SentryTrace::parse(input);
        let _ = TraceParent::parse(input);
        let baggage = Baggage::parse(input);
        assert!(baggage.third_party().len() <= 64);
        assert!(parse_rate_limits(input).len() <= 1 << 20);
        let _ = Envelope::from_slice(format!("{{}}\n{input}").as_bytes());
        // Generous: a debug build on a loaded 2-core machine; quadratic work would take minutes.
        assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
    }
}
