//! The UserStatus ground truth: the contents of every agent's buckets as a pure function of
//! (seed, agent index, UTC bucket start, granularity), so requests at different offsets agree
//! wherever their buckets coincide, and the request window the simulator reads from a
//! `dateFilter`. The server renders these values; tests use them as the independent source of
//! expected rows. Callers pass the `seed` and `malformed_every` the simulator was started with.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use crate::model::Granularity;
use crate::simulator::generator::hash;

const TAG_SHIFT: u64 = 0x02;
const TAG_DAY: u64 = 0x03;
const TAG_BUCKET: u64 = 0x04;
const TAG_MALFORMED: u64 = 0x05;
const TAG_LISTED: u64 = 0x06;

pub const METRIC_STATUS: &str = "AgentStatus";
pub const METRIC_STATE: &str = "AgentState";

/// One `status[]` entry of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratedStatus {
    /// [`METRIC_STATUS`] or [`METRIC_STATE`].
    pub metric: &'static str,
    /// e.g. `Available`, `Away:Idle`, `AVAILABLE:Interacting` (casing as the real API).
    pub value: &'static str,
    /// The true duration; `0 < seconds <= bucket width`.
    pub seconds: i64,
    /// The simulator writes an unparsable `stats.sum` for this entry (see [`Self::sum_json`]);
    /// an exporter must turn it into a reject.
    pub malformed: bool,
}

impl GeneratedStatus {
    /// The JSON value written for `stats.sum`: `"919 sec"`, or for malformed entries
    /// `"abc sec"` / `"NaN sec"` (strings with no digits at all).
    pub fn sum_json(&self) -> String {
        let mut s = String::with_capacity(12);
        self.write_sum_json(&mut s);
        s
    }

    pub(crate) fn write_sum_json(&self, out: &mut String) {
        use std::fmt::Write as _;
        if self.malformed {
            out.push_str(if self.seconds % 2 == 0 {
                "\"abc sec\""
            } else {
                "\"NaN sec\""
            });
        } else {
            // Writing into a String cannot fail.
            let _ = write!(out, "\"{} sec\"", self.seconds);
        }
    }
}

/// One listed bucket of an agent in a request window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedBucket {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Empty for a listed idle bucket (`"status": []`).
    pub statuses: Vec<GeneratedStatus>,
}

/// The UTC span a UserStatus request covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The simulator's reading of `dateFilter`: `[start_date 00:00, (end_date + 1) 00:00)` local
/// time at the ONE fixed JS-style offset (minutes of UTC minus local; IST = -330), so the UTC
/// start is `start_date 00:00 + offset minutes`. `None` when the dates are out of chrono's range.
pub fn request_window(
    start_date: NaiveDate,
    end_date: NaiveDate,
    tz_offset_minutes: i64,
) -> Option<RequestWindow> {
    let offset = TimeDelta::try_minutes(tz_offset_minutes)?;
    let start = start_date.and_hms_opt(0, 0, 0)?.and_utc() + offset;
    let end = end_date.succ_opt()?.and_hms_opt(0, 0, 0)?.and_utc() + offset;
    Some(RequestWindow { start, end })
}

/// Bucket starts of a window: aligned to the window start, stepping by the granularity.
pub fn bucket_starts(window: RequestWindow, granularity: Granularity) -> Vec<DateTime<Utc>> {
    let step = granularity.duration();
    let mut out = Vec::new();
    let mut t = window.start;
    while t < window.end {
        out.push(t);
        t += step;
    }
    out
}

/// Seconds of `[a0, a1)` ∩ `[b0, b1)`.
fn overlap(a0: i64, a1: i64, b0: i64, b1: i64) -> i64 {
    (a1.min(b1) - a0.max(b0)).max(0)
}

/// Seconds of the bucket `[start, end)` that fall in the agent's shifts on active days. Every
/// agent works one shift per UTC day (fixed start and length per agent) and skips about one
/// day in seven entirely.
fn on_shift_seconds(seed: u64, agent: u64, start: i64, end: i64) -> i64 {
    let hs = hash(&[seed, TAG_SHIFT, agent]);
    let shift_start = (hs % 24) as i64 * 3600 + ((hs >> 8) % 4) as i64 * 900;
    let shift_len = (6 + (hs >> 16) % 5) as i64 * 3600;
    let first_day = start.div_euclid(86_400) - 1;
    let last_day = (end - 1).div_euclid(86_400);
    let mut on = 0;
    for day in first_day..=last_day {
        if hash(&[seed, TAG_DAY, agent, day as u64]).is_multiple_of(7) {
            continue;
        }
        let s = day * 86_400 + shift_start;
        on += overlap(s, s + shift_len, start, end);
    }
    on
}

