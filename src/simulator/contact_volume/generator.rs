//! The Contact Volume data as a pure function of (seed, queue, interval start): which queues
//! have a record in which 15-minute interval (UTC-aligned, as in every sample), its counts,
//! its durations in whole seconds and its skill breakdown. The renderer turns the durations into
//! the units [`super::ContactVolumeSim`] says the tenant sends; tests and the truth read the
//! same values here.

use std::ops::Range;

use chrono::{DateTime, TimeDelta, Utc};

use crate::simulator::generator::{hash, hash_str, quirk};
use crate::simulator::queues::{queue_id, NAMES};

const TAG_ACTIVE: u64 = 0x62;
const TAG_VALUE: u64 = 0x63;
const TAG_SKILL: u64 = 0x64;
const TAG_MALFORMED: u64 = 0x65;
const TAG_ID: u64 = 0x66;
const TAG_CASING: u64 = 0x67;

/// The interval length of every record.
pub const INTERVAL: TimeDelta = TimeDelta::minutes(15);

/// How many queues have records: the first of the queue list ([`crate::simulator::queues`]),
/// whose ids and names they carry, so the WFM tables join the list.
pub const ACTIVE_QUEUES: usize = 3;
const _: () = assert!(
    ACTIVE_QUEUES <= NAMES.len(),
    "every queue with records has a name"
);
const SKILLS: [(&str, &str); 4] = [
    ("Italian Market", "Languages"),
    ("Spanish", "Languages"),
    ("Refunds", "Payments"),
    ("Hardware", "Products"),
];

/// A queue: its `qu-` id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedQueue {
    pub id: String,
    pub name: &'static str,
}

/// Every queue with records: the first [`ACTIVE_QUEUES`] of the queue list.
pub fn queues(seed: u64) -> Vec<GeneratedQueue> {
    (0..ACTIVE_QUEUES)
        .map(|i| GeneratedQueue {
            id: queue_id(seed, i),
            name: NAMES[i],
        })
        .collect()
}

/// The measures of a record or skill entry: counts, durations in whole seconds (in
/// the order of the API's keys) and the message and CSAT values.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedMeasures {
    /// offered, answered, abandoned, completed.
    pub counts: [i64; 4],
    /// queueHoldTimeAnswered, maxQueueHoldTimeAnswered, queueHoldTimeAbandoned,
    /// maxqueueHoldTimeAbandoned, acwDuration, conversationHandleTime, conversationTalkTime,
    /// holdDuration; seconds.
    pub durations_s: [i64; 8],
    /// messageCount, savedMessageCount, csatResponses (a skill sends only the last).
    pub messages: [i64; 3],
    /// An integer for records, one decimal for skills (an average, per the skill table).
    pub csat_score: f64,
}

/// One skill entry of a record.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedSkill {
    pub id: String,
    pub name: &'static str,
    pub group_id: String,
    pub group_name: &'static str,
    pub measures: GeneratedMeasures,
}

/// One record: a queue's interval.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedVolume {
    /// `_id` (24 hex digits, as MongoDB ids).
    pub record_id: String,
    pub queue: GeneratedQueue,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub measures: GeneratedMeasures,
    pub skills: Vec<GeneratedSkill>,
    /// Sends `maxQueueHoldTimeAbandoned` instead of the documented lower-case-q key.
    pub upper_q: bool,
    /// Served with `offeredContacts` as a string (`malformed_every`).
    pub malformed: bool,
}

/// Every record whose interval starts in `range` and has ended by `now`, by start then queue.
pub fn volumes(
    seed: u64,
    range: Range<DateTime<Utc>>,
    now: DateTime<Utc>,
    malformed_every: Option<u64>,
) -> Vec<GeneratedVolume> {
    let step = INTERVAL.num_milliseconds();
    let first = range.start.timestamp_millis().div_euclid(step)
        + i64::from(range.start.timestamp_millis().rem_euclid(step) != 0);
    let queues = queues(seed);
    let mut out = Vec::new();
    let mut n = first;
    while let Some(start) = DateTime::from_timestamp_millis(n * step) {
        if start >= range.end || start + INTERVAL > now {
            break;
        }
        for (q, queue) in queues.iter().enumerate() {
            if let Some(v) = volume(seed, q as u64, queue, start, malformed_every) {
                out.push(v);
            }
        }
        n += 1;
    }
    out
}

