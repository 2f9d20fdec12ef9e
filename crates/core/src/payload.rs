//! Shapes a notification body from an event and a webhook's options (SPEC §4/§5):
//! `dataMode`, `fieldMapping`, `extraFields`, `envelope` and `contentType`.
//!
//! Order: `data` starts as the event's data; `dataMode: statusOnly` replaces it with the status
//! and the ids, or `fieldMapping` replaces it with the mapped properties (the two cannot be
//! combined); `extraFields` then adds `company`; the envelope wraps the result; the content type
//! encodes it.
//!
//! **Bounded work.** A body is never larger than [`PayloadContext::max_bytes`]: every value
//! copied into it (a mapped property, a company field, the status) is measured against what is
//! left of that bound before it is copied, and the encoders stop at the bound. So a mapping
//! that names the whole event a hundred times costs one measured copy, then [`TooLarge`], not a
//! hundred copies; building costs the parsed event plus at most the bound in copies.

use std::io;

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
    /// The largest body that may be built, in bytes (`delivery.max_payload_bytes`).
    pub max_bytes: usize,
}

/// A built body and its `Content-Type`.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

/// The body the webhook's options make of this event would exceed the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the notification body would be larger than {limit} bytes \
     (the event's data, fieldMapping, extraFields and the form encoding all add to it)"
)]
pub struct TooLarge {
    pub limit: usize,
}

const JSON: &str = "application/json; charset=utf-8";
const FORM: &str = "application/x-www-form-urlencoded";

/// The event as a JSON document, the target of `fieldMapping` pointers:
/// `{id, type, workspaceId, occurredAt, subjectId, branchId, businessUnitId, sender, data}`.
pub fn event_document(event: &Event, data: Value) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(event.id));
    m.insert("type".into(), json!(event.kind));
    m.insert("workspaceId".into(), json!(event.workspace_id));
    m.insert(
        "occurredAt".into(),
        json!(crate::rfc3339(event.occurred_at)),
    );
    m.insert("data".into(), data);
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
    Value::Object(m)
}

fn subject(event: &Event) -> Option<Value> {
    event
        .subject_id
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
}

/// Builds the body of the notification of `ctx.event` for `ctx.spec`, or says that it would be
/// larger than `ctx.max_bytes`.
pub fn build(ctx: &PayloadContext<'_>) -> Result<Payload, TooLarge> {
    let spec = ctx.spec;
    let limit = ctx.max_bytes;
    let plain = spec.data_mode == DataMode::Everything
        && spec.field_mapping.is_empty()
        && spec.extra_fields.is_empty()
        && spec.envelope == EnvelopeKind::Flat
        && spec.content_type == ContentType::Json;
    if plain {
        // The common case: the stored data text is copied into the envelope verbatim.
        let body = crate::envelope::flat(ctx.message_id, ctx.event);
        if body.len() > limit {
            return Err(TooLarge { limit });
        }
        return Ok(Payload {
            body,
            content_type: JSON,
        });
    }
    let mut budget = Budget { left: limit, limit };
    let original: Value = serde_json::from_str(&ctx.event.data).unwrap_or(Value::Null);
    let mut data = if spec.data_mode == DataMode::StatusOnly {
        status_only(ctx, &original, &mut budget)?
    } else if !spec.field_mapping.is_empty() {
        let doc = event_document(ctx.event, original);
        let mut mapped = Map::new();
        for (target, pointer) in &spec.field_mapping {
            budget.spend(target.len() + 4)?;
            let value = doc
                .pointer(pointer)
                .map_or(Ok(Value::Null), |v| budget.copy(v))?;
            mapped.insert(target.clone(), value);
        }
        Value::Object(mapped)
    } else {
        original
    };
    if !spec.extra_fields.is_empty()
        && let Value::Object(m) = &mut data
    {
        let mut company = Map::new();
        for f in &spec.extra_fields {
            budget.spend(f.len() + 4)?;
            let value = ctx
                .company_fields
                .and_then(|c| c.get(f))
                .map_or(Ok(Value::Null), |v| budget.copy(v))?;
            company.insert(f.clone(), value);
        }
        m.insert("company".into(), Value::Object(company));
    }
    let body = match spec.envelope {
        EnvelopeKind::Flat => {
            let mut m = Map::new();
            m.insert("id".into(), json!(ctx.message_id));
            m.insert("timestamp".into(), json!(ctx.event.occurred_at.to_string()));
            m.insert("workspaceId".into(), json!(ctx.event.workspace_id));
            m.insert("type".into(), json!(ctx.event.kind));
            m.insert("data".into(), data);
            Value::Object(m)
        }
        EnvelopeKind::Header => header_envelope(ctx, data),
    };
    Ok(match spec.content_type {
        ContentType::Json => Payload {
            body: json_within(&body, limit)?,
            content_type: JSON,
        },
        ContentType::Form => Payload {
            body: form_encode(&body, limit)?.into_bytes(),
            content_type: FORM,
        },
    })
}

