//! Webhooks (the seeds' "webhook configuration"): the validated configuration an integrator
//! submits and the stored record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Errors, ValidationError};
use crate::limits;

/// Whether a webhook receives notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Enabled,
    Disabled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enabled" => Some(Self::Enabled),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? } default $default:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
        pub enum $name {
            $(
                #[serde(rename = $text)]
                $variant,
            )+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)+ }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::$default
            }
        }
    };
}

string_enum!(
    /// Body encoding of notifications.
    ContentType { Json = "application/json", Form = "application/x-www-form-urlencoded" } default Json
);
string_enum!(
    /// How a notification authenticates itself to the receiver (besides the HMAC signature).
    AuthMode { Bearer = "bearer", Basic = "basic", None = "none" } default Bearer
);
string_enum!(
    /// TLS certificate verification of the receiver.
    Toggle { Enabled = "enabled", Disabled = "disabled" } default Enabled
);
string_enum!(
    /// How much of `data` is sent.
    DataMode { Everything = "everything", StatusOnly = "statusOnly" } default Everything
);
string_enum!(
    /// The body shape (SPEC §5).
    EnvelopeKind { Flat = "flat", Header = "header" } default Flat
);

fn default_basic_username() -> String {
    "tidings".to_string()
}

/// The configuration of a webhook, validated. Everything an integrator can set. Its `Debug`
/// shows neither the secret nor the custom headers' values.
#[derive(Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    pub name: String,
    pub description: String,
    pub apply_to_all_descendants: bool,
    pub url: String,
    /// Signs every notification; returned in responses (as in the seed).
    pub secret: String,
    pub headers: BTreeMap<String, String>,
    pub triggers: Vec<String>,
    pub status: Status,
    #[serde(default)]
    pub content_type: ContentType,
    #[serde(default)]
    pub authorization: AuthMode,
    #[serde(default = "default_basic_username")]
    pub basic_username: String,
    #[serde(default)]
    pub ssl_verification: Toggle,
    #[serde(default)]
    pub data_mode: DataMode,
    /// Workspace `fields` to add under `data.company`.
    #[serde(default)]
    pub extra_fields: Vec<String>,
    /// Target property → JSON pointer into the event document; replaces `data` when set.
    #[serde(default)]
    pub field_mapping: BTreeMap<String, String>,
    /// Only events of these business units (empty: all).
    #[serde(default)]
    pub business_units: Vec<String>,
    /// Only events of these branches (empty: all).
    #[serde(default)]
    pub branches: Vec<String>,
    #[serde(default)]
    pub envelope: EnvelopeKind,
}

impl std::fmt::Debug for WebhookSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSpec")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &"***")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("triggers", &self.triggers)
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("authorization", &self.authorization)
            .field("data_mode", &self.data_mode)
            .field("envelope", &self.envelope)
            .finish_non_exhaustive()
    }
}

/// A stored webhook. Its `Debug` shows no secret (see [`WebhookSpec`]).
#[derive(Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub workspace_id: String,
    #[serde(flatten)]
    pub spec: WebhookSpec,
    /// Last change, Unix milliseconds (the seed's form).
    pub updated: i64,
    /// Why Tidings disabled it (a `410 Gone`, or failing for too long).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// The secret replaced by the last rotation and when it stops signing (Unix ms).
    #[serde(skip)]
    pub previous_secret: Option<(String, i64)>,
    /// The integration client that created it: events that client caused are not sent here.
    #[serde(skip)]
    pub owner_client_id: Option<String>,
    #[serde(skip)]
    pub created_at: i64,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("workspace_id", &self.workspace_id)
            .field("spec", &self.spec)
            .field("updated", &self.updated)
            .field("disabled_reason", &self.disabled_reason)
            .field(
                "previous_secret",
                &self
                    .previous_secret
                    .as_ref()
                    .map(|(_, until)| ("***", until)),
            )
            .finish_non_exhaustive()
    }
}

