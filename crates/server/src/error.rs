//! The API error: one type, mapped to the SPEC §8 body
//! `{"error": {"code", "message", "details"}}` with stable codes. Internal causes are logged,
//! never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tidings_core::{FieldError, ValidationError, limits};
use tidings_store::StoreError;

/// An error answered to an API caller.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Vec<FieldError>,
    /// Extra response headers (`WWW-Authenticate`).
    pub www_authenticate: Option<&'static str>,
    /// `Retry-After` seconds (a `429`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            www_authenticate: None,
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
        e.www_authenticate = Some("Bearer");
        e
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 422 naming one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        ValidationError::field(field, message).into()
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl From<ValidationError> for ApiError {
    /// A 422 with one detail per invalid field, at most [`limits::ERROR_DETAILS`] of them: a
    /// body with thousands of bad entries gets a short answer that says how many were left out.
    fn from(mut e: ValidationError) -> Self {
        let max = limits::ERROR_DETAILS;
        let more = e.0.len().saturating_sub(max);
        if more > 0 {
            e.0.truncate(max);
            e.0.push(FieldError {
                field: String::new(),
                message: format!("and {more} more problems not listed"),
            });
        }
        let mut message = format!("invalid request: {}", e.summary());
        if message.len() > MAX_MESSAGE_BYTES {
            let cut = (0..=MAX_MESSAGE_BYTES)
                .rev()
                .find(|&i| message.is_char_boundary(i))
                .unwrap_or(0);
            message.truncate(cut);
            message.push('…');
        }
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
            message,
            details: e.0,
            www_authenticate: None,
            retry_after: None,
        }
    }
}

/// The longest `message` of a 422; `details` holds each problem in full.
const MAX_MESSAGE_BYTES: usize = 2048;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found("resource"),
            StoreError::Conflict(m) => Self::conflict(m),
            StoreError::LimitReached(n) => {
                Self::forbidden("limit_reached", format!("the limit of {n} is reached"))
            }
            other => {
                // The cause chain goes to the log only; the caller learns it may retry.
                tracing::error!(error = ?other, "store error");
                Self::unavailable("the store is unavailable; try again")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "details": self.details,
        }});
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        if let Some(v) = self.www_authenticate {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(v),
            );
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_of_field_errors_make_a_short_answer() {
        let e = ValidationError(
            (0..10_000)
                .map(|i| FieldError {
                    field: format!("triggers[{i}]"),
                    message: "unknown event type".into(),
                })
                .collect(),
        );
        let api = ApiError::from(e);
        assert_eq!(api.details.len(), limits::ERROR_DETAILS + 1);
        assert_eq!(
            api.details.last().map(|d| d.message.as_str()),
            Some("and 9900 more problems not listed")
        );
        assert!(api.message.len() <= MAX_MESSAGE_BYTES + "…".len());
    }
}
