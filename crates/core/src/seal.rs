//! Secrets at rest: values sealed with the master key.
//!
//! Webhook secrets, previous secrets, custom header values and the private signing keys are
//! stored sealed: XChaCha20-Poly1305 (the `chacha20poly1305` crate) under a 256-bit master key,
//! a random 192-bit nonce per value, and the value's purpose as associated data (a sealed header
//! value cannot be passed off as a secret). A sealed value is text:
//! `enc:v1:<kid>:<base64url(nonce ‖ ciphertext ‖ tag)>`, where `kid` names the key (the first 8
//! hex digits of its SHA-256), so a [`Keyring`] holding the current key and older ones opens
//! values of either while a rotation re-seals them.
//!
//! A stored value without the `enc:v1:` prefix is a value written before sealing existed; it
//! opens as itself, and the store re-seals it at start.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "enc:v1:";
const NONCE_BYTES: usize = 24;

/// What a sealed value is for; bound into its seal as associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A webhook's secret (signing, bearer token or basic password) or its previous secret.
    WebhookSecret,
    /// The value of a webhook's custom header.
    HeaderValue,
    /// A private signing key of access tokens (PKCS#8 DER, base64 inside the seal).
    SigningKey,
}

impl Purpose {
    fn aad(self) -> &'static [u8] {
        match self {
            Self::WebhookSecret => b"tidings webhook secret",
            Self::HeaderValue => b"tidings header value",
            Self::SigningKey => b"tidings signing key",
        }
    }
}

/// Why a value could not be opened, or a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error(
        "a stored value is sealed with master key {0}, which this server does not have (every node needs the same TIDINGS_MASTER_KEY or key file)"
    )]
    UnknownKey(String),
    #[error(
        "a stored value sealed with master key {0} does not open (damaged, or moved between fields)"
    )]
    Damaged(String),
    #[error(
        "a master key must be 32 bytes in base64 (44 characters), e.g. from `openssl rand -base64 32`"
    )]
    BadKey,
}

struct MasterKey {
    kid: String,
    cipher: XChaCha20Poly1305,
}

/// The master keys: the first seals, every one opens. Its `Debug` shows key ids only.
pub struct Keyring {
    keys: Vec<MasterKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.kid))
            .finish()
    }
}

/// A new random master key, as the text [`Keyring::parse`] reads.
pub fn generate_key() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    STANDARD.encode(key)
}

impl Keyring {
    /// Keys in base64 (standard or URL-safe, padded or not), separated by commas, spaces or
    /// line breaks; the first seals. At least one.
    pub fn parse(text: &str) -> Result<Self, SealError> {
        let keys = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|k| !k.is_empty())
            .map(|k| {
                let bytes = STANDARD
                    .decode(k)
                    .or_else(|_| URL_SAFE_NO_PAD.decode(k.trim_end_matches('=')))
                    .map_err(|_| SealError::BadKey)?;
                let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
                Ok(MasterKey {
                    kid: hex::encode(&Sha256::digest(key)[..4]),
                    cipher: XChaCha20Poly1305::new(&key.into()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(SealError::BadKey);
        }
        Ok(Self { keys })
    }

    /// The id of the key that seals.
    pub fn kid(&self) -> &str {
        &self.keys[0].kid
    }

    /// The ids of every key, the sealing one first.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid.as_str()).collect()
    }

    /// `plain`, sealed with the first key.
    pub fn seal(&self, purpose: Purpose, plain: &str) -> String {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = key
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: purpose.aad(),
                },
            )
            .expect("XChaCha20-Poly1305 seals any length this side of 256 GiB");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        format!("{PREFIX}{}:{}", key.kid, URL_SAFE_NO_PAD.encode(blob))
    }

