//! An `error!` carrying an error becomes an exception whose crashing frame is the
//! code that logged it: neither the layer nor tracing's dispatch shows on top.

use std::error::Error;
use std::time::Duration;

use sentry_lite_core::{ClientOptions, TestTransport};
use tracing_subscriber::prelude::*;

#[derive(Debug)]
struct Declined;
impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("card declined")
    }
}
impl Error for Declined {}

#[inline(never)]
fn report_failure() {
    let err = Declined;
    tracing::error!(error = &err as &(dyn Error + 'static), "payment failed");
}

#[test]
fn the_crashing_frame_is_the_caller_of_error() {
    let transport = TestTransport::new();
    let guard = sentry_lite_core::init(ClientOptions::new().with_transport(transport.clone())).expect("init");
    let subscriber = tracing_subscriber::registry().with(sentry_lite_tracing::layer());
    tracing::subscriber::with_default(subscriber, report_failure);
    assert!(sentry_lite_core::flush(Duration::from_secs(5)));
    drop(guard);
    let events = transport.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    let exc = events[0].exception.as_ref().unwrap().values.last().unwrap();
    let frames = &exc.stacktrace.as_ref().expect("a stack trace").frames;
    let top = frames.last().unwrap();
    assert_eq!(top.function.as_deref(), Some("error_frames::report_failure"), "{frames:#?}");
    assert_eq!(top.in_app, Some(true));
}
