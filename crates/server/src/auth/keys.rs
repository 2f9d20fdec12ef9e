//! Ed25519 signing keys: generated on first start, kept in the database (so every node signs
//! with the same published keys), published as a JWKS and as PEM.

use std::collections::HashMap;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tidings_store::{SigningKey, Store, StoreError};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The loaded keys: the active one signs, all verify.
pub struct Keys {
    active_kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    jwks: serde_json::Value,
    pem: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("active_kid", &self.active_kid)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("key generation failed")]
    Generate,
    #[error("stored signing key {0} is unusable")]
    Corrupt(String),
}

/// The RFC 7638 thumbprint of an Ed25519 public key: its `kid`.
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn generate(now: i64) -> Result<SigningKey, KeyError> {
    let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Generate)?;
    let der = pair.to_pkcs8v1().map_err(|_| KeyError::Generate)?;
    let public_raw = pair.public_key().as_ref().to_vec();
    Ok(SigningKey {
        kid: thumbprint(&URL_SAFE_NO_PAD.encode(&public_raw)),
        private_der: der.as_ref().to_vec(),
        public_raw,
        created_at: now,
    })
}

impl Keys {
    /// Loads the keys, creating the first one if there is none. With several nodes starting at
    /// once each may insert a key; all then sign with the oldest, and all keys verify.
    pub async fn load_or_create(store: &Store, now: i64) -> Result<Self, KeyError> {
        let mut stored = store.signing_keys().await?;
        if stored.is_empty() {
            store.insert_signing_key(&generate(now)?).await?;
            stored = store.signing_keys().await?;
        }
        Self::from_stored(&stored)
    }

    fn from_stored(stored: &[SigningKey]) -> Result<Self, KeyError> {
        let active = stored.first().ok_or(KeyError::Generate)?;
        Ed25519KeyPair::from_pkcs8(&active.private_der)
            .map_err(|_| KeyError::Corrupt(active.kid.clone()))?;
        let mut decoding = HashMap::new();
        let mut jwk_list = Vec::new();
        let mut pem = String::new();
        for k in stored {
            let x = URL_SAFE_NO_PAD.encode(&k.public_raw);
            decoding.insert(k.kid.clone(), DecodingKey::from_ed_der(&k.public_raw));
            jwk_list.push(serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": x, "kid": k.kid, "use": "sig", "alg": "EdDSA"
            }));
            let mut spki = ED25519_SPKI_PREFIX.to_vec();
            spki.extend_from_slice(&k.public_raw);
            pem.push_str(&format!(
                "# kid: {}\n-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                k.kid,
                STANDARD.encode(&spki)
            ));
        }
        Ok(Self {
            active_kid: active.kid.clone(),
            encoding: EncodingKey::from_ed_der(&active.private_der),
            decoding,
            jwks: serde_json::json!({ "keys": jwk_list }),
            pem,
        })
    }

    /// Signs claims as an EdDSA JWT with the active key's `kid`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.active_kid.clone());
        header.typ = Some("JWT".into());
        // Encoding with a key that loaded at start cannot fail for serializable claims.
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("JWT encoding")
    }

    /// Verifies the signature (and nothing else: the caller checks the claims against its own
    /// clock and rules).
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Option<T> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA {
            return None;
        }
        let key = self.decoding.get(header.kid.as_deref()?)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<T>(token, key, &validation)
            .ok()
            .map(|d| d.claims)
    }

    /// The JSON Web Key Set (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    /// The public keys as PEM (`/v1/certificates`).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A fresh key of its own, for tests of what the keys sign.
    #[cfg(test)]
    pub fn generated() -> Self {
        Self::from_stored(&[generate(0).unwrap()]).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_and_verifies_and_rejects_tampering() {
        let keys = Keys::from_stored(&[generate(0).unwrap()]).unwrap();
        let token = keys.sign(&serde_json::json!({"sub": "w1"}));
        let claims: serde_json::Value = keys.verify(&token).unwrap();
        assert_eq!(claims["sub"], "w1");
        let mut tampered = token.clone();
        tampered.insert(tampered.find('.').unwrap() + 2, 'x');
        assert!(keys.verify::<serde_json::Value>(&tampered).is_none());
        let other = Keys::from_stored(&[generate(0).unwrap()]).unwrap();
        assert!(other.verify::<serde_json::Value>(&token).is_none());
    }

    #[test]
    fn jwks_and_pem_publish_the_public_key() {
        let key = generate(0).unwrap();
        let keys = Keys::from_stored(std::slice::from_ref(&key)).unwrap();
        assert_eq!(keys.jwks()["keys"][0]["kid"], key.kid.as_str());
        assert!(keys.pem().contains("BEGIN PUBLIC KEY"));
    }
}
