//! The client commands: everything `tidings` does over a server's HTTP API (never its
//! database), through the `tidings-client` crate. Credentials come from flags, then
//! `TIDINGS_*` variables, then a profile of the CLI config file (docs/cli.md).

pub mod integrator;
pub mod listen;
pub mod operator;
pub mod output;
pub mod profile;

use clap::Args;
use tidings_client::{Client, Error};

pub use integrator::{DeliveriesCommand, WebhooksCommand};
pub use operator::{
    ClientsCommand, EventTypesCommand, EventsCommand, KeysCommand, WorkspacesCommand,
};

use output::Format;

/// Where the server is and who is calling: flags, else variables, else the profile. Its
/// `Debug` hides the key and the secret.
#[derive(Args, Clone, Default)]
pub struct Connection {
    /// The server's base URL.
    #[arg(long, global = true, env = "TIDINGS_URL", value_name = "URL")]
    pub server: Option<String>,
    /// The operator API key (operator commands).
    #[arg(
        long,
        global = true,
        env = "TIDINGS_OPERATOR_KEY",
        hide_env_values = true
    )]
    pub operator_key: Option<String>,
    /// An integration client's id (integrator commands).
    #[arg(long, global = true, env = "TIDINGS_CLIENT_ID")]
    pub client_id: Option<String>,
    /// That client's secret.
    #[arg(
        long,
        global = true,
        env = "TIDINGS_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<String>,
    /// The workspace integrator commands act on (the client's own or a descendant).
    #[arg(long, global = true, env = "TIDINGS_WORKSPACE")]
    pub workspace: Option<String>,
    /// A profile of the CLI config file (default: the file's `default`).
    #[arg(long, global = true, env = "TIDINGS_PROFILE")]
    pub profile: Option<String>,
    /// Output format (default: table on a terminal, json otherwise).
    #[arg(long, short = 'o', global = true, env = "TIDINGS_OUTPUT", value_enum)]
    pub output: Option<Format>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("Connection")
            .field("server", &self.server)
            .field("operator_key", &hidden(&self.operator_key))
            .field("client_id", &self.client_id)
            .field("client_secret", &hidden(&self.client_secret))
            .field("workspace", &self.workspace)
            .field("profile", &self.profile)
            .field("output", &self.output)
            .finish()
    }
}

/// The exit codes scripts can rely on besides 0 (docs/cli.md).
pub mod exit {
    /// Anything else: the server unreachable, a 5xx, a local file unreadable.
    pub const FAILED: i32 = 1;
    /// Bad usage: an unknown flag, a missing argument (clap's own code).
    pub const USAGE: i32 = 2;
    /// The API refused the request as invalid (400, 409, 413, 415, 422).
    pub const REFUSED: i32 = 3;
    /// What the command names does not exist (404).
    pub const NOT_FOUND: i32 = 4;
    /// Missing or wrong credentials, or no access (401, 403).
    pub const AUTH: i32 = 5;
    /// Rate-limited (429): try again after the time the message gives.
    pub const LIMITED: i32 = 6;
}

/// A failed command: what to print and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match e.status() {
            Some(401 | 403) => exit::AUTH,
            Some(404) => exit::NOT_FOUND,
            Some(429) => exit::LIMITED,
            Some(400..=499) => exit::REFUSED,
            _ => exit::FAILED,
        };
        let mut message = match &e {
            Error::Api { message, .. } => message.clone(),
            Error::OAuth { description, .. } => description.clone(),
            other => other.to_string(),
        };
        if let Error::Api { details, .. } = &e {
            for d in details {
                message.push_str(&format!("\n  {}: {}", d.field, d.message));
            }
        }
        Self { code, message }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self {
            code: exit::FAILED,
            message: format!("{e:#}"),
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: exit::USAGE,
        message: message.into(),
    }
}

pub type Outcome = Result<(), Failure>;

impl Connection {
    /// Flags and variables over the profile.
    fn resolved(&self) -> Result<profile::Profile, Failure> {
        let file = match profile::path() {
            Some(p) => profile::File::load(&p)?,
            None => profile::File::default(),
        };
        let base = file.profile(self.profile.as_deref())?.unwrap_or_default();
        Ok(profile::Profile {
            url: self.server.clone().or(base.url),
            operator_key: self.operator_key.clone().or(base.operator_key),
            client_id: self.client_id.clone().or(base.client_id),
            client_secret: self.client_secret.clone().or(base.client_secret),
            workspace: self.workspace.clone().or(base.workspace),
        })
    }

