//! Deterministic data behind the simulator: agents, UserStatus bucket contents and
//! IntentRealtimeData sessions, each a pure function of a seed and a key (agent index and UTC
//! bucket start; bot id and session number). The server renders these values and tests use them
//! as the independent source of expected rows, so nothing here may depend on the server, the
//! clock or a random number generator. Callers pass the same `seed` (and `malformed_every`)
//! that the simulator was started with.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta, Utc};

use crate::model::Granularity;

/// IntentRealtimeData returns at most this many sessions.
pub const LATEST_SESSIONS: usize = 25;

const TAG_AGENT: u64 = 0x01;
const TAG_SHIFT: u64 = 0x02;
const TAG_DAY: u64 = 0x03;
const TAG_BUCKET: u64 = 0x04;
const TAG_MALFORMED: u64 = 0x05;
const TAG_LISTED: u64 = 0x06;
const TAG_SESSION: u64 = 0x07;
const TAG_QUIRK: u64 = 0x08;

/// SplitMix64 finalizer: a bijective scramble of one 64-bit word.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of a sequence of words; order matters.
pub fn hash(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(0x243F_6A88_85A3_08D3, |acc, &p| mix(acc ^ mix(p)))
}

/// FNV-1a of a string, scrambled, so string keys (bot ids) can feed [`hash`].
pub fn hash_str(s: &str) -> u64 {
    let fnv = s.bytes().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    });
    mix(fnv)
}

/// A render quirk decision (extra unknown fields and the like), deterministic in its key.
pub(crate) fn quirk(seed: u64, parts: &[u64], one_in: u64) -> bool {
    let mut all = Vec::with_capacity(parts.len() + 2);
    all.push(seed);
    all.push(TAG_QUIRK);
    all.extend_from_slice(parts);
    hash(&all).is_multiple_of(one_in)
}

fn uuid_like(prefix: &str, a: u64, b: u64) -> String {
    format!(
        "{prefix}{:08x}-{:04x}-5{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFF,
        0x8000 | (b >> 48 & 0x3FFF),
        b & 0xFFFF_FFFF_FFFF
    )
}

// ---------------------------------------------------------------------------------------------
// Agents
// ---------------------------------------------------------------------------------------------

const FIRST_NAMES: [&str; 24] = [
    "Nick", "Joce", "Asha", "Ravi", "Maria", "Liam", "Chen", "Fatima", "Olga", "Kwame", "Sofia",
    "Arjun", "Emma", "Hiro", "Lucia", "Omar", "Priya", "Tom", "Zara", "Diego", "Mei", "Noah",
    "Ines", "Yusuf",
];
const LAST_NAMES: [&str; 24] = [
    "J",
    "Tay",
    "Rao",
    "Kumar",
    "Garcia",
    "Smith",
    "Wang",
    "Khan",
    "Ivanova",
    "Mensah",
    "Rossi",
    "Patel",
    "Brown",
    "Sato",
    "Fernandez",
    "Haddad",
    "Iyer",
    "Miller",
    "Ali",
    "Lopez",
    "Lin",
    "Weber",
    "Silva",
    "Demir",
];

/// One agent as the UserStatus API describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedAgent {
    /// `u-<uuid>`.
    pub user_id: String,
    /// Unique per index; what `filter.agents` matches.
    pub email: String,
    /// Empty for about one agent in ten (with `last_name`).
    pub first_name: String,
    pub last_name: String,
    /// Empty for about one agent in seven.
    pub custom_id: String,
}

/// The agent at `idx` (0-based). The simulator serves agents `0..cfg.agents` in index order.
pub fn agent(seed: u64, idx: usize) -> GeneratedAgent {
    let i = idx as u64;
    let h = hash(&[seed, TAG_AGENT, i]);
    let h2 = hash(&[seed, TAG_AGENT, i, 1]);
    let user_id = uuid_like("u-", h, h2);
    let anonymous = h % 10 == 3;
    let (first_name, last_name, email) = if anonymous {
        (
            String::new(),
            String::new(),
            format!("agent{idx}@example.com"),
        )
    } else {
        let first = FIRST_NAMES[(h >> 8) as usize % FIRST_NAMES.len()];
        let last = LAST_NAMES[(h >> 16) as usize % LAST_NAMES.len()];
        let email = format!(
            "{}.{}.{idx}@example.com",
            first.to_ascii_lowercase(),
            last.to_ascii_lowercase()
        );
        (first.to_string(), last.to_string(), email)
    };
    let custom_id = if (h >> 24).is_multiple_of(7) {
        String::new()
    } else {
        format!("{}", 100_000 + (h >> 32) % 900_000)
    };
    GeneratedAgent {
        user_id,
        email,
        first_name,
        last_name,
        custom_id,
    }
}

// ---------------------------------------------------------------------------------------------
// UserStatus buckets
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// IntentRealtimeData sessions
// ---------------------------------------------------------------------------------------------