/// A webhook body as sent by the integrator. Every field is optional here so the same type serves
/// `POST`/`PUT` (where [`WebhookInput::into_spec`] enforces the required ones) and `PATCH`.
/// Its `Debug` shows no secret.
#[derive(Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookInput {
    pub name: Option<String>,
    pub description: Option<String>,
    /// The seed's request table spells it `applyToAllDescendents`; both are accepted.
    #[serde(alias = "applyToAllDescendents")]
    pub apply_to_all_descendants: Option<bool>,
    /// An absolute `http`/`https` URL, without credentials, to a public address.
    #[schemars(regex(pattern = r"^[hH][tT][tT][pP][sS]?://"))]
    pub url: Option<String>,
    pub secret: Option<String>,
    #[schemars(extend("maxProperties" = 50))]
    pub headers: Option<BTreeMap<String, String>>,
    /// Event types of the catalog, each once.
    #[schemars(length(min = 1, max = 100))]
    pub triggers: Option<Vec<String>>,
    pub status: Option<Status>,
    pub content_type: Option<ContentType>,
    pub authorization: Option<AuthMode>,
    pub basic_username: Option<String>,
    pub ssl_verification: Option<Toggle>,
    pub data_mode: Option<DataMode>,
    pub extra_fields: Option<Vec<String>>,
    pub field_mapping: Option<BTreeMap<String, String>>,
    pub business_units: Option<Vec<String>>,
    pub branches: Option<Vec<String>>,
    pub envelope: Option<EnvelopeKind>,
}

impl std::fmt::Debug for WebhookInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookInput")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field(
                "headers",
                &self.headers.as_ref().map(|h| h.keys().collect::<Vec<_>>()),
            )
            .field("triggers", &self.triggers)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Headers a webhook may not set: Tidings owns them (signature, framing).
const RESERVED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "te",
    "upgrade",
    "trailer",
    "keep-alive",
];

/// A note for the caller about an accepted but questionable choice (e.g. plain `http`).
pub type Warnings = Vec<String>;

impl WebhookInput {
    /// Builds a full configuration: the seed's required fields must be present; the secret is
    /// generated when absent. `known_type` tells whether an event type name exists.
    pub fn into_spec(
        self,
        known_type: impl Fn(&str) -> bool,
    ) -> Result<(WebhookSpec, Warnings), ValidationError> {
        let mut errors = Errors::default();
        if self.apply_to_all_descendants.is_none() {
            errors.push("applyToAllDescendants", "is required (true or false)");
        }
        if self.url.is_none() {
            errors.push("url", "is required");
        }
        if self.triggers.is_none() {
            errors.push(
                "triggers",
                "is required: a non-empty list of event type names",
            );
        }
        if self.status.is_none() {
            errors.push("status", "is required: enabled or disabled");
        }
        let spec = WebhookSpec {
            name: self.name.unwrap_or_default(),
            description: self.description.unwrap_or_default(),
            apply_to_all_descendants: self.apply_to_all_descendants.unwrap_or(false),
            url: self.url.unwrap_or_default(),
            secret: self.secret.unwrap_or_else(crate::secret::webhook_secret),
            headers: self.headers.unwrap_or_default(),
            triggers: self.triggers.unwrap_or_default(),
            status: self.status.unwrap_or(Status::Enabled),
            content_type: self.content_type.unwrap_or_default(),
            authorization: self.authorization.unwrap_or_default(),
            basic_username: self.basic_username.unwrap_or_else(default_basic_username),
            ssl_verification: self.ssl_verification.unwrap_or_default(),
            data_mode: self.data_mode.unwrap_or_default(),
            extra_fields: self.extra_fields.unwrap_or_default(),
            field_mapping: self.field_mapping.unwrap_or_default(),
            business_units: self.business_units.unwrap_or_default(),
            branches: self.branches.unwrap_or_default(),
            envelope: self.envelope.unwrap_or_default(),
        };
        let warnings = validate(&spec, &known_type, &mut errors);
        errors.finish((spec, warnings))
    }

