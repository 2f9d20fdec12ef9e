//! The integrator's access token: fetched with the client credentials at `/oauth/token`,
//! cached, and fetched again shortly before it expires or after the API refused it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Renew this long before the token's stated expiry.
const MARGIN: Duration = Duration::from_secs(30);

pub(crate) struct Tokens {
    endpoint: url::Url,
    client_id: String,
    secret: String,
    current: Mutex<Option<(String, Instant)>>,
}

#[derive(Deserialize)]
struct Issued {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct Refused {
    error: String,
    #[serde(default)]
    error_description: String,
}

impl Tokens {
    pub(crate) fn new(endpoint: url::Url, client_id: &str, secret: &str) -> Self {
        Self {
            endpoint,
            client_id: client_id.to_string(),
            secret: secret.to_string(),
            current: Mutex::new(None),
        }
    }

    fn cached(&self) -> Option<String> {
        let guard = self.current.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|(_, renew_at)| Instant::now() < *renew_at)
            .map(|(t, _)| t.clone())
    }

    /// Drops the cached token (the API refused it).
    pub(crate) fn forget(&self) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// A token that is valid for at least [`MARGIN`] more.
    pub(crate) async fn get(&self, http: &reqwest::Client) -> Result<String> {
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        let r = http
            .post(self.endpoint.clone())
            .json(&serde_json::json!({
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.secret,
            }))
            .send()
            .await?;
        let status = r.status().as_u16();
        let text = r.text().await?;
        if !(200..300).contains(&status) {
            return Err(match serde_json::from_str::<Refused>(&text) {
                Ok(e) => Error::OAuth {
                    status,
                    error: e.error,
                    description: e.error_description,
                },
                Err(_) => Error::Unexpected {
                    status,
                    detail: text.chars().take(300).collect(),
                },
            });
        }
        let issued: Issued = serde_json::from_str(&text).map_err(|e| Error::Unexpected {
            status,
            detail: format!("not a token answer: {e}"),
        })?;
        let lifetime = Duration::from_secs(issued.expires_in).saturating_sub(MARGIN);
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((issued.access_token.clone(), Instant::now() + lifetime));
        Ok(issued.access_token)
    }
}
