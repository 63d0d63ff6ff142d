//! Field values whose `Display` fails reach Sentry as far as they got; they never
//! panic the instrumented code (`to_string()` would).

use std::error::Error;
use std::fmt;
use std::time::Duration;

use sentry_lite_core::protocol::ItemType;
use sentry_lite_core::{ClientOptions, TestTransport};
use tracing_subscriber::prelude::*;

#[derive(Debug)]
struct BrokenDisplay;
impl fmt::Display for BrokenDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("half")?;
        Err(fmt::Error)
    }
}
impl Error for BrokenDisplay {}

#[test]
fn errors_with_a_failing_display_are_recorded_not_panicked() {
    let transport = TestTransport::new();
    let options = ClientOptions::new().with_traces_sample_rate(1.0).with_transport(transport.clone());
    let _guard = sentry_lite_core::init(options).expect("init");
    let subscriber = tracing_subscriber::registry().with(sentry_lite_tracing::layer());
    tracing::subscriber::with_default(subscriber, || {
        let err = BrokenDisplay;
        let span = tracing::info_span!("work", cause = tracing::field::Empty);
        let _e = span.enter();
        span.record("cause", &err as &(dyn Error + 'static));
        tracing::warn!(error = &err as &(dyn Error + 'static), "a breadcrumb");
        tracing::error!(error = &err as &(dyn Error + 'static), "an event");
    });
    assert!(sentry_lite_core::flush(Duration::from_secs(5)));
    let events: Vec<_> = transport.items_of(&ItemType::Event).collect();
    assert_eq!(events.len(), 1, "{events:#?}");
    let spans: Vec<_> = transport.items_of(&ItemType::Span).collect();
    let text = serde_json::to_string(&spans).unwrap();
    assert!(text.contains("\"half\""), "the span attribute keeps what Display wrote: {text}");
}
