//! Injected faults: the plan a test sets (at start, through `RunningSimulator::set_faults` or
//! `POST /_sim/faults`) and the per-request decision. Faults apply only to report requests
//! (paths an API model serves), one decision per request, before authentication: a queued
//! fault (`next`) wins, else `every_nth` fires on every n-th report request counted since the
//! plan was set.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the simulator does wrong on the requests the plan selects.
///
/// JSON form (serde's external tagging), e.g. `{"next": [{"Status429": {"retry_after": "2"}},
/// {"Status5xx": 503}, {"Slow": 250}, "DropConnection", "TruncatedJson", "RateLimitBody400"],
/// "every_nth": {"n": 5, "kind": {"Status5xx": 502}}}`; `Slow` is in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPlan {
    /// Consumed in order, one per report request.
    pub next: Vec<FaultKind>,
    /// Fires on report requests number n, 2n, 3n, … (1-based, counted since the plan was set)
    /// when `next` is empty.
    pub every_nth: Option<EveryNth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EveryNth {
    /// 0 disables the rule.
    pub n: u64,
    pub kind: FaultKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FaultKind {
    /// HTTP 429 with the documented rate-limit body and, when set, a `Retry-After` header
    /// holding this text verbatim (delta-seconds or an HTTP-date).
    Status429 { retry_after: Option<String> },
    /// This status (meant for 5xx) with an `errors` body.
    Status5xx(u16),
    /// HTTP 400 whose body says "rate limit".
    RateLimitBody400,
    /// Wait this long, then answer normally.
    Slow(#[serde(with = "duration_millis")] Duration),
    /// Close the connection without a response.
    DropConnection,
    /// The normal response with its body cut in half (a complete, shorter body).
    TruncatedJson,
}

mod duration_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// The live plan plus the report-request counter `every_nth` needs.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    plan: FaultPlan,
    requests: u64,
}

impl FaultState {
    pub(crate) fn new(plan: FaultPlan) -> Self {
        FaultState { plan, requests: 0 }
    }

    /// Replaces the plan and restarts the `every_nth` count.
    pub(crate) fn set(&mut self, plan: FaultPlan) {
        *self = FaultState::new(plan);
    }

    /// The fault for the next report request, if any.
    pub(crate) fn take(&mut self) -> Option<FaultKind> {
        self.requests += 1;
        if !self.plan.next.is_empty() {
            return Some(self.plan.next.remove(0));
        }
        match &self.plan.every_nth {
            Some(rule) if rule.n > 0 && self.requests.is_multiple_of(rule.n) => {
                Some(rule.kind.clone())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_first_then_every_nth() {
        let mut st = FaultState::new(FaultPlan {
            next: vec![FaultKind::DropConnection, FaultKind::Status5xx(503)],
            every_nth: Some(EveryNth {
                n: 3,
                kind: FaultKind::TruncatedJson,
            }),
        });
        let got: Vec<_> = (0..7).map(|_| st.take()).collect();
        assert_eq!(
            got,
            vec![
                Some(FaultKind::DropConnection),
                Some(FaultKind::Status5xx(503)),
                Some(FaultKind::TruncatedJson),
                None,
                None,
                Some(FaultKind::TruncatedJson),
                None,
            ]
        );
        st.set(FaultPlan::default());
        assert_eq!(st.take(), None);
    }

    #[test]
    fn plan_json_form() {
        let json = r#"{"next":[{"Status429":{"retry_after":"2"}},{"Status5xx":503},{"Slow":250},
            "DropConnection","TruncatedJson","RateLimitBody400"],
            "every_nth":{"n":5,"kind":{"Status5xx":502}}}"#;
        let plan: FaultPlan = serde_json::from_str(json).unwrap();
        assert_eq!(
            plan.next,
            vec![
                FaultKind::Status429 {
                    retry_after: Some("2".into())
                },
                FaultKind::Status5xx(503),
                FaultKind::Slow(Duration::from_millis(250)),
                FaultKind::DropConnection,
                FaultKind::TruncatedJson,
                FaultKind::RateLimitBody400,
            ]
        );
        assert_eq!(plan.every_nth.unwrap().n, 5);
        assert_eq!(
            serde_json::from_str::<FaultPlan>("{}").unwrap(),
            FaultPlan::default()
        );
        assert!(serde_json::from_str::<FaultPlan>(r#"{"nxt":[]}"#).is_err());
    }
}
