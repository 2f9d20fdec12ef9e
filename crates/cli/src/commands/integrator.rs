//! Integrator commands: webhooks and deliveries of the chosen workspace.

use std::collections::HashSet;
use std::time::Duration;

use clap::Subcommand;
use futures::TryStreamExt;
use serde_json::json;
use tidings_client::WebhookInput;

use super::operator::json_arg;
use super::output::{self, Columns, Format};
use super::{Connection, Outcome, usage};

const WEBHOOK_COLUMNS: Columns<'static> = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("URL", "url"),
    ("TRIGGERS", "triggers"),
    ("STATUS", "status"),
];

const DELIVERY_COLUMNS: Columns<'static> = &[
    ("ID", "id"),
    ("EVENT", "eventId"),
    ("STATE", "state"),
    ("ATTEMPTS", "attempts"),
    ("LAST STATUS", "lastStatus"),
    ("UPDATED", "updatedAt"),
];

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Create a webhook (enabled unless --disabled).
    #[command(
        after_help = "Example:\n\n    tidings webhooks create --url https://example.com/hooks --triggers invoice.paid,invoice.voided"
    )]
    Create {
        #[arg(long)]
        url: String,
        /// Event types, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        triggers: Vec<String>,
        #[arg(long)]
        name: Option<String>,
        /// The signing secret (default: generated, `whsec_…`).
        #[arg(long)]
        secret: Option<String>,
        /// Also receive the events of the workspace's descendants.
        #[arg(long)]
        descendants: bool,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List the workspace's webhooks.
    #[command(after_help = "Example:\n\n    tidings webhooks list")]
    List,
    /// Show one webhook (with its secret).
    #[command(after_help = "Example:\n\n    tidings webhooks show WEBHOOK_ID")]
    Show { id: String },
    /// Change a webhook's URL, triggers, name or status.
    #[command(after_help = "Example:\n\n    tidings webhooks update WEBHOOK_ID --status disabled")]
    Update {
        id: String,
        #[arg(long)]
        url: Option<String>,
        #[arg(long, value_delimiter = ',')]
        triggers: Option<Vec<String>>,
        #[arg(long)]
        name: Option<String>,
        /// enabled or disabled.
        #[arg(long)]
        status: Option<String>,
    },
    /// Delete a webhook; its pending deliveries are cancelled.
    #[command(after_help = "Example:\n\n    tidings webhooks delete WEBHOOK_ID")]
    Delete { id: String },
    /// Send one notification now (the emulator) and show what was sent and answered.
    #[command(
        after_help = "Example:\n\n    tidings webhooks test WEBHOOK_ID --type invoice.paid --data '{\"amount\": 42}'"
    )]
    Test {
        id: String,
        /// The event type (default: the webhook's first trigger).
        #[arg(long = "type")]
        kind: Option<String>,
        /// The data: JSON, @FILE or @- (default: the type's sample).
        #[arg(long)]
        data: Option<String>,
    },
    /// Give a webhook a new signing secret; the previous one keeps signing for 24 hours.
    #[command(after_help = "Example:\n\n    tidings webhooks rotate WEBHOOK_ID")]
    Rotate {
        id: String,
        /// The new secret (default: generated).
        #[arg(long)]
        secret: Option<String>,
    },
    /// Send again the failed deliveries created in a window.
    #[command(
        after_help = "Example:\n\n    tidings webhooks replay WEBHOOK_ID --since 2026-12-07T00:00:00Z"
    )]
    Replay {
        id: String,
        /// RFC 3339 or a duration ago (`2h`).
        #[arg(long)]
        since: String,
        /// RFC 3339 (default: now).
        #[arg(long)]
        until: Option<String>,
    },
}

pub async fn webhooks(conn: &Connection, cmd: WebhooksCommand) -> Outcome {
    let api = conn.integrator()?;
    let format = conn.format();
    match cmd {
        WebhooksCommand::Create {
            url,
            triggers,
            name,
            secret,
            descendants,
            disabled,
        } => {
            let input = WebhookInput {
                name,
                url: Some(url),
                secret,
                triggers: Some(triggers),
                apply_to_all_descendants: Some(descendants),
                status: Some(if disabled { "disabled" } else { "enabled" }.into()),
                ..Default::default()
            };
            print_webhook(format, &api.create_webhook(&input).await?);
        }
        WebhooksCommand::List => {
            let all: Vec<_> = api.webhooks().try_collect().await?;
            output::list(format, &all, WEBHOOK_COLUMNS);
        }
        WebhooksCommand::Show { id } => print_webhook(format, &api.webhook(&id).await?),
        WebhooksCommand::Update {
            id,
            url,
            triggers,
            name,
            status,
        } => {
            if url.is_none() && triggers.is_none() && name.is_none() && status.is_none() {
                return Err(usage(
                    "nothing to change: pass --url, --triggers, --name or --status",
                ));
            }
            let input = WebhookInput {
                url,
                triggers,
                name,
                status,
                ..Default::default()
            };
            print_webhook(format, &api.update_webhook(&id, &input).await?);
        }
        WebhooksCommand::Delete { id } => {
            api.delete_webhook(&id).await?;
            eprintln!("deleted webhook {id}");
        }
        WebhooksCommand::Test { id, kind, data } => {
            let mut body = json!({});
            if let Some(k) = kind {
                body["type"] = json!(k);
            }
            if let Some(d) = data {
                body["data"] = json_arg("--data", &d)?;
            }
            output::one(format, &api.test_webhook(&id, &body).await?);
        }
        WebhooksCommand::Rotate { id, secret } => {
            print_webhook(
                format,
                &api.rotate_webhook_secret(&id, secret.as_deref()).await?,
            );
        }
        WebhooksCommand::Replay { id, since, until } => {
            let since = point_in_time(&since)?;
            let progress = crate::progress::spinner("replaying");
            let replayed = api.replay(&id, &since, until.as_deref()).await;
            progress.finish_and_clear();
            output::one(format, &replayed?);
        }
    }
    Ok(())
}

