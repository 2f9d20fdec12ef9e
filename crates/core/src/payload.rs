//! Shapes a notification body from an event and a webhook's options (SPEC §4/§5):
//! `dataMode`, `fieldMapping`, `extraFields`, `envelope` and `contentType`.
//!
//! Order: `data` starts as the event's data; `dataMode: statusOnly` replaces it with the status
//! and the ids, or `fieldMapping` replaces it with the mapped properties (the two cannot be
//! combined); `extraFields` then adds `company`; the envelope wraps the result; the content type
//! encodes it.

use serde_json::{Map, Value, json};

use crate::event::Event;
use crate::webhook::{ContentType, DataMode, EnvelopeKind, WebhookSpec};

/// What the body is built from.
#[derive(Debug, Clone, Copy)]
pub struct PayloadContext<'a> {
    pub message_id: &'a str,
    pub event: &'a Event,
    pub spec: &'a WebhookSpec,
    /// The event type's `statusPath` (a JSON pointer into `data`).
    pub status_path: Option<&'a str>,
    /// The `fields` of the event's workspace, for `extraFields`.
    pub company_fields: Option<&'a Map<String, Value>>,
}

/// A built body and its `Content-Type`.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

const JSON: &str = "application/json; charset=utf-8";
const FORM: &str = "application/x-www-form-urlencoded";

/// The event as a JSON document, the target of `fieldMapping` pointers:
/// `{id, type, workspaceId, occurredAt, subjectId, branchId, businessUnitId, sender, data}`.
pub fn event_document(event: &Event, data: &Value) -> Value {
    let mut doc = json!({
        "id": event.id,
        "type": event.kind,
        "workspaceId": event.workspace_id,
        "occurredAt": crate::rfc3339(event.occurred_at),
        "data": data,
    });
    let m = doc.as_object_mut().expect("object literal");
    if let Some(s) = subject(event) {
        m.insert("subjectId".into(), s);
    }
    if let Some(b) = &event.branch_id {
        m.insert("branchId".into(), json!(b));
    }
    if let Some(b) = &event.business_unit_id {
        m.insert("businessUnitId".into(), json!(b));
    }
    if let Some(s) = &event.sender {
        m.insert("sender".into(), json!(s));
    }
    doc
}

fn subject(event: &Event) -> Option<Value> {
    event
        .subject_id
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
}

/// Builds the body of the notification of `ctx.event` for `ctx.spec`.
pub fn build(ctx: &PayloadContext<'_>) -> Payload {
    let spec = ctx.spec;
    let plain = spec.data_mode == DataMode::Everything
        && spec.field_mapping.is_empty()
        && spec.extra_fields.is_empty()
        && spec.envelope == EnvelopeKind::Flat
        && spec.content_type == ContentType::Json;
    if plain {
        // The common case: the stored data text is copied into the envelope verbatim.
        return Payload {
            body: crate::envelope::flat(ctx.message_id, ctx.event),
            content_type: JSON,
        };
    }
    let original: Value = serde_json::from_str(&ctx.event.data).unwrap_or(Value::Null);
    let mut data = if spec.data_mode == DataMode::StatusOnly {
        status_only(ctx, &original)
    } else if !spec.field_mapping.is_empty() {
        let doc = event_document(ctx.event, &original);
        Value::Object(
            spec.field_mapping
                .iter()
                .map(|(target, pointer)| {
                    (
                        target.clone(),
                        doc.pointer(pointer).cloned().unwrap_or(Value::Null),
                    )
                })
                .collect(),
        )
    } else {
        original
    };
    if !spec.extra_fields.is_empty()
        && let Value::Object(m) = &mut data
    {
        let company: Map<String, Value> = spec
            .extra_fields
            .iter()
            .map(|f| {
                (
                    f.clone(),
                    ctx.company_fields
                        .and_then(|c| c.get(f))
                        .cloned()
                        .unwrap_or(Value::Null),
                )
            })
            .collect();
        m.insert("company".into(), Value::Object(company));
    }
    let body = match spec.envelope {
        EnvelopeKind::Flat => json!({
            "id": ctx.message_id,
            "timestamp": ctx.event.occurred_at.to_string(),
            "workspaceId": ctx.event.workspace_id,
            "type": ctx.event.kind,
            "data": data,
        }),
        EnvelopeKind::Header => header_envelope(ctx, data),
    };
    match spec.content_type {
        ContentType::Json => Payload {
            body: body.to_string().into_bytes(),
            content_type: JSON,
        },
        ContentType::Form => Payload {
            body: form_encode(&body).into_bytes(),
            content_type: FORM,
        },
    }
}