    fn url(p: &profile::Profile) -> Result<String, Failure> {
        p.url.clone().ok_or_else(|| {
            usage("no server URL: pass --server, set TIDINGS_URL or run `tidings login`")
        })
    }

    /// A client acting as the operator.
    pub fn operator(&self) -> Result<Client, Failure> {
        let p = self.resolved()?;
        let key = p.operator_key.clone().ok_or_else(|| {
            usage("no operator key: pass --operator-key, set TIDINGS_OPERATOR_KEY or run `tidings login --operator-key …`")
        })?;
        Ok(Client::operator(&Self::url(&p)?, &key)?)
    }

    /// A client acting as an integrator of the chosen workspace.
    pub fn integrator(&self) -> Result<Client, Failure> {
        let p = self.resolved()?;
        let (Some(id), Some(secret)) = (p.client_id.clone(), p.client_secret.clone()) else {
            return Err(usage(
                "no client credentials: pass --client-id and --client-secret, set TIDINGS_CLIENT_ID and TIDINGS_CLIENT_SECRET, or run `tidings login`",
            ));
        };
        let workspace = p.workspace.clone().ok_or_else(|| {
            usage("no workspace: pass --workspace, set TIDINGS_WORKSPACE or save it with `tidings login`")
        })?;
        Ok(Client::integrator(
            &Self::url(&p)?,
            &id,
            &secret,
            &workspace,
        )?)
    }

    pub fn format(&self) -> Format {
        Format::resolve(self.output)
    }
}

/// `tidings login`: saves a profile.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n\n    tidings login --server http://127.0.0.1:8080 --client-id ID --client-secret SECRET --workspace acme\n    tidings login --profile ops --server http://127.0.0.1:8080 --operator-key KEY"
)]
pub struct Login {
    /// Make it the profile used when none is named.
    #[arg(long)]
    pub default: bool,
}

/// Saves the connection flags as a profile (named by `--profile`, else `default`), checking
/// them against the server first.
pub async fn login(conn: &Connection, args: &Login) -> Outcome {
    let path = profile::path()
        .ok_or_else(|| usage("no config file location: set TIDINGS_CLI_CONFIG or HOME"))?;
    let mut file = profile::File::load(&path)?;
    let name = conn.profile.clone().unwrap_or_else(|| "default".into());
    let p = profile::Profile {
        url: conn.server.clone(),
        operator_key: conn.operator_key.clone(),
        client_id: conn.client_id.clone(),
        client_secret: conn.client_secret.clone(),
        workspace: conn.workspace.clone(),
    };
    let url = Connection::url(&p)?;
    use futures::StreamExt;
    if let Some(key) = &p.operator_key
        && let Some(Err(e)) = Client::operator(&url, key)?.workspaces().next().await
    {
        return Err(e.into());
    }
    if let (Some(id), Some(secret), Some(ws)) = (&p.client_id, &p.client_secret, &p.workspace) {
        let client = Client::integrator(&url, id, secret, ws)?;
        if let Some(Err(e)) = client.catalog().next().await {
            return Err(e.into());
        }
    }
    file.profiles.insert(name.clone(), p);
    if args.default || file.default.is_none() {
        file.default = Some(name.clone());
    }
    file.save(&path)?;
    eprintln!("saved profile '{name}' to {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_key_and_the_secret() {
        let conn = Connection {
            operator_key: Some("op-key-123".into()),
            client_secret: Some("client-secret-456".into()),
            client_id: Some("id".into()),
            ..Default::default()
        };
        let shown = format!("{conn:?}");
        assert!(
            !shown.contains("op-key-123") && !shown.contains("client-secret-456"),
            "{shown}"
        );
        assert!(shown.contains("\"id\""));
    }

    #[test]
    fn api_errors_map_to_the_documented_exit_codes() {
        let api = |status| Error::Api {
            status,
            code: "x".into(),
            message: "m".into(),
            details: vec![],
            retry_after: None,
        };
        let codes: Vec<i32> = [401, 403, 404, 409, 422, 429, 500]
            .into_iter()
            .map(|s| Failure::from(api(s)).code)
            .collect();
        assert_eq!(
            codes,
            [
                exit::AUTH,
                exit::AUTH,
                exit::NOT_FOUND,
                exit::REFUSED,
                exit::REFUSED,
                exit::LIMITED,
                exit::FAILED
            ]
        );
    }
}
