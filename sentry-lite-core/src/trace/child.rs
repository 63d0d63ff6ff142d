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
    pub(crate) start: Tick,
    pub(crate) data: SpanData,
}

/// The open children of one segment: slots reused through a free list, so a
/// segment's slots never outnumber its children open at once.
#[derive(Debug, Default)]
pub(crate) struct Children {
    slots: Vec<ChildSlot>,
    free: Vec<u32>,
}

impl Children {
    /// A slot for a new child (one handle), its data to be filled in place.
    #[inline]
    fn open(&mut self) -> (u32, &mut ChildSlot) {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(ChildSlot { handles: 0, start: Tick::ZERO, data: SpanData::EMPTY });
                (self.slots.len() - 1) as u32
            }
        };
        // In range: taken from the free list or just pushed.
        let slot = &mut self.slots[index as usize];
        slot.handles = 1;
        (index, slot)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, index: u32) -> Option<&mut ChildSlot> {
        self.slots.get_mut(index as usize).filter(|s| s.handles > 0)
    }

    /// Frees the slot; what the span still holds (op, origin, thread) goes.
    pub(crate) fn close(&mut self, index: u32) {
        if let Some(slot) = self.slots.get_mut(index as usize) {
            slot.handles = 0;
            slot.data = SpanData::EMPTY;
            self.free.push(index);
        }
    }
}

/// The handle of a recording child span.
pub(crate) struct ChildSpan {
    pub(crate) segment: Arc<SegmentShared>,
    index: u32,
    pub(crate) span_id: SpanId,
    pub(crate) parent_span_id: SpanId,
}

impl std::fmt::Debug for ChildSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpan").field("span_id", &self.span_id).finish_non_exhaustive()
    }
}

impl ChildSpan {
    /// Opens a slot for a child in `stage` (the locked stage of `segment`),
    /// with one handle and its blank data to be set in place by the caller
    /// (whose locals are written straight into the slot: a closure or a struct
    /// built first would be moved, and those loads stall on the fresh stores).
    #[inline]
    pub(crate) fn open(stage: &mut Stage) -> (u32, &mut ChildSlot) {
        stage.children.open()
    }

    /// The handle of the child in slot `index`, once its data is set.
    #[inline]
    pub(crate) fn new(segment: &Arc<SegmentShared>, index: u32, span_id: SpanId, parent_span_id: SpanId) -> Self {
        ChildSpan { segment: segment.clone(), index, span_id, parent_span_id }
    }

    /// Runs `f` on the span's data (finished or not).
    #[inline]
    pub(crate) fn with_data<R>(&self, f: impl FnOnce(&mut SpanData) -> R) -> Option<R> {
        let mut stage = self.segment.stage.lock();
        stage.children.get_mut(self.index).map(|slot| f(&mut slot.data))
    }

    /// Finishes the span; later calls do nothing.
    #[inline]
    pub(crate) fn finish(&self) {
        let mut stage = self.segment.stage.lock();
        let Some(slot) = stage.children.get_mut(self.index) else {
            return;
        };
        if slot.data.finished {
            return;
        }
        slot.data.finished = true;
        self.ship(stage, false);
    }

    /// Stages the just-finished span's record in the loan of its segment's
    /// bucket, or hands it to the span buffer (or the static-mode collector)
    /// once the stage's lock is released. With `close`, frees the slot too.
    #[inline]
    fn ship(&self, mut stage: MutexGuard<'_, Stage>, close: bool) {
        let segment = &self.segment;
        let stream = segment.lifecycle() != TraceLifecycle::Static;
        let Some(slot) = stage.children.get_mut(self.index) else {
            return;
        };
        let own_thread = slot.data.thread.take();
        let thread = own_thread.as_ref().unwrap_or(&segment.thread);
        if stream {
            let size = estimate_parts(&slot.data.name, &slot.data.attributes);
            if stage.admit_size(size) {
                let end = Tick::now();
                stage.keep_child(self.index, segment, thread, |record, slot| self.fill_record(record, slot, end));
                if close {
                    stage.children.close(self.index);
                }
                return;
            }
            // Refused (and counted) before its end is read or its record built.
            if segment.client.span_buffer().refuse_child(&segment.client) {
                if close {
                    stage.children.close(self.index);
                }
                return;
            }
        }
        let end = Tick::now();
        let mut record = SpanRecord::BLANK;
        if let Some(slot) = stage.children.get_mut(self.index) {
            self.fill_record(&mut record, slot, end);
        }
        if close {
            stage.children.close(self.index);
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
        if let Some(slot) = self.segment.stage.lock().children.get_mut(self.index) {
            slot.handles += 1;
        }
        ChildSpan {
            segment: self.segment.clone(),
            index: self.index,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
        }
    }
}

impl Drop for ChildSpan {
    fn drop(&mut self) {
        let mut stage = self.segment.stage.lock();
        let Some(slot) = stage.children.get_mut(self.index) else {
            return;
        };
        if slot.handles > 1 {
            slot.handles -= 1;
            return;
        }
        if slot.data.finished {
            stage.children.close(self.index);
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
    use crate::protocol::{DataCategory, DiscardReason, ItemType, SpanStatus};
    use crate::{Client, ClientOptions, TestTransport};

    fn setup() -> (Arc<Hub>, TestTransport, Arc<Client>) {
        let transport = TestTransport::new();
        let options = ClientOptions::new().with_traces_sample_rate(1.0).with_transport(transport.clone());
        let client = Arc::new(Client::new(options, None));
        let hub = Arc::new(Hub::new_from_top(&Hub::main()));
        hub.bind_client(Some(client.clone()));
        (hub, transport, client)
    }

    fn sent(transport: &TestTransport) -> Vec<serde_json::Value> {
        let mut spans = Vec::new();
        for env in transport.envelopes() {
            for item in env.items.iter().filter(|i| i.ty() == &ItemType::Span) {
                let payload: serde_json::Value = serde_json::from_slice(item.payload()).unwrap();
                spans.extend(payload["items"].as_array().unwrap().iter().cloned());
            }
        }
        spans
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
}
