//! Rendered responses kept by request, for benchmarks that should measure the client and not
//! the simulator's generators ([`super::SimulatorConfig::cache_responses`]). The first request
//! of a kind is answered by its model as usual; a `200` answer is kept, and every later request
//! with the same key gets those bytes without the model running. The server applies its
//! latency, faults, JWT check and rate limit before the cache is consulted, so only response
//! generation is skipped.
//!
//! The key is what can change an answer: the model's endpoint label, the normalized path, the
//! query string, the identity headers the models check (`IId`, `accountId`, `orgId`) and the
//! body, read as JSON so that two clients serializing the same body with different key order
//! or spacing share an entry (a body that is not JSON is keyed by its bytes). The `auth`
//! header is not part of it: a fresh token per request is the normal case. Entries are never
//! evicted; a benchmark's responses fit in memory by design.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::http::HeaderMap;

use super::shared::lock;

/// The identity headers models compare with the config (lower case, as `HeaderMap` keys).
const KEY_HEADERS: [&str; 3] = ["iid", "accountid", "orgid"];

/// What makes two requests get the same answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey(String);

impl CacheKey {
    pub(crate) fn new(
        endpoint: &str,
        segments: &[&str],
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Self {
        let mut key = format!("{endpoint} /{}?{}", segments.join("/"), query.unwrap_or(""));
        for name in KEY_HEADERS {
            let value = headers.get(name).map(|v| v.as_bytes()).unwrap_or_default();
            key.push('\n');
            key.push_str(&String::from_utf8_lossy(value));
        }
        key.push('\n');
        // serde_json's map is ordered by key, so re-serializing a parsed body is canonical.
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(json) => key.push_str(&json.to_string()),
            Err(_) => key.push_str(&String::from_utf8_lossy(body)),
        }
        CacheKey(key)
    }
}

/// The kept answers.
#[derive(Debug, Default)]
pub(crate) struct ResponseCache {
    bodies: Mutex<HashMap<CacheKey, Bytes>>,
}

impl ResponseCache {
    pub(crate) fn get(&self, key: &CacheKey) -> Option<Bytes> {
        lock(&self.bodies).get(key).cloned()
    }

    pub(crate) fn put(&self, key: CacheKey, body: Bytes) {
        lock(&self.bodies).insert(key, body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(headers: &[(&'static str, &'static str)], body: &str) -> CacheKey {
        let mut h = HeaderMap::new();
        for &(k, v) in headers {
            h.insert(k, v.parse().expect("header value"));
        }
        CacheKey::new(
            "calldetails",
            &["a", "b"],
            Some("limit=100"),
            &h,
            body.as_bytes(),
        )
    }

    #[test]
    fn key_ignores_json_layout_and_auth_but_not_identity_or_body() {
        let base = key(&[("iid", "st-1"), ("auth", "t1")], r#"{"a":1,"b":[2]}"#);
        assert_eq!(
            base,
            key(
                &[("iid", "st-1"), ("auth", "t2")],
                r#"{ "b": [2], "a": 1 }"#
            )
        );
        assert_ne!(base, key(&[("iid", "st-2")], r#"{"a":1,"b":[2]}"#));
        assert_ne!(base, key(&[("iid", "st-1")], r#"{"a":1,"b":[3]}"#));
        assert_ne!(key(&[], "not json"), key(&[], "not json!"));
    }
}
