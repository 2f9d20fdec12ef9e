//! The operator API key: configured, or generated on first start and stored only as a hash.

use tidings_core::secret::{self, Secret};
use tidings_store::{Store, StoreError};

const SETTING: &str = "operator_key_sha256";

/// The hash requests are checked against, and the generated key when this start created it
/// (to be printed once).
pub async fn resolve(
    store: &Store,
    configured: Option<&Secret>,
) -> Result<(String, Option<Secret>), StoreError> {
    if let Some(key) = configured {
        return Ok((secret::hash(key.expose()), None));
    }
    if let Some(hash) = store.setting_get(SETTING).await? {
        return Ok((hash, None));
    }
    let key = secret::random_token();
    let hash = secret::hash(key.expose());
    if store.setting_insert_if_absent(SETTING, &hash).await? {
        Ok((hash, Some(key)))
    } else {
        // Another node generated one at the same moment; it printed it.
        let hash = store
            .setting_get(SETTING)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok((hash, None))
    }
}
