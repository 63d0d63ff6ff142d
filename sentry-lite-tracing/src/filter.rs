//! What the layer does with one `tracing` event.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

use tracing_core::{Level, Metadata};

/// A set of actions for a `tracing` event: any combination of
/// [`Breadcrumb`](EventFilter::Breadcrumb), [`Event`](EventFilter::Event) and
/// [`Log`](EventFilter::Log); [`Ignore`](EventFilter::Ignore) is the empty set.
///
/// # Examples
/// ```
/// use sentry_lite_tracing::EventFilter;
/// let both = EventFilter::Breadcrumb | EventFilter::Log;
/// assert!(both.contains(EventFilter::Log));
/// assert!(!both.contains(EventFilter::Event));
/// assert!(EventFilter::Ignore.is_empty());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventFilter(u8);

#[allow(non_upper_case_globals)]
impl EventFilter {
    /// Do nothing with the event.
    pub const Ignore: EventFilter = EventFilter(0);
    /// Record a breadcrumb on the current unit of work.
    pub const Breadcrumb: EventFilter = EventFilter(1);
    /// Capture a Sentry event (an error, with an exception chain when the event has an
    /// `error` field).
    pub const Event: EventFilter = EventFilter(2);
    /// Send a structured log (only when logs are enabled).
    pub const Log: EventFilter = EventFilter(4);

    /// Whether every action of `other` is in `self`.
    pub const fn contains(self, other: EventFilter) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no action is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `self` without the actions of `other`.
    #[must_use]
    pub const fn without(self, other: EventFilter) -> EventFilter {
        EventFilter(self.0 & !other.0)
    }
}

impl BitOr for EventFilter {
    type Output = EventFilter;
    fn bitor(self, rhs: EventFilter) -> EventFilter {
        EventFilter(self.0 | rhs.0)
    }
}

impl BitOrAssign for EventFilter {
    fn bitor_assign(&mut self, rhs: EventFilter) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for EventFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("Ignore");
        }
        let mut first = true;
        for (flag, name) in [(Self::Breadcrumb, "Breadcrumb"), (Self::Event, "Event"), (Self::Log, "Log")] {
            if self.contains(flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// The default mapping: `ERROR` → event (and log), `WARN` and `INFO` → breadcrumb
/// (and log), `DEBUG` and `TRACE` → ignored. Logs are only sent when enabled.
pub fn default_event_filter(metadata: &Metadata<'_>) -> EventFilter {
    match *metadata.level() {
        Level::ERROR => EventFilter::Event | EventFilter::Log,
        Level::WARN | Level::INFO => EventFilter::Breadcrumb | EventFilter::Log,
        _ => EventFilter::Ignore,
    }
}