/// `statusOnly`: the status at the type's `statusPath` and the event's ids.
fn status_only(ctx: &PayloadContext<'_>, data: &Value) -> Value {
    let status = ctx
        .status_path
        .and_then(|p| data.pointer(p))
        .cloned()
        .unwrap_or(Value::Null);
    let mut m = Map::new();
    m.insert("status".into(), status);
    if let Some(s) = subject(ctx.event) {
        m.insert("subjectId".into(), s);
    }
    if let Some(b) = &ctx.event.branch_id {
        m.insert("branchId".into(), json!(b));
    }
    if let Some(b) = &ctx.event.business_unit_id {
        m.insert("businessUnitId".into(), json!(b));
    }
    Value::Object(m)
}

/// Digits-only ids are sent as numbers in the header envelope, as seed 001 shows them.
fn id_value(s: &str) -> Value {
    s.parse::<i64>().map_or_else(|_| json!(s), |n| json!(n))
}

/// Seed 001's shape: a `Header` object, then the fields of `data` at the top level.
fn header_envelope(ctx: &PayloadContext<'_>, data: Value) -> Value {
    let e = ctx.event;
    let mut header = Map::new();
    if let Some(s) = subject(e) {
        header.insert("WorkOrderId".into(), s);
    }
    if let Some(b) = &e.branch_id {
        header.insert("BranchId".into(), id_value(b));
    }
    if let Some(b) = &e.business_unit_id {
        header.insert("BusinessUnitId".into(), id_value(b));
    }
    if let Some(s) = &e.sender {
        header.insert(
            "Sender".into(),
            json!({"Name": s.name, "Phone": s.phone, "Type": s.kind}),
        );
    }
    header.insert("Action".into(), json!(e.kind));
    header.insert("ActionDate".into(), json!(crate::rfc3339(e.occurred_at)));
    header.insert("ApiVersion".into(), json!("1.1"));
    header.insert("MessageId".into(), json!(ctx.message_id));
    header.insert("WorkspaceId".into(), json!(e.workspace_id));
    let mut body = Map::new();
    body.insert("Header".into(), Value::Object(header));
    if let Value::Object(fields) = data {
        for (k, v) in fields {
            if k != "Header" {
                body.insert(k, v);
            }
        }
    }
    Value::Object(body)
}

/// Form encoding: nested objects flatten to `a[b][c]=v`, arrays to `a[0]=v`; `null` is an empty
/// value; strings, numbers and booleans are their text.
pub fn form_encode(value: &Value) -> String {
    let mut pairs = Vec::new();
    flatten(value, String::new(), &mut pairs);
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(&k, &v);
    }
    out.finish()
}

