//! Counting of everything the SDK drops, sent as `client_report` items.
//!
//! Drops can happen on hot paths (a full queue, a sampled-out trace), so counting
//! is one relaxed atomic add into a fixed table: no lock, no allocation.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::protocol::{ClientReport, DataCategory, DiscardReason, DiscardedEvents, Timestamp};

const REASONS: [DiscardReason; 11] = [
    DiscardReason::QueueOverflow,
    DiscardReason::BufferOverflow,
    DiscardReason::RatelimitBackoff,
    DiscardReason::NetworkError,
    DiscardReason::SampleRate,
    DiscardReason::BeforeSend,
    DiscardReason::EventProcessor,
    DiscardReason::SendError,
    DiscardReason::InternalSdkError,
    DiscardReason::Ignored,
    DiscardReason::Invalid,
];

const CATEGORIES: [DataCategory; 9] = DataCategory::ALL;

const SLOTS: usize = REASONS.len() * CATEGORIES.len();

fn slot(reason: DiscardReason, category: DataCategory) -> Option<usize> {
    let r = REASONS.iter().position(|x| *x == reason)?;
    let c = CATEGORIES.iter().position(|x| *x == category)?;
    Some(r * CATEGORIES.len() + c)
}

/// Drop counters by reason and category: pending (not yet reported) and totals.
#[derive(Debug)]
pub(crate) struct ClientReports {
    pending: [AtomicU64; SLOTS],
    totals: [AtomicU64; SLOTS],
    /// Set after a pending count grows: `take` (once per envelope) skips the
    /// scan of every slot while nothing was dropped.
    dirty: AtomicBool,
    /// Spool entries skipped: not envelopes (of unknown category, so outside
    /// the table), or delivered but impossible to remove.
    spool_skipped: AtomicU64,
}

impl Default for ClientReports {
    fn default() -> Self {
        Self {
            pending: std::array::from_fn(|_| AtomicU64::new(0)),
            totals: std::array::from_fn(|_| AtomicU64::new(0)),
            dirty: AtomicBool::new(false),
            spool_skipped: AtomicU64::new(0),
        }
    }
}

impl ClientReports {
    pub(crate) fn record_spool_skip(&self) {
        self.spool_skipped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn spool_skipped(&self) -> u64 {
        self.spool_skipped.load(Ordering::Relaxed)
    }

    pub(crate) fn record(&self, reason: DiscardReason, category: DataCategory, quantity: u64) {
        if quantity == 0 {
            return;
        }
        if let Some(i) = slot(reason, category) {
            self.pending[i].fetch_add(quantity, Ordering::Relaxed);
            self.totals[i].fetch_add(quantity, Ordering::Relaxed);
            // Release: whoever sees the flag sees the count.
            self.dirty.store(true, Ordering::Release);
        }
    }

    /// Takes the pending counts as a report, if there are any.
    pub(crate) fn take(&self) -> Option<ClientReport> {
        if !self.dirty.load(Ordering::Relaxed) || !self.dirty.swap(false, Ordering::Acquire) {
            return None;
        }
        let mut discarded_events = Vec::new();
        for (i, counter) in self.pending.iter().enumerate() {
            // Cheap read first: most slots stay zero forever.
            if counter.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let quantity = counter.swap(0, Ordering::Relaxed);
            if quantity > 0 {
                discarded_events.push(DiscardedEvents {
                    reason: REASONS[i / CATEGORIES.len()],
                    category: CATEGORIES[i % CATEGORIES.len()].as_str().to_owned(),
                    quantity,
                });
            }
        }
        (!discarded_events.is_empty()).then(|| ClientReport { timestamp: Timestamp::now(), discarded_events })
    }

    /// Puts a report back, e.g. when the envelope carrying it could not be sent.
    pub(crate) fn restore(&self, report: &ClientReport) {
        for d in &report.discarded_events {
            if let Some(i) = DataCategory::parse(&d.category).and_then(|c| slot(d.reason, c)) {
                self.pending[i].fetch_add(d.quantity, Ordering::Relaxed);
                self.dirty.store(true, Ordering::Release);
            }
        }
    }

    /// The total for one reason and category.
    pub(crate) fn total(&self, reason: DiscardReason, category: DataCategory) -> u64 {
        slot(reason, category).map_or(0, |i| self.totals[i].load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_and_restore() {
        let r = ClientReports::default();
        r.record(DiscardReason::QueueOverflow, DataCategory::Error, 2);
        r.record(DiscardReason::SampleRate, DataCategory::Span, 5);
        let report = r.take().unwrap();
        assert_eq!(report.discarded_events.len(), 2);
        assert!(r.take().is_none());
        r.restore(&report);
        assert_eq!(r.take().unwrap().discarded_events, report.discarded_events);
        assert_eq!(r.total(DiscardReason::SampleRate, DataCategory::Span), 5);
    }

    #[test]
    fn every_reason_and_category_has_a_slot() {
        for reason in REASONS {
            for category in CATEGORIES {
                assert!(slot(reason, category).is_some());
            }
        }
    }
}
