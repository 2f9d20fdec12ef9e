//! Operator commands: workspaces, clients, event types, events, keys.

use clap::Subcommand;
use futures::TryStreamExt;
use serde_json::{Value, json};
use tidings_client::{NewEvent, WorkspaceInput};

use super::output::{self, Columns};
use super::{Connection, Outcome, usage};

const WORKSPACE_COLUMNS: Columns<'static> = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("TYPE", "type"),
    ("PLAN", "plan"),
    ("INTEGRATION", "integrationEnabled"),
    ("CREATED", "createdAt"),
];

#[derive(Debug, Subcommand)]
pub enum WorkspacesCommand {
    /// Create a workspace.
    #[command(
        after_help = "Example:\n\n    tidings workspaces create --id acme --name 'Acme Inc.' --integration-enabled"
    )]
    Create {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// regular, channel or child.
        #[arg(long = "type")]
        kind: Option<String>,
        /// The channel a child workspace belongs to.
        #[arg(long)]
        parent: Option<String>,
        #[arg(long)]
        plan: Option<String>,
        /// Let the workspace's integrators use the API.
        #[arg(long)]
        integration_enabled: bool,
    },
    /// List workspaces.
    #[command(after_help = "Example:\n\n    tidings workspaces list --output json")]
    List,
    /// Show one workspace.
    #[command(after_help = "Example:\n\n    tidings workspaces show acme")]
    Show { id: String },
    /// Change a workspace's name, plan or switches.
    #[command(
        after_help = "Example:\n\n    tidings workspaces update acme --plan pro --integration-enabled true"
    )]
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        plan: Option<String>,
        #[arg(long)]
        integration_enabled: Option<bool>,
        #[arg(long)]
        notifications_enabled: Option<bool>,
    },
    /// Delete a workspace with its clients and webhooks.
    #[command(after_help = "Example:\n\n    tidings workspaces delete acme")]
    Delete { id: String },
}

