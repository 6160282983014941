//! The pure generator of queue states: what a queue looks like at a given second, for a set of
//! filters, from the simulator's seed (tag words 0x6_). Counts are consistent with each other
//! (agents by status add up to `noOfAgents`, `engaged` never exceeds the busy agents, the
//! longest wait is at least the average) and `dropOff` grows through the UTC day.

use chrono::{DateTime, Timelike, Utc};

use crate::simulator::generator::{hash, hash_str};
use crate::simulator::SimulatorConfig;

const TAG_QUEUE: u64 = 0x61;
const TAG_BROKEN: u64 = 0x62;
const TAG_FILTERS: u64 = 0x63;

/// The `channels` and `languages` of a request body, sorted (their order does not matter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub channels: Vec<String>,
    pub languages: Vec<String>,
}

impl Filters {
    /// Reads `channels`/`Channels` and `languages`/`Languages` (arrays of strings) from a JSON
    /// body; an empty body has none.
    pub fn from_body(body: &[u8]) -> Result<Filters, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Filters::default());
        }
        let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let list = |name: &str| -> Result<Vec<String>, String> {
            let capital = format!("{}{}", name[..1].to_uppercase(), &name[1..]);
            let Some(items) = v.get(name).or_else(|| v.get(&capital)) else {
                return Ok(Vec::new());
            };
            let mut out: Vec<String> = items
                .as_array()
                .ok_or(format!("{name} is not an array"))?
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or(format!("{name}: not a string"))
                })
                .collect::<Result<_, _>>()?;
            out.sort();
            Ok(out)
        };
        Ok(Filters {
            channels: list("channels")?,
            languages: list("languages")?,
        })
    }

    /// The same filters from config-style lists (any order).
    pub fn new(channels: &[String], languages: &[String]) -> Filters {
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        Filters {
            channels: sorted(channels),
            languages: sorted(languages),
        }
    }

    fn word(&self) -> u64 {
        let joined = format!("{}|{}", self.channels.join(","), self.languages.join(","));
        hash(&[TAG_FILTERS, hash_str(&joined)])
    }
}

/// A queue's state at one second, as the model serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedQueue {
    pub queue_id: String,
    pub queue_name: String,
    /// `skills` as JSON text.
    pub skills: String,
    pub waiting: i64,
    pub engaged: i64,
    pub drop_off: i64,
    pub available: i64,
    pub offline: i64,
    pub busy: i64,
    pub away: i64,
    pub agents: i64,
    pub avg_wait: f64,
    pub max_wait: f64,
    pub asa: i64,
    /// Served with `waiting` as a string (one answer in `malformed_every`).
    pub malformed: bool,
    /// The second it describes.
    pub at: DateTime<Utc>,
}

/// `t` truncated to the second (the model's resolution).
pub(crate) fn second_of(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// The state of `queue_id` at `at` (truncated to the second) under `filters`.
pub fn queue_snapshot(
    cfg: &SimulatorConfig,
    queue_id: &str,
    filters: &Filters,
    at: DateTime<Utc>,
) -> GeneratedQueue {
    let at = second_of(at);
    let q = hash_str(queue_id);
    let second = at.timestamp() as u64;
    let draw = |n: u64| hash(&[cfg.seed, TAG_QUEUE, q, filters.word(), second, n]);
    let agents = 2 + (hash(&[cfg.seed, TAG_QUEUE, q]) % 9) as i64;
    let busy = (draw(1) % (agents as u64 + 1)) as i64;
    let away = (draw(2) % ((agents - busy) as u64 + 1)) as i64;
    let offline = (draw(3) % ((agents - busy - away) as u64 + 1)) as i64;
    let available = agents - busy - away - offline;
    let avg_tenths = draw(6) % 3000;
    let skills = match hash(&[cfg.seed, TAG_QUEUE, q, 7]) % 3 {
        0 => "[]".to_string(),
        1 => r#"[{"skillId":"sk-billing","name":"Billing"}]"#.to_string(),
        _ => r#"[{"skillId":"sk-en","name":"English"},{"skillId":"sk-vip","name":"VIP"}]"#
            .to_string(),
    };
    GeneratedQueue {
        queue_id: queue_id.to_string(),
        queue_name: format!("Queue {}", queue_id.trim_start_matches("qu-")),
        skills,
        waiting: (draw(4) % 25) as i64,
        engaged: (draw(5) % (busy as u64 + 1)) as i64,
        drop_off: i64::from(at.num_seconds_from_midnight() / 900) + (draw(8) % 3) as i64,
        available,
        offline,
        busy,
        away,
        agents,
        avg_wait: avg_tenths as f64 / 10.0,
        max_wait: (avg_tenths + draw(9) % 6000) as f64 / 10.0,
        asa: (draw(10) % 120) as i64,
        malformed: cfg
            .malformed_every
            .is_some_and(|n| hash(&[cfg.seed, TAG_BROKEN, q, second]).is_multiple_of(n.max(1))),
        at,
    }
}