/// The session schedule of one bot: session `k` completes at `epoch + k * interval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentFeed {
    pub seed: u64,
    pub bot_id: String,
    pub epoch: DateTime<Utc>,
    /// Must be non-zero.
    pub interval: Duration,
    pub malformed_every: Option<u64>,
}

/// One IntentRealtimeData record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedSession {
    /// The session number in the bot's schedule.
    pub k: u64,
    /// 24 hex characters, unique per (bot, k).
    pub session_id: String,
    pub user_id: String,
    /// `rtm`, `audiocodes` or `msteams`.
    pub channel: String,
    pub ani: String,
    pub dni: String,
    /// Sometimes empty.
    pub intents: Vec<String>,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    /// As written on the wire: ISO-8601 with `+00:00`, `+05:30` or `Z`.
    pub start_time_raw: String,
    /// As written on the wire; `"invalid-date"` when `malformed`.
    pub end_time_raw: String,
    /// `completed` or `Dropoff`.
    pub status: String,
    /// `"50s"`, `"13m: 8s"`, `"1h: 2m: 3s"`.
    pub time_handled_raw: String,
    /// `end_time - start_time` in whole seconds.
    pub time_handled_seconds: i64,
    pub deflected_to: Option<String>,
    /// The simulator writes an unparsable `endTime` for this session; an exporter must reject it.
    pub malformed: bool,
}

/// When session `k` completes. Saturates far in the future instead of overflowing.
pub fn session_end(epoch: DateTime<Utc>, interval: Duration, k: u64) -> DateTime<Utc> {
    let ms = (interval.as_millis() as i128 * i128::from(k)).min(i128::from(i64::MAX / 4)) as i64;
    epoch
        .checked_add_signed(TimeDelta::milliseconds(ms))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `"50s"`, `"13m: 8s"`, `"1h: 2m: 3s"` for a non-negative number of seconds.
pub fn format_time_handled(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h}h: {m}m: {s}s")
    } else if m > 0 {
        format!("{m}m: {s}s")
    } else {
        format!("{s}s")
    }
}

fn format_with_style(t: DateTime<Utc>, style: u64) -> String {
    match style % 3 {
        0 => t
            .fixed_offset()
            .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string(),
        1 => match FixedOffset::east_opt(5 * 3600 + 30 * 60) {
            Some(ist) => t
                .with_timezone(&ist)
                .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
                .to_string(),
            None => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        },
        _ => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    }
}

const INTENTS: [&str; 8] = [
    "Book a Ticket",
    "Book a Flight",
    "Check Balance",
    "Cancel Order",
    "Track Shipment",
    "Reset Password",
    "Speak to Agent",
    "Update Address",
];
const CHANNELS: [&str; 3] = ["rtm", "audiocodes", "msteams"];

/// Session `k` of the feed's bot.
pub fn session(feed: &IntentFeed, k: u64) -> GeneratedSession {
    let b = hash_str(&feed.bot_id);
    let h = hash(&[feed.seed, TAG_SESSION, b, k]);
    let sub = |i: u64| hash(&[h, i]);
    let end_time = session_end(feed.epoch, feed.interval, k);
    let d = sub(1) % 100;
    let seconds = if d < 45 {
        5 + (sub(2) % 55) as i64
    } else if d < 85 {
        60 + (sub(2) % 3540) as i64
    } else {
        3600 + (sub(2) % 5400) as i64
    };
    let start_time = end_time - TimeDelta::seconds(seconds);
    let style = sub(3);
    let channel = CHANNELS[(sub(4) % 3) as usize];
    let user_id = uuid_like("u-", hash(&[feed.seed, b, sub(5) % 40]), sub(6));
    let (ani, dni) = if channel == "audiocodes" {
        (
            format!("+1{:010}", sub(7) % 10_000_000_000),
            format!("+1800{:07}", b % 10_000_000),
        )
    } else {
        (user_id.clone(), format!("bot-{}@example.com", b % 1000))
    };
    let n_intents = match sub(8) % 10 {
        0..=1 => 0,
        2..=7 => 1,
        8 => 2,
        _ => 3,
    };
    let intents = (0..n_intents)
        .map(|i| INTENTS[(sub(20 + i) % INTENTS.len() as u64) as usize].to_string())
        .collect();
    let malformed = feed
        .malformed_every
        .filter(|&n| n > 0)
        .is_some_and(|n| hash(&[feed.seed, TAG_MALFORMED, b, k]).is_multiple_of(n));
    let end_time_raw = if malformed {
        "invalid-date".to_string()
    } else {
        format_with_style(end_time, style)
    };
    GeneratedSession {
        k,
        session_id: format!("{:016x}{:08x}", sub(9), k & 0xFFFF_FFFF),
        user_id,
        channel: channel.to_string(),
        ani,
        dni,
        intents,
        start_time,
        end_time,
        start_time_raw: format_with_style(start_time, style),
        end_time_raw,
        status: if sub(10) % 4 == 0 {
            "Dropoff"
        } else {
            "completed"
        }
        .to_string(),
        time_handled_raw: format_time_handled(seconds),
        time_handled_seconds: seconds,
        deflected_to: (sub(11) % 5 == 0).then(|| CHANNELS[(sub(12) % 3) as usize].to_string()),
        malformed,
    }
}

