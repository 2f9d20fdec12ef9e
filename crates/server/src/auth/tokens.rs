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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ISSUER: &str = "http://tidings.test";
    const NOW: i64 = 1_800_000_000;

    fn audiences() -> Vec<String> {
        vec![ISSUER.to_string()]
    }

    fn claims(sub: String, client_id: String, jti: String, exp: i64) -> AccessClaims {
        AccessClaims {
            iss: ISSUER.into(),
            sub,
            aud: ISSUER.into(),
            iat: NOW - 10,
            exp,
            jti,
            client_id,
            generation: 1,
            token_use: "access".into(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever a caller sends as a bearer token, the check answers without panicking, and
        /// nothing but a token these keys signed passes.
        #[test]
        fn arbitrary_text_is_refused(token in ".{0,600}") {
            let keys = crate::auth::keys::Keys::generated();
            prop_assert!(check(&keys, &token, ISSUER, &audiences(), NOW).is_err());
        }

        /// JWT-shaped junk: three base64url parts, with or without a JSON header.
        #[test]
        fn jwt_shaped_junk_is_refused(
            header in prop_oneof![
                "[A-Za-z0-9_-]{0,80}",
                Just("eyJhbGciOiJFZERTQSIsImtpZCI6IngifQ".to_string()),
                Just("eyJhbGciOiJub25lIn0".to_string()),
            ],
            body in "[A-Za-z0-9_-]{0,200}",
            sig in "[A-Za-z0-9_-]{0,100}",
        ) {
            let keys = crate::auth::keys::Keys::generated();
            let token = format!("{header}.{body}.{sig}");
            prop_assert_eq!(
                check(&keys, &token, ISSUER, &audiences(), NOW),
                Err(Rejection::Malformed)
            );
        }

        /// A valid token round-trips its claims, whatever text they hold; changing any one
        /// character of it, or cutting it short, makes it invalid.
        #[test]
        fn signed_claims_round_trip_and_any_change_breaks_them(
            sub in ".{0,64}",
            client_id in ".{0,64}",
            jti in "[a-z0-9]{0,32}",
            position in any::<prop::sample::Index>(),
            replacement in "[A-Za-z0-9_.=+/-]",
            cut in any::<prop::sample::Index>(),
        ) {
            let keys = crate::auth::keys::Keys::generated();
            let sent = claims(sub, client_id, jti, NOW + 60);
            let token = keys.sign(&sent);
            prop_assert_eq!(check(&keys, &token, ISSUER, &audiences(), NOW), Ok(sent));

            let at = position.index(token.len());
            let mut changed = token.clone();
            changed.replace_range(at..=at, &replacement);
            if changed != token {
                prop_assert!(check(&keys, &changed, ISSUER, &audiences(), NOW).is_err(), "{changed}");
            }
            let short = &token[..cut.index(token.len())];
            prop_assert!(check(&keys, short, ISSUER, &audiences(), NOW).is_err());
        }

        /// Expiry, audience and issuer are checked on every signed token, not only on well-formed
        /// ones.
        #[test]
        fn claims_are_checked_after_the_signature(exp in any::<i64>(), aud in ".{0,40}", iss in ".{0,40}") {
            let keys = crate::auth::keys::Keys::generated();
            let mut c = claims("w".into(), "c".into(), "j".into(), exp);
            let expected = if exp <= NOW { Err(Rejection::Expired) } else { Ok(c.clone()) };
            prop_assert_eq!(check(&keys, &keys.sign(&c), ISSUER, &audiences(), NOW), expected);
            c.exp = NOW + 60;
            c.aud = aud.clone();
            let r = check(&keys, &keys.sign(&c), ISSUER, &audiences(), NOW);
            prop_assert_eq!(r.is_ok(), aud == ISSUER);
            c.aud = ISSUER.into();
            c.iss = iss.clone();
            let r = check(&keys, &keys.sign(&c), ISSUER, &audiences(), NOW);
            prop_assert_eq!(r.is_ok(), iss == ISSUER);
        }
    }

    #[test]
    fn a_token_of_other_keys_is_refused() {
        let keys = crate::auth::keys::Keys::generated();
        let other = crate::auth::keys::Keys::generated();
        let token = other.sign(&claims("w".into(), "c".into(), "j".into(), NOW + 60));
        assert_eq!(
            check(&keys, &token, ISSUER, &audiences(), NOW),
            Err(Rejection::Malformed)
        );
    }
}