/// What is left of a body's bound while its parts are copied.
struct Budget {
    left: usize,
    limit: usize,
}

impl Budget {
    fn spend(&mut self, bytes: usize) -> Result<(), TooLarge> {
        self.left = self
            .left
            .checked_sub(bytes)
            .ok_or(TooLarge { limit: self.limit })?;
        Ok(())
    }

    /// A copy of `value`, once its JSON text is known to fit in what is left.
    fn copy(&mut self, value: &Value) -> Result<Value, TooLarge> {
        let mut counter = Bounded {
            out: io::sink(),
            left: self.left,
        };
        serde_json::to_writer(&mut counter, value).map_err(|_| TooLarge { limit: self.limit })?;
        self.left = counter.left;
        Ok(value.clone())
    }
}

/// A writer that refuses to go past `left` bytes.
struct Bounded<W> {
    out: W,
    left: usize,
}

impl<W: io::Write> io::Write for Bounded<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.left = self
            .left
            .checked_sub(buf.len())
            .ok_or_else(|| io::Error::other("over the bound"))?;
        self.out.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// `value` as JSON text of at most `limit` bytes.
fn json_within(value: &Value, limit: usize) -> Result<Vec<u8>, TooLarge> {
    let mut w = Bounded {
        out: Vec::new(),
        left: limit,
    };
    serde_json::to_writer(&mut w, value).map_err(|_| TooLarge { limit })?;
    Ok(w.out)
}

