//! Span timestamps: raw ticks on the caller, wall-clock time on the worker.
//!
//! Reading the wall clock (`SystemTime::now`, a vDSO call) twice per span was a
//! fifth of a child span's cost. The caller now reads quanta's counter (the
//! invariant TSC, or the OS's monotonic clock where there is none) and the worker
//! turns ticks into wall-clock time from an [`Anchor`]: a (wall clock, ticks)
//! pair it re-reads on every batch, and replaces when it no longer predicts the
//! wall clock within [`TOLERANCE`] (drift, NTP steps). Between batches, only
//! the counter's drift against the wall clock (a few ppm) accrues.
//!
//! Until the clock is calibrated (~1 ms, on the worker's thread at its start),
//! spans read the wall clock itself: ticks of that kind are marked by their top bit.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use quanta::Clock;

static CLOCK: OnceLock<Clock> = OnceLock::new();

/// Marks a [`Tick`] that holds wall-clock nanoseconds since the epoch. Raw
/// counter values never reach it (2^63 TSC ticks are about a century).
const WALL: u64 = 1 << 63;

/// How far the kept anchor may be off the wall clock before it is replaced: tests
/// compare two serializations of the same spans, which must not straddle a
/// replacement (a counter drifting 2 ppm needs ~17 minutes to reach it).
#[cfg(not(test))]
const TOLERANCE: Duration = Duration::from_micros(25);
#[cfg(test)]
const TOLERANCE: Duration = Duration::from_millis(2);

/// A reading of the wall clock counts only when the counter reads around it are
/// this close (not preempted in between).
const MAX_READ: Duration = Duration::from_micros(20);

/// Calibrates the counter (once per process, ~1 ms of busy wait, at most 200 ms):
/// called on the worker's thread, so no caller waits for it.
pub(crate) fn calibrate() {
    CLOCK.get_or_init(Clock::new);
}

/// When a span started or ended, as the caller saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tick(u64);

impl Tick {
    /// A placeholder, overwritten before use.
    pub(crate) const ZERO: Tick = Tick(0);

    /// Now: the counter's raw value (no scaling, no system call).
    #[inline]
    pub(crate) fn now() -> Tick {
        match CLOCK.get() {
            Some(clock) => Tick(clock.raw() & !WALL),
            None => Tick::from_wall(SystemTime::now()),
        }
    }

    /// A wall-clock time (before calibration; tests).
    pub(crate) fn from_wall(t: SystemTime) -> Tick {
        let nanos = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Tick(WALL | (nanos & !WALL))
    }

    fn wall_time(self) -> Option<SystemTime> {
        (self.0 & WALL != 0).then(|| UNIX_EPOCH + Duration::from_nanos(self.0 & !WALL))
    }
}

/// A wall-clock time and the counter's value at that moment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Anchor {
    clock: &'static Clock,
    wall: SystemTime,
    raw: u64,
}

/// The anchor conversions use, kept while it stays accurate.
static ANCHOR: Mutex<Option<Anchor>> = Mutex::new(None);

impl Anchor {
    /// The anchor to convert a batch's ticks with: the kept one if it still
    /// predicts the wall clock within [`TOLERANCE`], else a new one. A reading
    /// disturbed by preemption (its counter reads far apart) is uncertain by
    /// half that spread: it is allowed for in the check, and it never replaces
    /// a kept anchor (the next batch reads again).
    pub(crate) fn current() -> Anchor {
        let (fresh, spread) = Anchor::read(CLOCK.get_or_init(Clock::new));
        let mut kept = ANCHOR.lock();
        match *kept {
            Some(old) if old.predicts(&fresh, spread / 2) => old,
            Some(old) if spread > MAX_READ => old,
            _ => {
                *kept = Some(fresh);
                fresh
            }
        }
    }

    /// Reads the wall clock between two counter reads, retrying when they are far
    /// apart; the counter's value is taken half-way.
    fn read(clock: &'static Clock) -> (Anchor, Duration) {
        let mut best: Option<(u64, Anchor)> = None;
        for _ in 0..4 {
            let before = clock.raw();
            let wall = SystemTime::now();
            let after = clock.raw();
            let spread = clock.delta_as_nanos(before, after);
            let anchor = Anchor { clock, wall, raw: before + after.saturating_sub(before) / 2 };
            if best.is_none_or(|(s, _)| spread < s) {
                best = Some((spread, anchor));
            }
            if spread <= MAX_READ.as_nanos() as u64 {
                break;
            }
        }
        best.map_or((Anchor { clock, wall: SystemTime::now(), raw: clock.raw() }, Duration::MAX), |(spread, a)| {
            (a, Duration::from_nanos(spread))
        })
    }

