//! What a call can fail with: the API's own error body, typed, or the transport's error.

use serde::Deserialize;

/// One field of a `validation_failed` error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with an error (its SPEC error body): `code` is stable and
    /// machine-readable (`validation_failed`, `not_found`, …), `message` is for people.
    #[error("{message} ({status} {code})")]
    Api {
        status: u16,
        code: String,
        message: String,
        details: Vec<FieldError>,
        /// Seconds to wait, from `Retry-After` (429 and 503 answers).
        retry_after: Option<u64>,
    },
    /// The token endpoint refused the client credentials (RFC 6749 error body).
    #[error("{description} ({status} {error})")]
    OAuth {
        status: u16,
        error: String,
        description: String,
    },
    /// The server could not be reached, or the connection failed.
    #[error("could not reach the server: {0}")]
    Transport(#[source] reqwest::Error),
    /// The answer was not what the API documents.
    #[error("unexpected answer ({status}): {detail}")]
    Unexpected { status: u16, detail: String },
    /// The client was set up wrongly (a base URL that cannot take a path, …).
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// The HTTP status of an answer, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. }
            | Self::OAuth { status, .. }
            | Self::Unexpected { status, .. } => Some(*status),
            Self::Transport(e) => e.status().map(|s| s.as_u16()),
            Self::Config(_) => None,
        }
    }

    /// The API's error code (`not_found`, `validation_failed`, …) of an [`Error::Api`].
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            Self::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        Self::Transport(e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Deserialize)]
struct Body {
    error: Detail,
}

#[derive(Deserialize)]
struct Detail {
    code: String,
    message: String,
    #[serde(default)]
    details: Vec<FieldError>,
}

/// Reads a non-2xx answer into an [`Error`].
pub(crate) async fn from_response(r: reqwest::Response) -> Error {
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let text = match r.text().await {
        Ok(t) => t,
        Err(e) => return Error::Transport(e),
    };
    match serde_json::from_str::<Body>(&text) {
        Ok(b) => Error::Api {
            status,
            code: b.error.code,
            message: b.error.message,
            details: b.error.details,
            retry_after,
        },
        Err(_) => Error::Unexpected {
            status,
            detail: text.chars().take(300).collect(),
        },
    }
}