pub async fn workspaces(conn: &Connection, cmd: WorkspacesCommand) -> Outcome {
    let api = conn.operator()?;
    let format = conn.format();
    match cmd {
        WorkspacesCommand::Create {
            id,
            name,
            kind,
            parent,
            plan,
            integration_enabled,
        } => {
            let input = WorkspaceInput {
                id: Some(id),
                name,
                kind,
                parent_id: parent,
                plan,
                integration_enabled: Some(integration_enabled),
                notifications_enabled: None,
            };
            output::one(format, &api.create_workspace(&input).await?);
        }
        WorkspacesCommand::List => {
            let all: Vec<_> = api.workspaces().try_collect().await?;
            output::list(format, &all, WORKSPACE_COLUMNS);
        }
        WorkspacesCommand::Show { id } => output::one(format, &api.workspace(&id).await?),
        WorkspacesCommand::Update {
            id,
            name,
            plan,
            integration_enabled,
            notifications_enabled,
        } => {
            let mut patch = serde_json::Map::new();
            let fields = [
                ("name", name.map(Value::from)),
                ("plan", plan.map(Value::from)),
                ("integrationEnabled", integration_enabled.map(Value::from)),
                (
                    "notificationsEnabled",
                    notifications_enabled.map(Value::from),
                ),
            ];
            for (k, v) in fields {
                if let Some(v) = v {
                    patch.insert(k.into(), v);
                }
            }
            if patch.is_empty() {
                return Err(usage(
                    "nothing to change: pass --name, --plan, --integration-enabled or --notifications-enabled",
                ));
            }
            output::one(
                format,
                &api.update_workspace(&id, &Value::Object(patch)).await?,
            );
        }
        WorkspacesCommand::Delete { id } => {
            api.delete_workspace(&id).await?;
            eprintln!("deleted workspace {id}");
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Create client credentials for a workspace (the secret is shown once).
    #[command(after_help = "Example:\n\n    tidings clients create acme --name 'Acme ERP'")]
    Create {
        workspace: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List a workspace's clients (without secrets).
    #[command(after_help = "Example:\n\n    tidings clients list acme")]
    List { workspace: String },
    /// Give a client a new secret; its older tokens stop working.
    #[command(after_help = "Example:\n\n    tidings clients regenerate acme CLIENT_ID")]
    Regenerate {
        workspace: String,
        client_id: String,
    },
    /// Delete a client.
    #[command(after_help = "Example:\n\n    tidings clients delete acme CLIENT_ID")]
    Delete {
        workspace: String,
        client_id: String,
    },
}

pub async fn clients(conn: &Connection, cmd: ClientsCommand) -> Outcome {
    let api = conn.operator()?;
    let format = conn.format();
    match cmd {
        ClientsCommand::Create { workspace, name } => {
            output::one(format, &api.create_client(&workspace, &name).await?);
        }
        ClientsCommand::List { workspace } => {
            let all: Vec<_> = api.clients(&workspace).try_collect().await?;
            output::list(
                format,
                &all,
                &[
                    ("CLIENT ID", "clientId"),
                    ("NAME", "name"),
                    ("GENERATION", "generation"),
                    ("CREATED", "createdAt"),
                ],
            );
        }
        ClientsCommand::Regenerate {
            workspace,
            client_id,
        } => {
            output::one(
                format,
                &api.regenerate_client(&workspace, &client_id).await?,
            );
        }
        ClientsCommand::Delete {
            workspace,
            client_id,
        } => {
            api.delete_client(&workspace, &client_id).await?;
            eprintln!("deleted client {client_id}");
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum EventTypesCommand {
    /// Add an event type to the catalog.
    #[command(
        after_help = "Example:\n\n    tidings event-types create invoice.paid --description 'An invoice was paid' --sample '{\"amount\": 42}'"
    )]
    Create {
        name: String,
        #[command(flatten)]
        fields: EventTypeFields,
    },
    /// List the catalog.
    #[command(after_help = "Example:\n\n    tidings event-types list")]
    List,
    /// Show one event type.
    #[command(after_help = "Example:\n\n    tidings event-types show invoice.paid")]
    Show { name: String },
    /// Replace an event type's description, sample and schema.
    #[command(
        after_help = "Example:\n\n    tidings event-types update invoice.paid --description 'An invoice was paid in full'"
    )]
    Update {
        name: String,
        #[command(flatten)]
        fields: EventTypeFields,
    },
    /// Delete an event type (refused while webhooks subscribe to it).
    #[command(after_help = "Example:\n\n    tidings event-types delete invoice.paid")]
    Delete { name: String },
}

/// What creating and replacing an event type take besides its name.
#[derive(Debug, clap::Args)]
pub struct EventTypeFields {
    #[arg(long, default_value = "")]
    description: String,
    /// Example data (a JSON object, @FILE or @- for stdin).
    #[arg(long)]
    sample: Option<String>,
    /// A JSON Schema the data must match (JSON, @FILE or @-).
    #[arg(long)]
    schema: Option<String>,
}

impl EventTypeFields {
    /// The request body: `base` plus the description, sample and schema.
    fn body(self, mut base: Value) -> Result<Value, super::Failure> {
        base["description"] = json!(self.description);
        if let Some(s) = self.sample {
            base["sample"] = json_arg("--sample", &s)?;
        }
        if let Some(s) = self.schema {
            base["schema"] = json_arg("--schema", &s)?;
        }
        Ok(base)
    }
}

pub async fn event_types(conn: &Connection, cmd: EventTypesCommand) -> Outcome {
    let api = conn.operator()?;
    let format = conn.format();
    match cmd {
        EventTypesCommand::Create { name, fields } => {
            let body = fields.body(json!({ "name": name }))?;
            output::one(format, &api.create_event_type(&body).await?);
        }
        EventTypesCommand::Update { name, fields } => {
            let body = fields.body(json!({}))?;
            output::one(format, &api.replace_event_type(&name, &body).await?);
        }
        EventTypesCommand::List => {
            let all: Vec<_> = api.event_types().try_collect().await?;
            output::list(
                format,
                &all,
                &[("NAME", "name"), ("DESCRIPTION", "description")],
            );
        }
        EventTypesCommand::Show { name } => output::one(format, &api.event_type(&name).await?),
        EventTypesCommand::Delete { name } => {
            api.delete_event_type(&name).await?;
            eprintln!("deleted event type {name}");
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Publish an event; prints its id and how many deliveries it made.
    #[command(
        after_help = "Examples:\n\n    tidings events publish --type invoice.paid --to acme --data '{\"amount\": 42}'\n    tidings events publish --type invoice.paid --to acme --data @invoice.json\n    echo '{\"amount\": 42}' | tidings events publish --type invoice.paid --to acme --data @-"
    )]
    Publish {
        /// The event type (from the catalog).
        #[arg(long = "type")]
        kind: String,
        /// The workspace the event is about.
        #[arg(long = "to", value_name = "WORKSPACE")]
        workspace: String,
        /// The data: a JSON object, @FILE, or @- for stdin.
        #[arg(long, default_value = "{}")]
        data: String,
        /// The business object the event is about.
        #[arg(long)]
        subject: Option<String>,
        /// Publishing again with the same key creates nothing new.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Show an event with its deliveries.
    #[command(after_help = "Example:\n\n    tidings events show evt_01…")]
    Show { id: String },
    /// Find events, newest first.
    #[command(after_help = "Example:\n\n    tidings events list --of acme --type invoice.paid")]
    List {
        /// Only events of this workspace.
        #[arg(long = "of", value_name = "WORKSPACE")]
        workspace: Option<String>,
        #[arg(long = "type")]
        kind: Option<String>,
        /// RFC 3339: only events at or after.
        #[arg(long)]
        since: Option<String>,
    },
}

pub async fn events(conn: &Connection, cmd: EventsCommand) -> Outcome {
    let api = conn.operator()?;
    let format = conn.format();
    match cmd {
        EventsCommand::Publish {
            kind,
            workspace,
            data,
            subject,
            idempotency_key,
        } => {
            let event = NewEvent {
                kind,
                workspace_id: workspace,
                data: json_arg("--data", &data)?,
                subject_id: subject.map(Value::from),
                idempotency_key,
                ..Default::default()
            };
            output::one(format, &api.publish(&event).await?);
        }
        EventsCommand::Show { id } => output::one(format, &api.event(&id).await?),
        EventsCommand::List {
            workspace,
            kind,
            since,
        } => {
            let mut filters = Vec::new();
            filters.extend(workspace.map(|w| ("workspaceId", w)));
            filters.extend(kind.map(|k| ("type", k)));
            filters.extend(since.map(|s| ("since", s)));
            let all: Vec<Value> = api.events(&filters).try_collect().await?;
            output::list(
                format,
                &all,
                &[
                    ("ID", "id"),
                    ("TYPE", "type"),
                    ("WORKSPACE", "workspaceId"),
                    ("CREATED", "createdAt"),
                ],
            );
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Rotate the master key that seals secrets at rest (key-file setups; docs/security.md).
    #[command(after_help = "Example:\n\n    tidings keys rotate-master")]
    RotateMaster,
}

pub async fn keys(conn: &Connection, cmd: KeysCommand) -> Outcome {
    let api = conn.operator()?;
    match cmd {
        KeysCommand::RotateMaster => output::one(conn.format(), &api.rotate_master_key().await?),
    }
    Ok(())
}

/// A JSON argument: the text itself, `@FILE`, or `@-` for stdin.
pub fn json_arg(flag: &str, raw: &str) -> Result<Value, super::Failure> {
    let text = match raw.strip_prefix('@') {
        Some("-") => std::io::read_to_string(std::io::stdin())
            .map_err(|e| usage(format!("{flag}: cannot read stdin: {e}")))?,
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| usage(format!("{flag}: cannot read {path}: {e}")))?,
        None => raw.to_string(),
    };
    serde_json::from_str(&text).map_err(|e| usage(format!("{flag} is not valid JSON: {e}")))
}
