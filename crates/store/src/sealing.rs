//! The secrets the store keeps sealed at rest (`tidings_core::seal`): a webhook's secret, its
//! previous secret and its custom header values (inside the `spec` JSON and the
//! `previous_secret` column), and the private signing keys. They are sealed where they are
//! written and opened where a row becomes a `Webhook` or a `SigningKey`, so nothing above the
//! store sees a sealed value and nothing below it sees a plain one.

use std::sync::{Arc, RwLock};

use tidings_core::seal::{Keyring, Purpose, SealError};
use tidings_core::webhook::WebhookSpec;

use crate::{Result, StoreError};

/// The master keys, shared by every part of the store; replaced whole when the master key
/// rotates ([`Keys::replace`]).
#[derive(Clone, Debug)]
pub struct Keys(Arc<RwLock<Arc<Keyring>>>);

impl Keys {
    pub fn new(keyring: Keyring) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(keyring))))
    }

    /// The keys in force now.
    pub fn get(&self) -> Arc<Keyring> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// From now on, `keyring` seals and opens.
    pub fn replace(&self, keyring: Keyring) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keyring);
    }
}

impl From<SealError> for StoreError {
    fn from(e: SealError) -> Self {
        StoreError::Sealed(e.to_string())
    }
}

/// The spec as stored: JSON with its secret and header values sealed.
pub(crate) fn spec_text(keys: &Keyring, spec: &WebhookSpec) -> String {
    let mut sealed = spec.clone();
    sealed.secret = keys.seal(Purpose::WebhookSecret, &spec.secret);
    for value in sealed.headers.values_mut() {
        *value = keys.seal(Purpose::HeaderValue, value);
    }
    serde_json::to_string(&sealed).expect("a webhook spec serializes")
}

/// Opens the secret and header values of a spec read from the store.
pub(crate) fn open_spec(keys: &Keyring, spec: &mut WebhookSpec) -> Result<()> {
    spec.secret = keys.open(Purpose::WebhookSecret, &spec.secret)?;
    for value in spec.headers.values_mut() {
        *value = keys.open(Purpose::HeaderValue, value)?;
    }
    Ok(())
}

/// Whether a stored spec (JSON text) holds a value that is plain or sealed with an older key.
pub(crate) fn spec_needs_reseal(keys: &Keyring, stored: &str) -> Result<bool> {
    let spec: WebhookSpec = crate::parse_json("webhook spec", stored)?;
    Ok(keys.needs_reseal(&spec.secret) || spec.headers.values().any(|v| keys.needs_reseal(v)))
}

pub(crate) fn seal_previous(keys: &Keyring, previous: Option<&(String, i64)>) -> Option<String> {
    previous.map(|(secret, _)| keys.seal(Purpose::WebhookSecret, secret))
}

pub(crate) fn open_previous(keys: &Keyring, stored: Option<String>) -> Result<Option<String>> {
    Ok(stored
        .map(|s| keys.open(Purpose::WebhookSecret, &s))
        .transpose()?)
}

pub(crate) fn seal_signing_key(keys: &Keyring, private_der: &[u8]) -> Vec<u8> {
    keys.seal_bytes(Purpose::SigningKey, private_der)
        .into_bytes()
}

pub(crate) fn open_signing_key(keys: &Keyring, stored: &[u8]) -> Result<Vec<u8>> {
    Ok(keys.open_bytes(Purpose::SigningKey, stored)?)
}
