//! The simulator's "Enforce JWE Encryption" mode: with [`SimJwe`] set in
//! [`super::SimulatorConfig::jwe`], the `auth` header must be a compact JWE (RSA-OAEP or
//! RSA1_5; A128CBC-HS256, A128GCM or A256GCM) addressed to the simulator's private key, with the
//! expected `kid` and `typ: "JWT"`; its plaintext is the signed JWT that the normal JWT and JTI
//! checks then verify. A bare JWS, a JWE for another key, or any decryption failure is refused
//! as invalid credentials (the platform's error for a token it cannot use).

use std::fmt;
use std::path::Path;

use crate::auth::jwe::{parse_private_key, JweDecrypter, KeyError};

/// The simulator's JWE key: the private half of the key the exporter encrypts to.
#[derive(Clone)]
pub struct SimJwe {
    decrypter: JweDecrypter,
    /// When set, the JWE header's `kid` must equal it.
    pub kid: Option<String>,
}

impl fmt::Debug for SimJwe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimJwe")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Why a JWE-mode `auth` header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JweRejection {
    /// Missing header, not a JWE (e.g. a bare JWS), wrong kid or typ, or undecryptable.
    NotAJweForThisKey,
}

/// Reading the simulator's private key failed.
#[derive(Debug, thiserror::Error)]
pub enum SimJweKeyError {
    #[error("cannot read the JWE private key {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("JWE private key {path}")]
    Key {
        path: String,
        #[source]
        source: KeyError,
    },
}

impl SimJwe {
    /// From key text: PEM (PKCS#8 or PKCS#1) or a private JWK.
    pub fn from_key_text(text: &str, kid: Option<String>) -> Result<SimJwe, KeyError> {
        Ok(SimJwe {
            decrypter: JweDecrypter::new(parse_private_key(text)?),
            kid,
        })
    }

    pub fn from_key_file(path: &Path, kid: Option<String>) -> Result<SimJwe, SimJweKeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimJweKeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        SimJwe::from_key_text(&text, kid).map_err(|source| SimJweKeyError::Key {
            path: path.display().to_string(),
            source,
        })
    }

    /// The signed JWT inside `token`, or why it is refused.
    pub(crate) fn unwrap_token(&self, token: Option<&str>) -> Result<String, JweRejection> {
        let token = token.ok_or(JweRejection::NotAJweForThisKey)?;
        let (header, plaintext) = self
            .decrypter
            .decrypt(token)
            .map_err(|_| JweRejection::NotAJweForThisKey)?;
        if header.typ.as_deref() != Some("JWT") {
            return Err(JweRejection::NotAJweForThisKey);
        }
        if let Some(kid) = &self.kid {
            if header.kid.as_deref() != Some(kid.as_str()) {
                return Err(JweRejection::NotAJweForThisKey);
            }
        }
        String::from_utf8(plaintext).map_err(|_| JweRejection::NotAJweForThisKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwe::{parse_public_key, ContentEncryption, JweEncrypter, KeyAlgorithm};

    const PRIVATE: &str = include_str!("../../tests/fixtures/jwe/private.pem");
    const PUBLIC: &str = include_str!("../../tests/fixtures/jwe/public.jwk.json");

    #[test]
    fn unwraps_only_jwes_for_its_key_and_kid() {
        let sim = SimJwe::from_key_text(PRIVATE, Some("k-test-fixture-0001".into())).expect("key");
        let recipient = parse_public_key(PUBLIC, None).expect("public");
        let e = JweEncrypter::new(
            recipient.clone(),
            KeyAlgorithm::RsaOaep,
            ContentEncryption::A128Gcm,
        );
        let token = e.encrypt(b"a.b.c").expect("encrypt");
        assert_eq!(sim.unwrap_token(Some(&token)).as_deref(), Ok("a.b.c"));
        // A bare JWS, nothing, and a JWE with another kid are refused.
        assert!(sim.unwrap_token(Some("a.b.c")).is_err());
        assert!(sim.unwrap_token(None).is_err());
        let other_kid = JweEncrypter::new(
            crate::auth::jwe::RecipientKey {
                kid: "someone-else".into(),
                ..recipient
            },
            KeyAlgorithm::Rsa1_5,
            ContentEncryption::A128CbcHs256,
        );
        let token = other_kid.encrypt(b"a.b.c").expect("encrypt");
        assert!(sim.unwrap_token(Some(&token)).is_err());
    }
}
