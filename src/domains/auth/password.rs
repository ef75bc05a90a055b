//! Password policy and hashing.
//!
//! Policy (OWASP ASVS level 2): length only, no composition rules, and never one of the
//! 30,000 most common passwords (`common-passwords.txt`). Hashing: argon2id at OWASP's
//! parameters (m = 19456 KiB, t = 2, p = 1), run on the blocking pool so a login never stalls
//! the async workers.

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

use crate::platform::error::FieldError;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
});

fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's bounds.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password against the policy; the error names the field.
pub fn check(field: &str, password: &str, min: usize, max: usize) -> Result<(), FieldError> {
    let chars = password.chars().count();
    let fail = |code: &str, message: String| {
        Err(FieldError {
            field: field.to_owned(),
            code: code.to_owned(),
            message,
        })
    };
    if chars < min {
        return fail("length", format!("must be at least {min} characters long"));
    }
    if chars > max {
        return fail("length", format!("must be at most {max} characters long"));
    }
    if COMMON.contains(password.to_lowercase().as_str()) {
        return fail(
            "common",
            "is one of the most common passwords; choose another".into(),
        );
    }
    Ok(())
}

pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        // A random salt from the OS for each hash.
        let hashed: PasswordHash = argon2()
            .hash_password(password.as_bytes())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
        Ok(hashed.to_string())
    })
    .await?
}

/// Verifies `password` against `hash`; with no hash (unknown account) it verifies against a
/// dummy so that both cases take the same time and reveal nothing.
pub async fn verify(password: String, hash: Option<String>) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let stored = hash.unwrap_or_else(|| DUMMY.clone());
        let parsed: PasswordHash = stored
            .parse()
            .map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
        Ok(argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await?
}

static DUMMY: LazyLock<String> = LazyLock::new(|| {
    argon2()
        .hash_password(b"basalt dummy password for unknown accounts")
        .map(|h: PasswordHash| h.to_string())
        .unwrap_or_default()
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_checks_length_and_the_common_list() {
        assert!(check("password", "correct horse battery", 12, 128).is_ok());
        assert_eq!(
            check("password", "short", 12, 128).unwrap_err().code,
            "length"
        );
        assert_eq!(
            check("password", &"x".repeat(129), 12, 128)
                .unwrap_err()
                .code,
            "length"
        );
        assert_eq!(
            check("password", "qwerty123456", 12, 128).unwrap_err().code,
            "common"
        );
        assert_eq!(
            check("password", "PASSWORD", 8, 128).unwrap_err().code,
            "common"
        );
    }
}
