//! What the worker runs: jobs that become envelopes, and buffers it drains.
//!
//! The worker knows jobs only through these traits. `C` is what a job reads while
//! it runs (the pipeline's context); the worker hands it over without looking.

use std::time::Instant;

use crate::protocol::{DataCategory, DiscardReason, Envelope};

use super::ClientReports;

/// What a job carries, counted in client reports when it is lost before it
/// becomes envelopes (a full queue, a panic while it runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loss {
    counts: [(DataCategory, u64); 2],
}

impl Loss {
    /// `quantity` items of `category`.
    pub(crate) fn of(category: DataCategory, quantity: u64) -> Self {
        Self { counts: [(category, quantity), (DataCategory::Span, 0)] }
    }

    /// A transaction and its spans (children plus the root).
    pub(crate) fn transaction(children: u64) -> Self {
        Self { counts: [(DataCategory::Transaction, 1), (DataCategory::Span, children + 1)] }
    }

    /// How many items of `category` the loss counts.
    #[cfg(test)]
    pub(crate) fn quantity(&self, category: DataCategory) -> u64 {
        self.counts.iter().filter(|(c, _)| *c == category).map(|(_, q)| q).sum()
    }

    /// Counts the loss for `reason`.
    pub(crate) fn record(&self, reports: &ClientReports, reason: DiscardReason) {
        for &(category, quantity) in &self.counts {
            if quantity > 0 {
                reports.record(reason, category, quantity);
            }
        }
    }
}

/// Runs `f`, the work that turns `loss` into envelopes; a panic in it (a user
/// callback: `before_send`, an event processor, `before_send_span`) is caught and
/// counted as `internal_sdk_error`. Every panic on the worker is counted here.
pub(crate) fn guarded<R>(reports: &ClientReports, loss: Loss, f: impl FnOnce() -> R) -> Option<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(_) => {
            loss.record(reports, DiscardReason::InternalSdkError);
            None
        }
    }
}

/// Work that becomes envelopes on the worker thread.
pub(crate) trait Job<C: ?Sized>: Send {
    /// What is counted if this job is lost before it runs to the end.
    fn loss(&self) -> Loss;
    /// Hands each of the job's envelopes to `emit` as soon as it is built
    /// (several for complete traces leaving the span buffer together).
    fn run_into(self: Box<Self>, ctx: &C, emit: &mut dyn FnMut(Envelope));
}

/// A job that becomes at most one envelope: every job but a group of traces.
pub(crate) trait SingleJob<C: ?Sized>: Send {
    /// What is counted if this job is lost before it runs to the end.
    fn loss(&self) -> Loss;
    /// Builds the envelope; `None` when the job decided to drop (and counted it).
    fn run(self: Box<Self>, ctx: &C) -> Option<Envelope>;
}

impl<C: ?Sized, T: SingleJob<C>> Job<C> for T {
    fn loss(&self) -> Loss {
        SingleJob::loss(self)
    }

    fn run_into(self: Box<Self>, ctx: &C, emit: &mut dyn FnMut(Envelope)) {
        if let Some(envelope) = self.run(ctx) {
            emit(envelope);
        }
    }
}

/// A buffer (spans, logs) that the worker drains on its timer, on flush and on close.
pub(crate) trait Buffer<C: ?Sized>: Send + Sync {
    /// When the oldest buffered item must go out.
    fn deadline(&self) -> Option<Instant>;
    /// Takes what is due (everything with `force`).
    fn drain(&self, force: bool) -> Vec<Box<dyn Job<C>>>;
    /// Stops accepting new items.
    fn close(&self);
}

/// A ready envelope (e.g. a batch of logs built by an integration).
pub(crate) struct EnvelopeJob(pub(crate) Envelope);

impl<C: ?Sized> SingleJob<C> for EnvelopeJob {
    fn loss(&self) -> Loss {
        let first = self.0.items.iter().find_map(|i| i.ty().category().map(|c| (c, i.quantity())));
        let (category, quantity) = first.unwrap_or((DataCategory::Error, 0));
        Loss::of(category, quantity)
    }

    fn run(self: Box<Self>, _ctx: &C) -> Option<Envelope> {
        Some(self.0)
    }
}
