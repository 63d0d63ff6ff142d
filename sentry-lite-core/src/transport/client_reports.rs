//! Counting of everything the SDK drops, sent as `client_report` items.

use std::collections::BTreeMap;

use parking_lot::Mutex;

use crate::protocol::{ClientReport, DataCategory, DiscardReason, DiscardedEvents, Timestamp};

/// Drop counters by reason and category. Drops are rare, so a mutex is fine.
#[derive(Debug, Default)]
pub(crate) struct ClientReports {
    counts: Mutex<BTreeMap<(DiscardReason, DataCategory), u64>>,
    totals: Mutex<BTreeMap<(DiscardReason, DataCategory), u64>>,
}

impl ClientReports {
    pub(crate) fn record(&self, reason: DiscardReason, category: DataCategory, quantity: u64) {
        if quantity > 0 {
            *self.counts.lock().entry((reason, category)).or_default() += quantity;
            *self.totals.lock().entry((reason, category)).or_default() += quantity;
        }
    }

    /// Takes the pending counts as a report, if there are any.
    pub(crate) fn take(&self) -> Option<ClientReport> {
        let counts = std::mem::take(&mut *self.counts.lock());
        if counts.is_empty() {
            return None;
        }
        Some(ClientReport {
            timestamp: Timestamp::now(),
            discarded_events: counts
                .into_iter()
                .map(|((reason, category), quantity)| DiscardedEvents { reason, category: category.as_str().to_owned(), quantity })
                .collect(),
        })
    }

    /// Puts a report back, e.g. when the envelope carrying it could not be sent.
    pub(crate) fn restore(&self, report: &ClientReport) {
        let mut counts = self.counts.lock();
        for d in &report.discarded_events {
            if let Some(cat) = DataCategory::parse(&d.category) {
                *counts.entry((d.reason, cat)).or_default() += d.quantity;
            }
        }
    }

    /// Everything dropped since the client started, whether reported yet or not.
    pub(crate) fn totals(&self) -> BTreeMap<(DiscardReason, DataCategory), u64> {
        self.totals.lock().clone()
    }
}
