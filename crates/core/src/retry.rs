//! The retry schedule: how long to wait before the next attempt, with jitter.

use std::time::Duration;

/// Delays between attempts. Attempt 1 is immediate; after the n-th failed attempt the next one
/// waits `delays[n-1]` (±`jitter`); when the delays run out the delivery has failed.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    pub delays: Vec<Duration>,
    /// Relative jitter, 0.2 for ±20%.
    pub jitter: f64,
}

impl Default for RetrySchedule {
    /// The SPEC §6 schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h, ±20%.
    fn default() -> Self {
        let m = 60;
        let h = 3600;
        Self {
            delays: [
                5,
                5 * m,
                30 * m,
                2 * h,
                5 * h,
                10 * h,
                14 * h,
                20 * h,
                24 * h,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
            jitter: 0.2,
        }
    }
}

impl RetrySchedule {
    /// Total attempts a delivery gets before it is marked failed.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX) + 1
    }

    /// The un-jittered delay after `attempts_made` failed attempts, or `None` when exhausted.
    pub fn base_delay(&self, attempts_made: u32) -> Option<Duration> {
        let idx = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
        self.delays.get(idx).copied()
    }

    /// The jittered delay; `unit` is a uniform sample from [0, 1) supplied by the caller so the
    /// schedule stays deterministic under test.
    pub fn delay(&self, attempts_made: u32, unit: f64) -> Option<Duration> {
        let base = self.base_delay(attempts_made)?;
        let factor = 1.0 + self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Some(base.mul_f64(factor.max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_matches_the_spec() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 10);
        assert_eq!(s.base_delay(1), Some(Duration::from_secs(5)));
        assert_eq!(s.base_delay(9), Some(Duration::from_secs(24 * 3600)));
        assert_eq!(s.base_delay(10), None);
        assert_eq!(s.base_delay(0), None);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let s = RetrySchedule::default();
        assert_eq!(s.delay(1, 0.0), Some(Duration::from_secs(4)));
        assert_eq!(s.delay(1, 0.5), Some(Duration::from_secs(5)));
        let hi = s.delay(1, 0.999_999).unwrap();
        assert!(hi <= Duration::from_secs(6) && hi > Duration::from_millis(5990));
    }
}
