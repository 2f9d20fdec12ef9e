//! Turns at SQLite's one write lock between the writer thread and the sqlx write connection
//! (retention, webhook and workspace changes, …). Under a steady publish load the writer thread
//! begins its next transaction as soon as one commits, and SQLite's busy handler on the other
//! connection, sleeping up to 100 ms between tries, almost never found the lock free: after
//! its 10 s busy timeout a retention pass or an API write failed with `database is locked`
//! (seen in `tidings bench --scenarios soak`: a third of retention passes failed). Now the
//! writer thread gives way, between two transactions, while the write connection is in use.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest the writer thread waits for the other side at one turn: the other side's busy
/// handler retries at least this often.
const MAX_TURN: Duration = Duration::from_millis(250);

/// Whether the sqlx write connection is in use; shared by the pool's hooks and the writer.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    in_use: AtomicBool,
}

impl Gate {
    /// The write pool handed its connection out.
    pub(crate) fn enter(&self) {
        self.in_use.store(true, Ordering::Release);
    }

    /// The write pool got its connection back.
    pub(crate) fn leave(&self) {
        self.in_use.store(false, Ordering::Release);
    }

    /// The writer thread, between two transactions: waits while the write connection is in
    /// use (it may be waiting for the lock), for at most [`MAX_TURN`].
    pub(crate) fn give_way(&self) {
        if !self.in_use.load(Ordering::Acquire) {
            return;
        }
        let started = Instant::now();
        while self.in_use.load(Ordering::Acquire) && started.elapsed() < MAX_TURN {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_waits_for_the_other_side_but_not_forever() {
        let gate = Gate::default();
        let started = Instant::now();
        gate.give_way();
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "no wait when nobody is in"
        );
        gate.enter();
        let started = Instant::now();
        gate.give_way();
        assert!(
            started.elapsed() >= MAX_TURN,
            "waits while the other side is in"
        );
        gate.leave();
    }
}