fn flatten(value: &Value, prefix: String, out: &mut Vec<(String, String)>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}[{k}]")
        }
    };
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                flatten(v, key(k), out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(v, key(&i.to_string()), out);
            }
        }
        Value::Null => out.push((prefix, String::new())),
        Value::String(s) => out.push((prefix, s.clone())),
        other => out.push((prefix, other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Sender;
    use crate::webhook::{Status, WebhookSpec};

    fn event() -> Event {
        Event {
            id: "evt_1".into(),
            kind: "workorder.created".into(),
            workspace_id: "w1".into(),
            data: r#"{"Status":"New","Items":[{"sku":"a"}],"Note":null}"#.into(),
            branch_id: Some("492042".into()),
            business_unit_id: None,
            subject_id: Some("42".into()),
            sender: Some(Sender {
                name: "Jon Snow".into(),
                phone: "+12025550141".into(),
                kind: "CorrigoPro".into(),
            }),
            origin_client_id: None,
            idempotency_key: None,
            occurred_at: 1_536_055_928_167,
            created_at: 0,
        }
    }

    fn spec() -> WebhookSpec {
        WebhookSpec {
            name: String::new(),
            description: String::new(),
            apply_to_all_descendants: false,
            url: "https://x.example".into(),
            secret: "s".into(),
            headers: Default::default(),
            triggers: vec!["workorder.created".into()],
            status: Status::Enabled,
            content_type: ContentType::Json,
            authorization: Default::default(),
            basic_username: "tidings".into(),
            ssl_verification: Default::default(),
            data_mode: DataMode::Everything,
            extra_fields: vec![],
            field_mapping: Default::default(),
            business_units: vec![],
            branches: vec![],
            envelope: EnvelopeKind::Flat,
        }
    }

    fn body(spec: &WebhookSpec, fields: Option<&Map<String, Value>>) -> Value {
        let e = event();
        let p = build(&PayloadContext {
            message_id: "msg_1",
            event: &e,
            spec,
            status_path: Some("/Status"),
            company_fields: fields,
        });
        serde_json::from_slice(&p.body).unwrap()
    }

    #[test]
    fn the_plain_path_and_the_general_path_agree() {
        let e = event();
        let plain = crate::envelope::flat("msg_1", &e);
        let mut s = spec();
        s.extra_fields = vec![];
        let general = body(&s, None);
        assert_eq!(serde_json::from_slice::<Value>(&plain).unwrap(), general);
    }

    #[test]
    fn status_only_sends_the_status_and_ids() {
        let mut s = spec();
        s.data_mode = DataMode::StatusOnly;
        assert_eq!(
            body(&s, None)["data"],
            json!({"status": "New", "subjectId": 42, "branchId": "492042"})
        );
    }

    #[test]
    fn field_mapping_reads_pointers_into_the_event() {
        let mut s = spec();
        s.field_mapping = [
            ("state".to_string(), "/data/Status".to_string()),
            ("order".to_string(), "/subjectId".to_string()),
            ("missing".to_string(), "/data/nope".to_string()),
        ]
        .into();
        assert_eq!(
            body(&s, None)["data"],
            json!({"missing": null, "order": 42, "state": "New"})
        );
    }

    #[test]
    fn extra_fields_come_from_the_workspace_under_company() {
        let mut s = spec();
        s.extra_fields = vec!["vat".into(), "absent".into()];
        let fields: Map<String, Value> = serde_json::from_str(r#"{"vat":"X1","other":1}"#).unwrap();
        assert_eq!(
            body(&s, Some(&fields))["data"]["company"],
            json!({"vat": "X1", "absent": null})
        );
    }

    #[test]
    fn the_header_envelope_has_the_seed_shape() {
        let mut s = spec();
        s.envelope = EnvelopeKind::Header;
        let b = body(&s, None);
        assert_eq!(
            b["Header"],
            json!({"WorkOrderId": 42, "BranchId": 492042, "Sender": {"Name": "Jon Snow", "Phone": "+12025550141", "Type": "CorrigoPro"},
                "Action": "workorder.created", "ActionDate": "2018-09-04T10:12:08.167Z", "ApiVersion": "1.1",
                "MessageId": "msg_1", "WorkspaceId": "w1"})
        );
        assert_eq!(b["Status"], "New");
    }

    #[test]
    fn form_bodies_flatten_nested_values() {
        let mut s = spec();
        s.content_type = ContentType::Form;
        let e = event();
        let p = build(&PayloadContext {
            message_id: "msg_1",
            event: &e,
            spec: &s,
            status_path: None,
            company_fields: None,
        });
        assert_eq!(p.content_type, FORM);
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(&p.body).into_owned().collect();
        assert!(
            pairs.contains(&("data[Items][0][sku]".into(), "a".into())),
            "{pairs:?}"
        );
        assert!(pairs.contains(&("data[Note]".into(), String::new())));
        assert!(pairs.contains(&("timestamp".into(), "1536055928167".into())));
    }
}
