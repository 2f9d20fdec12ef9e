//! Building a payload costs memory in proportion to its bound, not to what the webhook's
//! options ask for: 100 mappings of the whole event (SPEC §12's amplification) are refused
//! after one measured copy, where each used to copy the whole document.
//!
//! A test binary of its own: it counts every allocation of the process (dhat's heap profiler
//! as the global allocator), so nothing else may run in it.

use serde_json::json;
use tidings_core::event::Event;
use tidings_core::payload::{PayloadContext, TooLarge, build};
use tidings_core::webhook::{WebhookInput, WebhookSpec};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn event(data: String) -> Event {
    Event {
        id: "evt_1".into(),
        kind: "workorder.created".into(),
        workspace_id: "w1".into(),
        data,
        branch_id: None,
        business_unit_id: None,
        subject_id: None,
        sender: None,
        origin_client_id: None,
        idempotency_key: None,
        occurred_at: 0,
        created_at: 0,
    }
}

fn spec(options: serde_json::Value) -> WebhookSpec {
    let mut body = json!({"applyToAllDescendants": false, "url": "https://x.example/",
        "triggers": ["workorder.created"], "status": "enabled"});
    body.as_object_mut()
        .unwrap()
        .extend(options.as_object().unwrap().clone());
    let input: WebhookInput = serde_json::from_value(body).unwrap();
    input.into_spec(|_| true).unwrap().0
}

/// The most heap in use at once while `f` runs, beyond what was in use before it.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = dhat::HeapStats::get().curr_bytes;
    let out = f();
    let peak = dhat::HeapStats::get().max_bytes;
    (out, peak.saturating_sub(before))
}

#[test]
fn building_costs_at_most_a_small_multiple_of_the_bound() {
    let _profiler = dhat::Profiler::builder().testing().build();
    const LIMIT: usize = 1024 * 1024;
    // 250 KB of data, near the default request body limit.
    let data = json!({"blob": "x".repeat(250_000)}).to_string();
    let mappings: serde_json::Map<_, _> = (0..100).map(|i| (format!("t{i}"), json!(""))).collect();
    for options in [
        json!({"fieldMapping": mappings}),
        json!({"fieldMapping": mappings, "contentType": "application/x-www-form-urlencoded"}),
    ] {
        let spec = spec(options);
        let e = event(data.clone());
        let (built, peak) = peak_of(|| {
            build(&PayloadContext {
                message_id: "msg_1",
                event: &e,
                spec: &spec,
                status_path: None,
                company_fields: None,
                max_bytes: LIMIT,
            })
        });
        assert_eq!(built, Err(TooLarge { limit: LIMIT }));
        // The parsed event, the copies that fit and the text written: well under 4 bounds
        // (100 whole copies would be 25 MB).
        assert!(peak < 4 * LIMIT, "peak {peak} bytes");
    }
}