    /// Applies the fields present to an existing configuration (`PATCH`).
    pub fn merge_into(
        self,
        mut spec: WebhookSpec,
        known_type: impl Fn(&str) -> bool,
    ) -> Result<(WebhookSpec, Warnings), ValidationError> {
        let Self {
            name,
            description,
            apply_to_all_descendants,
            url,
            secret,
            headers,
            triggers,
            status,
            content_type,
            authorization,
            basic_username,
            ssl_verification,
            data_mode,
            extra_fields,
            field_mapping,
            business_units,
            branches,
            envelope,
        } = self;
        if let Some(v) = name {
            spec.name = v;
        }
        if let Some(v) = description {
            spec.description = v;
        }
        if let Some(v) = apply_to_all_descendants {
            spec.apply_to_all_descendants = v;
        }
        if let Some(v) = url {
            spec.url = v;
        }
        if let Some(v) = secret {
            spec.secret = v;
        }
        if let Some(v) = headers {
            spec.headers = v;
        }
        if let Some(v) = triggers {
            spec.triggers = v;
        }
        if let Some(v) = status {
            spec.status = v;
        }
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = $field { spec.$field = v; } )* };
        }
        set!(
            content_type,
            authorization,
            basic_username,
            ssl_verification,
            data_mode,
            extra_fields,
            field_mapping,
            business_units,
            branches,
            envelope
        );
        let mut errors = Errors::default();
        let warnings = validate(&spec, &known_type, &mut errors);
        errors.finish((spec, warnings))
    }
}

fn validate(
    spec: &WebhookSpec,
    known_type: &impl Fn(&str) -> bool,
    errors: &mut Errors,
) -> Warnings {
    let mut warnings = Warnings::new();
    if spec.name.len() > 256 {
        errors.push("name", "must be at most 256 characters");
    }
    if spec.description.len() > 4096 {
        errors.push("description", "must be at most 4096 characters");
    }
    match check_url(&spec.url) {
        Ok(Some(w)) => warnings.push(w),
        Ok(None) => {}
        Err(msg) => errors.push("url", msg),
    }
    if spec.secret.is_empty() || spec.secret.len() > 512 {
        errors.push("secret", "must be 1-512 characters");
    }
    if spec.basic_username.is_empty()
        || spec.basic_username.contains(':')
        || spec.basic_username.len() > 256
    {
        errors.push("basicUsername", "must be 1-256 characters without ':'");
    }
    if within(errors, "headers", spec.headers.len(), limits::HEADERS) {
        check_headers(&spec.headers, errors);
    }
    if spec.triggers.is_empty() {
        errors.push("triggers", "must list at least one event type");
    } else if within(errors, "triggers", spec.triggers.len(), limits::TRIGGERS) {
        check_triggers(&spec.triggers, known_type, errors);
    }
    if within(
        errors,
        "extraFields",
        spec.extra_fields.len(),
        limits::EXTRA_FIELDS,
    ) {
        check_names(errors, "extraFields", &spec.extra_fields);
    }
    for (field, ids) in [
        ("businessUnits", &spec.business_units),
        ("branches", &spec.branches),
    ] {
        if within(errors, field, ids.len(), limits::UNIT_IDS) {
            check_names(errors, field, ids);
        }
    }
    if within(
        errors,
        "fieldMapping",
        spec.field_mapping.len(),
        limits::FIELD_MAPPINGS,
    ) {
        check_field_mapping(&spec.field_mapping, errors);
    }
    if !spec.field_mapping.is_empty() && spec.data_mode == DataMode::StatusOnly {
        errors.push(
            "fieldMapping",
            "cannot be combined with dataMode statusOnly; choose one",
        );
    }
    warnings
}

/// Whether a list of `len` entries is within `max`; names the field when it is not.
fn within(errors: &mut Errors, field: &str, len: usize, max: usize) -> bool {
    if len > max {
        errors.push(field, format!("at most {max} entries (got {len})"));
    }
    len <= max
}

fn check_headers(headers: &BTreeMap<String, String>, errors: &mut Errors) {
    for (name, value) in headers {
        if name.is_empty() || name.len() > limits::NAME_BYTES || !name.bytes().all(is_token_byte) {
            errors.push(
                format!("headers.{}", clip(name)),
                "is not a valid HTTP header name",
            );
        } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            errors.push(
                format!("headers.{name}"),
                "is set by Tidings and cannot be overridden",
            );
        } else if value.len() > limits::HEADER_VALUE_BYTES
            || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
        {
            errors.push(
                format!("headers.{name}"),
                format!(
                    "value must be at most {} characters without line breaks",
                    limits::HEADER_VALUE_BYTES
                ),
            );
        }
    }
}

