//! Workspaces (tenants) and the operator's input for creating and replacing them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Errors, ValidationError};

/// The role of a workspace in the MSP tree.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceType {
    #[default]
    Regular,
    /// An MSP parent; its clients may manage the webhooks of its children.
    Channel,
    /// An MSP customer; has the `parentId` of a channel workspace.
    Child,
}

impl WorkspaceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Regular => "regular",
            Self::Channel => "channel",
            Self::Child => "child",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "regular" => Some(Self::Regular),
            "channel" => Some(Self::Channel),
            "child" => Some(Self::Child),
            _ => None,
        }
    }
}

/// A named unit (branch or business unit) of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    /// Unique within its list.
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// A stored workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: WorkspaceType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    pub plan: String,
    pub integration_enabled: bool,
    /// The portal's "Event Notifications (Webhooks)" switch: while off, no webhook of this
    /// workspace is notified, whatever each webhook's own `status` (which it keeps).
    #[serde(default = "enabled")]
    pub notifications_enabled: bool,
    pub branches: Vec<Unit>,
    pub business_units: Vec<Unit>,
    pub fields: Map<String, Value>,
    /// Unix milliseconds; rendered as RFC 3339 by the API.
    #[serde(skip)]
    pub created_at: i64,
}

/// The mutable part of a workspace, as the operator sends it (`POST` adds `id`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceInput {
    /// 1–128 of letters, digits, `.`, `_` and `-`, not only dots.
    #[serde(default)]
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$"),
        length(max = 128)
    )]
    pub id: Option<String>,
    /// 1–256 characters, not only spaces.
    #[schemars(regex(pattern = r"\S"), length(min = 1, max = 256))]
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: Option<WorkspaceType>,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub integration_enabled: Option<bool>,
    /// Default true.
    #[serde(default)]
    pub notifications_enabled: Option<bool>,
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub branches: Option<Vec<Unit>>,
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub business_units: Option<Vec<Unit>>,
    #[serde(default)]
    pub fields: Option<Map<String, Value>>,
}

fn enabled() -> bool {
    true
}

/// Whether `id` is an acceptable workspace id: 1–128 of `[A-Za-z0-9._-]`, not only dots (`.`
/// and `..` would read as path segments in every URL that names a workspace).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !id.bytes().all(|b| b == b'.')
}

impl WorkspaceInput {
    /// Checks the body on its own (the store checks the parent and the plan exist) and builds
    /// the workspace. `id` comes from the path on `PUT`, from the body on `POST`.
    pub fn into_workspace(
        self,
        id: String,
        default_plan: &str,
        created_at: i64,
    ) -> Result<Workspace, ValidationError> {
        let mut errors = Errors::default();
        if !valid_id(&id) {
            errors.push(
                "id",
                "must be 1-128 characters of letters, digits, '.', '_' or '-', not only dots",
            );
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 256 {
            errors.push("name", "must be 1-256 characters");
        }
        let kind = self.kind.unwrap_or_default();
        match (kind, &self.parent_id) {
            (WorkspaceType::Child, None) => errors.push(
                "parentId",
                "a child workspace needs the id of its channel parent",
            ),
            (WorkspaceType::Regular | WorkspaceType::Channel, Some(_)) => {
                errors.push("parentId", "only a workspace of type child has a parent")
            }
            _ => {}
        }
        let branches = self.branches.unwrap_or_default();
        let business_units = self.business_units.unwrap_or_default();
        check_units(&mut errors, "branches", &branches);
        check_units(&mut errors, "businessUnits", &business_units);
        errors.finish(Workspace {
            id,
            name: self.name,
            kind,
            parent_id: self.parent_id,
            plan: self.plan.unwrap_or_else(|| default_plan.to_string()),
            integration_enabled: self.integration_enabled.unwrap_or(false),
            notifications_enabled: self.notifications_enabled.unwrap_or(true),
            branches,
            business_units,
            fields: self.fields.unwrap_or_default(),
            created_at,
        })
    }
}

fn check_units(errors: &mut Errors, field: &str, units: &[Unit]) {
    let max = crate::limits::UNIT_IDS;
    if units.len() > max {
        errors.push(
            field,
            format!("at most {max} entries (got {})", units.len()),
        );
        return;
    }
    let mut seen = std::collections::HashSet::new();
    for (i, u) in units.iter().enumerate() {
        if u.id.is_empty() || u.id.chars().count() > 128 {
            errors.push(format!("{field}[{i}].id"), "must be 1-128 characters");
        } else if !seen.insert(u.id.as_str()) {
            errors.push(format!("{field}[{i}].id"), "is listed twice");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> WorkspaceInput {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn child_without_parent_is_rejected_naming_the_field() {
        let err = input(r#"{"name":"x","type":"child"}"#)
            .into_workspace("c1".into(), "default", 0)
            .unwrap_err();
        assert_eq!(err.0[0].field, "parentId");
    }

    #[test]
    fn defaults_are_regular_disabled_and_the_default_plan() {
        let w = input(r#"{"name":"Acme"}"#)
            .into_workspace("acme".into(), "default", 5)
            .unwrap();
        assert_eq!(w.kind, WorkspaceType::Regular);
        assert!(!w.integration_enabled);
        assert_eq!(w.plan, "default");
    }

    #[test]
    fn ids_with_spaces_or_slashes_are_invalid() {
        assert!(valid_id("company1Workspace"));
        assert!(!valid_id("a b"));
        assert!(!valid_id("a/b"));
        assert!(!valid_id(""));
        assert!(!valid_id("."));
        assert!(!valid_id(".."));
        assert!(valid_id("a.b"));
    }
}
