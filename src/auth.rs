//! Token minting for the report APIs: an HS256 JWT whose `appId` claim is the app's Client ID,
//! signed with the Client Secret and sent raw in the `auth` header. Without JTI enforcement one
//! token is reused until shortly before it expires; with `enforce_jti` every call to
//! [`TokenMinter::mint`] returns a fresh token with a UUID v4 `jti` and `exp` at most one hour
//! ahead, so callers must mint once per HTTP attempt (including retries). With
//! `[auth] jwe_public_key_file` set, every minted token is the signed JWT wrapped in a compact
//! JWE addressed to the platform's key ([`jwe`]); the wrapped form is what `mint` returns.

pub mod jwe;
#[cfg(test)]
pub(crate) mod jwe_test_vectors;

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use jwe::{ContentEncryption, KeyAlgorithm, RecipientKey};

/// A secret string. Never printed: `Debug` and `Display` show `[REDACTED]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself; call only where it is used (signing), never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// How tokens are minted: validated from `[auth]` by the config layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub enforce_jti: bool,
    pub token_ttl: Duration,
    /// Wrap every token in a JWE ("Enforce JWE Encryption").
    pub jwe: Option<JweConfig>,
}

/// Validated `[auth] jwe_*` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JweConfig {
    pub recipient: RecipientKey,
    pub alg: KeyAlgorithm,
    pub enc: ContentEncryption,
}

/// The platform's hard limit on `exp - iat` for tokens carrying a `jti`.
pub const MAX_JTI_TTL: Duration = Duration::from_secs(3600);
/// A cached (non-JTI) token is replaced when less than this remains.
const REUSE_MARGIN_SECS: i64 = 60;

/// Claims of a report-API token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    #[serde(rename = "appId")]
    pub app_id: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub jti: Option<String>,
}

/// A minted token. `Debug`/`Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// The header value; use only to build the request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([REDACTED])")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot sign the JWT")]
    Sign(#[source] jsonwebtoken::errors::Error),
    #[error("cannot wrap the JWT in a JWE")]
    Encrypt(#[source] jwe::JweError),
}

/// Mints tokens for one app.
pub struct TokenMinter {
    client_id: String,
    key: EncodingKey,
    enforce_jti: bool,
    ttl: Duration,
    jwe: Option<jwe::JweEncrypter>,
    cached: Mutex<Option<(Token, i64)>>,
}

impl fmt::Debug for TokenMinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenMinter")
            .field("client_id", &self.client_id)
            .field("enforce_jti", &self.enforce_jti)
            .field("ttl", &self.ttl)
            .field("jwe", &self.jwe)
            .finish_non_exhaustive()
    }
}

impl TokenMinter {
    pub fn new(client_id: &str, secret: &Secret, auth: &AuthConfig) -> TokenMinter {
        let ttl = if auth.enforce_jti {
            auth.token_ttl.min(MAX_JTI_TTL)
        } else {
            auth.token_ttl
        };
        TokenMinter {
            client_id: client_id.to_string(),
            key: EncodingKey::from_secret(secret.expose().as_bytes()),
            enforce_jti: auth.enforce_jti,
            ttl: ttl.max(Duration::from_secs(1)),
            jwe: auth
                .jwe
                .as_ref()
                .map(|j| jwe::JweEncrypter::new(j.recipient.clone(), j.alg, j.enc)),
            cached: Mutex::new(None),
        }
    }

    pub fn enforce_jti(&self) -> bool {
        self.enforce_jti
    }

    /// The claims a token minted now would carry.
    pub fn claims_at(&self, now_unix: i64) -> Claims {
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2);
        Claims {
            app_id: self.client_id.clone(),
            sub: self.client_id.clone(),
            iat: now_unix,
            exp: now_unix.saturating_add(ttl),
            jti: self.enforce_jti.then(|| uuid::Uuid::new_v4().to_string()),
        }
    }

    /// The JWE parameters when tokens are wrapped.
    pub fn jwe(&self) -> Option<&jwe::JweEncrypter> {
        self.jwe.as_ref()
    }

    fn sign(&self, claims: &Claims) -> Result<Token, AuthError> {
        let jwt = jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.key)
            .map_err(AuthError::Sign)?;
        match &self.jwe {
            None => Ok(Token(jwt)),
            Some(e) => e
                .encrypt(jwt.as_bytes())
                .map(Token)
                .map_err(AuthError::Encrypt),
        }
    }

    /// A token for one HTTP attempt: fresh when JTI is enforced, otherwise cached while valid.
    pub fn mint(&self) -> Result<Token, AuthError> {
        let now = chrono::Utc::now().timestamp();
        if self.enforce_jti {
            return self.sign(&self.claims_at(now));
        }
        // The lock guards a plain Option; a poisoned lock only means another thread panicked
        // while replacing it, so the value inside is still a whole token or None.
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((token, exp)) = cached.as_ref() {
            if exp - now > REUSE_MARGIN_SECS.min(i64::try_from(self.ttl.as_secs() / 2).unwrap_or(0))
            {
                return Ok(token.clone());
            }
        }
        let claims = self.claims_at(now);
        let token = self.sign(&claims)?;
        *cached = Some((token.clone(), claims.exp));
        Ok(token)
    }

    /// Forget a cached token (after the platform rejected it).
    pub fn invalidate(&self) {
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn decode(token: &Token, secret: &str) -> Claims {
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_aud = false;
        jsonwebtoken::decode::<Claims>(
            token.expose(),
            &DecodingKey::from_secret(secret.as_bytes()),
            &v,
        )
        .expect("valid token")
        .claims
    }

    fn minter(enforce_jti: bool, ttl: u64) -> TokenMinter {
        TokenMinter::new(
            "cs-123",
            &Secret::new("sekrit"),
            &AuthConfig {
                enforce_jti,
                token_ttl: Duration::from_secs(ttl),
                jwe: None,
            },
        )
    }

    #[test]
    fn token_is_hs256_with_app_id_and_verifies_with_the_secret() {
        let t = minter(false, 300).mint().expect("mint");
        let header = jsonwebtoken::decode_header(t.expose()).expect("header");
        assert_eq!(header.alg, Algorithm::HS256);
        let c = decode(&t, "sekrit");
        assert_eq!(c.app_id, "cs-123");
        assert_eq!(c.exp - c.iat, 300);
        assert_eq!(c.jti, None);
        // Wrong secret must not verify.
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_aud = false;
        assert!(jsonwebtoken::decode::<Claims>(
            t.expose(),
            &DecodingKey::from_secret(b"other"),
            &v
        )
        .is_err());
    }

    #[test]
    fn without_jti_the_token_is_reused() {
        let m = minter(false, 300);
        assert_eq!(m.mint().expect("a"), m.mint().expect("b"));
    }

    #[test]
    fn with_jti_every_token_is_fresh_and_capped_at_one_hour() {
        let m = minter(true, 7200);
        let a = decode(&m.mint().expect("a"), "sekrit");
        let b = decode(&m.mint().expect("b"), "sekrit");
        assert_ne!(a.jti, b.jti);
        assert!(a
            .jti
            .as_deref()
            .is_some_and(|j| uuid::Uuid::parse_str(j).is_ok()));
        assert!(a.exp - a.iat <= 3600);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = minter(false, 300).mint().expect("mint");
        assert!(!format!("{t:?}{t}").contains(t.expose()));
    }
}
