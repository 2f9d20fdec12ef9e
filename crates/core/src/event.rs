//! Events the operator publishes, and the catalog of event types.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Errors, ValidationError};

/// Who caused an event (seed 001's `Sender`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sender {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default, rename = "type")]
    pub kind: String,
}

/// An event as the operator publishes it (`POST /v1/events`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventInput {
    /// An event type of the catalog.
    #[serde(rename = "type")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9._:-]{1,128}$"))]
    pub kind: String,
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$"),
        length(max = 128)
    )]
    pub workspace_id: String,
    /// A JSON object.
    #[schemars(with = "serde_json::Map<String, Value>")]
    pub data: Value,
    #[serde(default)]
    pub branch_id: Option<String>,
    #[serde(default)]
    pub business_unit_id: Option<String>,
    /// The business object the event is about (e.g. a work order id); a string or a number.
    #[serde(default)]
    #[schemars(extend("type" = ["string", "number", "null"]))]
    pub subject_id: Option<Value>,
    #[serde(default)]
    pub sender: Option<Sender>,
    #[serde(default)]
    pub origin_client_id: Option<String>,
    #[serde(default)]
    #[schemars(length(min = 1, max = 255))]
    pub idempotency_key: Option<String>,
    /// RFC 3339; defaults to the time the event is accepted.
    #[serde(default)]
    #[schemars(extend("format" = "date-time"))]
    pub occurred_at: Option<String>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub workspace_id: String,
    /// The `data` object, as compact JSON text (kept as text: it is copied into bodies verbatim).
    pub data: String,
    pub branch_id: Option<String>,
    pub business_unit_id: Option<String>,
    /// JSON text of the subject id (a string or a number).
    pub subject_id: Option<String>,
    pub sender: Option<Sender>,
    pub origin_client_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub occurred_at: i64,
    pub created_at: i64,
}

impl EventInput {
    /// Checks the event on its own; the caller checks that the workspace and the type exist.
    pub fn into_event(self, id: String, now_ms: i64) -> Result<Event, ValidationError> {
        let mut errors = Errors::default();
        if self.kind.is_empty() {
            errors.push("type", "is required");
        }
        if self.workspace_id.is_empty() {
            errors.push("workspaceId", "is required");
        }
        if !self.data.is_object() {
            errors.push("data", "must be a JSON object");
        }
        if let Some(s) = &self.subject_id
            && !(s.is_string() || s.is_number())
        {
            errors.push("subjectId", "must be a string or a number");
        }
        if let Some(k) = &self.idempotency_key
            && (k.is_empty() || k.chars().count() > 255)
        {
            errors.push("idempotencyKey", "must be 1-255 characters");
        }
        let occurred_at = match &self.occurred_at {
            None => now_ms,
            Some(s) => crate::parse_rfc3339(s).unwrap_or_else(|| {
                errors.push("occurredAt", "must be an RFC 3339 timestamp");
                now_ms
            }),
        };
        errors.finish(Event {
            id,
            kind: self.kind,
            workspace_id: self.workspace_id,
            data: self.data.to_string(),
            branch_id: self.branch_id,
            business_unit_id: self.business_unit_id,
            subject_id: self.subject_id.map(|v| v.to_string()),
            sender: self.sender,
            origin_client_id: self.origin_client_id,
            idempotency_key: self.idempotency_key,
            occurred_at,
            created_at: now_ms,
        })
    }
}

/// An entry of the event-type catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventType {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A realistic `data` object, used by the emulator.
    #[serde(default)]
    pub sample: Value,
    /// JSON pointer into `data` holding the status (for `dataMode=statusOnly`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_path: Option<String>,
    /// Optional JSON Schema that published data must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
}

/// The operational event published when Tidings disables a webhook.
pub const OPERATIONAL_WEBHOOK_DISABLED: &str = "webhook.disabled";

