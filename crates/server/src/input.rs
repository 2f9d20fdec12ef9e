//! Body and query extractors that answer bad input with the SPEC error body: 415 for a wrong
//! content type, 413 for an oversized body, 400 for malformed JSON, 422 naming the field for
//! JSON of the wrong shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// Whether the request declares a JSON body (`application/json`, parameters allowed).
pub fn is_json(headers: &axum::http::HeaderMap) -> bool {
    content_type(headers).is_some_and(|m| m == "application/json" || m.ends_with("+json"))
}

/// The media type of the request, lower-cased, without parameters.
pub fn content_type(headers: &axum::http::HeaderMap) -> Option<String> {
    let v = headers
        .get(axum::http::header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    Some(
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Reads the whole body, mapping the size limit to 413.
pub async fn read_body(req: Request) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, &()).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than the configured limit",
            )
        } else {
            ApiError::bad_request("invalid_body", "the request body could not be read")
        }
    })
}

/// Parses JSON into `T`, naming the offending field on a shape error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    if result.is_ok()
        && let Err(e) = de.end()
    {
        return Err(ApiError::bad_request(
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        ));
    }
    result.map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::bad_request(
                "malformed_json",
                format!("the body is not valid JSON: {inner}"),
            );
        }
        let message = strip_position(&inner.to_string());
        let field = field_from(&path, &message);
        ApiError::invalid_field(&field, message)
    })
}

/// serde_json appends " at line L column C"; the field path says more to an API caller.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// For "missing field `x`" the path names the parent object; append the field itself (for
/// unknown fields the path already ends with it).
fn field_from(path: &str, message: &str) -> String {
    let named = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    let base = if path == "." { "" } else { path };
    match named {
        Some(name) if base.is_empty() => name.to_string(),
        Some(name) => format!("{base}.{name}"),
        None if base.is_empty() => "body".to_string(),
        None => base.to_string(),
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = read_body(req).await?;
        // Every request body of the API is an object. serde would also fill a struct from an
        // array (`[null, null]`, field by field), which no client means.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(ApiError::invalid_field("body", "must be a JSON object"));
        }
        parse_json(&bytes).map(JsonBody)
    }
}

/// `?limit=&cursor=` of every list.
#[derive(Debug, Clone)]
pub struct Pagination {
    pub limit: i64,
    pub cursor: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Pagination {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let mut limit = 50;
        let mut cursor = None;
        for (k, v) in url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "limit" => {
                    limit = v
                        .parse::<i64>()
                        .ok()
                        .filter(|n| (1..=500).contains(n))
                        .ok_or_else(|| {
                            ApiError::invalid_field("limit", "must be an integer from 1 to 500")
                        })?;
                }
                "cursor" if !v.is_empty() => cursor = Some(v.into_owned()),
                _ => {}
            }
        }
        Ok(Self { limit, cursor })
    }
}

/// An optional JSON body: a request without a body (no `Content-Type`, nothing sent) gives
/// `None`; anything else must be valid JSON of type `T`.
impl<S: Send + Sync, T: DeserializeOwned> axum::extract::OptionalFromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let declared_empty = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v == "0");
        if req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .is_none()
        {
            let bytes = read_body(req).await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        if declared_empty {
            return Ok(None);
        }
        <Self as FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_array_is_not_taken_for_an_object() {
        let req = Request::builder()
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from("[null, null]"))
            .unwrap();
        let e = <JsonBody<serde_json::Value> as FromRequest<()>>::from_request(req, &())
            .await
            .unwrap_err();
        assert_eq!(e.code, "validation_failed");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        url: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
        n: u8,
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_json::<Outer>(br#"{"inner":{"url":"x","nope":1},"n":1}"#).unwrap_err();
        assert_eq!(e.details[0].field, "inner.nope");
        let e = parse_json::<Outer>(br#"{"inner":{"url":"x"},"n":"one"}"#).unwrap_err();
        assert_eq!(e.details[0].field, "n");
        let e = parse_json::<Outer>(br#"{"n":1}"#).unwrap_err();
        assert_eq!(e.details[0].field, "inner");
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn malformed_json_is_a_400() {
        let e = parse_json::<Outer>(br#"{"inner": "#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.code, "malformed_json");
        let e = parse_json::<Outer>(br#"{"inner":{"url":"x"},"n":1} trailing"#).unwrap_err();
        assert_eq!(e.code, "malformed_json");
    }
}
