//! The route registry and the OpenAPI 3.1 document built from it.
//!
//! Every endpoint is registered through [`Routes::add`] with its documentation, so the router and
//! `GET /openapi.json` come from the same list: a route cannot exist without its entry. Schemas
//! are generated from the Rust types (`schemars`, JSON Schema 2020-12 — the dialect of
//! OpenAPI 3.1).

use axum::routing::MethodRouter;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::state::AppState;

/// Produces the schema of a type, registering its definitions.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T`.
pub fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// `T`'s schema with exactly `fields` required, and those never `null`: for a body type that
/// several operations share (`POST` requires what `PATCH` leaves optional).
pub fn requiring<T: JsonSchema>(g: &mut SchemaGenerator, fields: &[&str]) -> Schema {
    shaped::<T>(g, fields, &[])
}

/// [`requiring`] `required`, and without the properties `omit` (which the operation takes
/// from its path).
pub fn shaped<T: JsonSchema>(g: &mut SchemaGenerator, required: &[&str], omit: &[&str]) -> Schema {
    let mut schema = T::json_schema(g);
    if let Some(object) = schema.as_object_mut() {
        object.insert("required".into(), json!(required));
        if let Some(Value::Object(props)) = object.get_mut("properties") {
            props.retain(|name, _| !omit.contains(&name.as_str()));
            for field in required {
                if let Some(prop) = props.get_mut(*field) {
                    not_null(prop);
                }
            }
        }
    }
    schema
}

/// Removes `null` from a property's schema as schemars writes an `Option`: `"type": [t,
/// "null"]` or `anyOf: [.., {"type": "null"}]`, with `"default": null`.
fn not_null(prop: &mut Value) {
    let Some(p) = prop.as_object_mut() else {
        return;
    };
    if p.get("default") == Some(&Value::Null) {
        p.remove("default");
    }
    if let Some(Value::Array(types)) = p.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types[0].clone();
            p.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(any)) = p.get_mut("anyOf") {
        any.retain(|s| s != &json!({"type": "null"}));
        if any.len() == 1 {
            let only = any[0].clone();
            p.remove("anyOf");
            if let (Some(p), Value::Object(inner)) = (prop.as_object_mut(), only) {
                p.extend(inner);
            }
        }
    }
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Public,
    Operator,
    /// Access token plus the `Workspace` header.
    Integrator,
    /// `/oauth/token`: client credentials in the body or HTTP Basic.
    Client,
    /// A portal session's cookie (docs/console.md), acting on its own workspace.
    Portal,
}

/// The documentation of one operation.
#[derive(Clone)]
pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub auth: Auth,
    pub request: Option<SchemaFn>,
    /// Whether the request body may be left out.
    pub body_optional: bool,
    /// Whether the operation takes `limit` and `cursor`.
    pub paginated: bool,
    pub responses: Vec<(u16, &'static str, Option<SchemaFn>)>,
}

impl Op {
    pub fn new(
        method: &'static str,
        path: &'static str,
        tag: &'static str,
        auth: Auth,
        summary: &'static str,
    ) -> Self {
        Self {
            method,
            path,
            summary,
            tag,
            auth,
            request: None,
            body_optional: false,
            paginated: false,
            responses: Vec::new(),
        }
    }

    pub fn body<T: JsonSchema>(mut self) -> Self {
        self.request = Some(schema::<T>);
        self
    }

    /// A request body documented by `schema`, e.g. [`requiring`] for a body type that several
    /// operations share with different required fields.
    pub fn body_schema(mut self, schema: SchemaFn) -> Self {
        self.request = Some(schema);
        self
    }

    /// A request body that may be left out (the operation has defaults for all of it).
    pub fn optional_body<T: JsonSchema>(mut self) -> Self {
        self.request = Some(schema::<T>);
        self.body_optional = true;
        self
    }

    pub fn paginated(mut self) -> Self {
        self.paginated = true;
        self
    }

    pub fn returns<T: JsonSchema>(mut self, status: u16, description: &'static str) -> Self {
        self.responses
            .push((status, description, Some(schema::<T>)));
        self
    }

    pub fn empty(mut self, status: u16, description: &'static str) -> Self {
        self.responses.push((status, description, None));
        self
    }
}

/// A router with the documentation of every route it holds.
pub struct Routes {
    pub router: axum::Router<AppState>,
    pub ops: Vec<Op>,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes {
    pub fn new() -> Self {
        Self {
            router: axum::Router::new(),
            ops: Vec::new(),
        }
    }

    /// Registers `handler` (a method router such as `get(list)`) at `op.path`, documented by `op`.
    pub fn add(mut self, op: Op, handler: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(op.path, handler);
        self.ops.push(op);
        self
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.ops.extend(other.ops);
        self
    }
}

/// The SPEC error body.
#[derive(Serialize, JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, JsonSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `validation_failed`.
    pub code: String,
    pub message: String,
    pub details: Vec<tidings_core::FieldError>,
}