fn check_triggers(triggers: &[String], known_type: &impl Fn(&str) -> bool, errors: &mut Errors) {
    let mut seen = std::collections::HashSet::new();
    for (i, t) in triggers.iter().enumerate() {
        if !known_type(t) {
            errors.push(
                format!("triggers[{i}]"),
                format!("unknown event type '{}' (see GET /v1/event-types)", clip(t)),
            );
        } else if !seen.insert(t.as_str()) {
            errors.push(format!("triggers[{i}]"), format!("'{t}' is listed twice"));
        }
    }
}

fn check_names(errors: &mut Errors, field: &str, names: &[String]) {
    for (i, f) in names.iter().enumerate() {
        if f.is_empty() || f.len() > limits::NAME_BYTES {
            errors.push(
                format!("{field}[{i}]"),
                format!("must be 1-{} characters", limits::NAME_BYTES),
            );
        }
    }
}

fn check_field_mapping(mapping: &BTreeMap<String, String>, errors: &mut Errors) {
    for (target, pointer) in mapping {
        if target.is_empty() || target.len() > limits::NAME_BYTES {
            errors.push(
                "fieldMapping",
                format!(
                    "target property names must be 1-{} characters",
                    limits::NAME_BYTES
                ),
            );
        } else if pointer.len() > limits::POINTER_BYTES {
            errors.push(
                format!("fieldMapping.{target}"),
                format!(
                    "must be a JSON pointer of at most {} characters",
                    limits::POINTER_BYTES
                ),
            );
        } else if !(pointer.is_empty() || pointer.starts_with('/')) {
            errors.push(
                format!("fieldMapping.{target}"),
                "must be a JSON pointer into the event, such as /data/status or /subjectId",
            );
        }
    }
}

