//! The `[queue_stats]` section: which queues to poll and how often, the `channels` and
//! `languages` filters sent with every poll, the request path (`{stream_id}` is `[api] iid`,
//! `{queue_id}` each polled queue) and the zone of the `dt` partition (the account zone by
//! default). Pure validation: every problem is reported with its key. An empty `queue_ids`
//! (every queue of the account's `queues` list) needs `[queues]` enabled.

use std::collections::HashSet;

use chrono_tz::Tz;
use serde::Deserialize;

use crate::config::parse::{is_safe_identifier, parse_schedule, parse_tz};
use crate::config::{Config, DatasetSection, Problems, Schedule, SectionContext};
use crate::datasets::queues::QueuesConfig;

/// Every minute, at second 0.
pub const SCHEDULE: &str = "0 * * * * *";
/// Default path; `{stream_id}` is `[api] iid`, `{queue_id}` each polled queue.
pub const PATH: &str = "/agentassist/api/v1/public/{stream_id}/monitor/queueStatsById/{queue_id}";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueueStats {
    pub enabled: Option<bool>,
    pub schedule: Option<String>,
    pub schedule_timezone: Option<String>,
    pub timezone: Option<String>,
    pub queue_ids: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub languages: Option<Vec<String>>,
    pub path: Option<String>,
}

#[derive(Debug, Clone)]
pub struct QueueStatsConfig {
    pub enabled: bool,
    pub schedule: Schedule,
    /// Zone the cron `schedule` is evaluated in (UTC by default), DST-correct.
    pub schedule_timezone: Tz,
    /// Zone whose local date of `polled_at` names the `dt` partition.
    pub timezone: Tz,
    /// The queues polled, each its own entity; empty: every queue of the `queues` list (see
    /// `super::QueueStats::new`).
    pub queue_ids: Vec<String>,
    /// Sent as `channels` when not empty.
    pub channels: Vec<String>,
    /// Sent as `languages` when not empty.
    pub languages: Vec<String>,
    /// Path with `{stream_id}` substituted; still holds `{queue_id}`.
    pub path: String,
}

impl DatasetSection for QueueStatsConfig {
    const NAME: &'static str = "queue_stats";
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("enabled", "false"),
        ("schedule", "\"0 * * * * *\""),
        ("schedule_timezone", "\"UTC\""),
        ("queue_ids", "[]"),
        ("channels", "[]"),
        ("languages", "[]"),
        (
            "path",
            "\"/agentassist/api/v1/public/{stream_id}/monitor/queueStatsById/{queue_id}\"",
        ),
    ];
    type Raw = RawQueueStats;

    fn validate(raw: &RawQueueStats, cx: &SectionContext<'_>, p: &mut Problems) -> Self {
        let enabled = raw.enabled.unwrap_or(false);
        let queue_ids = identifiers(p, "queue_ids", &raw.queue_ids);
        QueueStatsConfig {
            enabled,
            schedule: parse_schedule(p, "queue_stats.schedule", &raw.schedule, SCHEDULE),
            schedule_timezone: parse_tz(
                p,
                "queue_stats.schedule_timezone",
                raw.schedule_timezone.as_deref(),
            ),
            timezone: match raw.timezone.as_deref() {
                Some(name) => parse_tz(p, "queue_stats.timezone", Some(name)),
                None => cx.timezone,
            },
            queue_ids,
            channels: filter_values(p, &CHANNELS, &raw.channels),
            languages: filter_values(p, &LANGUAGES, &raw.languages),
            path: path(p, raw.path.as_deref(), cx.iid),
        }
    }

    /// An empty `queue_ids` polls every queue of the `queues` list, which must be exported.
    fn check_against(&self, config: &Config, p: &mut Problems) {
        let list_exported = config
            .section::<QueuesConfig>()
            .is_some_and(|QueuesConfig(q)| q.keys.enabled);
        if self.enabled && self.queue_ids.is_empty() && !list_exported {
            p.push(
                "queue_stats.queue_ids",
                "enabled but no queue ids are configured: list the queues to poll, or enable \
                 [queues] (the queue list export) to poll every queue of the account",
            );
        }
    }
}

/// A list of ids: each a safe identifier (it becomes a path segment), none twice.
fn identifiers(p: &mut Problems, key: &str, values: &Option<Vec<String>>) -> Vec<String> {
    let values = values.clone().unwrap_or_default();
    let mut seen = HashSet::new();
    for (i, v) in values.iter().enumerate() {
        if !is_safe_identifier(v) {
            p.push(
                &format!("queue_stats.{key}[{i}]"),
                format!("{v:?} may contain only ASCII letters, digits, '-', '_' and '.'"),
            );
        } else if !seen.insert(v.as_str()) {
            p.push(
                &format!("queue_stats.{key}[{i}]"),
                format!("{v:?} is listed twice"),
            );
        }
    }
    values
}

/// A body filter: its key and what the reference (Queue Size, `channels` and `languages`)
/// documents of its values. Both are "from a fixed list" whose documented excerpt is elided
/// (`rtm`, `ivr`, …, and `en`, `de`, …, `ge`), so a value is checked for the form of the listed
/// ones, not for membership: a display name (`Web/Mobile Client`), a capitalised value or a
/// language name would match nothing on the server, silently.
struct Filter {
    key: &'static str,
    /// Whether `value` has the form of the documented values.
    form: fn(&str) -> bool,
    /// The form, and the documented values, for the message.
    expected: &'static str,
}

