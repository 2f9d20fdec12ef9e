//! The disk's own limit for durable commits, printed with `baseline`: how long one `fsync` of a
//! freshly written 16 KiB takes in the directory the embedded store's data goes to (the system's
//! temporary directory, as for every scenario's server). Every publish on the embedded store
//! waits for one such flush (shared by the events committed together), so `fanout1` and
//! `latency` depend on it as the HTTP scenarios depend on the loopback exchange that `baseline`
//! measures. Where that directory is a tmpfs the figures are ~0: nothing reaches a disk there,
//! for the probe or for the store (`TMPDIR` moves both).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// Flushes measured: enough for a p99, a fraction of a second on a local disk.
const SYNCS: usize = 200;
/// Bytes written before each flush: about what a small group commit appends to SQLite's log.
const CHUNK: usize = 16 * 1024;
/// Writes cycle over this many chunks: the file stays small and is overwritten in place, as a
/// log restarted after a checkpoint is.
const SLOTS: usize = 16;

/// Flush times of [`SYNCS`] rounds of "write [`CHUNK`] bytes, `fsync`" (the call SQLite's
/// commits make), in a new file of a new directory under the system's temporary directory.
pub fn sync_times() -> std::io::Result<Vec<Duration>> {
    let dir = tempfile::tempdir()?;
    let mut file = File::create(dir.path().join("probe"))?;
    let chunk = vec![0x5a_u8; CHUNK];
    // Allocated up front, so the rounds measure overwrites rather than the file growing.
    for _ in 0..SLOTS {
        file.write_all(&chunk)?;
    }
    file.sync_all()?;
    let mut times = Vec::with_capacity(SYNCS);
    for round in 0..SYNCS {
        file.write_all_at(&chunk, ((round % SLOTS) * CHUNK) as u64)?;
        let started = Instant::now();
        file.sync_all()?;
        times.push(started.elapsed());
    }
    Ok(times)
}

/// p50 and p99 of `times` in milliseconds (to the microsecond); `(0, 0)` for none.
pub fn percentiles_ms(times: &[Duration]) -> (f64, f64) {
    super::p50_p99_ms(times.iter().map(|t| t.as_micros() as u64).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_round_is_timed() {
        let times = sync_times().unwrap();
        assert_eq!(times.len(), SYNCS);
        let (p50, p99) = percentiles_ms(&times);
        assert!(p50 <= p99, "{p50} {p99}");
    }

    #[test]
    fn percentiles_are_in_milliseconds() {
        let times: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let (p50, p99) = percentiles_ms(&times);
        assert!((0.049..=0.051).contains(&p50), "{p50}");
        assert!((0.098..=0.1).contains(&p99), "{p99}");
        assert_eq!(percentiles_ms(&[]), (0.0, 0.0));
    }
}
