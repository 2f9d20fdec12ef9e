//! Authentication: the operator key, OAuth access tokens for integrators, and the signing keys
//! behind both the tokens and the notification bearer tokens.

pub mod extract;
pub mod keys;
pub mod operator;
pub mod session;
pub mod tokens;
