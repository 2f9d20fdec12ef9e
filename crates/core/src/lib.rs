//! Tidings core: the domain types and the pure rules of the product.
//!
//! Everything here is deterministic and free of IO: ids, validated input types, the Standard
//! Webhooks signature, the retry schedule, envelope shaping and secret hashing. The store and the
//! server build on these; nothing here knows about SQL, HTTP servers or the clock (times are
//! passed in as Unix milliseconds).
#![forbid(unsafe_code)]

pub mod envelope;
pub mod error;
pub mod event;
pub mod fasthash;
pub mod ids;
pub mod limits;
pub mod payload;
pub mod retry;
pub mod seal;
pub mod secret;
pub mod signature;
pub mod webhook;
pub mod workspace;

pub use error::{FieldError, ValidationError};

/// Milliseconds since the Unix epoch; the one time representation stored and passed around.
pub type Millis = i64;

/// Formats Unix milliseconds as RFC 3339 (UTC, millisecond precision), the form our own
/// resources use for times.
pub fn rfc3339(ms: Millis) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => t
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Parses an RFC 3339 timestamp into Unix milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_milliseconds() {
        let ms = 1_627_670_400_123;
        let s = rfc3339(ms);
        assert_eq!(s, "2021-07-30T18:40:00.123Z");
        assert_eq!(parse_rfc3339(&s), Some(ms));
    }
}
