//! The simulator's check of the `auth` header: an HS256 JWT signed with the client secret whose
//! `appId` is the client id, plus the platform's "Enforce JTI" rules (jti required, `exp` at most
//! one hour out, no replays). The caller maps a [`JwtRejection`] to its 401 body with
//! [`JwtRejection::body`].

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Why a token was refused; each maps to one documented 401 body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JwtRejection {
    /// Missing, badly signed, expired or foreign token: `Invalid SDK credentials` / 4002.
    InvalidCredentials,
    /// Enforce JTI is on and the token has no `jti`.
    MissingJti,
    /// `exp` is absent or more than an hour after `iat` (or now).
    ExpTooFar,
    /// The `jti` was seen before.
    Replay,
}

impl JwtRejection {
    pub(crate) fn body(self) -> &'static str {
        match self {
            JwtRejection::InvalidCredentials => {
                r#"{"errors":[{"msg":"Invalid SDK credentials","code":4002}]}"#
            }
            JwtRejection::MissingJti => {
                r#"{"errors":[{"msg":"error verifying the jwt: \"jti\" claim is required","code":401}]}"#
            }
            JwtRejection::ExpTooFar => {
                r#"{"errors":[{"msg":"error verifying the jwt: if \"jti\" claim \"exp\" must be <= 1 hour(s)","code":401}]}"#
            }
            JwtRejection::Replay => {
                r#"{"errors":[{"msg":"error verifying the jwt: possibly a replay","code":401}]}"#
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(rename = "appId")]
    app_id: Option<String>,
    jti: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
}

/// Verifies tokens and remembers seen `jti`s until their `exp`.
pub(crate) struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    client_id: String,
    enforce_jti: bool,
    /// jti → exp (unix seconds). Pruned of expired entries as it grows.
    seen: HashMap<String, i64>,
    prune_at: usize,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("client_id", &self.client_id)
            .field("enforce_jti", &self.enforce_jti)
            .field("seen_jtis", &self.seen.len())
            .finish_non_exhaustive()
    }
}

const MAX_JTI_LIFETIME_SECS: i64 = 3600;

