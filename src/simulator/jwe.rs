//! The simulator's "Enforce JWE Encryption" mode: with [`SimJwe`] set in
//! [`super::SimulatorConfig::jwe`], the `auth` header must be a compact JWE (RSA-OAEP or
//! RSA1_5; A128CBC-HS256, A128GCM or A256GCM) addressed to the simulator's private key, with the
//! expected `kid` and `typ: "JWT"`; its plaintext is the signed JWT that the normal JWT and JTI
//! checks then verify. A bare JWS, a JWE for another key, or any decryption failure is refused
//! as invalid credentials (the platform's error for a token it cannot use).
//!
//! This module also owns the receiving side of JWE, which the exporter itself never needs:
//! private-key parsing ([`parse_private_key`]), the protected header ([`JweHeader`]) and
//! decryption ([`JweDecrypter`], also used by tests to inspect what the exporter sent). The
//! algorithm names, JWK parsing and the CBC-HS256 MAC are shared with the sending side in
//! [`crate::auth::jwe`].

use std::fmt;
use std::path::Path;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use hmac::Mac;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::rand_core::{OsRng, RngCore};
use rsa::{Oaep, Pkcs1v15Encrypt, RsaPrivateKey, RsaPublicKey};
use serde::Deserialize;

use crate::auth::jwe::{
    b64_member, cbc_hs256_mac, check_rsa_kty, parse_jwk, ContentEncryption, KeyAlgorithm, KeyError,
};

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

/// Parse an RSA private key: PEM `PRIVATE KEY` (PKCS#8), PEM `RSA PRIVATE KEY` (PKCS#1), or a
/// JWK with `n`, `e`, `d`, `p`, `q`.
pub fn parse_private_key(text: &str) -> Result<RsaPrivateKey, KeyError> {
    let text = text.trim();
    let key = if text.starts_with('{') {
        let jwk = parse_jwk(text)?;
        check_rsa_kty(&jwk)?;
        let n = b64_member(&jwk.n, "n")?;
        let e = b64_member(&jwk.e, "e")?;
        let d = b64_member(&jwk.d, "d")?;
        let p = b64_member(&jwk.p, "p")?;
        let q = b64_member(&jwk.q, "q")?;
        RsaPrivateKey::from_components(n, e, d, vec![p, q])
            .map_err(|e| KeyError::Invalid(e.to_string()))?
    } else if text.starts_with("-----BEGIN PRIVATE KEY-----") {
        RsaPrivateKey::from_pkcs8_pem(text).map_err(|e| KeyError::Invalid(e.to_string()))?
    } else if text.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
        RsaPrivateKey::from_pkcs1_pem(text).map_err(|e| KeyError::Invalid(e.to_string()))?
    } else {
        return Err(KeyError::Format(
            "expected a JWK or a PEM block starting with -----BEGIN PRIVATE KEY-----".into(),
        ));
    };
    key.validate()
        .map_err(|e| KeyError::Invalid(e.to_string()))?;
    Ok(key)
}

/// The protected header of a received JWE.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JweHeader {
    pub alg: String,
    pub enc: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub cty: Option<String>,
}

/// Why a JWE could not be decrypted. Cryptographic failures are deliberately undetailed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JweDecryptError {
    #[error("not a compact JWE: {0}")]
    Malformed(&'static str),
    #[error("unsupported JWE header: {0}")]
    Unsupported(String),
    #[error("JWE decryption failed")]
    Decrypt,
}

/// Decrypt `ciphertext` with `enc` under `cek`/`iv`, authenticating `aad` against `tag` (the
/// inverse of the sending side's content encryption); fails on any authentication mismatch.
fn open(
    enc: ContentEncryption,
    cek: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Vec<u8>, JweDecryptError> {
    if cek.len() != enc.key_len() || iv.len() != enc.iv_len() || tag.len() != 16 {
        return Err(JweDecryptError::Decrypt);
    }
    match enc {
        ContentEncryption::A128CbcHs256 => {
            let (mac_key, enc_key) = cek.split_at(16);
            cbc_hs256_mac(mac_key, aad, iv, ciphertext)
                .map_err(|_| JweDecryptError::Decrypt)?
                .verify_truncated_left(tag)
                .map_err(|_| JweDecryptError::Decrypt)?;
            cbc::Decryptor::<aes::Aes128>::new_from_slices(enc_key, iv)
                .map_err(|_| JweDecryptError::Decrypt)?
                .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
                .map_err(|_| JweDecryptError::Decrypt)
        }
        ContentEncryption::A128Gcm | ContentEncryption::A256Gcm => {
            let mut buf = ciphertext.to_vec();
            let nonce = Nonce::from_slice(iv);
            let tag = aes_gcm::Tag::from_slice(tag);
            if enc == ContentEncryption::A128Gcm {
                Aes128Gcm::new_from_slice(cek)
                    .map_err(|_| JweDecryptError::Decrypt)?
                    .decrypt_in_place_detached(nonce, aad, &mut buf, tag)
            } else {
                Aes256Gcm::new_from_slice(cek)
                    .map_err(|_| JweDecryptError::Decrypt)?
                    .decrypt_in_place_detached(nonce, aad, &mut buf, tag)
            }
            .map_err(|_| JweDecryptError::Decrypt)?;
            Ok(buf)
        }
    }
}

/// Decrypts compact JWEs addressed to one private key (the simulator's JWE mode, tests).
#[derive(Clone)]
pub struct JweDecrypter {
    key: RsaPrivateKey,
}

impl fmt::Debug for JweDecrypter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JweDecrypter([REDACTED])")
    }
}

