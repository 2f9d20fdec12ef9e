//! Identifier generation. Ids sort by creation time where the API paginates by them.

use std::sync::atomic::{AtomicI64, Ordering};

use rand::Rng;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A webhook id in the seed's form: 24 lowercase hex characters (6 bytes of creation time in
/// milliseconds, then 6 random bytes), so ids sort by creation time.
pub fn webhook_id(now_ms: i64) -> String {
    // Within one process ids strictly increase even when several are made in one millisecond.
    static LAST: AtomicI64 = AtomicI64::new(0);
    let prev = LAST.fetch_max(now_ms, Ordering::Relaxed);
    let ms = if prev >= now_ms {
        LAST.fetch_add(1, Ordering::Relaxed) + 1
    } else {
        now_ms
    };
    let mut bytes = [0u8; 12];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    rand::rng().fill(&mut bytes[6..]);
    hex::encode(bytes)
}

/// An event id: `evt_` and a UUIDv7 (time ordered).
pub fn event_id() -> String {
    format!("evt_{}", uuid::Uuid::now_v7().simple())
}

/// A message id: the id of one delivery, sent as `webhook-id` and as the body's `id`; the same on
/// every retry. `msg_` and a UUIDv7, as Standard Webhooks suggests.
pub fn message_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

/// An attempt id (UUIDv7).
pub fn attempt_id() -> String {
    format!("atm_{}", uuid::Uuid::now_v7().simple())
}

/// A request id for `X-Request-Id` when the caller sent none.
pub fn request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A random alphanumeric string of `len` characters from a CSPRNG.
pub fn random_alnum(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
        .collect()
}

/// A public OAuth client id (32 alphanumerics, as in the seed).
pub fn client_id() -> String {
    random_alnum(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_ids_are_24_hex_and_sort_by_time() {
        let a = webhook_id(1_700_000_000_000);
        let b = webhook_id(1_700_000_000_001);
        let c = webhook_id(1_700_000_000_001);
        assert_eq!(a.len(), 24);
        assert!(b < c, "same millisecond still sorts");
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(a < b);
    }

    #[test]
    fn message_ids_are_unique_and_prefixed() {
        let a = message_id();
        assert!(a.starts_with("msg_"));
        assert_ne!(a, message_id());
    }
}
