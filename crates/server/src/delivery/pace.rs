//! When the worker claims, and how much: [`Pace`] keeps whether the store may hold due
//! deliveries and the claim size; [`Signals`] holds what the worker waits on besides its
//! requests (shutdown, a wake-up, the poll timer).

use std::pin::Pin;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::sync::futures::Notified;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::config::DeliveryConfig;

/// The longest wait between two claims that failed.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What a claim round found.
pub(super) struct Round {
    /// As many as asked for: more may be due.
    pub full: bool,
    /// Webhooks at their limit were left out: their deliveries are still due.
    pub excluded: bool,
    /// Some claimed deliveries could not start or wait and went back.
    pub overflow: bool,
}

/// Whether to claim, and how much.
pub(super) struct Pace {
    /// Whether the store may hold due deliveries (worth a claim).
    pub due: bool,
    /// Halved when a claim brought more than could start or wait locally (one busy webhook),
    /// doubled while claims come back full and usable; within [`floor`, `max`].
    size: usize,
    floor: usize,
    max: usize,
    poll: Duration,
    backoff: Duration,
}

impl Pace {
    pub fn new(config: &DeliveryConfig) -> Self {
        Self {
            due: true,
            size: config.concurrency,
            floor: config.per_webhook_concurrency,
            max: config.concurrency,
            poll: config.poll_interval,
            backoff: config.poll_interval,
        }
    }

    /// How many to claim with `free` permits.
    pub fn asked(&self, free: usize) -> usize {
        free.min(self.size)
    }

    /// After a failed claim: how long to wait before the next (doubling, up to 10 s).
    pub fn failed(&mut self) -> Duration {
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.backoff
    }

    /// Adapts to what a claim found; returns whether to claim again at once (it came back
    /// full, and all of it found room). A short claim emptied what is due, unless webhooks
    /// were left out or deliveries were given back.
    pub fn after(&mut self, round: &Round) -> bool {
        self.backoff = self.poll;
        if round.overflow {
            self.size = (self.size / 2).max(self.floor);
        } else if round.full {
            self.size = (self.size * 2).min(self.max);
        }
        self.due = round.full || round.excluded || round.overflow;
        round.full && !round.overflow
    }
}

/// What the worker waits on besides its requests. Made once and polled again by every wait,
/// rather than made, registered (a timer entry, a waiter in a list) and dropped again for each
/// finished request.
pub(super) struct Signals<'a> {
    pub cancelled: Pin<Box<WaitForCancellationFuture<'a>>>,
    /// A publish left deliveries queued, or a retry was asked through the API.
    pub woken: Pin<Box<Notified<'a>>>,
    pub wake: &'a Notify,
    pub poll_timer: Pin<Box<Sleep>>,
    next_poll: Instant,
    interval: Duration,
    /// Whether publishes may still hand off deliveries.
    pub intake_open: bool,
}

impl<'a> Signals<'a> {
    pub fn new(shutdown: &'a CancellationToken, wake: &'a Notify, interval: Duration) -> Self {
        let next_poll = Instant::now() + interval;
        Self {
            cancelled: Box::pin(shutdown.cancelled()),
            woken: Box::pin(wake.notified()),
            wake,
            poll_timer: Box::pin(tokio::time::sleep_until(next_poll)),
            next_poll,
            interval,
            intake_open: true,
        }
    }

    /// Whether a poll interval passed since the last; if so the next one starts.
    pub fn poll_due(&mut self) -> bool {
        let now = Instant::now();
        if now < self.next_poll {
            return false;
        }
        self.next_poll = now + self.interval;
        self.poll_timer.as_mut().reset(self.next_poll);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace() -> Pace {
        Pace {
            due: true,
            size: 64,
            floor: 4,
            max: 64,
            poll: Duration::from_millis(100),
            backoff: Duration::from_millis(100),
        }
    }

    fn round(full: bool, excluded: bool, overflow: bool) -> Round {
        Round {
            full,
            excluded,
            overflow,
        }
    }

    #[test]
    fn the_claim_size_halves_on_overflow_and_grows_back_while_claims_come_back_full() {
        let mut p = pace();
        assert!(!p.after(&round(true, false, true)), "overflow: wait");
        assert_eq!(p.asked(1000), 32);
        for _ in 0..4 {
            p.after(&round(false, false, true));
        }
        assert_eq!(p.asked(1000), 4, "never below the floor");
        assert!(
            p.after(&round(true, false, false)),
            "full and placed: again"
        );
        assert_eq!(p.asked(1000), 8);
        assert_eq!(p.asked(3), 3, "no more than the free permits");
    }

    #[test]
    fn a_short_claim_means_nothing_is_due_unless_webhooks_were_left_out() {
        let mut p = pace();
        p.after(&round(false, false, false));
        assert!(!p.due);
        p.after(&round(false, true, false));
        assert!(p.due, "left-out webhooks still have due deliveries");
    }

    #[test]
    fn failed_claims_back_off_up_to_ten_seconds_and_a_good_one_resets() {
        let mut p = pace();
        assert_eq!(p.failed(), Duration::from_millis(200));
        for _ in 0..20 {
            p.failed();
        }
        assert_eq!(p.failed(), MAX_BACKOFF);
        p.after(&round(false, false, false));
        assert_eq!(p.failed(), Duration::from_millis(200));
    }
}