impl JwtVerifier {
    pub(crate) fn new(client_id: &str, client_secret: &str, enforce_jti: bool) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = true;
        validation.validate_aud = false;
        validation.leeway = 0;
        JwtVerifier {
            key: DecodingKey::from_secret(client_secret.as_bytes()),
            validation,
            client_id: client_id.to_string(),
            enforce_jti,
            seen: HashMap::new(),
            prune_at: 1024,
        }
    }

    /// Checks one token at `now` (unix seconds); on success with Enforce JTI, records its jti.
    pub(crate) fn verify(&mut self, token: Option<&str>, now: i64) -> Result<(), JwtRejection> {
        let token = token.ok_or(JwtRejection::InvalidCredentials)?;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|_| JwtRejection::InvalidCredentials)?
            .claims;
        if claims.app_id.as_deref() != Some(self.client_id.as_str()) {
            return Err(JwtRejection::InvalidCredentials);
        }
        if !self.enforce_jti {
            return Ok(());
        }
        let jti = claims
            .jti
            .filter(|j| !j.is_empty())
            .ok_or(JwtRejection::MissingJti)?;
        let exp = claims.exp.ok_or(JwtRejection::ExpTooFar)?;
        if exp - claims.iat.unwrap_or(now) > MAX_JTI_LIFETIME_SECS {
            return Err(JwtRejection::ExpTooFar);
        }
        if self.seen.get(&jti).is_some_and(|&e| e >= now) {
            return Err(JwtRejection::Replay);
        }
        if self.seen.len() >= self.prune_at {
            self.seen.retain(|_, &mut e| e >= now);
            self.prune_at = (self.seen.len() * 2).max(1024);
        }
        self.seen.insert(jti, exp);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const NOW: i64 = 1_900_000_000;

    fn token(claims: serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn verifier(enforce_jti: bool) -> JwtVerifier {
        JwtVerifier::new("cs-1", "s3cret", enforce_jti)
    }

    #[test]
    fn accepts_app_id_only_and_rejects_foreign_tokens() {
        let mut v = verifier(false);
        assert_eq!(
            v.verify(Some(&token(json!({"appId":"cs-1"}), "s3cret")), NOW),
            Ok(())
        );
        // Reuse is fine without Enforce JTI.
        let t = token(json!({"appId":"cs-1","jti":"a"}), "s3cret");
        assert_eq!(v.verify(Some(&t), NOW), Ok(()));
        assert_eq!(v.verify(Some(&t), NOW), Ok(()));
        let bad = [
            token(json!({"appId":"cs-1"}), "other"),
            token(json!({"appId":"cs-2"}), "s3cret"),
            token(json!({"appid":"cs-1"}), "s3cret"),
            token(json!({"appId":"cs-1","exp": 1_000}), "s3cret"),
            "not.a.jwt".to_string(),
        ];
        for t in &bad {
            assert_eq!(
                v.verify(Some(t), NOW),
                Err(JwtRejection::InvalidCredentials),
                "{t}"
            );
        }
        assert_eq!(v.verify(None, NOW), Err(JwtRejection::InvalidCredentials));
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &json!({"appId":"cs-1"}),
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        assert_eq!(
            v.verify(Some(&hs512), NOW),
            Err(JwtRejection::InvalidCredentials)
        );
    }

    #[test]
    fn enforce_jti_rules() {
        let mut v = verifier(true);
        // Tokens must not be expired by the real clock, so use the real now here.
        let now = chrono::Utc::now().timestamp();
        let ok = |jti: &str| {
            token(
                json!({"appId":"cs-1","jti":jti,"iat":now,"exp":now+300}),
                "s3cret",
            )
        };
        assert_eq!(v.verify(Some(&ok("j1")), now), Ok(()));
        assert_eq!(v.verify(Some(&ok("j1")), now), Err(JwtRejection::Replay));
        assert_eq!(v.verify(Some(&ok("j2")), now), Ok(()));
        let no_jti = token(json!({"appId":"cs-1","iat":now,"exp":now+300}), "s3cret");
        assert_eq!(v.verify(Some(&no_jti), now), Err(JwtRejection::MissingJti));
        let long = token(
            json!({"appId":"cs-1","jti":"j3","iat":now,"exp":now+3601}),
            "s3cret",
        );
        assert_eq!(v.verify(Some(&long), now), Err(JwtRejection::ExpTooFar));
        let hour = token(
            json!({"appId":"cs-1","jti":"j4","iat":now,"exp":now+3600}),
            "s3cret",
        );
        assert_eq!(v.verify(Some(&hour), now), Ok(()));
        let no_iat = token(json!({"appId":"cs-1","jti":"j5","exp":now+4000}), "s3cret");
        assert_eq!(v.verify(Some(&no_iat), now), Err(JwtRejection::ExpTooFar));
        let no_exp = token(json!({"appId":"cs-1","jti":"j6"}), "s3cret");
        assert_eq!(v.verify(Some(&no_exp), now), Err(JwtRejection::ExpTooFar));
    }

    #[test]
    fn bodies_are_the_documented_json() {
        let v: serde_json::Value = serde_json::from_str(JwtRejection::ExpTooFar.body()).unwrap();
        assert_eq!(
            v["errors"][0]["msg"],
            "error verifying the jwt: if \"jti\" claim \"exp\" must be <= 1 hour(s)"
        );
        let v: serde_json::Value = serde_json::from_str(JwtRejection::Replay.body()).unwrap();
        assert_eq!(
            v,
            json!({"errors":[{"msg":"error verifying the jwt: possibly a replay","code":401}]})
        );
        let v: serde_json::Value =
            serde_json::from_str(JwtRejection::InvalidCredentials.body()).unwrap();
        assert_eq!(
            v,
            json!({"errors":[{"msg":"Invalid SDK credentials","code":4002}]})
        );
        assert!(serde_json::from_str::<serde_json::Value>(JwtRejection::MissingJti.body()).is_ok());
    }
}
