//! The IntentRealtimeData ground truth: the session schedule of each bot (session `k` completes
//! at `epoch + k * interval`) and the contents of every session as a pure function of (seed,
//! bot id, k), so every simulator process serves session `k` identically. The server renders
//! these values; tests use them as the independent source of expected rows.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};

use crate::simulator::generator::{hash, hash_str, uuid_like};

/// IntentRealtimeData returns at most this many sessions.
pub const LATEST_SESSIONS: usize = 25;

const TAG_MALFORMED: u64 = 0x05;
const TAG_SESSION: u64 = 0x07;

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
