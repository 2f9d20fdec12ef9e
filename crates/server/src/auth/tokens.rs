//! OAuth 2.0 access tokens (client credentials): what they claim and how they are checked.

use serde::{Deserialize, Serialize};

use super::keys::Keys;

/// Claims of an access token issued at `/oauth/token`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    pub iss: String,
    /// The workspace the client belongs to.
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub client_id: String,
    /// The client's credential generation; regenerating the client invalidates older tokens.
    #[serde(rename = "gen")]
    pub generation: i64,
    /// `access`: keeps other tokens Tidings signs (notification tokens) from passing as these.
    pub token_use: String,
}

/// Why a bearer token was refused (the message is safe to send).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    Expired,
    WrongAudience,
    Revoked,
}

impl Rejection {
    pub fn message(self) -> &'static str {
        match self {
            Self::Malformed => "the access token is invalid",
            Self::Expired => "the access token has expired; request a new one at /oauth/token",
            Self::WrongAudience => "the access token was issued for another audience",
            Self::Revoked => "the access token was revoked (its client was regenerated or deleted)",
        }
    }
}

/// Verifies signature, issuer, use, audience and expiry. The generation check needs the store
/// and is the caller's.
pub fn check(
    keys: &Keys,
    token: &str,
    issuer: &str,
    audiences: &[String],
    now_secs: i64,
) -> Result<AccessClaims, Rejection> {
    let claims: AccessClaims = keys.verify(token).ok_or(Rejection::Malformed)?;
    if claims.iss != issuer || claims.token_use != "access" {
        return Err(Rejection::Malformed);
    }
    if !audiences.contains(&claims.aud) {
        return Err(Rejection::WrongAudience);
    }
    if claims.exp <= now_secs {
        return Err(Rejection::Expired);
    }
    Ok(claims)
}
