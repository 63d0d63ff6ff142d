//! Child spans, kept by their segment.
//!
//! A recording child is not an allocation of its own: its data lives in a slot
//! of its segment's [`Stage`], under the lock its finished record is staged
//! under anyway, and its handle is the segment plus the slot's index. Starting,
//! finishing and dropping a child then cost one short lock each on a lock that
//! is rarely contended (one segment's children), instead of an allocation and
//! its free, a lock for the span's data, a second one for the stage, and the
//! reference counts of the span's own `Arc`. A slot counts the handles of its
//! span: the last one dropped finishes the span if needed and frees the slot.
//! A span finished through its only handle frees its slot at once, and that
//! handle's drop then takes no lock. Slots carry a generation, so a handle of a
//! freed slot never touches the span that reuses it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::MutexGuard;

use crate::ids::SpanId;
use crate::options::TraceLifecycle;

use super::clock::Tick;
use super::record::{estimate_parts, SpanRecord};
use super::span::{SegmentShared, SpanData};
use super::stage::Stage;

/// A child's slot in its segment's stage.
#[derive(Debug)]
pub(crate) struct ChildSlot {
    /// Handles of the span; 0: the slot is free.
    handles: u32,
    /// Bumped when the slot is freed.
    generation: u32,
    pub(crate) start: Tick,
    pub(crate) data: SpanData,
}

/// Names a child's slot: its index and the generation it was opened in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotKey {
    index: u32,
    generation: u32,
}

/// The open children of one segment: slots reused through a free list, so a
/// segment's slots never outnumber its children open at once.
#[derive(Debug, Default)]
pub(crate) struct Children {
    slots: Vec<ChildSlot>,
    free: Vec<u32>,
}

impl Children {
    /// A slot for a new child (one handle), its blank data to be set in place
    /// by the caller under the stage's lock (whose locals are written straight
    /// into the slot: a closure or a struct built first would be moved, and
    /// those loads stall on the fresh stores).
    #[inline]
    pub(crate) fn open(&mut self) -> (SlotKey, &mut ChildSlot) {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let blank = ChildSlot { handles: 0, generation: 0, start: Tick::ZERO, data: SpanData::EMPTY };
                self.slots.push(blank);
                (self.slots.len() - 1) as u32
            }
        };
        // In range: taken from the free list or just pushed.
        let slot = &mut self.slots[index as usize];
        slot.handles = 1;
        (SlotKey { index, generation: slot.generation }, slot)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, key: SlotKey) -> Option<&mut ChildSlot> {
        self.slots.get_mut(key.index as usize).filter(|s| s.handles > 0 && s.generation == key.generation)
    }

    /// Frees the slot; what the span still holds (op, origin, thread) goes.
    pub(crate) fn close(&mut self, key: SlotKey) {
        if let Some(slot) = self.get_mut(key) {
            slot.handles = 0;
            slot.generation = slot.generation.wrapping_add(1);
            slot.data = SpanData::EMPTY;
            self.free.push(key.index);
        }
    }
}

/// The handle of a recording child span.
pub(crate) struct ChildSpan {
    pub(crate) segment: Arc<SegmentShared>,
    key: SlotKey,
    pub(crate) span_id: SpanId,
    pub(crate) parent_span_id: SpanId,
    /// The slot was freed when the span finished through this, its only,
    /// handle: dropping it needs no lock.
    closed: AtomicBool,
}

impl std::fmt::Debug for ChildSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpan").field("span_id", &self.span_id).finish_non_exhaustive()
    }
}

impl ChildSpan {
    /// The handle of the child in slot `key`, once its data is set.
    #[inline]
    pub(crate) fn new(segment: &Arc<SegmentShared>, key: SlotKey, span_id: SpanId, parent_span_id: SpanId) -> Self {
        ChildSpan { segment: segment.clone(), key, span_id, parent_span_id, closed: AtomicBool::new(false) }
    }

    /// Runs `f` on the span's data (finished or not).
    #[inline]
    pub(crate) fn with_data<R>(&self, f: impl FnOnce(&mut SpanData) -> R) -> Option<R> {
        let mut stage = self.segment.stage.lock();
        stage.children.get_mut(self.key).map(|slot| f(&mut slot.data))
    }

