//! Watermarks of the scheduled UserStatus export, stored in the output store itself through
//! [`Sink::get_state`]/[`Sink::put_state`] at `_state/user_status/account_id=A.json`, and the
//! pure planning of what one scheduled run exports. Callers must write a watermark only after
//! every partition it covers is committed, so a crash between the two re-does work instead of
//! skipping it. Backfills never touch the watermark (so they can never move it backwards); the
//! live schedule re-exports from the watermark minus `lookback_days` on every run.
//! IntentRealtimeData's per-bot poll state lives in [`crate::pipeline::IntentPollState`]: its
//! exactly-once guarantee comes from the output partitions, not from a watermark.

use bytes::Bytes;
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::sink::{Sink, SinkError};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot access state object {name}")]
    Store {
        name: String,
        #[source]
        source: Box<SinkError>,
    },
    /// A watermark that cannot be read is an error, not a fresh start: starting over from
    /// today would silently skip the days between the lost watermark and today.
    #[error("state object {name} is not valid JSON of the expected shape; fix or delete it")]
    Corrupt {
        name: String,
        #[source]
        source: serde_json::Error,
    },
}

/// How far the scheduled UserStatus export has got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserStatusWatermark {
    /// The latest local day exported by a scheduled run (possibly while it was still running).
    pub through_day: NaiveDate,
    /// Data up to this instant was available when `through_day` was last exported:
    /// `min(end of through_day, exported_at)`. `now - covered_until` is the watermark lag.
    pub covered_until: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Name of the UserStatus watermark of an account.
pub fn user_status_state_name(account_id: &str) -> String {
    format!("user_status/account_id={account_id}.json")
}

/// Read the watermark; `None` before the first scheduled run.
pub async fn load_user_status(
    sink: &Sink,
    account_id: &str,
) -> Result<Option<UserStatusWatermark>, StateError> {
    let name = user_status_state_name(account_id);
    let raw = sink
        .get_state(&name)
        .await
        .map_err(|source| StateError::Store {
            name: name.clone(),
            source: Box::new(source),
        })?;
    match raw {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StateError::Corrupt { name, source }),
    }
}

/// Write the watermark (one atomic put).
pub async fn store_user_status(
    sink: &Sink,
    account_id: &str,
    mark: &UserStatusWatermark,
) -> Result<(), StateError> {
    let name = user_status_state_name(account_id);
    // Serializing a struct of dates cannot fail; an empty body would be caught as Corrupt.
    let body = serde_json::to_vec_pretty(mark).unwrap_or_default();
    sink.put_state(&name, Bytes::from(body))
        .await
        .map_err(|source| StateError::Store {
            name,
            source: Box::new(source),
        })
}

/// The local days one scheduled run exports, in ascending order.
///
/// Without a watermark the run starts `lookback_days` before today (history is what `backfill`
/// is for). With one, it starts `lookback_days` before the watermark day, so the watermark day
/// itself (possibly exported while incomplete) and late corrections are re-exported. At most
/// `max_days` days are planned; the next run resumes from the advanced watermark. A watermark
/// in the future (clock moved back) plans from `today - lookback_days`.
pub fn plan_user_status_days(
    watermark: Option<NaiveDate>,
    today: NaiveDate,
    lookback_days: u32,
    max_days: u32,
) -> Vec<NaiveDate> {
    let anchor = watermark.map_or(today, |w| w.min(today));
    let start = anchor
        .checked_sub_days(Days::new(u64::from(lookback_days)))
        .unwrap_or(anchor);
    start
        .iter_days()
        .take_while(|d| *d <= today)
        .take(max_days.max(1) as usize)
        .collect()
}