/// A caller's text, cut to a length fit to quote back in an error.
fn clip(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks a notification URL: absolute `http`/`https` with a host and no credentials. Returns a
/// warning for plain `http`.
pub fn check_url(raw: &str) -> Result<Option<String>, String> {
    if raw.len() > 2048 {
        return Err("must be at most 2048 characters".into());
    }
    let url = url::Url::parse(raw).map_err(|e| format!("is not an absolute URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" => {}
        other => {
            return Err(format!(
                "scheme '{other}' is not allowed; use https (or http)"
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials; use headers or authorization instead".into());
    }
    if url.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    Ok((url.scheme() == "http").then(|| {
        "url uses plain http: notifications and their signatures travel unencrypted; https is recommended".to_string()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(t: &str) -> bool {
        t == "workspace-created"
    }

    #[test]
    fn the_seed_example_is_valid() {
        let input: WebhookInput = serde_json::from_str(
            r#"{"name": "Billing webhooks","description": "Used for updating QuickBooks",
            "applyToAllDescendants": true,"url": "https://www.customer.example/quickbookwebhook",
            "secret": "supersecuresecret","headers":{"Authorization": "Bearer YOUR_ACCESS_TOKEN",
            "Content-Type": "application/json"},"triggers": ["workspace-created"],"status": "enabled"}"#,
        )
        .unwrap();
        let (spec, warnings) = input.into_spec(known).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(spec.secret, "supersecuresecret");
        assert_eq!(spec.headers.len(), 2);
    }

    #[test]
    fn missing_required_fields_are_all_named() {
        let err = WebhookInput::default().into_spec(known).unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"applyToAllDescendants"));
        assert!(fields.contains(&"url"));
        assert!(fields.contains(&"triggers"));
        assert!(fields.contains(&"status"));
    }

    #[test]
    fn urls_must_be_absolute_http_without_credentials() {
        assert!(check_url("ftp://x.example/").is_err());
        assert!(check_url("/relative").is_err());
        assert!(check_url("https://user:pw@x.example/").is_err());
        assert_eq!(check_url("https://x.example/hook"), Ok(None));
        assert!(check_url("http://x.example/hook").unwrap().is_some());
    }

    #[test]
    fn unknown_triggers_and_reserved_headers_are_rejected() {
        let input = WebhookInput {
            apply_to_all_descendants: Some(false),
            url: Some("https://x.example".into()),
            triggers: Some(vec!["nope".into()]),
            status: Some(Status::Enabled),
            headers: Some([("webhook-signature".to_string(), "x".to_string())].into()),
            ..Default::default()
        };
        let err = input.into_spec(known).unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["headers.webhook-signature", "triggers[0]"]);
    }

    #[test]
    fn the_misspelled_seed_field_is_accepted() {
        let input: WebhookInput =
            serde_json::from_str(r#"{"applyToAllDescendents": true}"#).unwrap();
        assert_eq!(input.apply_to_all_descendants, Some(true));
    }

    fn valid_input() -> WebhookInput {
        WebhookInput {
            apply_to_all_descendants: Some(false),
            url: Some("https://x.example".into()),
            triggers: Some(vec!["workspace-created".into()]),
            status: Some(Status::Enabled),
            ..Default::default()
        }
    }

    fn fields_of(input: WebhookInput) -> Vec<(String, String)> {
        let err = input.into_spec(known).unwrap_err();
        err.0.into_iter().map(|e| (e.field, e.message)).collect()
    }

    #[test]
    fn every_list_has_a_bound_named_in_one_error() {
        let many = |n: usize| (0..n).map(|i| format!("x{i}")).collect::<Vec<_>>();
        let input = WebhookInput {
            triggers: Some(many(10_000)),
            extra_fields: Some(many(limits::EXTRA_FIELDS + 1)),
            branches: Some(many(limits::UNIT_IDS + 1)),
            business_units: Some(many(limits::UNIT_IDS + 1)),
            field_mapping: Some(
                many(limits::FIELD_MAPPINGS + 1)
                    .into_iter()
                    .map(|t| (t, String::new()))
                    .collect(),
            ),
            headers: Some(
                many(limits::HEADERS + 1)
                    .into_iter()
                    .map(|h| (h, "v".to_string()))
                    .collect(),
            ),
            ..valid_input()
        };
        let errors = fields_of(input);
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "headers",
                "triggers",
                "extraFields",
                "businessUnits",
                "branches",
                "fieldMapping"
            ]
        );
        assert_eq!(errors[1].1, "at most 100 entries (got 10000)");
    }

    #[test]
    fn lists_at_their_bound_are_accepted() {
        let many = |n: usize| (0..n).map(|i| format!("x{i}")).collect::<Vec<_>>();
        let input = WebhookInput {
            extra_fields: Some(many(limits::EXTRA_FIELDS)),
            branches: Some(many(limits::UNIT_IDS)),
            field_mapping: Some(
                many(limits::FIELD_MAPPINGS)
                    .into_iter()
                    .map(|t| (t, "/data".to_string()))
                    .collect(),
            ),
            ..valid_input()
        };
        assert!(input.into_spec(known).is_ok());
    }

    #[test]
    fn long_names_and_pointers_are_refused() {
        let input = WebhookInput {
            field_mapping: Some(
                [
                    (
                        "a".to_string(),
                        format!("/{}", "x".repeat(limits::POINTER_BYTES)),
                    ),
                    ("b".repeat(limits::NAME_BYTES + 1), "/data".to_string()),
                ]
                .into(),
            ),
            branches: Some(vec![String::new()]),
            ..valid_input()
        };
        let fields: Vec<String> = fields_of(input).into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["branches[0]", "fieldMapping.a", "fieldMapping"]);
    }

    #[test]
    fn debug_output_shows_no_secret_and_no_header_value() {
        let (spec, _) = WebhookInput {
            secret: Some("supersecuresecret".into()),
            headers: Some([("X-Api-Key".to_string(), "key-value-123".to_string())].into()),
            ..valid_input()
        }
        .into_spec(known)
        .unwrap();
        let webhook = Webhook {
            id: "w".into(),
            workspace_id: "ws".into(),
            spec: spec.clone(),
            updated: 0,
            disabled_reason: None,
            previous_secret: Some(("oldsecretvalue".into(), 1)),
            owner_client_id: None,
            created_at: 0,
        };
        let input = WebhookInput {
            secret: Some("supersecuresecret".into()),
            ..Default::default()
        };
        for text in [
            format!("{spec:?}"),
            format!("{webhook:?}"),
            format!("{input:?}"),
        ] {
            assert!(!text.contains("supersecuresecret"), "{text}");
            assert!(!text.contains("key-value-123"), "{text}");
            assert!(!text.contains("oldsecretvalue"), "{text}");
        }
        assert!(format!("{spec:?}").contains("X-Api-Key"));
    }
}
