//! Local-day windows for the report APIs that take a local date and one fixed `timeZoneOffSet`
//! per request (UserStatus is the model of the others). Such an API takes one fixed offset and
//! serves the 24 h window `[day 00:00, day+1 00:00)` at that offset, but a local day in a zone
//! with DST lasts 23 h or 25 h. This module owns the mapping: [`plan_day`] returns the requests
//! that cover one local day exactly once, each with the sub-range (`claim`) of its response that
//! belongs to the day. The caller sends one request per [`DayWindow`] and keeps only buckets
//! whose start lies in that window's `claim`; the claims of consecutive days tile time with no
//! gap and no overlap, so each bucket lands in exactly one `dt` partition.

use std::ops::Range;

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// JavaScript `Date.getTimezoneOffset()` convention: minutes of (UTC − local) at `at`.
/// IST → −330, New York → 300 in winter and 240 in summer.
pub fn js_offset_minutes(tz: Tz, at: DateTime<Utc>) -> i32 {
    let local_minus_utc = tz
        .offset_from_utc_datetime(&at.naive_utc())
        .fix()
        .local_minus_utc();
    -local_minus_utc / 60
}

/// `[start of day, start of next day)` of a local date, in UTC. The start is the earliest
/// instant whose local date is `day`: the first of two instants when local midnight is
/// ambiguous, the end of the gap when local midnight does not exist.
pub fn local_day_bounds(tz: Tz, day: NaiveDate) -> Range<DateTime<Utc>> {
    let start = first_instant_of(tz, day);
    let end = match day.succ_opt() {
        Some(next) => first_instant_of(tz, next),
        // NaiveDate::MAX: no next day; fall back to a plain 24 h.
        None => start + Duration::hours(24),
    };
    start..end
}

/// Local date of an instant.
pub fn local_date(tz: Tz, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// One request for a local day: sent with `offset_minutes`; only buckets whose start lies in
/// `claim` are kept from its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayWindow {
    /// The local date, sent as both `startDate` and `endDate`.
    pub day: NaiveDate,
    /// The `timeZoneOffSet` to send (JavaScript convention, see [`js_offset_minutes`]).
    pub offset_minutes: i32,
    /// The part of the served range that belongs to `day`.
    pub claim: Range<DateTime<Utc>>,
}

impl DayWindow {
    /// The UTC range the API serves for this request: `[day 00:00, day+1 00:00)` at the fixed
    /// offset, i.e. `day 00:00 + offset_minutes` for 24 h. Always contains `claim`.
    pub fn served_range(&self) -> Range<DateTime<Utc>> {
        served_range(self.day, self.offset_minutes)
    }
}

/// The requests needed to cover a local day exactly once (1 normally, 2 on a fall-back day).
///
/// The first request uses the offset in effect at the start of the day and claims its 24 h
/// window ∩ the day. If the day is longer than that window (a 25 h day), a second request uses
/// the offset in effect at the end of the day and claims the rest. The claims are contiguous,
/// disjoint, and their union is exactly [`local_day_bounds`].
pub fn plan_day(tz: Tz, day: NaiveDate) -> Vec<DayWindow> {
    let bounds = local_day_bounds(tz, day);
    let last_instant = bounds.end - Duration::milliseconds(1);
    let mut windows = Vec::with_capacity(2);
    let mut cursor = bounds.start;
    // Two windows always suffice for real zone rules (a day is at most 25 h and the second
    // window ends exactly at the end of the day); the bound only guards against a loop on
    // pathological rules.
    for i in 0..4 {
        if cursor >= bounds.end {
            break;
        }
        let preferred = if i == 0 { cursor } else { last_instant };
        let mut offset = js_offset_minutes(tz, preferred);
        if !served_range(day, offset).contains(&cursor) {
            offset = js_offset_minutes(tz, cursor);
        }
        let served = served_range(day, offset);
        let claim_end = served.end.min(bounds.end);
        if !served.contains(&cursor) || claim_end <= cursor {
            // The zone's offset at the cursor does not serve it; nothing more can be planned.
            break;
        }
        windows.push(DayWindow {
            day,
            offset_minutes: offset,
            claim: cursor..claim_end,
        });
        cursor = claim_end;
    }
    windows
}