/// The event types the server ships with (SPEC §2), with samples taken from the seeds.
pub fn default_event_types() -> Vec<EventType> {
    let workorder = json!({
        "WorkOrderId": 42, "Number": "WO-000042", "Status": "New", "Priority": "Normal",
        "Description": "Leaking faucet in the 2nd floor restroom",
        "Location": {"Name": "HQ", "Address": "1 Main St, Springfield"},
        "CreatedDate": "2018-09-04T10:12:08Z"
    });
    let contract = |status: &str| {
        json!({
            "contractId": "C-2024-0117", "title": "Annual maintenance agreement",
            "status": status, "amount": {"value": 12000, "currency": "USD"},
            "client": {"name": "Provider BU customer", "email": "billing@client.example"},
            "businessUnitId": "provider-bu"
        })
    };
    let mk = |name: &str, description: &str, sample: Value, status_path: Option<&str>| EventType {
        name: name.into(),
        description: description.into(),
        sample,
        status_path: status_path.map(Into::into),
        schema: None,
    };
    vec![
        mk(
            "workspace-created",
            "A new workspace was created (seed: Coro).",
            json!({
                "companyName": "company1", "displayName": "company1",
                "domain": "company1Workspace.com", "type": "child", "maxProtectedUsers": "25",
                "notificationLevel": "parent", "parentWorkspaceId": "parentWorkspace",
                "adminEmails": "admin2@company1workspace.com",
                "workspaceCreationTime": "1641009600000", "subscriptionType": "initial"
            }),
            Some("/subscriptionType"),
        ),
        mk(
            "workorder.created",
            "A work order was created or received.",
            workorder.clone(),
            Some("/Status"),
        ),
        mk(
            "workorder.status-changed",
            "A work order changed status.",
            {
                let mut w = workorder;
                w["Status"] = json!("InProgress");
                w["PreviousStatus"] = json!("New");
                w
            },
            Some("/Status"),
        ),
        mk(
            "contract.create",
            "A contract (transaction) was created.",
            contract("created"),
            Some("/status"),
        ),
        mk(
            "contract.update",
            "A contract was updated.",
            contract("updated"),
            Some("/status"),
        ),
        mk(
            "contract.send",
            "A contract email was sent to the recipient client.",
            contract("sent"),
            Some("/status"),
        ),
        mk(
            "contract.review",
            "A contract was reviewed through the checkout.",
            contract("reviewed"),
            Some("/status"),
        ),
        mk(
            "contract.expired",
            "A contract expired.",
            contract("expired"),
            Some("/status"),
        ),
        mk(
            OPERATIONAL_WEBHOOK_DISABLED,
            "Operational: Tidings disabled a webhook (410 Gone, or failing for too long). Published to the operational workspace.",
            json!({
                "webhookId": "66b204f0c992d50b8b2f984c", "workspaceId": "company1Workspace",
                "url": "https://www.customer.example/quickbookwebhook", "status": "disabled",
                "reason": "the receiver answered 410 Gone", "disabledAt": "2026-11-23T10:00:00.000Z"
            }),
            Some("/status"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_must_be_an_object() {
        let input: EventInput =
            serde_json::from_str(r#"{"type":"t","workspaceId":"w","data":[1]}"#).unwrap();
        let err = input.into_event("evt_1".into(), 0).unwrap_err();
        assert_eq!(err.0[0].field, "data");
    }

    #[test]
    fn occurred_at_defaults_to_now_and_parses_rfc3339() {
        let input: EventInput = serde_json::from_str(
            r#"{"type":"t","workspaceId":"w","data":{},"occurredAt":"2021-07-30T18:40:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            input.into_event("e".into(), 1).unwrap().occurred_at,
            1_627_670_400_000
        );
    }

    #[test]
    fn default_catalog_samples_are_objects_with_status() {
        for t in default_event_types() {
            assert!(t.sample.is_object(), "{}", t.name);
            let p = t.status_path.unwrap();
            assert!(t.sample.pointer(&p).is_some(), "{} {p}", t.name);
        }
    }
}