    /// Finishes the span; later calls do nothing.
    #[inline]
    pub(crate) fn finish(&self) {
        let mut stage = self.segment.stage.lock();
        let Some(slot) = stage.children.get_mut(self.key) else {
            return;
        };
        if slot.data.finished {
            return;
        }
        slot.data.finished = true;
        // Only this handle: nothing can read the slot after this call but
        // this handle, which then sees a finished span (not recording, no data).
        let only = slot.handles == 1;
        self.ship(stage, only);
        if only {
            self.closed.store(true, Ordering::Relaxed);
        }
    }

    /// Stages the just-finished span's record in the loan of its segment's
    /// bucket, or hands it to the span buffer (or the static-mode collector)
    /// once the stage's lock is released. With `close`, frees the slot too.
    #[inline]
    fn ship(&self, mut stage: MutexGuard<'_, Stage>, close: bool) {
        let segment = &self.segment;
        let stream = segment.lifecycle() != TraceLifecycle::Static;
        let Some(slot) = stage.children.get_mut(self.key) else {
            return;
        };
        let own_thread = slot.data.thread.take();
        let thread = own_thread.as_ref().unwrap_or(&segment.thread);
        if stream {
            let size = estimate_parts(&slot.data.name, &slot.data.attributes);
            if stage.admit_size(size) {
                let end = Tick::now();
                stage.keep_child(self.key, segment, thread, |record, slot| self.fill_record(record, slot, end));
                if close {
                    stage.children.close(self.key);
                }
                return;
            }
            // Refused (and counted) before its end is read or its record built.
            if segment.client.span_buffer().refuse(&*segment.client) {
                if close {
                    stage.children.close(self.key);
                }
                return;
            }
        }
        let end = Tick::now();
        let mut record = SpanRecord::BLANK;
        if let Some(slot) = stage.children.get_mut(self.key) {
            self.fill_record(&mut record, slot, end);
        }
        if close {
            stage.children.close(self.key);
        }
        drop(stage);
        match stream {
            true => segment.client.span_buffer().push(record, segment, thread),
            false => super::static_mode::collect(record, segment, thread),
        }
    }

    /// Moves the span's data into `record`. Op, origin and status stay readable
    /// in the slot, for events captured in the span but processed later.
    #[inline]
    fn fill_record(&self, record: &mut SpanRecord, slot: &mut ChildSlot, end: Tick) {
        let data = &mut slot.data;
        record.span_id = self.span_id;
        record.parent_span_id = Some(self.parent_span_id);
        record.start = slot.start;
        record.end = end;
        record.name = std::mem::take(&mut data.name);
        record.op = data.op.clone();
        record.origin = data.origin.clone();
        record.status = data.status;
        // The blank record's vector is empty: moving another empty one would
        // only cost the copy.
        if data.attributes.capacity() > 0 {
            record.attributes = std::mem::take(&mut data.attributes);
        }
    }
}

impl Clone for ChildSpan {
    fn clone(&self) -> Self {
        let mut closed = self.closed.load(Ordering::Relaxed);
        if !closed {
            match self.segment.stage.lock().children.get_mut(self.key) {
                Some(slot) => slot.handles += 1,
                // Freed by a `finish` on another thread through this handle.
                None => closed = true,
            }
        }
        ChildSpan {
            segment: self.segment.clone(),
            key: self.key,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            closed: AtomicBool::new(closed),
        }
    }
}

