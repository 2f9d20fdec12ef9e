//! Hash maps for the ids and URLs the hot paths look up several times per event or delivery: in
//! the server's delivery path (request slots, local queues, token and URL caches, idle
//! connections) and in the store's writer (the publish plan, the read cache, hand-offs and
//! jobs). foldhash instead of the standard library's SipHash, which was ~10% of a delivery
//! thread's instructions under callgrind (docs/perf-log/rounds-2026-11-24-to-12-05.md, seventeenth round) and ~3.7% of
//! the writer's (nineteenth round). Seeded at random per map like the standard hasher, so keys
//! chosen from outside (webhook URLs, event ids) cannot be aimed at one bucket without knowing
//! the seed; foldhash is not a cryptographic hash, and nothing here needs one.

/// A [`std::collections::HashMap`] with foldhash's fast, randomly seeded hasher.
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// A [`std::collections::HashSet`] with foldhash's fast, randomly seeded hasher.
pub type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
