//! Deadlines from user-given timeouts, which may be as large as `Duration::MAX`.
//!
//! `Instant + Duration` panics on overflow, and a panic in `flush` or in the guard's
//! drop would reach the host (or abort it from inside the panic hook). Every
//! deadline the SDK computes from an option or argument goes through [`after`].

use std::time::{Duration, Instant};

/// About a century: later than any process lives, and representable on every platform.
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + timeout`, saturating at a point no process reaches.
pub(crate) fn after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).or_else(|| now.checked_add(FAR)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates() {
        assert!(after(Duration::MAX) > Instant::now() + Duration::from_secs(3600));
        assert!(after(Duration::ZERO) <= Instant::now());
        let soon = after(Duration::from_millis(50));
        assert!(soon > Instant::now() && soon <= Instant::now() + Duration::from_millis(50));
    }
}
