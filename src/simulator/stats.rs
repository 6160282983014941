//! Request counters of a running simulator. The server records one outcome per request (admin
//! requests under `/_sim/` are not counted) under the endpoint label of the API model that
//! answered it (e.g. `userstatus`, each model's `ENDPOINT` constant) or [`UNKNOWN_ENDPOINT`];
//! callers read a [`SimStats`] snapshot.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

/// The endpoint label of requests to a path no model serves.
pub const UNKNOWN_ENDPOINT: &str = "unknown";

/// Status code recorded for a request whose connection was dropped without a response.
pub const STATUS_DROPPED: u16 = 0;

/// A snapshot of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SimStats {
    pub total_requests: u64,
    /// Keyed by endpoint label.
    pub by_endpoint: BTreeMap<String, u64>,
    /// Keyed by HTTP status; [`STATUS_DROPPED`] for dropped connections.
    pub by_status: BTreeMap<u16, u64>,
    /// Endpoint name → status → count.
    pub by_endpoint_status: BTreeMap<String, BTreeMap<u16, u64>>,
    pub jti_replays_rejected: u64,
    /// 401s for a JTI token whose `exp` is missing or more than an hour out.
    pub jti_expiry_rejected: u64,
    /// 401s in JWE mode for an `auth` header that is not a JWE for the simulator's key.
    pub jwe_rejected: u64,
    /// 429s from the simulated rate limit (not injected faults).
    pub rate_limited: u64,
    pub faults_injected: u64,
    /// Bytes of response bodies sent (every status), by endpoint label.
    pub body_bytes_by_endpoint: BTreeMap<String, u64>,
    /// Report requests answered from the response cache / rendered and then kept in it (both
    /// zero unless the simulator caches responses).
    pub cache_hits: u64,
    pub cache_misses: u64,
}

impl SimStats {
    /// Requests to the endpoint labelled `endpoint` answered with `status`.
    pub fn count(&self, endpoint: &str, status: u16) -> u64 {
        self.by_endpoint_status
            .get(endpoint)
            .and_then(|m| m.get(&status))
            .copied()
            .unwrap_or(0)
    }

    /// Requests to the endpoint labelled `endpoint`, any outcome.
    pub fn requests(&self, endpoint: &str) -> u64 {
        self.by_endpoint.get(endpoint).copied().unwrap_or(0)
    }
}

#[derive(Debug, Default)]
struct Counters {
    total: u64,
    by_endpoint_status: BTreeMap<(&'static str, u16), u64>,
    jti_replays_rejected: u64,
    jti_expiry_rejected: u64,
    jwe_rejected: u64,
    rate_limited: u64,
    faults_injected: u64,
    body_bytes: BTreeMap<&'static str, u64>,
    cache_hits: u64,
    cache_misses: u64,
}

/// Shared recorder; every method takes the lock for a few increments only.
#[derive(Debug, Default)]
pub(crate) struct StatsRecorder {
    inner: Mutex<Counters>,
}

impl StatsRecorder {
    fn with<R>(&self, f: impl FnOnce(&mut Counters) -> R) -> R {
        // A poisoned lock only means a panic elsewhere mid-increment; the counters stay usable.
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// One request to `endpoint` answered with `status` and a body of `body_bytes`.
    pub(crate) fn record(&self, endpoint: &'static str, status: u16, body_bytes: usize) {
        self.with(|c| {
            c.total += 1;
            *c.by_endpoint_status.entry((endpoint, status)).or_default() += 1;
            *c.body_bytes.entry(endpoint).or_default() += body_bytes as u64;
        });
    }

    /// A report request answered from the cache (`true`) or rendered for it (`false`).
    pub(crate) fn cache(&self, hit: bool) {
        self.with(|c| {
            if hit {
                c.cache_hits += 1;
            } else {
                c.cache_misses += 1;
            }
        });
    }

    pub(crate) fn jti_replay(&self) {
        self.with(|c| c.jti_replays_rejected += 1);
    }

    pub(crate) fn jti_expiry(&self) {
        self.with(|c| c.jti_expiry_rejected += 1);
    }

    pub(crate) fn jwe_rejected(&self) {
        self.with(|c| c.jwe_rejected += 1);
    }

    pub(crate) fn rate_limited(&self) {
        self.with(|c| c.rate_limited += 1);
    }

    pub(crate) fn fault(&self) {
        self.with(|c| c.faults_injected += 1);
    }

    pub(crate) fn snapshot(&self) -> SimStats {
        self.with(|c| {
            let mut s = SimStats {
                total_requests: c.total,
                jti_replays_rejected: c.jti_replays_rejected,
                jti_expiry_rejected: c.jti_expiry_rejected,
                jwe_rejected: c.jwe_rejected,
                rate_limited: c.rate_limited,
                faults_injected: c.faults_injected,
                cache_hits: c.cache_hits,
                cache_misses: c.cache_misses,
                body_bytes_by_endpoint: c
                    .body_bytes
                    .iter()
                    .map(|(&e, &n)| (e.to_string(), n))
                    .collect(),
                ..SimStats::default()
            };
            for (&(endpoint, status), &n) in &c.by_endpoint_status {
                *s.by_endpoint.entry(endpoint.to_string()).or_default() += n;
                *s.by_status.entry(status).or_default() += n;
                *s.by_endpoint_status
                    .entry(endpoint.to_string())
                    .or_default()
                    .entry(status)
                    .or_default() += n;
            }
            s
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_aggregates() {
        let r = StatsRecorder::default();
        r.record("userstatus", 200, 100);
        r.record("userstatus", 200, 100);
        r.record("userstatus", 429, 7);
        r.record("intentrealtimedata", 200, 5);
        r.cache(true);
        r.rate_limited();
        let s = r.snapshot();
        assert_eq!(s.total_requests, 4);
        assert_eq!(s.count("userstatus", 200), 2);
        assert_eq!(s.requests("userstatus"), 3);
        assert_eq!(s.by_status[&200], 3);
        assert_eq!(s.by_endpoint_status["userstatus"][&429], 1);
        assert_eq!(s.rate_limited, 1);
        assert_eq!(s.body_bytes_by_endpoint["userstatus"], 207);
        assert_eq!(s.body_bytes_by_endpoint["intentrealtimedata"], 5);
        assert_eq!((s.cache_hits, s.cache_misses), (1, 0));
        assert_eq!(s.count(UNKNOWN_ENDPOINT, 404), 0);
    }
}
