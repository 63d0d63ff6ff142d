//! Per-segment staging of finished children (stream mode). The stage also keeps
//! the segment's open children (see `child`): they finish under its lock.
//!
//! Handing every finished span to the span buffer costs its lock, a lookup of the
//! trace's bucket and the bookkeeping of the bound, the timer and the complete
//! traces. Instead, when a child takes that path, the buffer *lends* the trace's
//! bucket to the child's segment with room for a few more children (reserved
//! against `max_buffered_spans`, so the bound stays exact). The children that
//! finish next go straight into the lent bucket under the segment's own,
//! uncontended lock: one copy of the record, no other bookkeeping. The bucket
//! goes back (moved, not copied) when the room is used up (the next child takes
//! the buffer's path again), when the segment finishes (its children leave with
//! it, as before), and whenever the buffer needs it: the timer, `flush`, `close`,
//! an overflow, another segment of the same trace, `len` (counted in place).
//!
//! While lent, the bucket's table holds the segment that holds the stage: the
//! buffer lists every stage and always takes its bucket back (at the latest on
//! the timer), which ends that cycle like it ends the buffer's own.
//!
//! Lock order: the buffer's state, then a stage. Staging takes the stage's lock
//! only.

use std::sync::Arc;

use super::buffer::MAX_BUCKET_BYTES;
use super::child::{ChildSlot, Children, SlotKey};
use super::record::{Refs, SpanRecord, ThreadInfo};
use super::span::SegmentShared;

/// Most children staged per loan: a trip through the buffer per this many spans.
pub(crate) const GRANT: usize = 128;

/// A segment's loan of its trace's bucket.
#[derive(Debug, Default)]
pub(crate) struct Stage {
    /// The bucket's records, then the staged ones.
    pub(crate) records: Vec<SpanRecord>,
    pub(crate) refs: Refs,
    /// Estimated serialized size of `records`.
    pub(crate) bytes: usize,
    /// Records the bucket had when lent.
    pub(crate) base: usize,
    /// Records the loan may reach (`base` + the reserved room).
    pub(crate) limit: usize,
    /// Position in the buffer's list of stages, while lent.
    pub(crate) slot: Option<usize>,
    /// The segment's open children (see `child`).
    pub(crate) children: Children,
}

impl Stage {
    /// Whether the loan has room for a record of this estimated size (counted in
    /// if so).
    #[inline]
    pub(crate) fn admit_size(&mut self, size: usize) -> bool {
        if self.records.len() >= self.limit || self.bytes + size > MAX_BUCKET_BYTES {
            return false;
        }
        self.bytes += size;
        true
    }

    /// Stages the admitted record of the child in slot `key`, filled in place
    /// by `fill` from the slot: no record is built and then copied (its loads
    /// would stall on the stores that built it).
    #[inline]
    pub(crate) fn keep_child(
        &mut self,
        key: SlotKey,
        segment: &Arc<SegmentShared>,
        thread: &Arc<ThreadInfo>,
        fill: impl FnOnce(&mut SpanRecord, &mut ChildSlot),
    ) {
        let Some(slot) = self.children.get_mut(key) else {
            return;
        };
        self.records.push(SpanRecord::BLANK);
        if let Some(record) = self.records.last_mut() {
            fill(record, slot);
            self.refs.add(record, segment, thread);
        }
    }

    /// Spans staged since the loan.
    pub(crate) fn staged(&self) -> usize {
        self.records.len().saturating_sub(self.base)
    }

    /// Room reserved for the loan.
    pub(crate) fn reserved(&self) -> usize {
        self.limit.saturating_sub(self.base)
    }
}
