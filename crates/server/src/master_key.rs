//! The master key that seals the secrets the store keeps (`tidings_core::seal`): from
//! `TIDINGS_MASTER_KEY`, or from a key file (`master_key_file`, default `<data_dir>/master.key`)
//! that the first start creates, readable by its owner only. The store opens values sealed with
//! any key it is given and seals with the first; at start, and after a rotation, it seals again
//! whatever an older key sealed (`Store::reseal`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tidings_core::seal::{Keyring, generate_key};
use tidings_store::{Keys, Store};

use crate::config::Config;

/// Where the master keys come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `TIDINGS_MASTER_KEY` (rotation: set it to `new,old` and restart).
    Environment,
    /// A key file, which `rotate` rewrites.
    File(PathBuf),
}

/// The master keys in force and where they come from.
#[derive(Debug, Clone)]
pub struct MasterKey {
    pub keys: Keys,
    pub source: Source,
}

/// Reads the master keys from the configuration, creating the key file on first start.
pub fn load(config: &Config) -> anyhow::Result<MasterKey> {
    if let Some(text) = &config.master_key {
        let keyring = Keyring::parse(text.expose()).context("TIDINGS_MASTER_KEY")?;
        return Ok(MasterKey {
            keys: Keys::new(keyring),
            source: Source::Environment,
        });
    }
    // The data directory is Tidings' own, whichever store: its owner's only (the embedded store
    // tightens it too; on PostgreSQL it may hold only the key file).
    tidings_store::private_dir(&config.data_dir)?;
    let path = config.master_key_file.clone();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = generate_key();
            write_private(&path, &key, true)
                .with_context(|| format!("creating the master key file {}", path.display()))?;
            tracing::info!(file = %path.display(), "created the master key file: back it up, the stored secrets cannot be read without it");
            key
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("reading the master key file {}", path.display()));
        }
    };
    let keyring =
        Keyring::parse(&text).with_context(|| format!("the master key file {}", path.display()))?;
    // Its owner's only, also when an earlier version or a person made it readable to others.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting the master key file {}", path.display()))?;
    }
    Ok(MasterKey {
        keys: Keys::new(keyring),
        source: Source::File(path),
    })
}

/// After the store sealed everything with the first key: a key file keeps only that key.
pub fn forget_older(master: &MasterKey) -> anyhow::Result<()> {
    let Source::File(path) = &master.source else {
        return Ok(());
    };
    let keyring = master.keys.get();
    if keyring.kids().len() == 1 {
        return Ok(());
    }
    let text = std::fs::read_to_string(path)?;
    let first = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .find(|k| !k.is_empty())
        .unwrap_or_default()
        .to_string();
    write_private(path, &first, false)?;
    master.keys.replace(Keyring::parse(&first)?);
    Ok(())
}

/// Why a rotation was refused.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(
        "the master key comes from TIDINGS_MASTER_KEY: set it to \"<new key>,<old key>\" on every node and restart them; each start seals what the old key sealed"
    )]
    FromEnvironment,
    #[error("rotating the master key failed: {0:#}")]
    Failed(anyhow::Error),
}

/// Rotates a key-file master key online: a new key is written first in the file (the old one
/// kept after it), the store seals everything with it, then the file keeps the new key only.
/// A crash in between leaves both keys in the file; the next start finishes the work. Returns
/// the new key's id and how many rows were sealed again.
pub async fn rotate(master: &MasterKey, store: &Store) -> Result<(String, u64), RotateError> {
    let Source::File(path) = &master.source else {
        return Err(RotateError::FromEnvironment);
    };
    let step = async {
        let old = std::fs::read_to_string(path)?;
        let both = format!("{}\n{}", generate_key(), old.trim());
        let keyring = Keyring::parse(&both)?;
        let kid = keyring.kid().to_string();
        write_private(path, &both, false)?;
        master.keys.replace(keyring);
        let resealed = store.reseal().await?;
        forget_older(master)?;
        anyhow::Ok((kid, resealed))
    };
    step.await.map_err(RotateError::Failed)
}

/// Writes `text` to `path`, readable and writable by its owner only (replacing it atomically
/// unless `create_new`). A missing directory is created readable by its owner only; an existing
/// one is left as it is (it may be the operator's, e.g. `/etc/tidings`).
fn write_private(path: &Path, text: &str, create_new: bool) -> anyhow::Result<()> {
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        tidings_store::private_dir(dir)?;
    }
    let target = if create_new {
        path.to_path_buf()
    } else {
        path.with_extension("key.new")
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&target)?;
    file.write_all(format!("{text}\n").as_bytes())?;
    file.sync_all()?;
    if !create_new {
        std::fs::rename(&target, path)?;
    }
    Ok(())
}
