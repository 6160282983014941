//! JSON Web Encryption (RFC 7516, compact serialization) for the platform's "Enforce JWE
//! Encryption" app option: the signed JWT is encrypted to the platform's RSA public key with a
//! fresh content key per token. Key wrapping is `RSA-OAEP` (SHA-1, MGF1-SHA-1) or `RSA1_5`;
//! content encryption is `A128CBC-HS256` (RFC 7518 §5.2.2.1), `A128GCM` or `A256GCM`. The
//! protected header carries `alg`, `enc`, `kid`, `typ: "JWT"` and `cty: "JWT"`.
//!
//! This module owns the sending side only: the algorithm names, key parsing for the platform's
//! public key, and encryption. Callers parse the key once ([`parse_public_key`], from the JWK
//! the app settings show, or a PEM plus an explicit `kid`), build a [`JweEncrypter`] and call
//! [`JweEncrypter::encrypt`] per token. The receiving side (private keys, decryption) is not on
//! the exporter's request path and lives with the simulator in
//! [`crate::simulator::jwe`], which reuses the JWK parsing and CBC-HS256 MAC helpers marked
//! `pub(crate)` here. Pure Rust (RustCrypto), no OpenSSL.

use std::fmt;
use std::str::FromStr;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockEncryptMut, KeyIvInit};
use hmac::digest::InvalidLength;
use hmac::{Hmac, Mac};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::rand_core::{OsRng, RngCore};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Oaep, Pkcs1v15Encrypt, RsaPublicKey};
use serde::Deserialize;
use sha2::Sha256;

/// RFC 7518 requires RSA keys of at least this many bits for `RSA-OAEP` and `RSA1_5`.
pub const MIN_RSA_BITS: usize = 2048;

/// Key management algorithm (`alg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSAES-OAEP with SHA-1 and MGF1-SHA-1 (the platform's default).
    RsaOaep,
    /// RSAES-PKCS1-v1_5.
    Rsa1_5,
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::RsaOaep => "RSA-OAEP",
            KeyAlgorithm::Rsa1_5 => "RSA1_5",
        }
    }
}