impl JweDecrypter {
    pub fn new(key: RsaPrivateKey) -> Self {
        JweDecrypter { key }
    }

    /// The matching public key (for handing to an encrypter in tests).
    pub fn public_key(&self) -> RsaPublicKey {
        self.key.to_public_key()
    }

    /// Decrypt a compact JWE; returns its protected header and plaintext.
    pub fn decrypt(&self, compact: &str) -> Result<(JweHeader, Vec<u8>), JweDecryptError> {
        let parts: Vec<&str> = compact.split('.').collect();
        if parts.len() != 5 {
            return Err(JweDecryptError::Malformed(
                "expected five dot-separated parts",
            ));
        }
        let b64 = |s: &str| {
            URL_SAFE_NO_PAD
                .decode(s)
                .map_err(|_| JweDecryptError::Malformed("a part is not base64url"))
        };
        let header: JweHeader = serde_json::from_slice(&b64(parts[0])?)
            .map_err(|_| JweDecryptError::Malformed("the protected header is not a JWE header"))?;
        let alg = header
            .alg
            .parse::<KeyAlgorithm>()
            .map_err(JweDecryptError::Unsupported)?;
        let enc = header
            .enc
            .parse::<ContentEncryption>()
            .map_err(JweDecryptError::Unsupported)?;
        let encrypted_key = b64(parts[1])?;
        let cek = match alg {
            KeyAlgorithm::RsaOaep => self
                .key
                .decrypt(Oaep::new::<sha1::Sha1>(), &encrypted_key)
                .map_err(|_| JweDecryptError::Decrypt)?,
            // RFC 7516 §11.5: on a PKCS#1 v1.5 failure continue with a random key so that the
            // outcome does not reveal which step failed.
            KeyAlgorithm::Rsa1_5 => match self.key.decrypt(Pkcs1v15Encrypt, &encrypted_key) {
                Ok(k) if k.len() == enc.key_len() => k,
                _ => {
                    let mut k = vec![0u8; enc.key_len()];
                    OsRng.fill_bytes(&mut k);
                    k
                }
            },
        };
        let plaintext = open(
            enc,
            &cek,
            &b64(parts[2])?,
            parts[0].as_bytes(),
            &b64(parts[3])?,
            &b64(parts[4])?,
        )?;
        Ok((header, plaintext))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwe::{parse_public_key, JweEncrypter};
    use crate::auth::jwe_test_vectors::*;

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

    #[test]
    fn decrypts_the_complete_rfc7516_a2_example() {
        let key = parse_private_key(A2_JWK).expect("RFC key");
        let compact =
            format!("{A2_HEADER_B64}.{A2_ENCRYPTED_KEY}.{A2_IV}.{A2_CIPHERTEXT}.{A2_TAG}");
        let (header, plaintext) = JweDecrypter::new(key).decrypt(&compact).expect("decrypt");
        assert_eq!(header.alg, "RSA1_5");
        assert_eq!(header.enc, "A128CBC-HS256");
        assert_eq!(plaintext, b"Live long and prosper.");
        // One flipped tag bit must fail.
        let bad = format!(
            "{A2_HEADER_B64}.{A2_ENCRYPTED_KEY}.{A2_IV}.{A2_CIPHERTEXT}.8hH0vgRfYgPnAHOd8stkvw"
        );
        assert!(JweDecrypter::new(parse_private_key(A2_JWK).expect("key"))
            .decrypt(&bad)
            .is_err());
    }

    #[test]
    fn decrypter_rejects_garbage_without_panicking() {
        let d = JweDecrypter::new(parse_private_key(PRIVATE).expect("private"));
        for s in [
            "",
            "a.b.c",
            "a.b.c.d.e",
            "e30.AA.AA.AA.AA",
            "eyJhbGciOiJkaXIiLCJlbmMiOiJBMTI4R0NNIn0.AA.AA.AA.AA",
            "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkExMjhHQ00ifQ.AA.AA.AA.AA",
            "eyJhbGciOiJSU0ExXzUiLCJlbmMiOiJBMTI4R0NNIn0.AA.AA.AA.AA",
        ] {
            assert!(d.decrypt(s).is_err(), "{s:?}");
        }
    }
}
