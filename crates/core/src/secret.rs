//! Secrets: generation, hashing for storage, and a wrapper that never prints its content.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A secret value that must never reach a log line or a `Debug` dump.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is sent or hashed.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// 32 random bytes, URL-safe base64 without padding (43 characters): OAuth client secrets and
/// generated operator keys. High entropy, so a fast hash is enough to store them (as GitHub and
/// Stripe do for API keys); a slow password hash would only slow every token request.
pub fn random_token() -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A generated webhook signing secret: `whsec_` and base64 of 24 random bytes (Standard Webhooks).
pub fn webhook_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The stored form of a high-entropy secret: lowercase hex SHA-256.
pub fn hash(secret: &str) -> String {
    hex_sha256(secret).iter().map(|&b| char::from(b)).collect()
}

/// Whether `candidate` hashes to `stored_hash`, compared in constant time.
pub fn verify(candidate: &str, stored_hash: &str) -> bool {
    hex_sha256(candidate).ct_eq(stored_hash.as_bytes()).into()
}

/// The lowercase hex SHA-256 of `secret`, on the stack ([`verify`] runs for every operator
/// request).
fn hex_sha256(secret: &str) -> [u8; 64] {
    let mut out = [0u8; 64];
    // 32 bytes of digest are exactly 64 hex digits: encoding cannot fail.
    let _ = hex::encode_to_slice(Sha256::digest(secret.as_bytes()), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }

    #[test]
    fn verify_accepts_only_the_hashed_secret() {
        let t = random_token();
        let h = hash(t.expose());
        assert!(verify(t.expose(), &h));
        assert!(!verify("other", &h));
        assert_eq!(t.expose().len(), 43);
    }

    /// Hashes already stored (operator keys, client secrets) must keep matching: the stored
    /// form is lowercase hex SHA-256 (FIPS 180-2's "abc" vector).
    #[test]
    fn the_stored_form_is_lowercase_hex_sha256() {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hash("abc"), abc);
        assert!(verify("abc", abc));
        assert!(!verify("abc", &abc.to_uppercase()));
        assert!(!verify("abc", &abc[..63]));
    }

    #[test]
    fn generated_webhook_secrets_use_the_whsec_prefix() {
        let s = webhook_secret();
        assert!(s.starts_with("whsec_"));
        assert_eq!(s.len(), 6 + 32);
    }
}
