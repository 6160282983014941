//! The Sessions History ground truth: the sessions of a bot are IntentRealtimeData's (the same
//! schedule, ids, users, channels and times, from [`crate::simulator::intent_realtime`]), so
//! what intent_realtime captured can be compared with what getSessions lists. A session is
//! listed once it has started (`start_time <= now`): `sessionStatus` `closed` with its
//! `end_time` once it has ended (`end_time <= now`), `active` without an end before that (an
//! active session of a day still running, or of a day just over: the same id IntentRealtimeData
//! lists once the session has ended). The fields only
//! getSessions has (languages, type, containment, developer flag, tags, counts) are a pure
//! function of (seed, bot, k) with tags of mixed value types; about one session in
//! `malformed_every` is served with a broken count (its `start_time` stays valid, so it is
//! rejected once, in its own day).

use std::ops::Range;

use chrono::{DateTime, TimeDelta, Utc};

use crate::simulator::generator::{hash, hash_str};
use crate::simulator::intent_realtime::{session, GeneratedSession, IntentFeed};

const TAG_FIELDS: u64 = 0x61;
const TAG_MALFORMED: u64 = 0x62;

/// The longest session the intent generator makes (its `end - start`), in seconds.
pub const MAX_SESSION_SECONDS: i64 = 3600 + 5400;

/// One getSessions record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedBotSession {
    /// The IntentRealtimeData session it is (id, user, channel, start and end).
    pub base: GeneratedSession,
    pub session_lang: Vec<String>,
    /// `interactive` or `non-interactive`.
    pub session_type: &'static str,
    /// `dropOff` (the intent status `Dropoff`), `agent` (deflected) or `selfService`.
    pub containment_type: &'static str,
    pub is_developer: bool,
    /// `isDeveloper` is written as `1`/`0` instead of `true`/`false`.
    pub developer_as_number: bool,
    /// `tags.userTags` and `tags.sessionTags` exactly as written (values of mixed types).
    pub user_tags: String,
    pub session_tags: String,
    pub messages: i64,
    pub tasks: i64,
    /// `noOfMessagesExchanged` is written as the text `"many"`: an exporter must reject it.
    pub malformed: bool,
}

impl GeneratedBotSession {
    pub fn id(&self) -> &str {
        &self.base.session_id
    }

    /// Still running at `now`: listed with `sessionStatus` `active` and no end.
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.base.end_time > now
    }

    /// An active session's record omits `end_time` (else it writes `"end_time": null`).
    pub fn omits_end_when_active(&self) -> bool {
        self.base.k.is_multiple_of(2)
    }
}

/// Session `k` of the feed's bot, as getSessions lists it.
pub fn bot_session(feed: &IntentFeed, k: u64) -> GeneratedBotSession {
    let base = session(feed, k);
    let b = hash_str(&feed.bot_id);
    let h = hash(&[feed.seed, TAG_FIELDS, b, k]);
    let sub = |i: u64| hash(&[h, i]);
    let session_lang = match sub(1) % 6 {
        0 => vec!["en".to_string(), "de".to_string()],
        1 => vec!["de".to_string()],
        _ => vec!["en".to_string()],
    };
    let containment_type = if base.status == "Dropoff" {
        "dropOff"
    } else if base.deflected_to.is_some() {
        "agent"
    } else {
        "selfService"
    };
    let user_tags = match sub(2) % 3 {
        0 => "[]".to_string(),
        1 => r#"[{"value":"newuser","name":"regular"}]"#.to_string(),
        _ => format!(
            r#"[{{"value":{},"name":"visits"}},{{"value":"gold","name":"tier"}}]"#,
            sub(3) % 40
        ),
    };
    let session_tags = match sub(4) % 3 {
        0 => "[]".to_string(),
        1 => r#"[{"value":"1","name":"welcomeMessageTwilio"}]"#.to_string(),
        _ => r#"[{"value":true,"name":"authenticated"},{"value":2.5,"name":"score"}]"#.to_string(),
    };
    let malformed = feed
        .malformed_every
        .filter(|&n| n > 0)
        .is_some_and(|n| hash(&[feed.seed, TAG_MALFORMED, b, k]).is_multiple_of(n));
    GeneratedBotSession {
        base,
        session_lang,
        session_type: if sub(5) % 10 == 0 {
            "non-interactive"
        } else {
            "interactive"
        },
        containment_type,
        is_developer: sub(6) % 12 == 0,
        developer_as_number: sub(7) % 2 == 0,
        user_tags,
        session_tags,
        messages: 1 + (sub(8) % 30) as i64,
        tasks: (sub(9) % 4) as i64,
        malformed,
    }
}