/// The newest session number completed at `now`, or `None` before the first one.
pub fn latest_session_index(feed: &IntentFeed, now: DateTime<Utc>) -> Option<u64> {
    if now < feed.epoch || feed.interval.is_zero() {
        return None;
    }
    let elapsed_ms = (now - feed.epoch).num_milliseconds() as u128;
    Some((elapsed_ms / feed.interval.as_millis().max(1)) as u64)
}

/// What IntentRealtimeData returns at `now`: the latest [`LATEST_SESSIONS`] sessions with
/// `end_time <= now`, newest first.
pub fn latest_sessions(feed: &IntentFeed, now: DateTime<Utc>) -> Vec<GeneratedSession> {
    let Some(newest) = latest_session_index(feed, now) else {
        return Vec::new();
    };
    let oldest = newest.saturating_sub(LATEST_SESSIONS as u64 - 1);
    (oldest..=newest).rev().map(|k| session(feed, k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn splitmix_matches_reference_values() {
        // Reference outputs of SplitMix64 seeded with 0: the first two next() values.
        assert_eq!(mix(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(mix(0x9E37_79B9_7F4A_7C15), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn agents_are_deterministic_unique_and_sometimes_blank() {
        assert_eq!(agent(42, 3), agent(42, 3));
        assert_ne!(agent(42, 3).user_id, agent(43, 3).user_id);
        let agents: Vec<_> = (0..500).map(|i| agent(42, i)).collect();
        let emails: std::collections::HashSet<_> = agents.iter().map(|a| &a.email).collect();
        assert_eq!(emails.len(), 500);
        assert!(agents.iter().any(|a| a.first_name.is_empty()));
        assert!(agents.iter().any(|a| a.custom_id.is_empty()));
        assert!(agents
            .iter()
            .all(|a| a.user_id.starts_with("u-") && a.user_id.len() == 38));
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

    #[test]
    fn time_handled_styles() {
        assert_eq!(format_time_handled(50), "50s");
        assert_eq!(format_time_handled(788), "13m: 8s");
        assert_eq!(format_time_handled(3723), "1h: 2m: 3s");
        assert_eq!(format_time_handled(3600), "1h: 0m: 0s");
    }

    fn feed() -> IntentFeed {
        IntentFeed {
            seed: 42,
            bot_id: "st-demo-bot".into(),
            epoch: utc(2024, 1, 1, 0, 0),
            interval: Duration::from_secs(60),
            malformed_every: None,
        }
    }

    #[test]
    fn sessions_follow_the_schedule() {
        let f = feed();
        assert_eq!(session_end(f.epoch, f.interval, 0), utc(2024, 1, 1, 0, 0));
        assert_eq!(session_end(f.epoch, f.interval, 90), utc(2024, 1, 1, 1, 30));
        for k in 0..200 {
            let s = session(&f, k);
            assert_eq!(s.end_time, f.epoch + TimeDelta::minutes(k as i64));
            assert_eq!(
                (s.end_time - s.start_time).num_seconds(),
                s.time_handled_seconds
            );
            let parsed = DateTime::parse_from_rfc3339(&s.end_time_raw).unwrap();
            assert_eq!(parsed, s.end_time);
            assert_eq!(
                DateTime::parse_from_rfc3339(&s.start_time_raw).unwrap(),
                s.start_time
            );
            assert_eq!(s.session_id.len(), 24);
        }
    }

    #[test]
    fn latest_sessions_are_the_newest_25() {
        let f = feed();
        assert!(latest_sessions(&f, utc(2023, 12, 31, 23, 59)).is_empty());
        assert_eq!(latest_sessions(&f, utc(2024, 1, 1, 0, 0)).len(), 1);
        // 100 minutes and 30 seconds after the epoch: sessions 0..=100 have completed.
        let now = utc(2024, 1, 1, 1, 40) + TimeDelta::seconds(30);
        let got: Vec<u64> = latest_sessions(&f, now).iter().map(|s| s.k).collect();
        let want: Vec<u64> = (76..=100).rev().collect();
        assert_eq!(got, want);
    }

    #[test]
    fn malformed_sessions_have_bad_end_times() {
        let f = IntentFeed {
            malformed_every: Some(4),
            ..feed()
        };
        let bad = (0..400).filter(|&k| session(&f, k).malformed).count();
        assert!(bad > 50 && bad < 150, "{bad}");
        for k in 0..400 {
            let s = session(&f, k);
            assert_eq!(
                s.malformed,
                DateTime::parse_from_rfc3339(&s.end_time_raw).is_err()
            );
        }
    }
}
