//! The priority a request waits at in a budget's queue ([`Priority`]): realtime before
//! scheduled history before catch-up, and which of the two history priorities a day gets.

use std::fmt;

use chrono::{Days, NaiveDate};

/// How urgent a request is. Declared in serving order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Snapshot polls (including gap re-polls): data the API forgets, lost if fetched late.
    Realtime,
    /// History days of a scheduled run inside the dataset's steady-state window (today and
    /// its `lookback_days`).
    Scheduled,
    /// Older history days of a scheduled run (the daemon catching up after downtime or on
    /// its first run) and every backfill.
    CatchUp,
}

impl Priority {
    /// Every priority, in serving order.
    pub const ALL: [Priority; 3] = [Priority::Realtime, Priority::Scheduled, Priority::CatchUp];

    /// The metric label and the name in messages.
    pub fn label(self) -> &'static str {
        match self {
            Priority::Realtime => "realtime",
            Priority::Scheduled => "scheduled",
            Priority::CatchUp => "catch_up",
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }

    /// The priority of exporting history `day` in a scheduled run on local date `today`:
    /// scheduled inside the steady-state window `[today - lookback_days, today]`, catch-up
    /// before it (a run that is many days behind fetches its newest days at the higher
    /// priority and its oldest ones at the lower).
    pub fn of_history_day(day: NaiveDate, today: NaiveDate, lookback_days: u32) -> Priority {
        let steady_start = today
            .checked_sub_days(Days::new(u64::from(lookback_days)))
            .unwrap_or(NaiveDate::MIN);
        if day >= steady_start {
            Priority::Scheduled
        } else {
            Priority::CatchUp
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}
