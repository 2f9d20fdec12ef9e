//! Configuration: the embedded `config.default.toml`, then a TOML file, then `TIDINGS_*`
//! environment variables; parsed once into validated values.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tidings_core::retry::RetrySchedule;
use tidings_core::secret::Secret;

/// The embedded defaults, with a comment on every setting.
pub const DEFAULT_TOML: &str = include_str!("../../../config.default.toml");

/// The most threads `delivery.threads` may ask for.
const MAX_DELIVERY_THREADS: usize = 256;

/// Keys that have no value in the defaults file but may be set.
const OPTIONAL_STRINGS: &[&str] = &[];

/// A configuration problem found at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    #[error("unknown setting {0}")]
    Unknown(String),
    #[error("invalid setting {key}: {message}")]
    Invalid { key: String, message: String },
}

/// Dotted setting (`delivery.timeout`) → where its value came from (a file, a variable).
type Origins = HashMap<String, String>;

/// Names where an invalid setting came from, when not from the defaults.
fn with_origin(e: ConfigError, origins: &Origins) -> ConfigError {
    match e {
        ConfigError::Invalid { key, message } => {
            let key = match origins.get(&key) {
                Some(origin) if *origin != key => format!("{key} (from {origin})"),
                _ => key,
            };
            ConfigError::Invalid { key, message }
        }
        other => other,
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

/// One plan: may its workspaces integrate, and with how many webhooks.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub integration: bool,
    pub max_webhooks: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOauth {
    #[serde(with = "humantime_serde")]
    token_ttl: Duration,
    requests_per_minute_per_client: u32,
    requests_per_minute_per_address: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    enabled: bool,
    #[serde(with = "humantime_serde")]
    timeout: Duration,
    retry_schedule: Vec<String>,
    retry_jitter: f64,
    #[serde(with = "humantime_serde")]
    lease: Duration,
    concurrency: usize,
    #[serde(with = "humantime_serde")]
    poll_interval: Duration,
    #[serde(with = "humantime_serde")]
    shutdown_grace: Duration,
    per_webhook_concurrency: usize,
    per_webhook_concurrency_max: usize,
    #[serde(with = "humantime_serde")]
    auto_disable_after: Duration,
    threads: usize,
    max_payload_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    #[serde(with = "humantime_serde")]
    succeeded: Duration,
    #[serde(with = "humantime_serde")]
    failed: Duration,
    #[serde(with = "humantime_serde")]
    interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmulator {
    concurrency_per_workspace: usize,
    requests_per_minute_per_workspace: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsole {
    enabled: bool,
    #[serde(with = "humantime_serde")]
    session_ttl: Duration,
    #[serde(with = "humantime_serde")]
    portal_link_ttl: Duration,
    frame_ancestors: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperational {
    workspace: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    max_connections: u32,
    publish_batch: usize,
    sqlite_shims: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    data_dir: PathBuf,
    database_url: String,
    operator_key: String,
    master_key: String,
    master_key_file: PathBuf,
    public_url: String,
    audiences: Vec<String>,
    allow_addresses: Vec<String>,
    log_format: String,
    max_body_bytes: usize,
    default_plan: String,
    plans: BTreeMap<String, Plan>,
    oauth: RawOauth,
    delivery: RawDelivery,
    emulator: RawEmulator,
    console: RawConsole,
    database: RawDatabase,
    operational: RawOperational,
    retention: RawRetention,
}

/// Delivery worker settings.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub enabled: bool,
    pub timeout: Duration,
    pub retry: RetrySchedule,
    pub lease: Duration,
    pub concurrency: usize,
    pub poll_interval: Duration,
    pub shutdown_grace: Duration,
    /// Requests in flight at once to one webhook, per node: the floor every webhook has.
    pub per_webhook_concurrency: usize,
    /// The most a webhook with a fast, healthy receiver can earn (at least the floor).
    pub per_webhook_concurrency_max: usize,
    /// Failing this long without a success disables a webhook.
    pub auto_disable_after: Duration,
    /// Threads of the worker's own runtime (resolved: at least 1).
    pub threads: usize,
    /// The largest notification body a webhook's options may shape; larger ones fail as
    /// `too_large` (SPEC §12).
    pub max_payload_bytes: usize,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// PostgreSQL URL; `None` selects the embedded store. Wrapped: it may hold a password.
    pub database_url: Option<Secret>,
    pub operator_key: Option<Secret>,
    /// Master keys from `TIDINGS_MASTER_KEY` (base64, comma-separated, the sealing one first).
    pub master_key: Option<Secret>,
    /// The key file used when `master_key` is unset (resolved: `<data_dir>/master.key`).
    pub master_key_file: PathBuf,
    /// Empty until [`Config::resolve_public_url`] ran with the bound address.
    pub public_url: String,
    pub audiences: Vec<String>,
    pub allow_addresses: Vec<ipnet::IpNet>,
    pub log_json: bool,
    pub max_body_bytes: usize,
    pub default_plan: String,
    pub plans: BTreeMap<String, Plan>,
    pub token_ttl: Duration,
    /// Requests per minute to `/oauth/token` (and console sign-ins) allowed per client id and
    /// per source address.
    pub token_limits: crate::throttle::Limits,
    pub delivery: DeliveryConfig,
    pub db_max_connections: u32,
    pub publish_batch: usize,
    /// The embedded store's SQLite shim (WAL gathering); off = SQLite as shipped.
    pub sqlite_shims: bool,
    /// Workspace of Tidings' operational events.
    pub operational_workspace: String,
    pub retention: RetentionConfig,
    pub console: ConsoleConfig,
    pub emulator: EmulatorConfig,
}

/// The emulator's limits per workspace (0: off).
#[derive(Debug, Clone, Copy)]
pub struct EmulatorConfig {
    pub concurrency_per_workspace: usize,
    pub requests_per_minute_per_workspace: u32,
}

/// The web console (docs/console.md).
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    pub enabled: bool,
    pub session_ttl: Duration,
    /// Default lifetime of a portal link.
    pub portal_link_ttl: Duration,
    /// Origins allowed to frame the console (CSP `frame-ancestors`), validated.
    pub frame_ancestors: Vec<String>,
}

/// How long finished work is kept.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    pub succeeded: Duration,
    pub failed: Duration,
    pub interval: Duration,
}

impl Config {
    /// Loads defaults, then `file` (or `./tidings.toml` when it exists), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("TIDINGS_"))
            .collect();
        Self::load_from(file, &env)
    }

    /// Like [`Config::load`] with an explicit environment (tests).
    pub fn load_from(file: Option<&Path>, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut table = parse_toml("config.default.toml", DEFAULT_TOML)?;
        let file = match file {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("tidings.toml")).filter(|p| p.exists()),
        };
        // Where each setting that is not a default came from, for errors: a file or a variable.
        let mut origins = Origins::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let origin = path.display().to_string();
            let overlay = parse_toml(&origin, &text)?;
            merge(&mut table, overlay, "", &origin, &mut origins)?;
        }
        for (key, value) in env {
            apply_env(&mut table, key, value, &mut origins)?;
        }
        let raw: RawConfig = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let key = e.path().to_string();
                invalid(&key, e.into_inner().message().to_string())
            })
            .map_err(|e| with_origin(e, &origins))?;
        raw.validate().map_err(|e| with_origin(e, &origins))
    }

    /// Sets the public URL from the bound address when none was configured, and the default
    /// audience with it.
    pub fn resolve_public_url(&mut self, bound: SocketAddr) {
        if self.public_url.is_empty() {
            self.public_url = format!("http://{bound}");
        }
        if self.audiences.is_empty() {
            self.audiences.push(self.public_url.clone());
        }
    }

    /// The plan of this name, if configured.
    pub fn plan(&self, name: &str) -> Option<&Plan> {
        self.plans.get(name)
    }
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            invalid(
                "listen",
                format!("'{}' is not an address like 127.0.0.1:8080", self.listen),
            )
        })?;
        let database_url = match self.database_url.trim() {
            "" => None,
            u if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Some(Secret::new(u))
            }
            _ => {
                return Err(invalid(
                    "database_url",
                    "must start with postgres:// (or be empty for the embedded store)",
                ));
            }
        };
        let operator_key = match self.operator_key.as_str() {
            "" => None,
            k if k.len() < 16 => {
                return Err(invalid("operator_key", "must be at least 16 characters"));
            }
            k => Some(Secret::new(k)),
        };
        let master_key = match self.master_key.trim() {
            "" => None,
            k => {
                tidings_core::seal::Keyring::parse(k)
                    .map_err(|e| invalid("master_key", e.to_string()))?;
                Some(Secret::new(k))
            }
        };
        let master_key_file = if self.master_key_file.as_os_str().is_empty() {
            self.data_dir.join("master.key")
        } else {
            self.master_key_file
        };
        let public_url = self.public_url.trim_end_matches('/').to_string();
        if !public_url.is_empty() {
            url::Url::parse(&public_url).map_err(|e| invalid("public_url", e.to_string()))?;
        }
        let allow_addresses = self
            .allow_addresses
            .iter()
            .map(|c| {
                parse_cidr(c).ok_or_else(|| {
                    invalid(
                        "allow_addresses",
                        format!("'{c}' is not a CIDR such as 127.0.0.0/8"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let log_json = match self.log_format.as_str() {
            "text" => false,
            "json" => true,
            other => {
                return Err(invalid(
                    "log_format",
                    format!("'{other}' is neither text nor json"),
                ));
            }
        };
        if !self.plans.contains_key(&self.default_plan) {
            return Err(invalid(
                "default_plan",
                format!("no plan named '{}' is configured", self.default_plan),
            ));
        }
        let d = self.delivery;
        let delays = d
            .retry_schedule
            .iter()
            .map(|s| {
                humantime::parse_duration(s)
                    .map_err(|e| invalid("delivery.retry_schedule", format!("'{s}': {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !(0.0..1.0).contains(&d.retry_jitter) {
            return Err(invalid("delivery.retry_jitter", "must be in [0, 1)"));
        }
        if d.timeout.is_zero() {
            return Err(invalid("delivery.timeout", "must be positive"));
        }
        if d.lease <= d.timeout {
            return Err(invalid(
                "delivery.lease",
                "must be longer than delivery.timeout",
            ));
        }
        if d.concurrency == 0 {
            return Err(invalid("delivery.concurrency", "must be at least 1"));
        }
        if d.threads > MAX_DELIVERY_THREADS {
            return Err(invalid(
                "delivery.threads",
                format!("must be at most {MAX_DELIVERY_THREADS} (0: one per CPU core)"),
            ));
        }
        if d.max_payload_bytes < 1024 {
            return Err(invalid(
                "delivery.max_payload_bytes",
                "must be at least 1024",
            ));
        }
        if !tidings_core::workspace::valid_id(&self.operational.workspace) {
            return Err(invalid(
                "operational.workspace",
                "must be a valid workspace id",
            ));
        }
        let console = self.console.validate()?;
        if self.max_body_bytes < 1024 {
            return Err(invalid("max_body_bytes", "must be at least 1024"));
        }
        Ok(Config {
            listen,
            data_dir: self.data_dir,
            database_url,
            operator_key,
            master_key,
            master_key_file,
            public_url,
            audiences: self.audiences,
            allow_addresses,
            log_json,
            max_body_bytes: self.max_body_bytes,
            default_plan: self.default_plan,
            plans: self.plans,
            token_ttl: self.oauth.token_ttl,
            token_limits: crate::throttle::Limits {
                per_client: self.oauth.requests_per_minute_per_client,
                per_address: self.oauth.requests_per_minute_per_address,
            },
            delivery: DeliveryConfig {
                enabled: d.enabled,
                timeout: d.timeout,
                retry: RetrySchedule {
                    delays,
                    jitter: d.retry_jitter,
                },
                lease: d.lease,
                concurrency: d.concurrency,
                poll_interval: d.poll_interval.max(Duration::from_millis(10)),
                shutdown_grace: d.shutdown_grace,
                per_webhook_concurrency: d.per_webhook_concurrency.max(1),
                per_webhook_concurrency_max: d
                    .per_webhook_concurrency_max
                    .max(d.per_webhook_concurrency.max(1)),
                auto_disable_after: d.auto_disable_after,
                threads: match d.threads {
                    0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
                    n => n,
                },
                max_payload_bytes: d.max_payload_bytes,
            },
            db_max_connections: self.database.max_connections,
            publish_batch: self.database.publish_batch.max(1),
            sqlite_shims: self.database.sqlite_shims,
            operational_workspace: self.operational.workspace,
            retention: RetentionConfig {
                succeeded: self.retention.succeeded,
                failed: self.retention.failed,
                interval: self.retention.interval.max(Duration::from_millis(10)),
            },
            console,
            emulator: EmulatorConfig {
                concurrency_per_workspace: self.emulator.concurrency_per_workspace,
                requests_per_minute_per_workspace: self.emulator.requests_per_minute_per_workspace,
            },
        })
    }
}

impl RawConsole {
    fn validate(self) -> Result<ConsoleConfig, ConfigError> {
        if self.session_ttl < Duration::from_secs(60) {
            return Err(invalid("console.session_ttl", "must be at least 1m"));
        }
        if !(Duration::from_secs(30)..=Duration::from_secs(86_400)).contains(&self.portal_link_ttl)
        {
            return Err(invalid(
                "console.portal_link_ttl",
                "must be between 30s and 24h",
            ));
        }
        let frame_ancestors = self
            .frame_ancestors
            .iter()
            .map(|o| {
                let url = url::Url::parse(o).ok().filter(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && u.host_str().is_some()
                        && u.path() == "/"
                        && u.query().is_none()
                });
                url.map(|u| u.origin().ascii_serialization())
                    .ok_or_else(|| {
                        invalid(
                            "console.frame_ancestors",
                            format!("'{o}' is not an origin such as https://app.example.com"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ConsoleConfig {
            enabled: self.enabled,
            session_ttl: self.session_ttl,
            portal_link_ttl: self.portal_link_ttl,
            frame_ancestors,
        })
    }
}

fn parse_cidr(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

fn parse_toml(origin: &str, text: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Syntax {
            origin: origin.to_string(),
            message: e.to_string(),
        })
}

/// Deep-merges `overlay` into `base`; keys must exist in the defaults (typos are errors), except
/// under `plans`, where the operator adds tables of its own.
fn merge(
    base: &mut toml::Table,
    overlay: toml::Table,
    prefix: &str,
    origin: &str,
    origins: &mut Origins,
) -> Result<(), ConfigError> {
    for (k, v) in overlay {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) if prefix != "plans" => {
                merge(b, o, &path, origin, origins)?
            }
            (Some(slot), v) => {
                *slot = v;
                origins.insert(path, origin.to_string());
            }
            (None, v) if prefix == "plans" || OPTIONAL_STRINGS.contains(&path.as_str()) => {
                base.insert(k, v);
                origins.insert(path, origin.to_string());
            }
            (None, _) => return Err(ConfigError::Unknown(path)),
        }
    }
    Ok(())
}

/// What `tidings` client commands read (docs/cli.md), without the prefix.
const CLIENT_VARIABLES: &[&str] = &[
    "URL",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "WORKSPACE",
    "PROFILE",
    "OUTPUT",
    "CLI_CONFIG",
];

/// Applies `TIDINGS_SECTION__KEY=value`, typed after the default it replaces.
fn apply_env(
    table: &mut toml::Table,
    var: &str,
    value: &str,
    origins: &mut Origins,
) -> Result<(), ConfigError> {
    let Some(rest) = var.strip_prefix("TIDINGS_") else {
        return Ok(());
    };
    // Variables of the test harness and of the command line's client commands share the
    // prefix; ignore them (TIDINGS_OPERATOR_KEY is both the server's setting and the CLI's).
    if rest.starts_with("TEST_") || CLIENT_VARIABLES.contains(&rest) {
        return Ok(());
    }
    let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    let (last, sections) = path.split_last().expect("split yields at least one part");
    let mut cursor = &mut *table;
    for s in sections {
        cursor = match cursor.get_mut(s) {
            Some(toml::Value::Table(t)) => t,
            _ => return Err(ConfigError::Unknown(var.to_string())),
        };
    }
    let Some(slot) = cursor.get_mut(last) else {
        return Err(ConfigError::Unknown(var.to_string()));
    };
    origins.insert(path.join("."), var.to_string());
    let bad = |what: &str| invalid(var, format!("'{value}' is not {what}"));
    *slot = match slot {
        toml::Value::Boolean(_) => toml::Value::Boolean(match value {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err(bad("a boolean")),
        }),
        toml::Value::Integer(_) => {
            toml::Value::Integer(value.trim().parse().map_err(|_| bad("an integer"))?)
        }
        toml::Value::Float(_) => {
            toml::Value::Float(value.trim().parse().map_err(|_| bad("a number"))?)
        }
        toml::Value::Array(_) => toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        toml::Value::Table(_) => return Err(invalid(var, "names a section, not a setting")),
        _ => toml::Value::String(value.to_string()),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_value_names_its_setting_and_where_it_came_from() {
        let e = Config::load_from(None, &env(&[("TIDINGS_DELIVERY__TIMEOUT", "abc")])).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("delivery.timeout (from TIDINGS_DELIVERY__TIMEOUT)"),
            "{text}"
        );
        assert!(text.contains("abc"), "{text}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tidings.toml");
        std::fs::write(&path, "[retention]\nsucceeded = \"soon\"\n").unwrap();
        let text = Config::load_from(Some(&path), &[]).unwrap_err().to_string();
        assert!(
            text.contains(&format!("retention.succeeded (from {})", path.display())),
            "{text}"
        );
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_and_match_the_spec() {
        let c = Config::load_from(None, &[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(c.database_url.is_none());
        assert_eq!(c.delivery.retry, RetrySchedule::default());
        // 0 (the default) resolves to one thread per CPU core.
        assert_eq!(
            c.delivery.threads,
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        );
        assert_eq!(c.token_ttl, Duration::from_secs(86400));
    }

    #[test]
    fn environment_overrides_with_types_and_lists() {
        let c = Config::load_from(
            None,
            &env(&[
                ("TIDINGS_LISTEN", "0.0.0.0:9000"),
                ("TIDINGS_AUDIENCES", "https://a.example, https://b.example"),
                ("TIDINGS_ALLOW_ADDRESSES", "127.0.0.0/8,::1"),
                ("TIDINGS_DELIVERY__TIMEOUT", "2s"),
                ("TIDINGS_DELIVERY__CONCURRENCY", "7"),
                ("TIDINGS_DELIVERY__THREADS", "3"),
                ("TIDINGS_OPERATOR_KEY", "1234567890123456"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.audiences, ["https://a.example", "https://b.example"]);
        assert_eq!(c.allow_addresses.len(), 2);
        assert_eq!(c.delivery.timeout, Duration::from_secs(2));
        assert_eq!(c.delivery.concurrency, 7);
        assert_eq!(c.delivery.threads, 3);
        assert_eq!(c.operator_key.unwrap().expose(), "1234567890123456");
    }

    #[test]
    fn unknown_and_invalid_settings_are_named() {
        let e = Config::load_from(None, &env(&[("TIDINGS_LISTN", "x")])).unwrap_err();
        assert_eq!(e.to_string(), "unknown setting TIDINGS_LISTN");
        let e = Config::load_from(None, &env(&[("TIDINGS_DELIVERY__CONCURRENCY", "many")]))
            .unwrap_err();
        assert!(
            e.to_string().contains("TIDINGS_DELIVERY__CONCURRENCY"),
            "{e}"
        );
        let e =
            Config::load_from(None, &env(&[("TIDINGS_DATABASE_URL", "mysql://x")])).unwrap_err();
        assert!(e.to_string().contains("database_url"), "{e}");
        let e =
            Config::load_from(None, &env(&[("TIDINGS_DELIVERY__THREADS", "100000")])).unwrap_err();
        assert!(e.to_string().contains("delivery.threads"), "{e}");
    }

    #[test]
    fn a_file_overrides_defaults_and_may_add_plans() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\n[plans.gold]\nintegration = true\nmax_webhooks = 5\n[delivery]\nlease = \"2m\"\n").unwrap();
        let c = Config::load_from(Some(&path), &[]).unwrap();
        assert_eq!(c.listen.port(), 1);
        assert_eq!(c.plan("gold").unwrap().max_webhooks, 5);
        assert_eq!(c.delivery.lease, Duration::from_secs(120));
        std::fs::write(&path, "[delivery]\nleese = \"2m\"\n").unwrap();
        assert!(
            matches!(Config::load_from(Some(&path), &[]), Err(ConfigError::Unknown(k)) if k == "delivery.leese")
        );
    }
}
