//! Token material: refresh tokens, single-use email tokens and access tokens.
//!
//! A refresh token is `brt_<session>.<generation>.<mac>`, the mac an HMAC-SHA256 of session and
//! generation under a key derived from the identity secret. Nothing about it is stored: the
//! session row's generation says which one is current, so a database leak yields no usable
//! token, and the pair issued for a generation can be recomputed exactly (the grace window).
//! Access tokens are deterministic for the same reason: `jti` is `<session>.<generation>` and
//! `iat` the rotation time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::IdentitySettings;

type HmacSha256 = Hmac<Sha256>;

pub struct RefreshKey([u8; 32]);

impl RefreshKey {
    pub fn derive(identity: &IdentitySettings) -> Self {
        let mut mac = HmacSha256::new_from_slice(identity.jwt_secret.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable_key());
        mac.update(b"basalt.auth.refresh-token-key.v1");
        Self(mac.finalize().into_bytes().into())
    }

    fn mac(&self, session: Uuid, generation: i32) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| unreachable_key());
        mac.update(session.as_bytes());
        mac.update(&generation.to_be_bytes());
        mac
    }

    pub fn issue(&self, session: Uuid, generation: i32) -> String {
        let tag = self.mac(session, generation).finalize().into_bytes();
        format!("brt_{}.{generation}.{}", session.simple(), B64.encode(tag))
    }

    /// The session and generation of a genuine token; `None` for anything forged or garbled.
    pub fn open(&self, token: &str) -> Option<(Uuid, i32)> {
        let rest = token.strip_prefix("brt_")?;
        let mut parts = rest.splitn(3, '.');
        let session = Uuid::parse_str(parts.next()?).ok()?;
        let generation: i32 = parts.next()?.parse().ok()?;
        let tag = B64.decode(parts.next()?).ok()?;
        self.mac(session, generation).verify_slice(&tag).ok()?;
        Some((session, generation))
    }
}

/// HMAC takes keys of any length, so construction cannot fail; this keeps `unwrap` out.
fn unreachable_key() -> HmacSha256 {
    unreachable!("HMAC accepts keys of any length")
}

/// A single-use token for an email link: the random nonce its event carries, and the hash
/// of the token derived from it that is stored (neither resets anything by itself).
pub fn one_time(identity: &IdentitySettings) -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let nonce = B64.encode(bytes);
    let hash = hash_one_time(&crate::events::auth::one_time_token(identity, &nonce));
    (nonce, hash)
}

pub fn hash_one_time(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The access token id for a session's generation: the same pair can be rebuilt in the grace
/// window, and revoking a session covers every generation.
pub fn access_jti(session: Uuid, generation: i32) -> String {
    format!("{}.{generation}", session.simple())
}

pub fn epoch(at: DateTime<Utc>) -> i64 {
    at.timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> RefreshKey {
        RefreshKey::derive(&IdentitySettings {
            jwt_secret: secret.to_owned().into(),
            issuer: "i".into(),
            audience: "a".into(),
            algorithm: "HS256".into(),
            keys: Vec::new(),
        })
    }

    #[test]
    fn refresh_tokens_open_only_when_genuine() {
        let k = key("a-secret-that-is-long-enough-for-hs256-use");
        let s = Uuid::now_v7();
        let t = k.issue(s, 3);
        assert_eq!(k.open(&t), Some((s, 3)));
        assert_eq!(
            k.open(&t.replacen(".3.", ".4.", 1)),
            None,
            "generation is signed"
        );
        assert_eq!(
            key("another-secret-that-is-long-enough-too!!").open(&t),
            None
        );
        assert_eq!(k.open("brt_garbage"), None);
        assert_eq!(k.issue(s, 3), t, "deterministic");
    }
}
