//! Brute-force protection for the endpoints that take a secret (`/oauth/token`, the console's
//! sign-in): requests per client id and per source address, with `governor`'s keyed GCRA
//! limiters. Over either limit the request is answered `429` with `Retry-After` before any
//! secret is checked. Failures are counted, not logged one by one: [`Throttle::sweep`]
//! reports them once a minute, so a flood of wrong secrets cannot flood the log.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Client ids longer than this are cut for the limiter's key (a real one is 32 characters):
/// the map's memory is bounded by its entries, not by what callers send.
const KEY_CHARS: usize = 64;

/// Limits per minute; 0 switches one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_client: u32,
    pub per_address: u32,
}

/// The limiters and the count of failed attempts since the last sweep.
#[derive(Debug)]
pub struct Throttle {
    by_client: Option<DefaultKeyedRateLimiter<String>>,
    by_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    failures: AtomicU64,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_minute: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

impl Throttle {
    pub fn new(limits: Limits) -> Self {
        Self {
            by_client: limiter(limits.per_client),
            by_address: limiter(limits.per_address),
            failures: AtomicU64::new(0),
        }
    }

    /// Counts one request of `client` (if named) from `address` (if known); `Err` with the
    /// wait before the next one is allowed when either is over its limit.
    pub fn check(&self, client: Option<&str>, address: Option<IpAddr>) -> Result<(), Duration> {
        let now = DefaultClock::default().now();
        if let (Some(l), Some(ip)) = (&self.by_address, address) {
            l.check_key(&ip).map_err(|n| n.wait_time_from(now))?;
        }
        if let (Some(l), Some(id)) = (&self.by_client, client) {
            let key: String = id.chars().take(KEY_CHARS).collect();
            l.check_key(&key).map_err(|n| n.wait_time_from(now))?;
        }
        Ok(())
    }

    /// Counts a failed attempt (a wrong secret or key).
    pub fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets keys whose limit is full again (bounding memory) and returns the failures
    /// counted since the last sweep.
    pub fn sweep(&self) -> u64 {
        if let Some(l) = &self.by_client {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.by_address {
            l.retain_recent();
            l.shrink_to_fit();
        }
        self.failures.swap(0, Ordering::Relaxed)
    }
}

/// Once a minute: logs the failed attempts (one line, whatever their number) and lets
/// `also` forget what it no longer needs (the emulator's limits).
pub async fn report(
    throttle: std::sync::Arc<Throttle>,
    also: impl Fn() + Send + 'static,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        also();
        let failed = throttle.sweep();
        if failed > 0 {
            tracing::warn!(
                failed,
                "failed token requests or console sign-ins in the last minute"
            );
        }
    }
}

/// `Retry-After` seconds for a wait (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_and_each_address_has_its_own_limit() {
        let t = Throttle::new(Limits {
            per_client: 3,
            per_address: 5,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(t.check(Some("client-1"), Some(a)).is_ok());
        }
        let wait = t.check(Some("client-1"), Some(b)).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(t.check(Some("client-2"), Some(a)).is_ok());
        // Address a has made 4 (one refused by the client's limit came from b).
        assert!(t.check(Some("client-3"), Some(a)).is_ok());
        assert!(t.check(Some("client-4"), Some(a)).is_err(), "a is over 5");
        assert!(t.check(None, Some(b)).is_ok());
    }

    #[test]
    fn zero_switches_a_limit_off_and_failures_are_counted_once() {
        let t = Throttle::new(Limits {
            per_client: 0,
            per_address: 0,
        });
        for _ in 0..1000 {
            assert!(
                t.check(Some("c"), Some(IpAddr::from([127, 0, 0, 1])))
                    .is_ok()
            );
            t.failed();
        }
        assert_eq!(t.sweep(), 1000);
        assert_eq!(t.sweep(), 0);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }
}
