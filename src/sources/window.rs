//! Local-day windows for UserStatus (STUB).

use std::ops::Range;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

/// JavaScript `Date.getTimezoneOffset()` convention: minutes of (UTC - local). IST → -330.
pub fn js_offset_minutes(_tz: Tz, _at: DateTime<Utc>) -> i32 {
    todo!()
}

/// `[start of day, start of next day)` of a local date, in UTC.
pub fn local_day_bounds(_tz: Tz, _day: NaiveDate) -> Range<DateTime<Utc>> {
    todo!()
}

/// Local date of an instant.
pub fn local_date(_tz: Tz, _at: DateTime<Utc>) -> NaiveDate {
    todo!()
}

/// One request for a local day: sent with `offset_minutes`; only buckets whose start lies in
/// `claim` are kept from its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayWindow {
    pub day: NaiveDate,
    pub offset_minutes: i32,
    pub claim: Range<DateTime<Utc>>,
}

/// The requests needed to cover a local day exactly once (1 normally, 2 on a fall-back day).
pub fn plan_day(_tz: Tz, _day: NaiveDate) -> Vec<DayWindow> {
    todo!()
}
