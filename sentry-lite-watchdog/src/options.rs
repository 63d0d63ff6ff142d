//! Watchdog options.

use std::time::Duration;

/// How the watchdog watches.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use sentry_lite_watchdog::WatchdogOptions;
///
/// let options = WatchdogOptions::new()
///     .with_threshold(Duration::from_millis(500))
///     .with_deadlock_interval(Duration::from_secs(2));
/// assert_eq!(options.threshold, Duration::from_millis(500));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WatchdogOptions {
    /// A poll running longer than this is a stall (default 1 s).
    pub threshold: Duration,
    /// How often deadlocks are looked for (default 1 s; `deadlock` feature).
    pub deadlock_interval: Duration,
    /// Whether stalled threads' stacks are taken (default `true`). Taking one
    /// stops the thread for the time it takes to copy its stack (well under a
    /// millisecond) with a real-time signal.
    pub capture_stacks: bool,
}

impl Default for WatchdogOptions {
    fn default() -> Self {
        Self { threshold: Duration::from_secs(1), deadlock_interval: Duration::from_secs(1), capture_stacks: true }
    }
}

impl WatchdogOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`threshold`](Self::threshold) (at least 10 ms).
    #[must_use]
    pub fn with_threshold(mut self, threshold: Duration) -> Self {
        self.threshold = threshold.max(Duration::from_millis(10));
        self
    }

    /// Sets [`deadlock_interval`](Self::deadlock_interval) (at least 10 ms).
    #[must_use]
    pub fn with_deadlock_interval(mut self, interval: Duration) -> Self {
        self.deadlock_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Sets [`capture_stacks`](Self::capture_stacks).
    #[must_use]
    pub fn with_capture_stacks(mut self, capture: bool) -> Self {
        self.capture_stacks = capture;
        self
    }

    /// The watchdog's period: a stall is seen at most this long after it passes
    /// the threshold (a twentieth of it, between 5 and 50 ms).
    pub(crate) fn tick(&self) -> Duration {
        (self.threshold / 20).clamp(Duration::from_millis(5), Duration::from_millis(50))
    }
}