fn print_webhook(format: Format, w: &tidings_client::Webhook) {
    for warning in &w.warnings {
        eprintln!("warning: {warning}");
    }
    output::one(format, w);
}

/// RFC 3339 as given, or a duration (`2h`, `30m`) before now.
fn point_in_time(raw: &str) -> Result<String, super::Failure> {
    if let Ok(ago) = humantime::parse_duration(raw) {
        let at = std::time::SystemTime::now()
            .checked_sub(ago)
            .ok_or_else(|| usage("--since is too far back"))?;
        return Ok(humantime::format_rfc3339_millis(at).to_string());
    }
    Ok(raw.to_string())
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// A webhook's deliveries, newest first.
    #[command(after_help = "Example:\n\n    tidings deliveries list WEBHOOK_ID --state failed")]
    List {
        webhook: String,
        /// pending, succeeded or failed.
        #[arg(long)]
        state: Option<String>,
    },
    /// A delivery with every attempt (request and answer).
    #[command(after_help = "Example:\n\n    tidings deliveries show msg_01…")]
    Show { id: String },
    /// Send a delivery again now.
    #[command(after_help = "Example:\n\n    tidings deliveries retry msg_01…")]
    Retry { id: String },
    /// Send every failed delivery of a webhook again now (a progress bar on a terminal).
    #[command(after_help = "Example:\n\n    tidings deliveries retry-failed WEBHOOK_ID")]
    RetryFailed { webhook: String },
    /// Follow a webhook's deliveries: print each new or changed one until interrupted.
    #[command(after_help = "Example:\n\n    tidings deliveries tail WEBHOOK_ID")]
    Tail {
        webhook: String,
        /// How often to look.
        #[arg(long, default_value = "1s", value_parser = crate::humantime_duration)]
        every: Duration,
    },
}

pub async fn deliveries(conn: &Connection, cmd: DeliveriesCommand) -> Outcome {
    let api = conn.integrator()?;
    let format = conn.format();
    match cmd {
        DeliveriesCommand::List { webhook, state } => {
            let all: Vec<_> = api
                .deliveries(&webhook, state.as_deref())
                .try_collect()
                .await?;
            output::list(format, &all, DELIVERY_COLUMNS);
        }
        DeliveriesCommand::Show { id } => output::one(format, &api.delivery(&id).await?),
        DeliveriesCommand::Retry { id } => output::one(format, &api.retry_delivery(&id).await?),
        DeliveriesCommand::RetryFailed { webhook } => {
            let failed: Vec<_> = api
                .deliveries(&webhook, Some("failed"))
                .try_collect()
                .await?;
            let progress = crate::progress::bar(failed.len() as u64, "retrying");
            let mut retried = Vec::with_capacity(failed.len());
            for d in &failed {
                retried.push(api.retry_delivery(&d.id).await?);
                progress.inc(1);
            }
            progress.finish_and_clear();
            output::list(format, &retried, DELIVERY_COLUMNS);
            eprintln!("retried {} failed deliveries", retried.len());
        }
        DeliveriesCommand::Tail { webhook, every } => tail(&api, &webhook, every, format).await?,
    }
    Ok(())
}

/// Polls the newest page and prints deliveries not seen in their current state, oldest first:
/// one line each (a table row, or one JSON object per line).
async fn tail(
    api: &tidings_client::Client,
    webhook: &str,
    every: Duration,
    format: Format,
) -> Outcome {
    let mut seen: HashSet<(String, String, String)> = HashSet::new();
    let spinner = super::super::progress::spinner("waiting for deliveries (Ctrl-C stops)");
    let mut first = true;
    loop {
        let page = api.deliveries_page(webhook, None).await?;
        let mut fresh: Vec<_> = page
            .data
            .into_iter()
            .filter(|d| seen.insert((d.id.clone(), d.state.clone(), d.updated_at.clone())))
            .collect();
        fresh.reverse();
        for d in &fresh {
            spinner.suspend(|| match format {
                Format::Json => println!("{}", serde_json::to_string(d).unwrap_or_default()),
                Format::Table => {
                    let status = d.last_status.map(|s| s.to_string()).unwrap_or_default();
                    println!(
                        "{}  {}  {:<9}  attempts={}  {}  {}",
                        d.updated_at,
                        d.id,
                        d.state,
                        d.attempts,
                        status,
                        d.last_outcome.as_deref().unwrap_or("")
                    );
                }
            });
        }
        if first && fresh.is_empty() {
            spinner.tick();
        }
        first = false;
        tokio::time::sleep(every).await;
    }
}
