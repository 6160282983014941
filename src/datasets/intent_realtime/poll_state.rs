//! The poll state of one bot (`_state/intent_realtime/account_id=A/bot_id=B.json`): how many
//! polls were stored, the newest session end seen, the ids the newest poll returned (all of them
//! written, so the next poll skips them without reading anything), and the local days whose
//! partitions received files since they were last merged. A poll's change is applied to whatever
//! is stored when it is written ([`PollUpdate`]): another process may have stored a poll
//! meanwhile.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::state::StateObject;

/// Poll bookkeeping of one bot.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PollState {
    pub polls: u64,
    pub newest_end_time: Option<DateTime<Utc>>,
    pub last_poll_at: Option<DateTime<Utc>>,
    /// Keys of the records the newest committed poll returned, all of them already written: a
    /// later poll skips them without looking at the partitions.
    #[serde(default)]
    pub recent_keys: Vec<String>,
    /// Local days whose partition received files since it was last compacted.
    #[serde(default)]
    pub open_days: BTreeSet<NaiveDate>,
}

/// Stored under `_state/intent_realtime/account_id=A/bot_id=B.json`.
impl StateObject for PollState {
    type Key = str;
    fn file_name(bot_id: &str) -> String {
        format!("bot_id={bot_id}.json")
    }
}

/// A poll's change to the bot's poll state, applied to whatever is stored when it is written
/// (another process may have stored a poll meanwhile).
pub(super) struct PollUpdate {
    pub at: DateTime<Utc>,
    pub newest: Option<DateTime<Utc>>,
    pub keys: Vec<String>,
    pub opened: BTreeSet<NaiveDate>,
    pub closed: BTreeSet<NaiveDate>,
}

impl PollUpdate {
    pub fn apply(&self, current: Option<PollState>) -> PollState {
        let mut s = current.unwrap_or_default();
        s.polls += 1;
        s.newest_end_time = s.newest_end_time.max(self.newest);
        // The newest poll's keys: every one of them is written, whoever polled.
        if s.last_poll_at.is_none_or(|t| t <= self.at) {
            s.last_poll_at = Some(self.at);
            s.recent_keys = self.keys.clone();
        }
        s.open_days.extend(self.opened.iter().copied());
        for day in &self.closed {
            s.open_days.remove(day);
        }
        s
    }
}
