//! Notification bodies: the envelope a receiver gets (SPEC §5).

use crate::event::Event;

/// The flat envelope (seed 002): `{"id","timestamp","workspaceId","type","data"}`.
/// `timestamp` is the event's time in Unix milliseconds, as a string (the seed's form), so the
/// body is byte-identical on every retry. Built by concatenation: `data` is already JSON text.
pub fn flat(message_id: &str, event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(event.data.len() + 128);
    out.extend_from_slice(b"{\"id\":");
    push_json_str(&mut out, message_id);
    out.extend_from_slice(b",\"timestamp\":\"");
    out.extend_from_slice(event.occurred_at.to_string().as_bytes());
    out.extend_from_slice(b"\",\"workspaceId\":");
    push_json_str(&mut out, &event.workspace_id);
    out.extend_from_slice(b",\"type\":");
    push_json_str(&mut out, &event.kind);
    out.extend_from_slice(b",\"data\":");
    out.extend_from_slice(event.data.as_bytes());
    out.push(b'}');
    out
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Serializing a &str cannot fail.
    serde_json::to_writer(&mut *out, s).expect("string serializes");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_envelope_has_the_seed_shape() {
        let event = Event {
            id: "evt_1".into(),
            kind: "workspace-created".into(),
            workspace_id: "workspace\"123".into(),
            data: r#"{"companyName":"company1"}"#.into(),
            branch_id: None,
            business_unit_id: None,
            subject_id: None,
            sender: None,
            origin_client_id: None,
            idempotency_key: None,
            occurred_at: 1_627_670_400_000,
            created_at: 0,
        };
        let body = flat("msg_1", &event);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id":"msg_1","timestamp":"1627670400000",
                "workspaceId":"workspace\"123","type":"workspace-created",
                "data":{"companyName":"company1"}})
        );
    }
}
