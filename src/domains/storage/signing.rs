//! Signed download URLs: an HMAC-SHA256 over what the URL opens and until when, under a key
//! derived from the identity secret (so replicas agree, and rotating the secret revokes every
//! URL).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;
use uuid::Uuid;

use crate::config::IdentitySettings;

type HmacSha256 = Hmac<Sha256>;

pub struct UrlSigner([u8; 32]);

/// What a signed URL opens: the file's current version, one version, or a variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant<'a> {
    pub file: Uuid,
    pub version: Option<i32>,
    pub variant: Option<&'a str>,
    pub expires: i64,
}

impl UrlSigner {
    pub fn derive(identity: &IdentitySettings) -> Self {
        let mut mac = HmacSha256::new_from_slice(identity.jwt_secret.expose_secret().as_bytes())
            .unwrap_or_else(|_| {
                HmacSha256::new_from_slice(&[0; 32]).unwrap_or_else(|_| unreachable!())
            });
        mac.update(b"basalt.storage.signed-url-key.v1");
        Self(mac.finalize().into_bytes().into())
    }

    fn mac(&self, g: &Grant<'_>) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        // Length-prefixed fields, so no two grants share an input.
        mac.update(g.file.as_bytes());
        mac.update(&g.version.unwrap_or(-1).to_be_bytes());
        let variant = g.variant.unwrap_or_default().as_bytes();
        mac.update(&(variant.len() as u32).to_be_bytes());
        mac.update(variant);
        mac.update(&g.expires.to_be_bytes());
        mac
    }

    pub fn sign(&self, g: &Grant<'_>) -> String {
        B64.encode(self.mac(g).finalize().into_bytes())
    }

    /// Constant-time check of the signature; expiry is the caller's to compare.
    pub fn verify(&self, g: &Grant<'_>, signature: &str) -> bool {
        match B64.decode(signature) {
            Ok(tag) => self.mac(g).verify_slice(&tag).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_change_breaks_the_signature() {
        let signer = UrlSigner([7; 32]);
        let g = Grant {
            file: Uuid::now_v7(),
            version: None,
            variant: None,
            expires: 1_900_000_000,
        };
        let sig = signer.sign(&g);
        assert!(signer.verify(&g, &sig));
        assert!(!signer.verify(
            &Grant {
                expires: g.expires + 1,
                ..g.clone()
            },
            &sig
        ));
        assert!(!signer.verify(
            &Grant {
                version: Some(1),
                ..g.clone()
            },
            &sig
        ));
        assert!(!signer.verify(
            &Grant {
                variant: Some("thumb"),
                ..g.clone()
            },
            &sig
        ));
        assert!(!signer.verify(&g, "garbage"));
    }
}
