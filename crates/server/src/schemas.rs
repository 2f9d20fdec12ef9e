//! JSON Schema validation of published data, with compiled validators cached by schema text.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// Compiled validators keyed by the schema's JSON text.
#[derive(Default)]
pub struct SchemaCache {
    compiled: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl std::fmt::Debug for SchemaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SchemaCache")
    }
}

/// Compiles a schema, or says why it is not one.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::validator_for(schema).map_err(|e| e.to_string())
}

impl SchemaCache {
    /// Checks `data` against `schema`; the error names where in `data` it fails.
    pub fn check(&self, schema: &Value, data: &Value) -> Result<(), String> {
        let key = schema.to_string();
        let validator = {
            let mut map = self
                .compiled
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(v) = map.get(&key) {
                v.clone()
            } else {
                let v = Arc::new(compile(schema)?);
                if map.len() > 1000 {
                    map.clear();
                }
                map.insert(key, v.clone());
                v
            }
        };
        validator.validate(data).map_err(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() {
                e.to_string()
            } else {
                format!("{path}: {e}")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_is_checked_and_the_failing_path_named() {
        let cache = SchemaCache::default();
        let schema = json!({"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}});
        assert!(cache.check(&schema, &json!({"status": "ok"})).is_ok());
        let err = cache.check(&schema, &json!({"status": 5})).unwrap_err();
        assert!(err.starts_with("/status"), "{err}");
        assert!(cache.check(&schema, &json!({})).is_err());
        assert!(compile(&json!({"type": "no-such-type"})).is_err());
    }
}
