//! Property tests of the parsers of untrusted input outside payload shaping: webhook URLs, whole
//! webhook bodies, and stored sealed values. None panics, each answer is bounded by its input.

use proptest::prelude::*;
use serde_json::json;
use tidings_core::seal::{Keyring, Purpose, generate_key};
use tidings_core::webhook::{WebhookInput, check_url};

const MOST_ERRORS: usize = 3 * (50 + 100 + 100 + 50) + 10;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_url_is_accepted_or_refused_with_a_short_reason(raw in ".{0,2100}") {
        match check_url(&raw) {
            Ok(_) => prop_assert!(raw.len() <= 2048),
            Err(reason) => prop_assert!(reason.len() <= raw.len().min(2048) + 200, "{reason}"),
        }
    }

    #[test]
    fn any_webhook_body_validates_within_the_bounds(
        url in prop_oneof![Just("https://hooks.example.com/in".to_string()), ".{0,80}"],
        headers in prop::collection::btree_map("[ -~]{0,30}", ".{0,40}", 0..80),
        triggers in prop::collection::vec("[a-z.]{0,24}", 0..150),
        mapping in prop::collection::btree_map(".{0,20}", ".{0,40}", 0..150),
        extra in prop::collection::vec(".{0,20}", 0..80),
    ) {
        let body = json!({"name": "n", "applyToAllDescendants": false, "url": url,
            "triggers": triggers, "status": "enabled", "headers": headers,
            "fieldMapping": mapping, "extraFields": extra});
        let Ok(input) = serde_json::from_value::<WebhookInput>(body) else {
            return Ok(());
        };
        match input.into_spec(|t| t == "workorder.created") {
            Ok((spec, _)) => {
                prop_assert!(spec.headers.len() <= 50);
                prop_assert!(spec.triggers.len() <= 100);
                prop_assert!(spec.field_mapping.len() <= 100);
                prop_assert!(spec.extra_fields.len() <= 50);
            }
            Err(e) => {
                // A list far over its bound is refused whole, so errors follow the entries only up
                // to the lists' bounds (50 headers, 100 triggers, 100 mappings, 50 extra
                // fields), a few per entry; and each is short.
                prop_assert!(!e.0.is_empty());
                prop_assert!(e.0.len() <= MOST_ERRORS, "{} errors", e.0.len());
                for f in &e.0 {
                    prop_assert!(f.message.len() <= 600, "{}: {}", f.field, f.message.len());
                }
            }
        }
    }

    #[test]
    fn any_text_seals_and_opens_to_itself(plain in ".{0,300}") {
        let keys = Keyring::parse(&generate_key()).unwrap();
        let sealed = keys.seal(Purpose::HeaderValue, &plain);
        prop_assert_eq!(keys.open(Purpose::HeaderValue, &sealed).unwrap(), plain);
    }

    #[test]
    fn any_stored_text_opens_or_fails_without_panic(
        stored in prop_oneof![".{0,200}", "enc:v1:[0-9a-f]{8}:[A-Za-z0-9_-]{0,120}"],
    ) {
        let keys = Keyring::parse(&generate_key()).unwrap();
        let _ = keys.open(Purpose::WebhookSecret, &stored);
        let _ = keys.open_bytes(Purpose::SigningKey, stored.as_bytes());
    }
}