    /// Whether this anchor puts `other`'s counter value within [`TOLERANCE`]
    /// (plus `other`'s own `uncertainty`) of `other`'s wall-clock reading.
    fn predicts(&self, other: &Anchor, uncertainty: Duration) -> bool {
        let predicted = self.wall_of_raw(other.raw);
        let off = predicted.duration_since(other.wall).unwrap_or_else(|e| e.duration());
        off <= TOLERANCE.saturating_add(uncertainty)
    }

    fn wall_of_raw(&self, raw: u64) -> SystemTime {
        if raw >= self.raw {
            self.wall + Duration::from_nanos(self.clock.delta_as_nanos(self.raw, raw))
        } else {
            let back = Duration::from_nanos(self.clock.delta_as_nanos(raw, self.raw));
            self.wall.checked_sub(back).unwrap_or(UNIX_EPOCH)
        }
    }

    /// The wall-clock time of a tick.
    pub(crate) fn wall(&self, t: Tick) -> SystemTime {
        t.wall_time().unwrap_or_else(|| self.wall_of_raw(t.0))
    }

    /// A span's start and end: the end is never before the start, and the
    /// duration is what the counter measured.
    pub(crate) fn span(&self, start: Tick, end: Tick) -> (SystemTime, SystemTime) {
        let from = self.wall(start);
        let to = match (start.wall_time(), end.wall_time()) {
            (None, None) => from + Duration::from_nanos(self.clock.delta_as_nanos(start.0, end.0)),
            _ => self.wall(end).max(from),
        };
        (from, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_convert_to_the_wall_clock_around_them() {
        calibrate();
        let before = SystemTime::now();
        let start = Tick::now();
        std::thread::sleep(Duration::from_millis(30));
        let end = Tick::now();
        let after = SystemTime::now();
        let (from, to) = Anchor::current().span(start, end);
        // Bounds on one side each: preemption only widens [before, after].
        let slack = Duration::from_millis(3);
        assert!(from + slack >= before, "{from:?} vs {before:?}");
        assert!(to <= after + slack, "{to:?} vs {after:?}");
        let took = to.duration_since(from).unwrap();
        let window = after.duration_since(before).unwrap();
        assert!(took >= Duration::from_millis(29) && took <= window + slack, "{took:?} in {window:?}");
    }

    #[test]
    fn a_span_never_ends_before_it_starts() {
        calibrate();
        let anchor = Anchor::current();
        let t = Tick::now();
        let earlier = Tick(t.0.saturating_sub(1_000));
        let (from, to) = anchor.span(t, earlier);
        assert_eq!(from, to);
        // Mixed kinds (a span started before calibration).
        let wall = Tick::from_wall(SystemTime::now() + Duration::from_secs(1));
        let (from, to) = anchor.span(wall, t);
        assert_eq!(from, to);
        let (from, to) = anchor.span(Tick::from_wall(SystemTime::now() - Duration::from_secs(1)), t);
        assert!(to > from);
    }

    #[test]
    fn wall_clock_ticks_convert_exactly() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_790_000_000_123_456_789);
        let tick = Tick::from_wall(t);
        calibrate();
        assert_eq!(Anchor::current().wall(tick), t);
    }

    #[test]
    fn an_anchor_is_replaced_when_it_drifts_or_the_clock_steps() {
        calibrate();
        let anchor = Anchor::current();
        let mut later = anchor;
        assert!(anchor.predicts(&later, Duration::ZERO));
        later.wall += TOLERANCE / 2;
        assert!(anchor.predicts(&later, Duration::ZERO));
        later.wall += TOLERANCE;
        assert!(!anchor.predicts(&later, Duration::ZERO), "a clock stepped forward");
        later.wall = anchor.wall - TOLERANCE * 2;
        assert!(!anchor.predicts(&later, Duration::ZERO), "a clock stepped back");
        // A disturbed reading is judged with its uncertainty.
        assert!(anchor.predicts(&later, TOLERANCE * 2));
        // Ticks before the anchor convert backwards.
        let t = Tick(anchor.raw - 1_000_000);
        assert!(anchor.wall(t) < anchor.wall);
    }
}