    /// The plain text of a stored value (a value without the prefix is plain already).
    pub fn open(&self, purpose: Purpose, stored: &str) -> Result<String, SealError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let (kid, body) = rest.split_once(':').unwrap_or((rest, ""));
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| SealError::UnknownKey(kid.to_string()))?;
        let damaged = || SealError::Damaged(kid.to_string());
        let blob = URL_SAFE_NO_PAD.decode(body).map_err(|_| damaged())?;
        if blob.len() < NONCE_BYTES {
            return Err(damaged());
        }
        let (nonce, sealed) = blob.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| damaged())?;
        let plain = key
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: purpose.aad(),
                },
            )
            .map_err(|_| damaged())?;
        String::from_utf8(plain).map_err(|_| damaged())
    }

    /// Whether a stored value should be sealed again: it is plain, or sealed with an older key.
    pub fn needs_reseal(&self, stored: &str) -> bool {
        match stored.strip_prefix(PREFIX) {
            None => true,
            Some(rest) => !rest.starts_with(&format!("{}:", self.kid())),
        }
    }

    /// Seals a private key's bytes (as base64 inside the seal).
    pub fn seal_bytes(&self, purpose: Purpose, plain: &[u8]) -> String {
        self.seal(purpose, &STANDARD.encode(plain))
    }

    /// Opens what [`Keyring::seal_bytes`] sealed. Stored bytes that are not a sealed value are
    /// taken as the plain bytes (written before sealing existed).
    pub fn open_bytes(&self, purpose: Purpose, stored: &[u8]) -> Result<Vec<u8>, SealError> {
        match std::str::from_utf8(stored) {
            Ok(text) if text.starts_with(PREFIX) => {
                let b64 = self.open(purpose, text)?;
                STANDARD
                    .decode(b64)
                    .map_err(|_| SealError::Damaged(self.kid().to_string()))
            }
            _ => Ok(stored.to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[String]) -> Keyring {
        Keyring::parse(&keys.join(",")).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_and_does_not_contain_the_plain_text() {
        let k = ring(&[generate_key()]);
        let sealed = k.seal(Purpose::WebhookSecret, "whsec_plain-secret");
        assert!(
            sealed.starts_with(&format!("enc:v1:{}:", k.kid())),
            "{sealed}"
        );
        assert!(!sealed.contains("plain-secret"));
        assert_eq!(
            k.open(Purpose::WebhookSecret, &sealed).unwrap(),
            "whsec_plain-secret"
        );
        // A fresh nonce each time.
        assert_ne!(sealed, k.seal(Purpose::WebhookSecret, "whsec_plain-secret"));
    }

    #[test]
    fn a_value_does_not_open_for_another_purpose_or_when_changed() {
        let k = ring(&[generate_key()]);
        let sealed = k.seal(Purpose::HeaderValue, "token");
        assert!(matches!(
            k.open(Purpose::WebhookSecret, &sealed),
            Err(SealError::Damaged(_))
        ));
        let mut changed = sealed.clone().into_bytes();
        let last = changed.len() - 1;
        changed[last] = if changed[last] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(changed).unwrap();
        assert!(k.open(Purpose::HeaderValue, &changed).is_err());
        assert!(k.open(Purpose::HeaderValue, "enc:v1:").is_err());
    }

    #[test]
    fn older_keys_open_and_only_the_first_seals() {
        let (old, new) = (generate_key(), generate_key());
        let before = ring(std::slice::from_ref(&old));
        let sealed = before.seal(Purpose::WebhookSecret, "s");
        let after = ring(&[new.clone(), old.clone()]);
        assert_eq!(after.open(Purpose::WebhookSecret, &sealed).unwrap(), "s");
        assert!(after.needs_reseal(&sealed));
        assert!(!after.needs_reseal(&after.seal(Purpose::WebhookSecret, "s")));
        let unknown = ring(&[new]).open(Purpose::WebhookSecret, &sealed);
        assert_eq!(
            unknown,
            Err(SealError::UnknownKey(before.kid().to_string()))
        );
    }

    #[test]
    fn plain_values_open_as_themselves_and_need_sealing() {
        let k = ring(&[generate_key()]);
        assert_eq!(k.open(Purpose::WebhookSecret, "legacy").unwrap(), "legacy");
        assert!(k.needs_reseal("legacy"));
        assert_eq!(
            k.open_bytes(Purpose::SigningKey, &[0x30, 0x51]).unwrap(),
            vec![0x30, 0x51]
        );
        let sealed = k.seal_bytes(Purpose::SigningKey, &[0x30, 0x51, 0xff]);
        assert_eq!(
            k.open_bytes(Purpose::SigningKey, sealed.as_bytes())
                .unwrap(),
            vec![0x30, 0x51, 0xff]
        );
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64_and_debug_shows_ids_only() {
        assert_eq!(Keyring::parse("").unwrap_err(), SealError::BadKey);
        assert_eq!(Keyring::parse("c2hvcnQ=").unwrap_err(), SealError::BadKey);
        let key = generate_key();
        let k = ring(std::slice::from_ref(&key));
        assert_eq!(format!("{k:?}"), format!("[{:?}]", k.kid()));
        assert!(!format!("{k:?}").contains(&key));
        // URL-safe without padding reads too.
        let url = key.replace('+', "-").replace('/', "_");
        assert_eq!(
            Keyring::parse(url.trim_end_matches('=')).unwrap().kid(),
            k.kid()
        );
    }
}