/// `[day 00:00 + offset, +24 h)` in UTC for a JavaScript-convention offset.
fn served_range(day: NaiveDate, offset_minutes: i32) -> Range<DateTime<Utc>> {
    let start = midnight(day) + Duration::minutes(i64::from(offset_minutes));
    let start = start.and_utc();
    start..start + Duration::hours(24)
}

fn midnight(day: NaiveDate) -> NaiveDateTime {
    day.and_time(chrono::NaiveTime::MIN)
}

/// Earliest UTC instant whose local date in `tz` is `day`.
fn first_instant_of(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    let m = midnight(day);
    match tz.from_local_datetime(&m) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.with_timezone(&Utc).min(b.with_timezone(&Utc)),
        LocalResult::None => {
            // Midnight falls in a DST gap: the day starts at the transition, which is the
            // earliest instant of the first local minute after the gap (zone transitions are
            // whole minutes in every rule since 1970). Gaps are at most a few hours.
            for k in 1..=(48 * 60) {
                let local = m + Duration::minutes(k);
                match tz.from_local_datetime(&local) {
                    LocalResult::Single(t) => return t.with_timezone(&Utc),
                    LocalResult::Ambiguous(a, b) => {
                        return a.with_timezone(&Utc).min(b.with_timezone(&Utc))
                    }
                    LocalResult::None => continue,
                }
            }
            // Not reachable with real zone data; treat midnight as UTC to stay total.
            m.and_utc()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid test timestamp")
            .with_timezone(&Utc)
    }

    fn w(day: NaiveDate, offset: i32, start: &str, end: &str) -> DayWindow {
        DayWindow {
            day,
            offset_minutes: offset,
            claim: utc(start)..utc(end),
        }
    }

    #[test]
    fn js_offsets_follow_the_javascript_sign() {
        assert_eq!(js_offset_minutes(Tz::UTC, utc("2026-01-15T12:00:00Z")), 0);
        assert_eq!(
            js_offset_minutes(Tz::Asia__Kolkata, utc("2026-01-15T12:00:00Z")),
            -330
        );
        assert_eq!(
            js_offset_minutes(Tz::America__New_York, utc("2026-01-15T12:00:00Z")),
            300
        );
        assert_eq!(
            js_offset_minutes(Tz::America__New_York, utc("2026-07-15T12:00:00Z")),
            240
        );
        assert_eq!(
            js_offset_minutes(Tz::Asia__Kathmandu, utc("2026-07-15T12:00:00Z")),
            -345
        );
        assert_eq!(
            js_offset_minutes(Tz::Australia__Lord_Howe, utc("2026-01-15T12:00:00Z")),
            -660
        );
        assert_eq!(
            js_offset_minutes(Tz::Australia__Lord_Howe, utc("2026-07-15T12:00:00Z")),
            -630
        );
    }

    #[test]
    fn day_bounds_and_local_dates() {
        assert_eq!(
            local_day_bounds(Tz::UTC, d(2026, 3, 8)),
            utc("2026-03-08T00:00:00Z")..utc("2026-03-09T00:00:00Z")
        );
        assert_eq!(
            local_day_bounds(Tz::Asia__Kolkata, d(2026, 3, 8)),
            utc("2026-03-07T18:30:00Z")..utc("2026-03-08T18:30:00Z")
        );
        // 23 h: EST midnight to EDT midnight.
        assert_eq!(
            local_day_bounds(Tz::America__New_York, d(2026, 3, 8)),
            utc("2026-03-08T05:00:00Z")..utc("2026-03-09T04:00:00Z")
        );
        // 25 h.
        assert_eq!(
            local_day_bounds(Tz::America__New_York, d(2026, 11, 1)),
            utc("2026-11-01T04:00:00Z")..utc("2026-11-02T05:00:00Z")
        );
        assert_eq!(
            local_date(Tz::Asia__Kolkata, utc("2026-03-07T18:30:00Z")),
            d(2026, 3, 8)
        );
        assert_eq!(
            local_date(Tz::Asia__Kolkata, utc("2026-03-07T18:29:59Z")),
            d(2026, 3, 7)
        );
        assert_eq!(
            local_date(Tz::America__New_York, utc("2026-11-02T04:30:00Z")),
            d(2026, 11, 1)
        );
    }

    #[test]
    fn missing_midnight_starts_the_day_at_the_end_of_the_gap() {
        // America/Sao_Paulo 2018-11-04: clocks went 00:00 -03 → 01:00 -02.
        assert_eq!(
            local_day_bounds(Tz::America__Sao_Paulo, d(2018, 11, 4)),
            utc("2018-11-04T03:00:00Z")..utc("2018-11-05T02:00:00Z")
        );
        // Asia/Beirut 2026-03-29: 00:00 +02 → 01:00 +03.
        assert_eq!(
            local_day_bounds(Tz::Asia__Beirut, d(2026, 3, 29)),
            utc("2026-03-28T22:00:00Z")..utc("2026-03-29T21:00:00Z")
        );
    }

    #[test]
    fn ambiguous_midnight_takes_the_earliest_instant() {
        // America/Sao_Paulo 2018-02-18: clocks went 00:00 -02 → 23:00 -03 on the 17th,
        // so 2018-02-17 lasts 25 h and 2018-02-18 starts at 00:00 -03.
        let feb17 = local_day_bounds(Tz::America__Sao_Paulo, d(2018, 2, 17));
        assert_eq!(
            feb17,
            utc("2018-02-17T02:00:00Z")..utc("2018-02-18T03:00:00Z")
        );
        // Asia/Beirut 2026-10-25: 00:00 +03 → 23:00 +02 on the 24th; midnight of the 24th is
        // single, and 23:xx of the 24th repeats.
        let oct24 = local_day_bounds(Tz::Asia__Beirut, d(2026, 10, 24));
        assert_eq!(
            oct24,
            utc("2026-10-23T21:00:00Z")..utc("2026-10-24T22:00:00Z")
        );
    }

    #[test]
    fn plain_days_need_one_window() {
        let day = d(2026, 6, 1);
        assert_eq!(
            plan_day(Tz::UTC, day),
            vec![w(day, 0, "2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z")]
        );
        assert_eq!(
            plan_day(Tz::Asia__Kolkata, day),
            vec![w(day, -330, "2026-05-31T18:30:00Z", "2026-06-01T18:30:00Z")]
        );
        assert_eq!(
            plan_day(Tz::Europe__London, day),
            vec![w(day, -60, "2026-05-31T23:00:00Z", "2026-06-01T23:00:00Z")]
        );
        let win = &plan_day(Tz::Asia__Kolkata, day)[0];
        assert_eq!(
            win.served_range(),
            utc("2026-05-31T18:30:00Z")..utc("2026-06-01T18:30:00Z")
        );
    }

    #[test]
    fn spring_forward_day_claims_only_23_hours() {
        let day = d(2026, 3, 8);
        let plan = plan_day(Tz::America__New_York, day);
        assert_eq!(
            plan,
            vec![w(day, 300, "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z")]
        );
        // The API serves 24 h at EST; the last hour belongs to March 9.
        assert_eq!(
            plan[0].served_range(),
            utc("2026-03-08T05:00:00Z")..utc("2026-03-09T05:00:00Z")
        );
    }

    #[test]
    fn fall_back_day_needs_a_second_window() {
        let day = d(2026, 11, 1);
        assert_eq!(
            plan_day(Tz::America__New_York, day),
            vec![
                w(day, 240, "2026-11-01T04:00:00Z", "2026-11-02T04:00:00Z"),
                w(day, 300, "2026-11-02T04:00:00Z", "2026-11-02T05:00:00Z"),
            ]
        );
        let day = d(2026, 10, 25);
        assert_eq!(
            plan_day(Tz::Europe__London, day),
            vec![
                w(day, -60, "2026-10-24T23:00:00Z", "2026-10-25T23:00:00Z"),
                w(day, 0, "2026-10-25T23:00:00Z", "2026-10-26T00:00:00Z"),
            ]
        );
        let day = d(2026, 3, 29);
        assert_eq!(
            plan_day(Tz::Europe__London, day),
            vec![w(day, 0, "2026-03-29T00:00:00Z", "2026-03-29T23:00:00Z")]
        );
    }

    #[test]
    fn lord_howe_half_hour_dst() {
        // Lord Howe: +10:30 standard, +11 summer; 2026-04-05 02:00 → 01:30 (24.5 h day).
        let day = d(2026, 4, 5);
        assert_eq!(
            plan_day(Tz::Australia__Lord_Howe, day),
            vec![
                w(day, -660, "2026-04-04T13:00:00Z", "2026-04-05T13:00:00Z"),
                w(day, -630, "2026-04-05T13:00:00Z", "2026-04-05T13:30:00Z"),
            ]
        );
        // 2026-10-04 02:00 → 02:30 (23.5 h day).
        let day = d(2026, 10, 4);
        assert_eq!(
            plan_day(Tz::Australia__Lord_Howe, day),
            vec![w(day, -630, "2026-10-03T13:30:00Z", "2026-10-04T13:00:00Z")]
        );
    }

    #[test]
    fn gap_at_midnight_claims_from_the_end_of_the_gap() {
        let day = d(2018, 11, 4);
        let plan = plan_day(Tz::America__Sao_Paulo, day);
        // Offset after the gap is -02 → 120; the served range starts an hour before the day.
        assert_eq!(
            plan,
            vec![w(day, 120, "2018-11-04T03:00:00Z", "2018-11-05T02:00:00Z")]
        );
        assert_eq!(plan[0].served_range().start, utc("2018-11-04T02:00:00Z"));
    }

    /// Claims of consecutive days tile time: each claim is inside its served range, claims of a
    /// day are contiguous and cover exactly the local day, and day N+1 starts where day N ends.
    #[test]
    fn claims_tile_time_across_dst_changes() {
        // (zone, first day, number of days, fall-back days in the range)
        let cases: [(Tz, NaiveDate, i64, usize); 7] = [
            (Tz::UTC, d(2026, 1, 1), 30, 0),
            (Tz::Asia__Kolkata, d(2026, 1, 1), 30, 0),
            (Tz::America__New_York, d(2026, 2, 25), 20, 0),
            (Tz::America__New_York, d(2026, 10, 20), 20, 1),
            (Tz::Europe__London, d(2026, 3, 20), 220, 1),
            (Tz::Australia__Lord_Howe, d(2026, 3, 25), 200, 1),
            (Tz::America__Sao_Paulo, d(2017, 10, 1), 160, 1),
        ];
        for (tz, first, days, fall_back_days) in cases {
            let mut prev_end: Option<DateTime<Utc>> = None;
            let mut two_window_days = 0;
            for i in 0..days {
                let day = first + Duration::days(i);
                let plan = plan_day(tz, day);
                assert!(!plan.is_empty() && plan.len() <= 2, "{tz} {day}: {plan:?}");
                if plan.len() == 2 {
                    two_window_days += 1;
                }
                let bounds = local_day_bounds(tz, day);
                assert_eq!(plan[0].claim.start, bounds.start, "{tz} {day}");
                assert_eq!(plan[plan.len() - 1].claim.end, bounds.end, "{tz} {day}");
                for pair in plan.windows(2) {
                    assert_eq!(pair[0].claim.end, pair[1].claim.start, "{tz} {day}");
                }
                for win in &plan {
                    assert!(win.claim.start < win.claim.end, "{tz} {day}");
                    let served = win.served_range();
                    assert!(served.start <= win.claim.start, "{tz} {day}");
                    assert!(win.claim.end <= served.end, "{tz} {day}");
                    assert_eq!(win.day, day);
                }
                if let Some(prev) = prev_end {
                    assert_eq!(prev, bounds.start, "{tz} {day}: gap or overlap");
                }
                prev_end = Some(bounds.end);
            }
            assert_eq!(two_window_days, fall_back_days, "{tz}");
        }
    }
}
