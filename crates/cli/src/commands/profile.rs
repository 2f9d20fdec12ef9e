//! Named profiles: where `tidings` client commands find a server and credentials when no flag
//! or variable gives them. One TOML file, `$TIDINGS_CLI_CONFIG` or
//! `~/.config/tidings/cli.toml`, written by `tidings login` with mode 0600 (it holds secrets).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Where to reach a server and as whom.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("url", &self.url)
            .field("operator_key", &self.operator_key.as_ref().map(|_| "***"))
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("workspace", &self.workspace)
            .finish()
    }
}

/// The file: profiles by name, and which one is used when none is named.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// The file's path: `$TIDINGS_CLI_CONFIG`, else `$XDG_CONFIG_HOME/tidings/cli.toml`, else
/// `~/.config/tidings/cli.toml`.
pub fn path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TIDINGS_CLI_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("tidings").join("cli.toml"))
}

impl File {
    /// Reads the file; a missing file is an empty one.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("invalid {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// The profile `name`, or the default one; `None` when there is none.
    pub fn profile(&self, name: Option<&str>) -> anyhow::Result<Option<Profile>> {
        match name {
            Some(n) => self.profiles.get(n).cloned().map(Some).with_context(|| {
                format!("no profile named '{n}' (tidings login --profile {n} creates it)")
            }),
            None => Ok(self
                .default
                .as_deref()
                .and_then(|d| self.profiles.get(d))
                .cloned()),
        }
    }

    /// Writes the file readable by its owner only (it holds secrets).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let text = toml::to_string_pretty(self)?;
        let tmp = path.with_extension("toml.tmp");
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options
                .open(&tmp)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        #[cfg(unix)]
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_profile_reads_back_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cli.toml");
        let mut file = File::default();
        file.profiles.insert(
            "local".into(),
            Profile {
                url: Some("http://127.0.0.1:8080".into()),
                client_secret: Some("s3cret".into()),
                ..Default::default()
            },
        );
        file.default = Some("local".into());
        file.save(&path).unwrap();
        let back = File::load(&path).unwrap();
        assert_eq!(
            back.profile(None).unwrap(),
            file.profiles.get("local").cloned()
        );
        assert!(back.profile(Some("other")).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{:?}", back).contains("s3cret"));
    }
}