/// The true contents of one bucket: a pure function of (seed, agent, UTC bucket start,
/// granularity), so requests at different offsets agree wherever their buckets coincide.
/// Never malformed; see [`bucket_statuses_with_malformed`].
pub fn bucket_statuses(
    seed: u64,
    agent_idx: usize,
    bucket_start: DateTime<Utc>,
    granularity: Granularity,
) -> Vec<GeneratedStatus> {
    bucket_statuses_with_malformed(seed, agent_idx, bucket_start, granularity, None)
}

/// [`bucket_statuses`] with about one entry in `malformed_every` flagged `malformed` (what the
/// simulator serves when its config has the same `malformed_every`).
pub fn bucket_statuses_with_malformed(
    seed: u64,
    agent_idx: usize,
    bucket_start: DateTime<Utc>,
    granularity: Granularity,
    malformed_every: Option<u64>,
) -> Vec<GeneratedStatus> {
    let a = agent_idx as u64;
    let start = bucket_start.timestamp();
    let width = granularity.minutes() * 60;
    let on = on_shift_seconds(seed, a, start, start + width);
    if on == 0 {
        return Vec::new();
    }
    let key = [seed, TAG_BUCKET, a, start as u64, width as u64];
    let r = hash(&key);
    if r.is_multiple_of(10) {
        // A break: logged out for the whole bucket.
        return Vec::new();
    }
    let sub = |k: u64| hash(&[r, k]);
    let away_first = sub(1) % 5 == 0;
    let split = on >= 2 && sub(2) % 4 == 0;
    let (first, second) = if split {
        let cut = 1 + (sub(3) % (on as u64 - 1)) as i64;
        (on - cut, cut)
    } else {
        (on, 0)
    };
    let (s1, s2) = if away_first {
        (Status::Away, Status::Available)
    } else {
        (Status::Available, Status::Away)
    };
    let mut out = Vec::with_capacity(6);
    for (i, (status, secs)) in [(s1, first), (s2, second)].into_iter().enumerate() {
        if secs <= 0 {
            continue;
        }
        out.push(entry(METRIC_STATUS, status.name(), secs));
        let mut idle = (sub(10 + i as u64) % (secs as u64 + 1)) as i64;
        let interacting = secs - idle;
        if idle > 40 && sub(20 + i as u64) % 6 == 0 {
            // The real API's state sums do not always add up to the status sum.
            idle -= (sub(30 + i as u64) % 40) as i64;
        }
        if idle > 0 {
            out.push(entry(METRIC_STATE, status.idle(), idle));
        }
        if interacting > 0 {
            out.push(entry(METRIC_STATE, status.interacting(), interacting));
        }
    }
    if let Some(n) = malformed_every.filter(|&n| n > 0) {
        for (i, st) in out.iter_mut().enumerate() {
            st.malformed = hash(&[seed, TAG_MALFORMED, a, start as u64, width as u64, i as u64])
                .is_multiple_of(n);
        }
    }
    out
}

fn entry(metric: &'static str, value: &'static str, seconds: i64) -> GeneratedStatus {
    GeneratedStatus {
        metric,
        value,
        seconds,
        malformed: false,
    }
}

#[derive(Clone, Copy)]
enum Status {
    Available,
    Away,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Available => "Available",
            Status::Away => "Away",
        }
    }
    fn idle(self) -> &'static str {
        match self {
            Status::Available => "Available:Idle",
            Status::Away => "Away:Idle",
        }
    }
    fn interacting(self) -> &'static str {
        match self {
            Status::Available => "AVAILABLE:Interacting",
            Status::Away => "AWAY:Interacting",
        }
    }
}

/// The buckets listed for one agent, as `(index into bucket_starts, statuses)`. Empty when the
/// agent has no activity in the whole window (`"timeInterval": []`); otherwise every bucket
/// with activity plus about a third of the idle ones (with `"status": []`).
pub(crate) fn listed_buckets(
    seed: u64,
    agent_idx: usize,
    starts: &[DateTime<Utc>],
    granularity: Granularity,
    malformed_every: Option<u64>,
) -> Vec<(usize, Vec<GeneratedStatus>)> {
    let mut out = Vec::with_capacity(starts.len());
    let mut any = false;
    for (i, &start) in starts.iter().enumerate() {
        let statuses =
            bucket_statuses_with_malformed(seed, agent_idx, start, granularity, malformed_every);
        if !statuses.is_empty() {
            any = true;
            out.push((i, statuses));
        } else if hash(&[seed, TAG_LISTED, agent_idx as u64, start.timestamp() as u64])
            .is_multiple_of(3)
        {
            out.push((i, statuses));
        }
    }
    if !any {
        out.clear();
    }
    out
}