/// A page of a list.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageOf<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

fn parameters(op: &Op) -> Vec<Value> {
    let mut params: Vec<Value> = op
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    if op.auth == Auth::Integrator {
        params.push(json!({"name": "Workspace", "in": "header", "required": true, "schema": {"type": "string"},
            "description": "The workspace the request acts on: the client's own or one of its descendants."}));
    }
    if op.paginated {
        params.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}}));
        params.push(json!({"name": "cursor", "in": "query", "schema": {"type": "string"}}));
    }
    params
}

/// Builds the OpenAPI 3.1 document for `ops`.
pub fn openapi(ops: &[Op]) -> Value {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    let mut generator = settings.into_generator();
    let error_schema = generator.subschema_for::<ErrorBody>();
    let mut paths: Map<String, Value> = Map::new();
    for op in ops {
        let mut operation = json!({
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": format!("{}_{}", op.method, op.path.trim_start_matches('/').replace(['/', '{', '}', '.', '-'], "_")),
        });
        let params = parameters(op);
        if !params.is_empty() {
            operation["parameters"] = Value::Array(params);
        }
        match op.auth {
            Auth::Public => operation["security"] = json!([]),
            Auth::Operator => operation["security"] = json!([{"operatorKey": []}]),
            Auth::Integrator => operation["security"] = json!([{"oauth2": []}]),
            Auth::Client => operation["security"] = json!([{}, {"clientBasic": []}]),
            Auth::Portal => operation["security"] = json!([{"portalSession": []}]),
        }
        if let Some(req) = op.request {
            let media = if op.auth == Auth::Client {
                json!({"application/json": {"schema": req(&mut generator)}, "application/x-www-form-urlencoded": {"schema": req(&mut generator)}})
            } else {
                json!({"application/json": {"schema": req(&mut generator)}})
            };
            operation["requestBody"] = json!({"required": !op.body_optional, "content": media});
        }
        let mut responses = Map::new();
        for (status, description, body) in &op.responses {
            let mut r = json!({"description": description});
            if let Some(b) = body {
                r["content"] = json!({"application/json": {"schema": b(&mut generator)}});
            }
            responses.insert(status.to_string(), r);
        }
        if op.auth != Auth::Client {
            responses.insert("4XX".into(), json!({"description": "Client error (SPEC error body)", "content": {"application/json": {"schema": error_schema}}}));
            responses.insert("5XX".into(), json!({"description": "Server error, e.g. 503 while the store is unreachable (SPEC error body)", "content": {"application/json": {"schema": error_schema}}}));
        }
        operation["responses"] = Value::Object(responses);
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    let schemas = generator.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tidings",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Self-hosted webhook platform: operator API, OAuth 2.0 client credentials, webhook configuration, signed and retried notifications."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "operatorKey": {"type": "http", "scheme": "bearer", "description": "The operator API key."},
                "oauth2": {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": {}}}},
                "clientBasic": {"type": "http", "scheme": "basic", "description": "client_id:client_secret (RFC 6749 §2.3.1)."},
                "portalSession": {"type": "apiKey", "in": "cookie", "name": "tidings_portal", "description": "A portal session (docs/console.md); state changes also carry its X-CSRF-Token header."}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Input {
        url: Option<String>,
        kind: Option<Auth2>,
        note: Option<String>,
    }

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    enum Auth2 {
        A,
        B,
    }

    #[test]
    fn required_fields_are_required_and_not_null_and_omitted_ones_are_gone() {
        let mut g = SchemaGenerator::default();
        let schema = shaped::<Input>(&mut g, &["url", "kind"], &["note"]);
        let s = serde_json::to_value(&schema).unwrap();
        assert_eq!(s["required"], json!(["url", "kind"]));
        assert_eq!(s["properties"]["url"]["type"], "string");
        assert!(s["properties"]["url"].get("default").is_none());
        assert!(s["properties"]["kind"].get("anyOf").is_none(), "{s}");
        assert!(s["properties"]["kind"]["$ref"].is_string(), "{s}");
        assert!(s["properties"].get("note").is_none());
        let all = requiring::<Input>(&mut g, &[]);
        let all = serde_json::to_value(&all).unwrap();
        assert_eq!(all["properties"]["note"]["type"], json!(["string", "null"]));
    }
}