/// `channels`: the API's channel values, lower-case ASCII letters and digits.
static CHANNELS: Filter = Filter {
    key: "channels",
    form: |v| {
        (1..=32).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    },
    expected: "a channel value of the API: lower-case letters and digits, such as rtm (Web/\
               Mobile Client), ivr (Agent AI), sms, msteams, whatsapp, korevg, audiocodes or \
               email",
};

/// `languages`: two-letter lower-case language codes.
static LANGUAGES: Filter = Filter {
    key: "languages",
    form: |v| v.len() == 2 && v.bytes().all(|b| b.is_ascii_lowercase()),
    expected: "a two-letter lower-case language code of the API, such as en or de",
};

/// The values of a body filter: each of the documented form, none twice; problems name
/// `queue_stats.<key>[i]`.
fn filter_values(p: &mut Problems, filter: &Filter, values: &Option<Vec<String>>) -> Vec<String> {
    let values = values.clone().unwrap_or_default();
    let mut seen = HashSet::new();
    for (i, v) in values.iter().enumerate() {
        let key = format!("queue_stats.{}[{i}]", filter.key);
        if !(filter.form)(v) {
            p.push(&key, format!("{v:?} is not {}", filter.expected));
        } else if !seen.insert(v.as_str()) {
            p.push(&key, format!("{v:?} is listed twice"));
        }
    }
    values
}

/// The path with `{stream_id}` substituted: it must start with `/`, hold `{queue_id}` and no
/// other placeholder.
fn path(p: &mut Problems, value: Option<&str>, iid: &str) -> String {
    let path = value.unwrap_or(PATH);
    if !path.starts_with('/') || !path.contains("{queue_id}") {
        p.push(
            "queue_stats.path",
            "must start with '/' and contain {queue_id}",
        );
    }
    let path = path.replace("{stream_id}", iid);
    if path.replace("{queue_id}", "").contains('{') {
        p.push(
            "queue_stats.path",
            "only the {stream_id} and {queue_id} placeholders are supported",
        );
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_languages_take_the_documented_values_and_name_each_other_one() {
        let (c, problems) = validated(
            "channels = [\"rtm\", \"ivr\", \"sms\", \"msteams\", \"whatsapp\", \"korevg\", \
             \"audiocodes\", \"email\"]\nlanguages = [\"en\", \"de\", \"ge\"]\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.channels.len(), 8);
        assert_eq!(c.languages, ["en", "de", "ge"]);
        // A display name, a capitalised value, an empty one; a language name, a locale, a
        // capitalised code.
        let (_, problems) = validated(
            "channels = [\"rtm\", \"Web/Mobile Client\", \"RTM\", \"\"]\n\
             languages = [\"en\", \"english\", \"en-US\", \"DE\"]\n",
        );
        let named: Vec<&str> = problems
            .iter()
            .map(|p| p.split(':').next().unwrap_or(""))
            .collect();
        assert_eq!(
            named,
            [
                "queue_stats.channels[1]",
                "queue_stats.channels[2]",
                "queue_stats.channels[3]",
                "queue_stats.languages[1]",
                "queue_stats.languages[2]",
                "queue_stats.languages[3]",
            ],
            "{problems:?}"
        );
        assert!(
            problems[0].contains("such as rtm (Web/Mobile Client)"),
            "{problems:?}"
        );
    }

    fn validated(toml_text: &str) -> (QueueStatsConfig, Vec<String>) {
        let raw: RawQueueStats = toml::from_str(toml_text).expect("parses");
        let mut p = Problems::default();
        let cx = SectionContext {
            account_id: "acct",
            iid: "st-stream-1",
            timezone: chrono_tz::Europe::Berlin,
        };
        let cfg = QueueStatsConfig::validate(&raw, &cx, &mut p);
        (cfg, p.0.into_iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn defaults_poll_every_minute_off_with_the_stream_in_the_path_and_the_account_zone() {
        let (c, problems) = validated("");
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!c.enabled);
        assert_eq!(c.schedule.expression, "0 * * * * *");
        assert_eq!(c.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(c.schedule_timezone, chrono_tz::UTC);
        assert_eq!(
            c.path,
            "/agentassist/api/v1/public/st-stream-1/monitor/queueStatsById/{queue_id}"
        );
    }

    #[test]
    fn every_bad_key_is_named() {
        let (_, problems) = validated(
            "enabled = true\nschedule = \"* * *\"\ntimezone = \"Mars/Olympus\"\n\
             schedule_timezone = \"Nowhere\"\nchannels = [\"rtm\", \"rtm\"]\n\
             languages = [\"e n\"]\npath = \"/x/{bot_id}\"\n",
        );
        let text = problems.join("\n");
        for key in [
            "queue_stats.schedule",
            "queue_stats.timezone",
            "queue_stats.schedule_timezone",
            "queue_stats.channels[1]",
            "queue_stats.languages[0]",
            "queue_stats.path",
        ] {
            assert!(text.contains(key), "{key} not named in:\n{text}");
        }
        let (_, problems) = validated("queue_ids = [\"../etc\"]\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("queue_stats.queue_ids[0]"),
            "{problems:?}"
        );
    }
}
