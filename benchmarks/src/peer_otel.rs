//! Peer: OpenTelemetry (`opentelemetry_sdk` 0.33, `tracing-opentelemetry` 0.34).
//!
//! Each contender gets its own `SdkTracerProvider` with the
//! `BatchSpanProcessor` at default settings (queue 2 048, batch 512, 5 s
//! delay, own background thread) and an exporter that only counts spans.
//! Spans that the processor drops because its queue is full are never
//! exported; after a `force_flush` the note reports
//! `dropped = ended - exported`.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt;

use crate::harness::{time_chunked, time_chunked_settled, time_loop, Contender};

/// Contender name for direct tracer API use.
pub(crate) const NAME: &str = "otel";

/// Exporter that counts and discards spans.
#[derive(Debug, Clone, Default)]
pub(crate) struct CountingExporter {
    pub(crate) exported: Arc<AtomicU64>,
}

impl SpanExporter for CountingExporter {
    fn export(&self, batch: Vec<SpanData>) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.exported.fetch_add(batch.len() as u64, Ordering::Relaxed);
        drop(std::hint::black_box(batch));
        std::future::ready(Ok(()))
    }
}

/// A provider (BatchSpanProcessor, default config) and its export counter.
pub(crate) fn provider(sampled: bool) -> (SdkTracerProvider, Arc<AtomicU64>) {
    let exporter = CountingExporter::default();
    let exported = exporter.exported.clone();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .with_sampler(if sampled { Sampler::AlwaysOn } else { Sampler::AlwaysOff })
        .build();
    (provider, exported)
}

/// Wrap a batch body: counts ended spans (untimed) and reports drops.
fn contender(
    name: &str,
    sampled: bool,
    ended_spans: impl Fn(u64) -> u64 + 'static,
    body: impl Fn(&SdkTracer, u64) -> Duration + 'static,
) -> Contender {
    let (provider, exported) = provider(sampled);
    let tracer = provider.tracer("bench");
    let ended = Rc::new(Cell::new(0u64));
    let ended2 = ended.clone();
    Contender::new(
        name,
        Box::new(move |iters| {
            let d = body(&tracer, iters);
            ended2.set(ended2.get() + ended_spans(iters));
            d
        }),
    )
    .with_note(Box::new(move || {
        let _ = provider.force_flush();
        let exp = exported.load(Ordering::Relaxed);
        if sampled {
            let e = ended.get();
            format!("ended={e} exported={exp} dropped={}", e.saturating_sub(exp))
        } else {
            format!("exported={exp}")
        }
    }))
}

pub(crate) fn span_root(sampled: bool) -> Contender {
    contender(NAME, sampled, |iters| iters, |tracer, iters| time_loop(iters, |_| tracer.start("GET /users/{id}").end()))
}

pub(crate) fn span_child(sampled: bool) -> Contender {
    // 100 children per (untimed) root.
    contender(
        NAME,
        sampled,
        |iters| iters + iters.div_ceil(100),
        |tracer, iters| {
            time_chunked(
                iters,
                100,
                || Context::current_with_span(tracer.start("GET /users/{id}")),
                |cx, _| tracer.start_with_context("select 1", cx).end(),
                |cx| cx.span().end(),
            )
        },
    )
}

/// [`span_child`] with the provider flushed (untimed) after every 1 000
/// children, so that the processor's queue (2 048) never drops.
pub(crate) fn span_child_kept() -> Contender {
    let (provider, exported) = provider(true);
    let tracer = provider.tracer("bench");
    let ended = Rc::new(Cell::new(0u64));
    let ended2 = ended.clone();
    let flusher = provider.clone();
    Contender::new(
        NAME,
        Box::new(move |iters| {
            let d = time_chunked_settled(
                iters,
                100,
                10,
                || Context::current_with_span(tracer.start("GET /users/{id}")),
                |cx, _| tracer.start_with_context("select 1", cx).end(),
                |cx| cx.span().end(),
                || {
                    let _ = flusher.force_flush();
                },
            );
            ended2.set(ended2.get() + iters + iters.div_ceil(100));
            d
        }),
    )
    .with_note(Box::new(move || {
        let _ = provider.force_flush();
        let (e, exp) = (ended.get(), exported.load(Ordering::Relaxed));
        format!("ended={e} exported={exp} dropped={}", e.saturating_sub(exp))
    }))
}

/// One iteration = root + `n` children.
pub(crate) fn trace_n(n: u64) -> Contender {
    contender(
        NAME,
        true,
        move |iters| iters * (n + 1),
        move |tracer, iters| {
            time_loop(iters, |_| {
                let cx = Context::current_with_span(tracer.start("GET /users/{id}"));
                for _ in 0..n {
                    tracer.start_with_context("select 1", &cx).end();
                }
                cx.span().end();
            })
        },
    )
}

// ------------------------------------------------------ tracing layer ----

fn tracing_contender(spans_per_iter: u64, body: fn(u64) -> Duration) -> Contender {
    let (provider, exported) = provider(true);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("bench"))
        // lean settings: no code location, thread, target/level attributes,
        // no busy/idle time tracking
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_level(false)
        .with_tracked_inactivity(false);
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let ended = Rc::new(Cell::new(0u64));
    let ended2 = ended.clone();
    Contender::new(
        "tracing-otel",
        Box::new(move |iters| {
            let d = tracing::dispatcher::with_default(&dispatch, || body(iters));
            ended2.set(ended2.get() + iters * spans_per_iter);
            d
        }),
    )
    .with_note(Box::new(move || {
        let _ = provider.force_flush();
        let exp = exported.load(Ordering::Relaxed);
        if spans_per_iter > 0 {
            let e = ended.get();
            format!("ended~{e} exported={exp} dropped~{}", e.saturating_sub(exp))
        } else {
            format!("exported={exp}")
        }
    }))
}

pub(crate) fn tracing_span() -> Contender {
    tracing_contender(1, |iters| time_loop(iters, crate::baseline::one_span))
}
pub(crate) fn tracing_child_span() -> Contender {
    tracing_contender(1, crate::baseline::child_spans)
}
pub(crate) fn tracing_event() -> Contender {
    tracing_contender(0, |iters| time_loop(iters, crate::baseline::one_event))
}
pub(crate) fn tracing_event_in_span() -> Contender {
    tracing_contender(0, crate::baseline::events_in_span)
}

// ------------------------------------------------------------- memory ----

/// Memory case: one trace of `n` children (the BatchSpanProcessor exports
/// spans as they end, so nothing accumulates per trace).
pub(crate) fn memory_trace() -> crate::MemFn {
    let (provider, _exported) = provider(true);
    let tracer = provider.tracer("bench");
    Box::new(move |n, checkpoint| {
        let cx = Context::current_with_span(tracer.start("GET /users/{id}"));
        for _ in 0..n {
            tracer.start_with_context("select 1", &cx).end();
        }
        checkpoint();
        cx.span().end();
        let _ = provider.force_flush();
    })
}