fn volume(
    seed: u64,
    q: u64,
    queue: &GeneratedQueue,
    start: DateTime<Utc>,
    malformed_every: Option<u64>,
) -> Option<GeneratedVolume> {
    let t = start.timestamp_millis() as u64;
    if hash(&[seed, TAG_ACTIVE, q, t]).is_multiple_of(5) {
        return None;
    }
    let record_measures = measures(seed, &[q, t], false);
    let h = hash(&[seed, TAG_SKILL, q, t]);
    let first_skill = (h >> 8) % SKILLS.len() as u64;
    let skills = (0..h % 3)
        .map(|k| {
            let idx = (first_skill + k) % SKILLS.len() as u64;
            let (name, group_name) = SKILLS[idx as usize];
            GeneratedSkill {
                id: format!("sk-{:012x}", hash(&[seed, TAG_SKILL, idx]) >> 16),
                name,
                group_id: format!(
                    "sg-{:012x}",
                    hash(&[seed, TAG_SKILL, 99, hash_str(group_name)]) >> 16
                ),
                group_name,
                measures: measures(seed, &[q, t, idx], true),
            }
        })
        .collect();
    let h = hash(&[seed, TAG_ID, q, t]);
    Some(GeneratedVolume {
        record_id: format!("{:016x}{:08x}", h, h >> 40),
        queue: queue.clone(),
        start,
        end: start + INTERVAL,
        measures: record_measures,
        skills,
        upper_q: quirk(seed, &[TAG_CASING, q, t], 4),
        malformed: malformed_every
            .is_some_and(|k| k > 0 && hash(&[seed, TAG_MALFORMED, q, t]).is_multiple_of(k)),
    })
}

/// Plausible measures: per answered contact at most 600 s talk, 60 s hold and 90 s wrap-up,
/// queue waits up to 120 s, so every duration fits in 900 s times the contacts.
fn measures(seed: u64, key: &[u64], skill: bool) -> GeneratedMeasures {
    let draw = |i: u64, modulo: i64| -> i64 {
        let mut parts = vec![seed, TAG_VALUE, i, u64::from(skill)];
        parts.extend_from_slice(key);
        (hash(&parts) % modulo as u64) as i64
    };
    let offered = 1 + draw(0, 12);
    let answered = offered - draw(1, offered.min(3) + 1);
    let abandoned = offered - answered;
    let completed = answered - draw(2, answered.min(1) + 1);
    let wait_answered = answered * (5 + draw(3, 55));
    let max_answered = if answered > 0 {
        (wait_answered / answered + draw(4, 30)).min(wait_answered)
    } else {
        0
    };
    let wait_abandoned = abandoned * (10 + draw(5, 110));
    let max_abandoned = if abandoned > 0 {
        (wait_abandoned / abandoned + draw(6, 20)).min(wait_abandoned)
    } else {
        0
    };
    let acw = answered * (10 + draw(7, 80));
    let talk = answered * (60 + draw(8, 540));
    let hold = answered * draw(9, 60);
    let responses = draw(10, answered + 1);
    let csat_score = match (responses, skill) {
        (0, _) => 0.0,
        (_, false) => (1 + draw(11, 5)) as f64,
        (_, true) => (10 + draw(11, 41)) as f64 / 10.0,
    };
    GeneratedMeasures {
        counts: [offered, answered, abandoned, completed],
        durations_s: [
            wait_answered,
            max_answered,
            wait_abandoned,
            max_abandoned,
            acw,
            talk + hold + acw,
            talk,
            hold,
        ],
        messages: [draw(12, 40), draw(13, 5), responses],
        csat_score,
    }
}
