//! The poll state of one queue (`_state/queue_stats/account_id=A/queue_id=Q.json`): how many
//! polls were stored, the latest `polled_at`, and the local days whose partition this queue's
//! polls left with files not merged yet (closed by a later poll once the day is over). It is
//! written last, after the data it describes: a poll whose state write is lost is done again
//! by nobody (its row is written) and its day is closed by the next poll that opens it.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::state::StateObject;

/// Poll bookkeeping of one queue.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PollState {
    pub polls: u64,
    pub last_polled_at: Option<DateTime<Utc>>,
    /// Local days whose partition received files since it was last compacted.
    #[serde(default)]
    pub open_days: BTreeSet<NaiveDate>,
}

/// Stored under `_state/queue_stats/account_id=A/queue_id=Q.json`.
impl StateObject for PollState {
    type Key = str;
    fn file_name(queue_id: &str) -> String {
        format!("queue_id={queue_id}.json")
    }
}

/// A poll's change to the queue's poll state, applied to whatever is stored when it is
/// written (another process may have stored a poll meanwhile).
pub(super) struct PollUpdate {
    pub polled_at: DateTime<Utc>,
    pub opened: BTreeSet<NaiveDate>,
    pub closed: BTreeSet<NaiveDate>,
}

impl PollUpdate {
    pub fn apply(&self, current: Option<PollState>) -> PollState {
        let mut s = current.unwrap_or_default();
        s.polls += 1;
        s.last_polled_at = s.last_polled_at.max(Some(self.polled_at));
        s.open_days.extend(self.opened.iter().copied());
        for day in &self.closed {
            s.open_days.remove(day);
        }
        s
    }
}