/// The sessions getSessions lists at `now` for `range` (`[dateFrom, dateTo)`): every session
/// starting in the range by `now` (ended or still active, see
/// [`GeneratedBotSession::is_active_at`]), newest first by start time (ties by id).
pub fn listed(
    feed: &IntentFeed,
    range: &Range<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<GeneratedBotSession> {
    let interval_ms = feed.interval.as_millis().max(1) as i64;
    let index_at = |t: DateTime<Utc>| (t - feed.epoch).num_milliseconds().div_euclid(interval_ms);
    // A session started by `now` in the range ends up to the longest duration after its
    // start.
    let last_end = now.min(range.end) + TimeDelta::seconds(MAX_SESSION_SECONDS);
    if last_end < feed.epoch || now < range.start {
        return Vec::new();
    }
    let first = index_at(range.start).max(0) as u64;
    let last = index_at(last_end).max(0) as u64;
    let mut out: Vec<GeneratedBotSession> = (first..=last)
        .map(|k| bot_session(feed, k))
        .filter(|s| s.base.start_time <= now && range.contains(&s.base.start_time))
        .collect();
    out.sort_by(|a, b| {
        b.base
            .start_time
            .cmp(&a.base.start_time)
            .then_with(|| a.id().cmp(b.id()))
    });
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;

    fn feed() -> IntentFeed {
        IntentFeed {
            seed: 42,
            bot_id: "st-demo-bot".into(),
            epoch: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
            interval: Duration::from_secs(60),
            malformed_every: None,
        }
    }

    #[test]
    fn listed_sessions_are_the_intent_sessions_of_the_range_newest_first() {
        let f = feed();
        let day = Utc.with_ymd_and_hms(2024, 1, 2, 0, 0, 0).unwrap();
        let range = day..day + TimeDelta::days(1);
        let now = day + TimeDelta::days(3);
        let got = listed(&f, &range, now);
        // Brute force over a wide index range: every session starting in the day.
        let want: Vec<String> = (0..6000)
            .map(|k| session(&f, k))
            .filter(|s| range.contains(&s.start_time))
            .map(|s| s.session_id)
            .collect();
        assert_eq!(got.len(), want.len());
        let ids: std::collections::HashSet<&str> = got.iter().map(|s| s.id()).collect();
        assert!(want.iter().all(|w| ids.contains(w.as_str())));
        assert!(got
            .windows(2)
            .all(|w| w[0].base.start_time >= w[1].base.start_time));
        // At a "now" inside the day: every session started by then, the ones still running
        // among them (brute force again).
        let mid = day + TimeDelta::hours(12);
        let at_mid = listed(&f, &range, mid);
        let started: Vec<String> = (0..6000)
            .map(|k| session(&f, k))
            .filter(|s| range.contains(&s.start_time) && s.start_time <= mid)
            .map(|s| s.session_id)
            .collect();
        assert_eq!(at_mid.len(), started.len());
        let running = (0..6000)
            .map(|k| session(&f, k))
            .filter(|s| s.start_time <= mid && s.end_time > mid && range.contains(&s.start_time))
            .count();
        assert!(
            running > 0,
            "sessions last up to 2.5 h, one ends every minute"
        );
        assert_eq!(
            at_mid.iter().filter(|s| s.is_active_at(mid)).count(),
            running
        );
    }

    #[test]
    fn every_containment_kind_and_both_developer_spellings_occur() {
        let f = feed();
        let all: Vec<GeneratedBotSession> = (0..500).map(|k| bot_session(&f, k)).collect();
        for kind in ["dropOff", "agent", "selfService"] {
            assert!(all.iter().any(|s| s.containment_type == kind), "{kind}");
        }
        assert!(all.iter().any(|s| s.developer_as_number));
        assert!(all.iter().any(|s| s.is_developer));
        for s in &all {
            serde_json::from_str::<serde_json::Value>(&s.user_tags).expect("user tags");
            serde_json::from_str::<serde_json::Value>(&s.session_tags).expect("session tags");
        }
    }
}