/// `statusOnly`: the status at the type's `statusPath` and the event's ids.
fn status_only(
    ctx: &PayloadContext<'_>,
    data: &Value,
    budget: &mut Budget,
) -> Result<Value, TooLarge> {
    let status = ctx
        .status_path
        .and_then(|p| data.pointer(p))
        .map_or(Ok(Value::Null), |v| budget.copy(v))?;
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
    Ok(Value::Object(m))
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
/// value; strings, numbers and booleans are their text. The text is written as it is walked,
/// with one key buffer for the whole walk, and stops at `limit` bytes.
pub fn form_encode(value: &Value, limit: usize) -> Result<String, TooLarge> {
    let mut form = Form {
        out: String::new(),
        key: String::new(),
        limit,
    };
    form.walk(value, 0)?;
    Ok(form.out)
}

struct Form {
    out: String,
    /// The key of the value being walked (`a[b][0]`); grows and shrinks with the walk.
    key: String,
    limit: usize,
}

impl Form {
    fn walk(&mut self, value: &Value, depth: usize) -> Result<(), TooLarge> {
        match value {
            Value::Object(m) => {
                for (k, v) in m {
                    let len = self.push_key(k, depth);
                    self.walk(v, depth + 1)?;
                    self.key.truncate(len);
                }
                Ok(())
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    let len = self.push_key(&i.to_string(), depth);
                    self.walk(v, depth + 1)?;
                    self.key.truncate(len);
                }
                Ok(())
            }
            Value::Null => self.pair(""),
            Value::String(s) => self.pair(s),
            other => self.pair(&other.to_string()),
        }
    }

    /// Appends `k` to the key; returns the length to truncate back to.
    fn push_key(&mut self, k: &str, depth: usize) -> usize {
        let len = self.key.len();
        if depth == 0 {
            self.key.push_str(k);
        } else {
            self.key.push('[');
            self.key.push_str(k);
            self.key.push(']');
        }
        len
    }

    fn pair(&mut self, value: &str) -> Result<(), TooLarge> {
        let too_large = TooLarge { limit: self.limit };
        // Encoding never shortens text: a pair that cannot fit is refused before it is written.
        if self.out.len() + self.key.len() + value.len() + 2 > self.limit {
            return Err(too_large);
        }
        if !self.out.is_empty() {
            self.out.push('&');
        }
        self.out
            .extend(url::form_urlencoded::byte_serialize(self.key.as_bytes()));
        self.out.push('=');
        self.out
            .extend(url::form_urlencoded::byte_serialize(value.as_bytes()));
        if self.out.len() > self.limit {
            return Err(too_large);
        }
        Ok(())
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
            max_bytes: crate::limits::DEFAULT_PAYLOAD_BYTES,
        })
        .unwrap();
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
            max_bytes: crate::limits::DEFAULT_PAYLOAD_BYTES,
        })
        .unwrap();
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

    fn build_within(spec: &WebhookSpec, e: &Event, max_bytes: usize) -> Result<Payload, TooLarge> {
        build(&PayloadContext {
            message_id: "msg_1",
            event: e,
            spec,
            status_path: Some("/Status"),
            company_fields: None,
            max_bytes,
        })
    }

    #[test]
    fn mapping_the_whole_event_many_times_is_too_large_not_a_copy_each() {
        let mut e = event();
        e.data = json!({"blob": "x".repeat(30_000)}).to_string();
        let mut s = spec();
        s.field_mapping = (0..100).map(|i| (format!("t{i}"), String::new())).collect();
        assert_eq!(
            build_within(&s, &e, 1024 * 1024),
            Err(TooLarge { limit: 1024 * 1024 })
        );
        // A few copies fit, and each is the whole event document.
        s.field_mapping = (0..3).map(|i| (format!("t{i}"), String::new())).collect();
        let p = build_within(&s, &e, 1024 * 1024).unwrap();
        let v: Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(
            v["data"]["t2"]["data"]["blob"].as_str().map(str::len),
            Some(30_000)
        );
    }

    #[test]
    fn every_shape_stays_within_its_bound() {
        let e = event();
        let mut s = spec();
        let plain = build_within(&s, &e, 4096).unwrap().body.len();
        assert_eq!(build_within(&s, &e, plain).map(|p| p.body.len()), Ok(plain));
        assert!(build_within(&s, &e, plain - 1).is_err());
        for content_type in [ContentType::Json, ContentType::Form] {
            for envelope in [EnvelopeKind::Flat, EnvelopeKind::Header] {
                s.content_type = content_type;
                s.envelope = envelope;
                s.extra_fields = vec!["vat".into()];
                let full = build_within(&s, &e, 4096).unwrap().body.len();
                assert_eq!(build_within(&s, &e, full).map(|p| p.body.len()), Ok(full));
                assert_eq!(
                    build_within(&s, &e, full - 1),
                    Err(TooLarge { limit: full - 1 })
                );
            }
        }
    }

    #[test]
    fn deep_form_keys_are_bounded_by_the_limit() {
        // 100 levels of arrays around many leaves: every leaf's key repeats the whole path.
        let mut data = Value::Array(vec![json!(1); 2000]);
        for _ in 0..100 {
            data = json!([data]);
        }
        let out = form_encode(&json!({ "data": data }), 64 * 1024);
        assert_eq!(out, Err(TooLarge { limit: 64 * 1024 }));
        let small = form_encode(&json!({"a": [[1]]}), 64).unwrap();
        assert_eq!(small, "a%5B0%5D%5B0%5D=1");
    }
}
