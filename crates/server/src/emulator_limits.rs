//! The emulator's share of the outbound capacity: it sends real requests on an integrator's
//! behalf, outside the delivery worker's permits, so each workspace may have a few in flight
//! and start a bounded number per minute (`[emulator]` settings). What is in flight counts in
//! `/metrics` (`tidings_emulator_in_flight`).

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tidings_core::fasthash::HashMap;

use crate::config::EmulatorConfig;

/// Why an emulation may not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The workspace has this many in flight already.
    Busy(usize),
    /// The workspace started its allowance this minute; the next start is allowed after this.
    Rate(Duration),
}

/// In-flight counts and start rates per workspace.
#[derive(Debug)]
pub struct EmulatorLimits {
    config: EmulatorConfig,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    rate: Option<DefaultKeyedRateLimiter<String>>,
}

/// One emulation in flight; dropping it frees its place.
#[derive(Debug)]
pub struct Running {
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    workspace: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut map = lock(&self.in_flight);
        if let Some(n) = map.get_mut(&self.workspace) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.workspace);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl EmulatorLimits {
    pub fn new(config: EmulatorConfig) -> Self {
        Self {
            config,
            in_flight: Arc::default(),
            rate: NonZeroU32::new(config.requests_per_minute_per_workspace)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
        }
    }

    /// A place for one emulation of `workspace`, or why there is none.
    pub fn start(&self, workspace: &str) -> Result<Running, Refused> {
        let max = self.config.concurrency_per_workspace;
        {
            let map = lock(&self.in_flight);
            let now = map.get(workspace).copied().unwrap_or(0);
            if max > 0 && now >= max {
                return Err(Refused::Busy(now));
            }
        }
        if let Some(rate) = &self.rate {
            let clock = DefaultClock::default();
            rate.check_key(&workspace.to_string())
                .map_err(|n| Refused::Rate(n.wait_time_from(clock.now())))?;
        }
        *lock(&self.in_flight)
            .entry(workspace.to_string())
            .or_default() += 1;
        Ok(Running {
            in_flight: self.in_flight.clone(),
            workspace: workspace.to_string(),
        })
    }

    /// Emulations in flight, over all workspaces.
    pub fn in_flight(&self) -> usize {
        lock(&self.in_flight).values().sum()
    }

    /// Forgets the rate of workspaces that have not emulated lately (bounds memory).
    pub fn sweep(&self) {
        if let Some(rate) = &self.rate {
            rate.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_workspace_has_a_few_in_flight_and_a_rate() {
        let limits = EmulatorLimits::new(EmulatorConfig {
            concurrency_per_workspace: 2,
            requests_per_minute_per_workspace: 3,
        });
        let a1 = limits.start("a").unwrap();
        let _a2 = limits.start("a").unwrap();
        assert_eq!(limits.start("a").unwrap_err(), Refused::Busy(2));
        let _b = limits.start("b").unwrap();
        assert_eq!(limits.in_flight(), 3);
        drop(a1);
        assert_eq!(limits.in_flight(), 2);
        // The third start of "a" this minute (a refusal for being busy took none).
        drop(limits.start("a").unwrap());
        assert!(
            matches!(limits.start("a"), Err(Refused::Rate(_))),
            "a started 3 this minute"
        );
    }
}
