//! Property tests of payload shaping over arbitrary event data and webhook options: it never
//! panics, never writes past its bound, and what it writes parses back.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tidings_core::event::Event;
use tidings_core::payload::{PayloadContext, build, form_encode};
use tidings_core::webhook::{ContentType, DataMode, EnvelopeKind, WebhookInput, WebhookSpec};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[ -~\\n\\u{e9}\\u{1F600}]{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 200, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec(("[a-z\\[\\]&= ]{0,6}", inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn pointer() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("/data".to_string()),
        "(/[a-z0-9~]{0,4}){1,4}",
    ]
}

fn spec_strategy() -> impl Strategy<Value = WebhookSpec> {
    (
        prop::collection::btree_map("[a-z]{1,5}", pointer(), 0..6),
        prop::collection::vec("[a-z]{1,5}", 0..4),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(mapping, extra, form, header, status_only)| {
            let input = WebhookInput {
                apply_to_all_descendants: Some(false),
                url: Some("https://x.example/".into()),
                triggers: Some(vec!["t".into()]),
                status: Some(tidings_core::webhook::Status::Enabled),
                content_type: Some(if form {
                    ContentType::Form
                } else {
                    ContentType::Json
                }),
                envelope: Some(if header {
                    EnvelopeKind::Header
                } else {
                    EnvelopeKind::Flat
                }),
                data_mode: Some(if status_only && mapping.is_empty() {
                    DataMode::StatusOnly
                } else {
                    DataMode::Everything
                }),
                field_mapping: Some(mapping),
                extra_fields: Some(extra),
                ..Default::default()
            };
            input.into_spec(|_| true).unwrap().0
        })
}

proptest! {
    #[test]
    fn a_body_is_within_its_bound_and_parses(
        data in prop::collection::vec(("[a-z]{1,5}", json_value()), 0..6),
        fields in prop::collection::vec(("[a-z]{1,5}", json_value()), 0..4),
        spec in spec_strategy(),
        limit in 0usize..4096,
        subject in prop::option::of("[0-9]{1,4}|\"[a-z]{1,4}\""),
    ) {
        let data = Value::Object(data.into_iter().collect());
        let fields: Map<String, Value> = fields.into_iter().collect();
        let event = Event {
            id: "evt_1".into(),
            kind: "t".into(),
            workspace_id: "w1".into(),
            data: data.to_string(),
            branch_id: Some("7".into()),
            business_unit_id: None,
            subject_id: subject,
            sender: None,
            origin_client_id: None,
            idempotency_key: None,
            occurred_at: 1,
            created_at: 1,
        };
        let built = build(&PayloadContext {
            message_id: "msg_1",
            event: &event,
            spec: &spec,
            status_path: Some("/status"),
            company_fields: Some(&fields),
            max_bytes: limit,
        });
        if let Ok(p) = built {
            prop_assert!(p.body.len() <= limit);
            match spec.content_type {
                ContentType::Json => {
                    prop_assert!(serde_json::from_slice::<Value>(&p.body).is_ok());
                }
                ContentType::Form => {
                    let pairs = url::form_urlencoded::parse(&p.body).count();
                    prop_assert!(pairs > 0);
                }
            }
        }
    }

    #[test]
    fn form_encoding_stops_at_its_bound(value in json_value(), limit in 0usize..2048) {
        match form_encode(&value, limit) {
            Ok(text) => prop_assert!(text.len() <= limit),
            Err(e) => prop_assert_eq!(e.limit, limit),
        }
    }
}