/// Everything the simulator returns for one agent over one request: the listed buckets in
/// time order: every bucket with activity plus about a third of the idle ones, and no buckets
/// at all for an agent without activity in the window.
pub fn agent_window(
    seed: u64,
    agent_idx: usize,
    window: RequestWindow,
    granularity: Granularity,
    malformed_every: Option<u64>,
) -> Vec<GeneratedBucket> {
    let starts = bucket_starts(window, granularity);
    listed_buckets(seed, agent_idx, &starts, granularity, malformed_every)
        .into_iter()
        .map(|(i, statuses)| GeneratedBucket {
            start: starts[i],
            end: starts[i] + granularity.duration(),
            statuses,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn window_follows_the_js_offset_sign() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 10).unwrap();
        let ist = request_window(d, d, -330).unwrap();
        assert_eq!(ist.start, utc(2024, 3, 9, 18, 30));
        assert_eq!(ist.end, utc(2024, 3, 10, 18, 30));
        // New York on its spring-forward day, sent with the offset at local midnight (EST).
        let ny = request_window(d, d, 300).unwrap();
        assert_eq!(ny.start, utc(2024, 3, 10, 5, 0));
        assert_eq!(ny.end, utc(2024, 3, 11, 5, 0));
        assert_eq!(bucket_starts(ist, Granularity::PT30M).len(), 48);
        assert_eq!(
            bucket_starts(ist, Granularity::PT30M)[1],
            utc(2024, 3, 9, 19, 0)
        );
    }

    #[test]
    fn buckets_respect_width_and_vary() {
        let g = Granularity::PT15M;
        let day = utc(2024, 5, 1, 0, 0);
        let mut empty = 0;
        let mut multi = 0;
        let mut metrics = std::collections::HashSet::new();
        for a in 0..30 {
            for b in 0..96 {
                let t = day + TimeDelta::minutes(15 * b);
                let s = bucket_statuses(42, a, t, g);
                assert_eq!(s, bucket_statuses(42, a, t, g));
                let status_sum: i64 = s
                    .iter()
                    .filter(|x| x.metric == METRIC_STATUS)
                    .map(|x| x.seconds)
                    .sum();
                assert!(status_sum <= 900, "{s:?}");
                assert!(s
                    .iter()
                    .all(|x| x.seconds > 0 && x.seconds <= 900 && !x.malformed));
                if s.is_empty() {
                    empty += 1;
                }
                if s.len() > 2 {
                    multi += 1;
                }
                metrics.extend(s.iter().map(|x| x.value));
            }
        }
        assert!(empty > 100 && multi > 100, "empty {empty}, multi {multi}");
        assert!(metrics.contains("AVAILABLE:Interacting") && metrics.contains("Available:Idle"));
    }

    #[test]
    fn some_agents_have_whole_days_off() {
        let d = NaiveDate::from_ymd_opt(2024, 5, 1).unwrap();
        let w = request_window(d, d, 0).unwrap();
        let idle = (0..100)
            .filter(|&a| agent_window(42, a, w, Granularity::PT1H, None).is_empty())
            .count();
        assert!(idle > 0 && idle < 50, "idle agents: {idle}");
    }

    #[test]
    fn malformed_entries_are_flagged_and_unparsable() {
        let t = utc(2024, 5, 1, 0, 0);
        let mut flagged = 0;
        let mut total = 0;
        for a in 0..50 {
            for h in 0..24 {
                let bucket = t + TimeDelta::hours(h);
                let clean = bucket_statuses(42, a, bucket, Granularity::PT1H);
                let bad = bucket_statuses_with_malformed(42, a, bucket, Granularity::PT1H, Some(5));
                assert_eq!(clean.len(), bad.len());
                for (c, b) in clean.iter().zip(&bad) {
                    total += 1;
                    assert_eq!(
                        (c.metric, c.value, c.seconds),
                        (b.metric, b.value, b.seconds)
                    );
                    if b.malformed {
                        flagged += 1;
                        assert!(!b.sum_json().chars().any(|ch| ch.is_ascii_digit()));
                    } else {
                        assert_eq!(b.sum_json(), format!("\"{} sec\"", b.seconds));
                    }
                }
            }
        }
        assert!(
            flagged * 10 > total && flagged * 3 < total,
            "{flagged}/{total}"
        );
    }
}
