//! The record of a lease ([`Holder`]: who holds it, until when, and for the budget lease its
//! last grants) and what a new holder learns of the previous one ([`Before`]). The lease
//! protocol that reads and writes these records is the parent module's.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::handover::HandoverEndpoint;

/// Who holds a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Unique per acquisition.
    pub id: String,
    pub host: String,
    pub pid: u32,
    /// The holder's boot (`/proc/sys/kernel/random/boot_id`); absent in leases of older
    /// releases and off Linux.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// The holder's PID namespace (`/proc/self/ns/pid`, e.g. `pid:[4026531836]`); absent in
    /// leases of older releases and off Linux.
    #[serde(default)]
    pub pid_ns: Option<String>,
    /// `run` or `run --once`.
    pub command: String,
    pub started_at: DateTime<Utc>,
    pub renewed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Set by a clean exit: the lease is free whatever the clocks say.
    #[serde(default)]
    pub released: bool,
    /// Where a daemon accepts work handed over to it (its budget lease only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<HandoverEndpoint>,
    /// The request budget's grants within its last window when the record was written, as
    /// Unix milliseconds, newest first, at most `requests_per_minute` of them (its budget
    /// lease only; absent in leases of older releases): what the next holder counts of the
    /// account's last minute (see [`Before`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants_ms: Option<Vec<i64>>,
}

impl Holder {
    /// Whether the lease is free to take without judging its holder: released, or expired by
    /// our wall clock (clocks of the writers must agree within the TTL, as NTP keeps them).
    pub(super) fn is_free(&self, now: DateTime<Utc>) -> bool {
        self.released || self.expires_at <= now
    }
}

/// Who held a lease before it was taken, as far as its record tells: what the new holder may
/// assume of the previous one's work (for [`super::BUDGET`], its requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Before {
    /// No record: nobody held it on this output (or its record was deleted).
    Nobody,
    /// Held `until` then: a released or expired lease's expiry (a clean exit moves it to the
    /// exit), or the moment of taking it over from a holder that stopped without either.
    HeldUntil {
        until: DateTime<Utc>,
        /// The previous holder's real grants of its last window ([`Holder::grants_ms`]), known
        /// only from a released record (a clean exit writes its last ones); `None`: a record of
        /// an older release, or a holder that stopped without releasing (its grants after its
        /// last renewal are unknown).
        grants: Option<Vec<DateTime<Utc>>>,
    },
}

impl Before {
    /// How long before `now` the previous holder stopped holding the lease (`None`: nobody).
    pub fn ago(&self, now: DateTime<Utc>) -> Option<Duration> {
        match self {
            Before::Nobody => None,
            Before::HeldUntil { until, .. } => Some(age(now, *until)),
        }
    }

    /// How long before `now` each of the previous holder's known grants was made (`None`:
    /// not known; a grant stamped after `now` by a skewed clock counts as just now).
    pub fn grants_ago(&self, now: DateTime<Utc>) -> Option<Vec<Duration>> {
        match self {
            Before::HeldUntil {
                grants: Some(grants),
                ..
            } => Some(grants.iter().map(|t| age(now, *t)).collect()),
            _ => None,
        }
    }

    /// The known grants (see [`Before::grants_ago`]) made less than `window` before `now`, as
    /// Unix milliseconds, newest first.
    pub(super) fn grants_within(&self, now: DateTime<Utc>, window: Duration) -> Option<Vec<i64>> {
        let Before::HeldUntil {
            grants: Some(grants),
            ..
        } = self
        else {
            return None;
        };
        let mut ms: Vec<i64> = grants
            .iter()
            .filter(|t| age(now, **t) < window)
            .map(DateTime::timestamp_millis)
            .collect();
        ms.sort_unstable_by(|a, b| b.cmp(a));
        Some(ms)
    }

    /// What a free record says of its holder: held until its expiry (at most `now`), with its
    /// grants if it was released.
    pub(super) fn of_free(h: &Holder, now: DateTime<Utc>) -> Before {
        let grants = h.grants_ms.as_ref().filter(|_| h.released).map(|ms| {
            ms.iter()
                .filter_map(|m| DateTime::<Utc>::from_timestamp_millis(*m))
                .collect()
        });
        Before::HeldUntil {
            until: h.expires_at.min(now),
            grants,
        }
    }
}

/// `now - then`, zero if `then` is later.
fn age(now: DateTime<Utc>, then: DateTime<Utc>) -> Duration {
    (now - then).to_std().unwrap_or(Duration::ZERO)
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` (pid {} on host {}, started {}, lease valid until {})",
            self.command,
            self.pid,
            self.host,
            self.started_at.format("%Y-%m-%dT%H:%M:%SZ"),
            self.expires_at.format("%Y-%m-%dT%H:%M:%SZ")
        )
    }
}
