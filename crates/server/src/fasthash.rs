//! Hash maps for the ids and URLs the delivery path looks up several times per delivery (request
//! slots, local queues, token and URL caches, idle connections): foldhash instead of the
//! standard library's SipHash, which was ~10% of a delivery thread's instructions under
//! callgrind (docs/benchmarks.md, seventeenth round). Seeded at random per map like the
//! standard hasher, so keys chosen from outside (webhook URLs) cannot be aimed at one bucket
//! without knowing the seed; foldhash is not a cryptographic hash, and nothing here needs one.

/// A [`std::collections::HashMap`] with foldhash's fast, randomly seeded hasher.
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// A [`std::collections::HashSet`] with foldhash's fast, randomly seeded hasher.
pub type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
