//! Per-webhook request slots on this node, with a share that adapts to the receiver.
//!
//! Every webhook may have `floor` requests in flight. A receiver that answers quickly and
//! successfully earns more, up to `max` (half a slot per fast answer, so the share roughly
//! doubles per round trip, like TCP's slow start); any slow answer, error or timeout halves the
//! share, never below `floor`. A slow or dead receiver therefore holds at most `floor` of the
//! node's slots, while a fast one is not throttled to them.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tidings_core::fasthash::HashMap;

/// An answer within this time (with a 2xx) counts as fast.
pub const FAST_ANSWER: Duration = Duration::from_secs(1);

/// What a webhook earns per fast answer, in slots.
const GROWTH: f64 = 0.5;

/// Requests in flight per webhook, and each webhook's current share.
#[derive(Clone, Debug)]
pub struct Slots {
    /// Requests in flight per webhook (read by `/metrics` through [`Slots::in_flight`]).
    counts: Arc<Mutex<HashMap<String, usize>>>,
    /// Shares above the floor; webhooks at the floor are not stored.
    shares: Arc<Mutex<HashMap<String, f64>>>,
    floor: usize,
    max: usize,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts one more for `key` unless it has `cap` already. Looked up by `&str` first: the key is
/// copied only when it has no count yet.
pub(super) fn count_up(counts: &mut HashMap<String, usize>, key: &str, cap: usize) -> bool {
    match counts.get_mut(key) {
        Some(n) if *n >= cap => false,
        Some(n) => {
            *n += 1;
            true
        }
        None if cap == 0 => false,
        None => {
            counts.insert(key.to_string(), 1);
            true
        }
    }
}

/// Counts one less for `key`, forgetting it at zero.
pub(super) fn count_down(counts: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = counts.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(key);
        }
    }
}

impl Slots {
    pub fn new(floor: usize, max: usize) -> Self {
        Self {
            counts: Arc::default(),
            shares: Arc::default(),
            floor: floor.max(1),
            max: max.max(floor.max(1)),
        }
    }

    /// What every webhook may have in flight, whatever its receiver does.
    pub fn floor(&self) -> usize {
        self.floor
    }

    /// How many requests `webhook` may have in flight now.
    pub fn limit(&self, webhook: &str) -> usize {
        self.limit_in(&lock(&self.shares), webhook)
    }

    fn limit_in(&self, shares: &HashMap<String, f64>, webhook: &str) -> usize {
        shares.get(webhook).map_or(self.floor, |s| {
            // The share is kept within [floor, max]; the cast cannot truncate meaningfully.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = s.floor() as usize;
            n.clamp(self.floor, self.max)
        })
    }

    /// Takes a slot for `webhook` unless it is at its limit.
    pub fn try_take(&self, webhook: &str) -> bool {
        let limit = self.limit(webhook);
        count_up(&mut lock(&self.counts), webhook, limit)
    }

    /// Returns a slot without a verdict on the receiver (the request was never sent).
    pub fn give_back(&self, webhook: &str) {
        count_down(&mut lock(&self.counts), webhook);
    }

    /// Returns a slot after an attempt and adapts the webhook's share: `fast` grows it, anything
    /// else halves it.
    pub fn finished(&self, webhook: &str, fast: bool) {
        self.give_back(webhook);
        if self.max == self.floor {
            return;
        }
        let mut shares = lock(&self.shares);
        let floor = self.floor as f64;
        let current = shares.get(webhook).copied().unwrap_or(floor);
        let next = if fast {
            (current + GROWTH).min(self.max as f64)
        } else {
            (current / 2.0).max(floor)
        };
        if next <= floor {
            shares.remove(webhook);
        } else if let Some(share) = shares.get_mut(webhook) {
            *share = next;
        } else {
            shares.insert(webhook.to_string(), next);
        }
    }

    /// Requests in flight now, per webhook.
    pub fn in_flight(&self) -> Vec<(String, usize)> {
        lock(&self.counts)
            .iter()
            .map(|(w, n)| (w.clone(), *n))
            .collect()
    }

    /// Webhooks at their limit, with that limit.
    pub fn saturated(&self) -> Vec<(String, usize)> {
        let shares = lock(&self.shares);
        lock(&self.counts)
            .iter()
            .filter_map(|(w, n)| {
                let limit = self.limit_in(&shares, w);
                (*n >= limit).then(|| (w.clone(), limit))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(floor: usize, max: usize) -> Slots {
        Slots::new(floor, max)
    }

    fn take_all(s: &Slots, w: &str) -> usize {
        let mut n = 0;
        while s.try_take(w) {
            n += 1;
        }
        n
    }

    #[test]
    fn a_new_webhook_gets_the_floor() {
        let s = slots(8, 64);
        assert_eq!(take_all(&s, "a"), 8);
        assert_eq!(s.saturated(), vec![("a".to_string(), 8)]);
        s.give_back("a");
        assert!(s.try_take("a"));
    }

    #[test]
    fn fast_answers_earn_slots_up_to_the_max() {
        let s = slots(8, 64);
        for _ in 0..1000 {
            assert!(s.try_take("fast"));
            s.finished("fast", true);
        }
        assert_eq!(s.limit("fast"), 64);
        assert_eq!(take_all(&s, "fast"), 64);
        assert_eq!(s.limit("other"), 8, "shares are per webhook");
    }

    #[test]
    fn slow_answers_halve_the_share_down_to_the_floor() {
        let s = slots(8, 64);
        for _ in 0..1000 {
            s.try_take("w");
            s.finished("w", true);
        }
        s.try_take("w");
        s.finished("w", false);
        assert_eq!(s.limit("w"), 32);
        for _ in 0..10 {
            s.try_take("w");
            s.finished("w", false);
        }
        assert_eq!(s.limit("w"), 8);
        assert_eq!(take_all(&s, "w"), 8);
    }

    #[test]
    fn equal_floor_and_max_is_a_fixed_limit() {
        let s = slots(4, 4);
        for _ in 0..100 {
            s.try_take("w");
            s.finished("w", true);
        }
        assert_eq!(s.limit("w"), 4);
    }
}