impl Drop for ChildSpan {
    fn drop(&mut self) {
        if *self.closed.get_mut() {
            return;
        }
        let mut stage = self.segment.stage.lock();
        let Some(slot) = stage.children.get_mut(self.key) else {
            return;
        };
        if slot.handles > 1 {
            slot.handles -= 1;
            return;
        }
        if slot.data.finished {
            stage.children.close(self.key);
            return;
        }
        // The last handle of an unfinished span: it finishes now.
        slot.data.finished = true;
        self.ship(stage, true);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::hub::Hub;
    use crate::protocol::{DataCategory, DiscardReason, SpanStatus};
    use crate::{Client, ClientOptions, TestTransport};

    fn setup() -> (Arc<Hub>, TestTransport, Arc<Client>) {
        super::super::tests::setup(ClientOptions::new().with_traces_sample_rate(1.0))
    }

    fn sent(transport: &TestTransport) -> Vec<serde_json::Value> {
        super::super::tests::sent_spans(transport)
    }

    fn slots(root: &crate::Span) -> usize {
        root.segment().map_or(0, |s| s.stage.lock().children.slots.len())
    }

    #[test]
    fn slots_are_reused_so_a_segment_holds_only_its_open_children() {
        let (hub, _transport, _client) = setup();
        let root = Hub::run(hub, || super::super::start_root_span("seg", "task"));
        for _ in 0..10_000 {
            root.start_child("c", "work").finish();
        }
        assert_eq!(slots(&root), 1);
        let open: Vec<_> = (0..3).map(|_| root.start_child("open", "work")).collect();
        let inner = open[0].start_child("inner", "work");
        assert_eq!(slots(&root), 4);
        drop(inner);
        drop(open);
        for _ in 0..100 {
            let _dropped = root.start_child("c", "work");
        }
        assert_eq!(slots(&root), 4, "freed slots are taken again");
        root.finish();
    }

    #[test]
    fn a_child_finishes_once_when_its_last_clone_drops_on_any_thread() {
        let (hub, transport, client) = setup();
        let root = Hub::run(hub, || super::super::start_root_span("seg", "task"));
        for round in 0..50 {
            let child = root.start_child(format!("shared {round}"), "work");
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    let child = child.clone();
                    std::thread::spawn(move || {
                        child.set_attribute(format!("t{t}"), t);
                        std::thread::yield_now();
                        drop(child);
                    })
                })
                .collect();
            drop(child);
            for t in threads {
                t.join().unwrap();
            }
        }
        root.finish();
        assert!(client.flush(Duration::from_secs(10)));
        let spans = sent(&transport);
        assert_eq!(spans.len(), 51, "every child once, and the root");
        for s in spans.iter().filter(|s| s["is_segment"] == false) {
            for t in 0..4 {
                assert_eq!(s["attributes"][format!("t{t}")]["value"], t, "{}: every clone's attribute", s["name"]);
            }
        }
        assert_eq!(client.discarded(DiscardReason::BufferOverflow, DataCategory::Span), 0);
        assert_eq!(slots(&root), 1);
    }

    #[test]
    fn a_finished_child_keeps_its_op_and_status_but_takes_no_more_data() {
        let (hub, transport, client) = setup();
        let root = Hub::run(hub, || super::super::start_root_span("seg", "task"));
        let child = root.start_child("c", "db.query");
        child.set_status(SpanStatus::NotFound);
        let clone = child.clone();
        child.finish();
        assert!(!clone.is_recording());
        clone.set_attribute("late", 1);
        clone.set_name("renamed");
        clone.finish();
        let ctx = clone.trace_context();
        assert_eq!(ctx.op.as_deref(), Some("db.query"));
        assert_eq!(ctx.status, Some(SpanStatus::NotFound));
        assert_eq!(ctx.parent_span_id, Some(root.span_id()));
        drop((child, clone));
        root.finish();
        assert!(client.flush(Duration::from_secs(10)));
        let spans = sent(&transport);
        let child = spans.iter().find(|s| s["is_segment"] == false).unwrap();
        assert_eq!(child["name"], "c");
        assert!(child["attributes"].get("late").is_none());
        assert_eq!(spans.len(), 2);
    }

    #[test]
    fn a_handle_of_a_freed_slot_never_touches_the_span_that_reuses_it() {
        let (hub, transport, client) = setup();
        let root = Hub::run(hub, || super::super::start_root_span("seg", "task"));
        let a = root.start_child("a", "work");
        a.finish();
        // Finished through its only handle: its slot is free, and reused.
        let b = root.start_child("b", "work");
        assert_eq!(slots(&root), 1);
        let a2 = a.clone();
        a.set_attribute("from_a", 1);
        a2.set_name("renamed by a");
        a2.finish();
        assert!(!a.is_recording() && !a2.is_recording());
        drop((a, a2));
        assert!(b.is_recording(), "dropping a's handles left b alone");
        b.set_attribute("from_b", 2);
        b.finish();
        drop(b);
        root.finish();
        assert!(client.flush(Duration::from_secs(10)));
        let spans = sent(&transport);
        assert_eq!(spans.len(), 3);
        let find = |name: &str| spans.iter().find(|s| s["name"] == name).cloned().unwrap();
        let (a, b) = (find("a"), find("b"));
        assert!(a["attributes"].get("from_a").is_none());
        assert!(b["attributes"].get("from_a").is_none());
        assert_eq!(b["attributes"]["from_b"]["value"], 2);
    }
}
