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
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `candidate` hashes to `stored_hash`, compared in constant time.
pub fn verify(candidate: &str, stored_hash: &str) -> bool {
    // Hex on the stack: this runs for every operator request.
    let mut computed = [0u8; 64];
    if hex::encode_to_slice(Sha256::digest(candidate.as_bytes()), &mut computed).is_err() {
        return false;
    }
    computed.ct_eq(stored_hash.as_bytes()).into()
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

    #[test]
    fn generated_webhook_secrets_use_the_whsec_prefix() {
        let s = webhook_secret();
        assert!(s.starts_with("whsec_"));
        assert_eq!(s.len(), 6 + 32);
    }
}