/// The watermark after a run: the last day of the contiguous prefix of `planned` that was
/// committed, never earlier than `previous`. `committed[i]` says whether `planned[i]` was.
pub fn advance_through_day(
    previous: Option<NaiveDate>,
    planned: &[NaiveDate],
    committed: &[bool],
) -> Option<NaiveDate> {
    let prefix_end = planned
        .iter()
        .zip(committed)
        .take_while(|(_, ok)| **ok)
        .map(|(d, _)| *d)
        .last();
    match (previous, prefix_end) {
        (Some(p), Some(e)) => Some(p.max(e)),
        (p, e) => p.or(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn days(list: &[&str]) -> Vec<NaiveDate> {
        list.iter().map(|s| d(s)).collect()
    }

    #[test]
    fn first_run_exports_lookback_days_up_to_today() {
        assert_eq!(
            plan_user_status_days(None, d("2024-05-10"), 1, 7),
            days(&["2024-05-09", "2024-05-10"])
        );
        assert_eq!(
            plan_user_status_days(None, d("2024-05-10"), 0, 7),
            days(&["2024-05-10"])
        );
    }

    #[test]
    fn steady_state_reexports_the_watermark_day_and_lookback() {
        // Same day: yesterday (lookback) and today, rewritten as today fills in.
        assert_eq!(
            plan_user_status_days(Some(d("2024-05-10")), d("2024-05-10"), 1, 7),
            days(&["2024-05-09", "2024-05-10"])
        );
        // After midnight: the finished day is exported once more, complete.
        assert_eq!(
            plan_user_status_days(Some(d("2024-05-10")), d("2024-05-11"), 0, 7),
            days(&["2024-05-10", "2024-05-11"])
        );
    }

    #[test]
    fn catch_up_after_downtime_is_bounded_and_resumes() {
        let today = d("2024-05-31");
        let first = plan_user_status_days(Some(d("2024-05-10")), today, 1, 7);
        assert_eq!(first.first(), Some(&d("2024-05-09")));
        assert_eq!(first.last(), Some(&d("2024-05-15")));
        let mark = advance_through_day(Some(d("2024-05-10")), &first, &[true; 7]);
        assert_eq!(mark, Some(d("2024-05-15")));
        let second = plan_user_status_days(mark, today, 1, 7);
        assert_eq!(second.first(), Some(&d("2024-05-14")));
        assert_eq!(second.last(), Some(&d("2024-05-20")));
        // Progress per run is max_days - lookback_days - 0 = 6 days; it always reaches today.
        let mut mark = mark;
        for _ in 0..10 {
            let plan = plan_user_status_days(mark, today, 1, 7);
            mark = advance_through_day(mark, &plan, &vec![true; plan.len()]);
        }
        assert_eq!(mark, Some(today));
    }

    #[test]
    fn watermark_in_the_future_is_clamped_to_today() {
        assert_eq!(
            plan_user_status_days(Some(d("2024-06-01")), d("2024-05-10"), 1, 7),
            days(&["2024-05-09", "2024-05-10"])
        );
    }

    #[test]
    fn watermark_only_covers_the_committed_prefix_and_never_moves_back() {
        let plan = days(&["2024-05-09", "2024-05-10", "2024-05-11"]);
        assert_eq!(
            advance_through_day(Some(d("2024-05-09")), &plan, &[true, false, true]),
            Some(d("2024-05-09"))
        );
        assert_eq!(
            advance_through_day(Some(d("2024-05-10")), &plan, &[false, true, true]),
            Some(d("2024-05-10"))
        );
        assert_eq!(
            advance_through_day(None, &plan, &[true, true, false]),
            Some(d("2024-05-10"))
        );
        assert_eq!(advance_through_day(None, &plan, &[false, true, true]), None);
        // A run that re-exported older days (lookback) does not move it backwards.
        assert_eq!(
            advance_through_day(Some(d("2024-05-20")), &plan, &[true, true, true]),
            Some(d("2024-05-20"))
        );
    }

    #[tokio::test]
    async fn watermark_round_trips_through_the_sink_and_corruption_is_an_error() {
        let store = std::sync::Arc::new(object_store::memory::InMemory::new());
        let sink = Sink::with_store(store, object_store::path::Path::from("lake"));
        assert_eq!(load_user_status(&sink, "acct").await.expect("load"), None);
        let mark = UserStatusWatermark {
            through_day: d("2024-05-10"),
            covered_until: "2024-05-10T12:00:00Z".parse().expect("ts"),
            updated_at: "2024-05-10T12:00:05Z".parse().expect("ts"),
        };
        store_user_status(&sink, "acct", &mark)
            .await
            .expect("store");
        assert_eq!(
            load_user_status(&sink, "acct").await.expect("load"),
            Some(mark)
        );
        sink.put_state("user_status/account_id=acct.json", Bytes::from("{nope"))
            .await
            .expect("put");
        assert!(matches!(
            load_user_status(&sink, "acct").await,
            Err(StateError::Corrupt { .. })
        ));
    }
}
