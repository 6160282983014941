//! The `[auth]` section: JTI enforcement, token lifetime and the JWE settings ("Enforce JWE
//! Encryption": the platform's public key, its kid, the key wrapping and content encryption).
//! Pure validation over the raw keys and the key file the resolve step read.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::defaults;
use super::files::Resolved;
use super::parse::Problems;
use crate::auth::jwe::{self, ContentEncryption, KeyAlgorithm};
use crate::auth::{AuthConfig, JweConfig};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub enforce_jti: Option<bool>,
    pub token_ttl_seconds: Option<u64>,
    /// The platform's RSA public key (JWK as shown in the app settings, or PEM).
    pub jwe_public_key_file: Option<PathBuf>,
    /// Key id; required with a PEM key, must match a JWK's `kid`.
    pub jwe_kid: Option<String>,
    pub jwe_alg: Option<String>,
    pub jwe_enc: Option<String>,
}

/// The `[auth] jwe_*` keys: all optional; a key file turns JWE on.
fn parse_jwe(p: &mut Problems, auth: &RawAuth, files: &Resolved) -> Option<JweConfig> {
    let alg = match auth.jwe_alg.as_deref().unwrap_or(defaults::JWE_ALG).parse() {
        Ok(a) => a,
        Err(msg) => {
            p.push("auth.jwe_alg", msg);
            KeyAlgorithm::RsaOaep
        }
    };
    let enc = match auth.jwe_enc.as_deref().unwrap_or(defaults::JWE_ENC).parse() {
        Ok(e) => e,
        Err(msg) => {
            p.push("auth.jwe_enc", msg);
            ContentEncryption::A128CbcHs256
        }
    };
    let Some(file) = &auth.jwe_public_key_file else {
        if auth.jwe_kid.is_some() || auth.jwe_alg.is_some() || auth.jwe_enc.is_some() {
            p.push(
                "auth.jwe_public_key_file",
                "jwe_kid, jwe_alg and jwe_enc need jwe_public_key_file (the platform's public key)",
            );
        }
        return None;
    };
    let _ = file;
    // The resolve step read the file (or reported why it could not).
    let (file, text) = files.jwe_key.as_ref()?;
    match jwe::parse_public_key(text, auth.jwe_kid.as_deref()) {
        Ok(recipient) => Some(JweConfig {
            recipient,
            alg,
            enc,
        }),
        Err(e) => {
            let key = match e {
                jwe::KeyError::MissingKid | jwe::KeyError::KidMismatch { .. } => "auth.jwe_kid",
                _ => "auth.jwe_public_key_file",
            };
            p.push(key, format!("{}: {e}", file.display()));
            None
        }
    }
}

/// Validates `[auth]`; `simulator` says whether `api.base_url` is the built-in simulator.
pub fn validate(auth: &RawAuth, files: &Resolved, simulator: bool, p: &mut Problems) -> AuthConfig {
    let enforce_jti = auth.enforce_jti.unwrap_or(defaults::ENFORCE_JTI);
    let ttl = auth
        .token_ttl_seconds
        .unwrap_or(defaults::TOKEN_TTL_SECONDS);
    if ttl == 0 {
        p.push("auth.token_ttl_seconds", "must be at least 1");
    }
    if enforce_jti && ttl > 3600 {
        p.push(
            "auth.token_ttl_seconds",
            "must be at most 3600 when enforce_jti is true (the platform rejects longer tokens)",
        );
    }

    let jwe = parse_jwe(p, auth, files);
    if jwe.is_some() && simulator {
        p.push(
            "auth.jwe_public_key_file",
            "the built-in simulator (base_url = \"simulator\") has no private key to decrypt \
             JWEs; run `smartassist-export simulate --jwe-private-key-file ...` and point \
             api.base_url at it",
        );
    }
    AuthConfig {
        enforce_jti,
        token_ttl: Duration::from_secs(ttl),
        jwe,
    }
}