impl FromStr for KeyAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RSA-OAEP" => Ok(KeyAlgorithm::RsaOaep),
            "RSA1_5" => Ok(KeyAlgorithm::Rsa1_5),
            other => Err(format!(
                "{other:?} is not supported; use \"RSA-OAEP\" or \"RSA1_5\""
            )),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Content encryption algorithm (`enc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncryption {
    A128CbcHs256,
    A128Gcm,
    A256Gcm,
}

impl ContentEncryption {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentEncryption::A128CbcHs256 => "A128CBC-HS256",
            ContentEncryption::A128Gcm => "A128GCM",
            ContentEncryption::A256Gcm => "A256GCM",
        }
    }

    /// Length of the content encryption key (for CBC-HS: MAC key plus AES key).
    pub fn key_len(self) -> usize {
        match self {
            ContentEncryption::A128CbcHs256 | ContentEncryption::A256Gcm => 32,
            ContentEncryption::A128Gcm => 16,
        }
    }

    pub fn iv_len(self) -> usize {
        match self {
            ContentEncryption::A128CbcHs256 => 16,
            ContentEncryption::A128Gcm | ContentEncryption::A256Gcm => 12,
        }
    }
}

impl FromStr for ContentEncryption {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "A128CBC-HS256" => Ok(ContentEncryption::A128CbcHs256),
            "A128GCM" => Ok(ContentEncryption::A128Gcm),
            "A256GCM" => Ok(ContentEncryption::A256Gcm),
            other => Err(format!(
                "{other:?} is not supported; use \"A128CBC-HS256\", \"A128GCM\" or \"A256GCM\""
            )),
        }
    }
}

impl fmt::Display for ContentEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a key could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not a JWK (JSON) or PEM RSA key: {0}")]
    Format(String),
    #[error("the JWK has kty {0:?}; only RSA keys are supported")]
    NotRsa(String),
    #[error("the JWK lacks {0:?}")]
    MissingMember(&'static str),
    #[error("the JWK member {0:?} is not base64url")]
    Base64(&'static str),
    #[error("the RSA key is invalid: {0}")]
    Invalid(String),
    #[error("the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required")]
    TooSmall { bits: usize },
    #[error("no key id: a PEM key needs auth.jwe_kid (the kid shown next to the platform's key)")]
    MissingKid,
    #[error("auth.jwe_kid {configured:?} differs from the JWK's kid {in_key:?}")]
    KidMismatch { configured: String, in_key: String },
}

/// The platform's public key and its key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientKey {
    pub key: RsaPublicKey,
    pub kid: String,
}

/// The JWK members this crate reads. The private members (`d`, `p`, `q`) are read only by the
/// simulator's private-key parser.
#[derive(Deserialize)]
pub(crate) struct Jwk {
    pub(crate) kty: Option<String>,
    pub(crate) kid: Option<String>,
    pub(crate) n: Option<String>,
    pub(crate) e: Option<String>,
    pub(crate) d: Option<String>,
    pub(crate) p: Option<String>,
    pub(crate) q: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JwkOrSet {
    Set { keys: Vec<Jwk> },
    Key(Jwk),
}

/// One JWK, or the only key of a JWK set.
pub(crate) fn parse_jwk(text: &str) -> Result<Jwk, KeyError> {
    match serde_json::from_str::<JwkOrSet>(text) {
        Ok(JwkOrSet::Key(k)) => Ok(k),
        Ok(JwkOrSet::Set { mut keys }) if keys.len() == 1 => Ok(keys.remove(0)),
        Ok(JwkOrSet::Set { keys }) => Err(KeyError::Format(format!(
            "a JWK set must hold exactly one key, this one holds {}",
            keys.len()
        ))),
        Err(e) => Err(KeyError::Format(format!("invalid JSON: {e}"))),
    }
}

/// A base64url JWK member as an unsigned big-endian integer.
pub(crate) fn b64_member(value: &Option<String>, name: &'static str) -> Result<BigUint, KeyError> {
    let v = value.as_deref().ok_or(KeyError::MissingMember(name))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(v.trim_end_matches('='))
        .map_err(|_| KeyError::Base64(name))?;
    Ok(BigUint::from_bytes_be(&bytes))
}

pub(crate) fn check_rsa_kty(jwk: &Jwk) -> Result<(), KeyError> {
    match jwk.kty.as_deref() {
        Some("RSA") => Ok(()),
        Some(other) => Err(KeyError::NotRsa(other.to_string())),
        None => Err(KeyError::MissingMember("kty")),
    }
}

fn check_size(bits: usize) -> Result<(), KeyError> {
    if bits < MIN_RSA_BITS {
        return Err(KeyError::TooSmall { bits });
    }
    Ok(())
}

/// Parse the platform's public key: a JWK (`{"kty":"RSA","n","e","kid"}`, or a JWK set with
/// one key) or a PEM `PUBLIC KEY` / `RSA PUBLIC KEY`. `configured_kid` (`auth.jwe_kid`) is
/// required for PEM and, for a JWK, must match the JWK's `kid` when both are present.
pub fn parse_public_key(
    text: &str,
    configured_kid: Option<&str>,
) -> Result<RecipientKey, KeyError> {
    let text = text.trim();
    let (key, key_kid) = if text.starts_with('{') {
        let jwk = parse_jwk(text)?;
        check_rsa_kty(&jwk)?;
        let n = b64_member(&jwk.n, "n")?;
        let e = b64_member(&jwk.e, "e")?;
        let key = RsaPublicKey::new(n, e).map_err(|e| KeyError::Invalid(e.to_string()))?;
        (key, jwk.kid.filter(|k| !k.is_empty()))
    } else if text.starts_with("-----BEGIN PUBLIC KEY-----") {
        let key = RsaPublicKey::from_public_key_pem(text)
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        (key, None)
    } else if text.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
        let key =
            RsaPublicKey::from_pkcs1_pem(text).map_err(|e| KeyError::Invalid(e.to_string()))?;
        (key, None)
    } else {
        return Err(KeyError::Format(
            "expected a JSON object or a PEM block starting with -----BEGIN PUBLIC KEY-----".into(),
        ));
    };
    check_size(key.size() * 8)?;
    let configured = configured_kid.map(str::trim).filter(|k| !k.is_empty());
    let kid = match (configured, key_kid) {
        (Some(c), Some(k)) if c != k => {
            return Err(KeyError::KidMismatch {
                configured: c.to_string(),
                in_key: k,
            })
        }
        (Some(c), _) => c.to_string(),
        (None, Some(k)) => k,
        (None, None) => return Err(KeyError::MissingKid),
    };
    Ok(RecipientKey { key, kid })
}

/// Why encryption failed.
#[derive(Debug, thiserror::Error)]
pub enum JweError {
    #[error("RSA key encryption failed")]
    WrapKey(#[source] rsa::Error),
    #[error("content encryption failed")]
    Seal,
}

/// Encrypt `plaintext` with `enc` under `cek`/`iv`, authenticating `aad`. Returns
/// (ciphertext, authentication tag).
fn seal(
    enc: ContentEncryption,
    cek: &[u8],
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), JweError> {
    if cek.len() != enc.key_len() || iv.len() != enc.iv_len() {
        return Err(JweError::Seal);
    }
    match enc {
        ContentEncryption::A128CbcHs256 => {
            let (mac_key, enc_key) = cek.split_at(16);
            let ciphertext = cbc::Encryptor::<aes::Aes128>::new_from_slices(enc_key, iv)
                .map_err(|_| JweError::Seal)?
                .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
            let tag = cbc_hs256_mac(mac_key, aad, iv, &ciphertext)
                .map_err(|_| JweError::Seal)?
                .finalize()
                .into_bytes();
            Ok((ciphertext, tag[..16].to_vec()))
        }
        ContentEncryption::A128Gcm | ContentEncryption::A256Gcm => {
            let mut buf = plaintext.to_vec();
            let nonce = Nonce::from_slice(iv);
            let tag = if enc == ContentEncryption::A128Gcm {
                Aes128Gcm::new_from_slice(cek)
                    .map_err(|_| JweError::Seal)?
                    .encrypt_in_place_detached(nonce, aad, &mut buf)
            } else {
                Aes256Gcm::new_from_slice(cek)
                    .map_err(|_| JweError::Seal)?
                    .encrypt_in_place_detached(nonce, aad, &mut buf)
            }
            .map_err(|_| JweError::Seal)?;
            Ok((buf, tag.to_vec()))
        }
    }
}

/// RFC 7518 §5.2.2.1: HMAC-SHA-256 over AAD || IV || ciphertext || AL (AAD length in bits,
/// 64-bit big-endian); the tag is the first half of the MAC. Returned unfinalized so that the
/// sender can take the tag and the receiver can verify it in constant time.
pub(crate) fn cbc_hs256_mac(
    mac_key: &[u8],
    aad: &[u8],
    iv: &[u8],
    ct: &[u8],
) -> Result<Hmac<Sha256>, InvalidLength> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(mac_key)?;
    mac.update(aad);
    mac.update(iv);
    mac.update(ct);
    mac.update(&((aad.len() as u64) * 8).to_be_bytes());
    Ok(mac)
}

/// Encrypts tokens to one recipient key. Cheap to clone; `Debug` shows only the parameters.
#[derive(Clone)]
pub struct JweEncrypter {
    key: RsaPublicKey,
    kid: String,
    alg: KeyAlgorithm,
    enc: ContentEncryption,
    /// BASE64URL(UTF-8(protected header)), also the AAD.
    header_b64: String,
}

impl fmt::Debug for JweEncrypter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JweEncrypter")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("enc", &self.enc)
            .finish_non_exhaustive()
    }
}

impl JweEncrypter {
    pub fn new(recipient: RecipientKey, alg: KeyAlgorithm, enc: ContentEncryption) -> Self {
        let header = serde_json::json!({
            "alg": alg.as_str(),
            "enc": enc.as_str(),
            "kid": recipient.kid,
            "typ": "JWT",
            "cty": "JWT",
        });
        let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
        JweEncrypter {
            key: recipient.key,
            kid: recipient.kid,
            alg,
            enc,
            header_b64,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> KeyAlgorithm {
        self.alg
    }

    pub fn enc(&self) -> ContentEncryption {
        self.enc
    }

    /// The compact JWE of `plaintext`, with a fresh random content key and IV.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<String, JweError> {
        let mut cek = vec![0u8; self.enc.key_len()];
        OsRng.fill_bytes(&mut cek);
        let mut iv = vec![0u8; self.enc.iv_len()];
        OsRng.fill_bytes(&mut iv);
        let encrypted_key = match self.alg {
            KeyAlgorithm::RsaOaep => self
                .key
                .encrypt(&mut OsRng, Oaep::new::<sha1::Sha1>(), &cek),
            KeyAlgorithm::Rsa1_5 => self.key.encrypt(&mut OsRng, Pkcs1v15Encrypt, &cek),
        }
        .map_err(JweError::WrapKey)?;
        let (ciphertext, tag) = seal(self.enc, &cek, &iv, self.header_b64.as_bytes(), plaintext)?;
        Ok(format!(
            "{}.{}.{}.{}.{}",
            self.header_b64,
            URL_SAFE_NO_PAD.encode(encrypted_key),
            URL_SAFE_NO_PAD.encode(iv),
            URL_SAFE_NO_PAD.encode(ciphertext),
            URL_SAFE_NO_PAD.encode(tag)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwe_test_vectors::*;
    use crate::simulator::jwe::{parse_private_key, JweDecrypter, JweHeader};

    const FIXTURE_PRIVATE: &str = include_str!("../../tests/fixtures/jwe/private.pem");
    const FIXTURE_PUBLIC_JWK: &str = include_str!("../../tests/fixtures/jwe/public.jwk.json");
    const FIXTURE_PUBLIC_PEM: &str = include_str!("../../tests/fixtures/jwe/public.pem");

    fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).expect("base64url")
    }

    #[test]
    fn a128cbc_hs256_matches_rfc7516_a2() {
        let (ct, tag) = seal(
            ContentEncryption::A128CbcHs256,
            &A2_CEK,
            &b64(A2_IV),
            A2_HEADER_B64.as_bytes(),
            b"Live long and prosper.",
        )
        .expect("seal");
        assert_eq!(URL_SAFE_NO_PAD.encode(&ct), A2_CIPHERTEXT);
        assert_eq!(URL_SAFE_NO_PAD.encode(&tag), A2_TAG);
    }

    #[test]
    fn a256gcm_matches_rfc7516_a1() {
        let (ct, tag) = seal(
            ContentEncryption::A256Gcm,
            &A1_CEK,
            &b64(A1_IV),
            A1_HEADER_B64.as_bytes(),
            A1_PLAINTEXT.as_bytes(),
        )
        .expect("seal");
        assert_eq!(URL_SAFE_NO_PAD.encode(&ct), A1_CIPHERTEXT);
        assert_eq!(URL_SAFE_NO_PAD.encode(&tag), A1_TAG);
    }

    #[test]
    fn round_trips_every_supported_combination_with_the_documented_header() {
        let decrypter = JweDecrypter::new(parse_private_key(FIXTURE_PRIVATE).expect("private"));
        let recipient = parse_public_key(FIXTURE_PUBLIC_JWK, None).expect("public");
        assert_eq!(recipient.kid, "k-test-fixture-0001");
        assert_eq!(recipient.key, decrypter.public_key());
        for alg in [KeyAlgorithm::RsaOaep, KeyAlgorithm::Rsa1_5] {
            for enc in [
                ContentEncryption::A128CbcHs256,
                ContentEncryption::A128Gcm,
                ContentEncryption::A256Gcm,
            ] {
                let e = JweEncrypter::new(recipient.clone(), alg, enc);
                let a = e.encrypt(b"header.payload.signature").expect("encrypt");
                let b = e.encrypt(b"header.payload.signature").expect("encrypt");
                assert_ne!(a, b, "fresh CEK and IV per token");
                assert_eq!(a.split('.').count(), 5);
                let (h, pt) = decrypter.decrypt(&a).expect("decrypt");
                assert_eq!(pt, b"header.payload.signature");
                assert_eq!(
                    h,
                    JweHeader {
                        alg: alg.as_str().into(),
                        enc: enc.as_str().into(),
                        kid: Some("k-test-fixture-0001".into()),
                        typ: Some("JWT".into()),
                        cty: Some("JWT".into()),
                    }
                );
                // Tampering with the ciphertext is detected.
                let mut parts: Vec<String> = a.split('.').map(String::from).collect();
                let mut ct = b64(&parts[3]);
                ct[0] ^= 1;
                parts[3] = URL_SAFE_NO_PAD.encode(ct);
                assert!(decrypter.decrypt(&parts.join(".")).is_err(), "{alg} {enc}");
            }
        }
    }

    #[test]
    fn public_key_forms_and_kid_rules() {
        let jwk = parse_public_key(FIXTURE_PUBLIC_JWK, None).expect("jwk");
        let pem = parse_public_key(FIXTURE_PUBLIC_PEM, Some("k-test-fixture-0001")).expect("pem");
        assert_eq!(jwk, pem);
        assert_eq!(
            parse_public_key(FIXTURE_PUBLIC_PEM, None),
            Err(KeyError::MissingKid)
        );
        assert!(matches!(
            parse_public_key(FIXTURE_PUBLIC_JWK, Some("other")),
            Err(KeyError::KidMismatch { .. })
        ));
        assert_eq!(
            parse_public_key(FIXTURE_PUBLIC_JWK, Some("k-test-fixture-0001"))
                .expect("same kid")
                .kid,
            "k-test-fixture-0001"
        );
        let set = format!("{{\"keys\":[{FIXTURE_PUBLIC_JWK}]}}");
        assert_eq!(parse_public_key(&set, None).expect("set"), jwk);
        assert_eq!(
            parse_public_key(r#"{"kty":"EC","kid":"x"}"#, None),
            Err(KeyError::NotRsa("EC".into()))
        );
        assert!(matches!(
            parse_public_key("ssh-rsa AAAA", Some("k")),
            Err(KeyError::Format(_))
        ));
        // The RFC's 2048-bit key passes; a 1024-bit key is refused.
        assert!(parse_public_key(A2_JWK, Some("rfc")).is_ok());
        let small = r#"{"kty":"RSA","kid":"s","e":"AQAB","n":"xtYE8JuTdYAymGOTD_Z2SbC4kH6vjN9ygE-PVm4RVggo1B5Qh71jvix1PZ3eUTlx6ABliyeajPPgYH5olEUZP42bRI4YJiERCV9MfpR3PGM-U2HTABQzi6QYuOlYfjx_ZihCMkbgqvyrTq9jRYGofxi7S6ZXeUrru3JZgstUlj0"}"#;
        assert!(matches!(
            parse_public_key(small, None),
            Err(KeyError::TooSmall { .. })
        ));
    }
}
