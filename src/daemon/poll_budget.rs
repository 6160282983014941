//! What the configured polls ask of the account's request budget: every snapshot dataset's
//! entities × polls in the busiest minute of its schedule, against what
//! `api.requests_per_minute` admits ([`crate::client::budget`]: that many per 61 s). `check`
//! prints it and the daemon logs it at start; both refuse (exit 2) polls that alone exceed the
//! budget, since no priority can keep their cadence then and sessions would be lost without
//! any error. Entities listed at every poll (`queue_stats` polling every queue of the `queues`
//! list) cannot be counted ahead: they are named per entity and left out of the sum.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::client::budget::{Budget, MINUTE, WINDOW};
use crate::datasets::{Dataset, EntitySource, SnapshotSchedule};
use crate::error::Error;
use crate::scheduler;

/// Occurrences [`busiest_minute`] looks at, at most (a per-second schedule has 86 400 a day).
const BUSIEST_MINUTE_SCAN: usize = 100_000;

/// The most occurrences of `cron` (evaluated in `tz`) in one clock minute during the day
/// after `now`: what a schedule asks of the request budget at its peak.
pub fn busiest_minute(cron: &croner::Cron, tz: Tz, now: DateTime<Utc>) -> u32 {
    let end = now + TimeDelta::days(1);
    let (mut busiest, mut current, mut minute) = (0u32, 0u32, None);
    let mut at = now;
    for _ in 0..BUSIEST_MINUTE_SCAN {
        let Some(next) = scheduler::next_occurrence(cron, tz, at).filter(|n| *n <= end) else {
            break;
        };
        let m = next.timestamp().div_euclid(60);
        if minute == Some(m) {
            current += 1;
        } else {
            (minute, current) = (Some(m), 1);
        }
        busiest = busiest.max(current);
        at = next;
    }
    busiest
}

/// What `entities` listed entities polled on `schedule` ask at its busiest minute, against what
/// `requests_per_minute` admits: the line to log, and whether they fit. The daemon says it
/// whenever the number of listed entities changes, since `check` cannot count them ahead.
pub fn listed_demand(
    dataset: &str,
    kind: &str,
    entities: usize,
    schedule: &SnapshotSchedule,
    requests_per_minute: u32,
    now: DateTime<Utc>,
) -> (String, bool) {
    let per_entity = busiest_minute(&schedule.schedule.cron, schedule.schedule_timezone, now);
    let needed = entities as u64 * u64::from(per_entity);
    let admitted = f64::from(requests_per_minute) * MINUTE.as_secs_f64() / WINDOW.as_secs_f64();
    let line = format!(
        "{dataset}: {entities} {kind}(s) of the list × {per_entity} polls/minute need {needed} \
         requests/minute; api.requests_per_minute = {requests_per_minute} admits {admitted:.1} \
         a minute, shared with the other datasets"
    );
    (line, needed as f64 <= admitted)
}

/// What the polls of one snapshot dataset ask of the request budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollDemand {
    pub dataset: &'static str,
    pub entity_kind: &'static str,
    /// The configured entities; 0 when they are listed (see `listed_from`).
    pub entities: usize,
    /// The list dataset whose entities are polled (`queues`), when they are not configured:
    /// their number is known only when the list is read, so it counts here per entity.
    pub listed_from: Option<&'static str>,
    /// Polls of one entity in the busiest minute of its schedule.
    pub polls_per_minute: u32,
    /// Extra polls a minute of one entity while a gap is suspected (fast re-polls).
    pub gap_polls_per_minute: u32,
}

impl PollDemand {
    fn requests_per_minute(&self) -> u64 {
        self.entities as u64 * u64::from(self.polls_per_minute)
    }
}

/// The configured polls against `api.requests_per_minute`.
#[derive(Debug, Clone, PartialEq)]
pub struct PollBudget {
    pub demands: Vec<PollDemand>,
    pub requests_per_minute: u32,
}

impl PollBudget {
    /// The polls of every enabled snapshot dataset, at the busiest minute of their schedules
    /// during the day after `now`.
    pub fn of(datasets: &[Dataset], requests_per_minute: u32, now: DateTime<Utc>) -> PollBudget {
        let demands = datasets
            .iter()
            .filter_map(|d| match d {
                Dataset::Snapshot(s) => Some(s),
                Dataset::History(_) => None,
            })
            .map(|s| {
                let sched = s.schedule();
                PollDemand {
                    dataset: s.info().name,
                    entity_kind: s.entity_kind(),
                    entities: s.entities().len(),
                    listed_from: match s.entity_source() {
                        EntitySource::List { dataset, .. } => Some(dataset),
                        EntitySource::Config => None,
                    },
                    polls_per_minute: busiest_minute(
                        &sched.schedule.cron,
                        sched.schedule_timezone,
                        now,
                    ),
                    gap_polls_per_minute: sched.gap_poll_interval.map_or(0, |every| {
                        u32::try_from(MINUTE.as_secs().div_ceil(every.as_secs().max(1)))
                            .unwrap_or(u32::MAX)
                    }),
                }
            })
            .collect();
        PollBudget {
            demands,
            requests_per_minute,
        }
    }

    /// Requests a minute the polls need at their busiest.
    pub fn polls_per_minute(&self) -> u64 {
        self.demands
            .iter()
            .map(PollDemand::requests_per_minute)
            .sum()
    }

    /// Entities polled at each tick that are configured (listed ones add to the reserve only
    /// once their list is read).
    fn configured_entities(&self) -> u32 {
        let n: usize = self.demands.iter().map(|d| d.entities).sum();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Requests a minute the budget admits: `requests_per_minute` per window of 61 s.
    pub fn admitted_per_minute(&self) -> f64 {
        f64::from(self.requests_per_minute) * MINUTE.as_secs_f64() / WINDOW.as_secs_f64()
    }

    /// `2 bots × 12 polls/minute (intent_realtime)`, for every snapshot dataset.
    fn terms(&self) -> String {
        self.demands
            .iter()
            .map(|d| match d.listed_from {
                Some(list) => format!(
                    "every {} of the `{list}` list × {} polls/minute ({}; not counted: the \
                     number is known only when the list is read)",
                    d.entity_kind, d.polls_per_minute, d.dataset
                ),
                None => {
                    let plural = if d.entities == 1 { "" } else { "s" };
                    format!(
                        "{} {}{plural} × {} polls/minute ({})",
                        d.entities, d.entity_kind, d.polls_per_minute, d.dataset
                    )
                }
            })
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// `Err` (a usage error, exit 2) when the polls alone exceed the budget.
    pub fn check(&self) -> Result<(), Error> {
        let needed = self.polls_per_minute();
        if (needed as f64) <= self.admitted_per_minute() {
            return Ok(());
        }
        let keys: Vec<String> = self
            .demands
            .iter()
            .map(|d| format!("{}.schedule", d.dataset))
            .collect();
        Err(Error::Usage(format!(
            "{}: the polls alone need {needed} requests/minute ({}), more than \
             api.requests_per_minute = {} admits ({} per {} s, {:.1} a minute): polls would \
             fall behind and lose data. Poll less often or poll fewer {}, or raise \
             api.requests_per_minute if the account allows it",
            keys.join(", "),
            self.terms(),
            self.requests_per_minute,
            self.requests_per_minute,
            WINDOW.as_secs(),
            self.admitted_per_minute(),
            self.demands
                .first()
                .map_or_else(|| "entities".to_string(), |d| format!("{}s", d.entity_kind)),
        )))
    }

    /// One line for `check` and the daemon's start log; `None` without snapshot datasets.
    pub fn summary(&self) -> Option<String> {
        if self.demands.is_empty() {
            return None;
        }
        let gap: u64 = self
            .demands
            .iter()
            .map(|d| d.entities as u64 * u64::from(d.gap_polls_per_minute))
            .sum();
        // While polls are active, history also leaves the realtime reserve free: one place
        // per configured poll of a tick, capped as the budget caps it.
        let reserve = self
            .configured_entities()
            .min(Budget::reserve_cap(self.requests_per_minute));
        let history = (self.admitted_per_minute()
            - self.polls_per_minute() as f64
            - f64::from(reserve) * MINUTE.as_secs_f64() / WINDOW.as_secs_f64())
        .max(0.0);
        Some(format!(
            "polls need {} of the {} requests/minute of api.requests_per_minute ({}); \
             history gets the rest{}, about {history:.0} a minute{}",
            self.polls_per_minute(),
            self.requests_per_minute,
            self.terms(),
            if reserve > 0 {
                format!(" but {reserve} place(s) kept free for a tick's polls")
            } else {
                String::new()
            },
            if gap > 0 {
                format!(" (less while a gap is suspected: up to {gap} more polls/minute)")
            } else {
                String::new()
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::datasets;

    fn config(intent: &str, rpm: u32) -> Config {
        let text = format!(
            "[api]\nbase_url = \"simulator\"\naccount_id = \"a\"\niid = \"i\"\n\
             client_id = \"c\"\nrequests_per_minute = {rpm}\n\n[output]\nurl = \"out\"\n\n\
             [intent_realtime]\n{intent}\n"
        );
        datasets::config_from_toml(&text, std::path::Path::new("<test>"), None)
            .expect("valid config")
    }

    fn budget(intent: &str, rpm: u32) -> PollBudget {
        let now = "2024-01-01T10:00:00Z".parse().expect("time");
        PollBudget::of(&datasets::enabled(&config(intent, rpm)), rpm, now)
    }

    fn cron_of(expr: &str) -> croner::Cron {
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(expr)
            .expect("valid cron")
    }

    fn time(s: &str) -> DateTime<Utc> {
        s.parse().expect("rfc3339")
    }

    #[test]
    fn busiest_minute_counts_the_peak_of_a_day() {
        let now = time("2024-01-01T10:00:30Z");
        assert_eq!(busiest_minute(&cron_of("*/5 * * * * *"), Tz::UTC, now), 12);
        assert_eq!(busiest_minute(&cron_of("*/30 * * * * *"), Tz::UTC, now), 2);
        assert_eq!(busiest_minute(&cron_of("* * * * * *"), Tz::UTC, now), 60);
        // Bursty: ten polls in the first ten seconds of each minute, business hours only.
        let bursty = cron_of("0-9 * 9-17 * * *");
        assert_eq!(
            busiest_minute(&bursty, Tz::UTC, time("2024-01-01T20:00:00Z")),
            10
        );
        assert_eq!(
            busiest_minute(&cron_of("0 0 3 * * *"), chrono_tz::America::New_York, now),
            1
        );
    }

    #[test]
    fn polls_within_the_budget_are_summarised_with_their_numbers() {
        let b = budget(
            "bot_ids = [\"b1\", \"b2\"]\nschedule = \"*/5 * * * * *\"",
            60,
        );
        assert_eq!(b.polls_per_minute(), 24);
        assert!(b.check().is_ok());
        assert_eq!(
            b.summary().as_deref(),
            Some(
                "polls need 24 of the 60 requests/minute of api.requests_per_minute \
                 (2 bots × 12 polls/minute (intent_realtime)); history gets the rest but 2 \
                 place(s) kept free for a tick's polls, about 33 a minute (less while a gap is suspected: up to 12 more polls/minute)"
            )
        );
    }

    #[test]
    fn listed_polls_are_measured_once_their_number_is_known() {
        let schedule = SnapshotSchedule {
            schedule: crate::config::Schedule {
                expression: "0 * * * * *".into(),
                cron: cron_of("0 * * * * *"),
            },
            schedule_timezone: Tz::UTC,
            gap_poll_interval: None,
        };
        let now = time("2024-01-01T10:00:30Z");
        let (line, fits) = listed_demand("queue_stats", "queue", 59, &schedule, 60, now);
        assert!(fits, "59 polls a minute fit 60 per 61 s");
        assert_eq!(
            line,
            "queue_stats: 59 queue(s) of the list × 1 polls/minute need 59 requests/minute; \
             api.requests_per_minute = 60 admits 59.0 a minute, shared with the other datasets"
        );
        let (_, fits) = listed_demand("queue_stats", "queue", 60, &schedule, 60, now);
        assert!(!fits, "60 polls a minute exceed 60 per 61 s");
    }

    #[test]
    fn polls_over_the_budget_are_refused_naming_the_numbers_and_keys() {
        let b = budget(
            "bot_ids = [\"b1\", \"b2\", \"b3\", \"b4\", \"b5\"]\nschedule = \"*/5 * * * * *\"\n\
             gap_poll_interval_seconds = 0",
            60,
        );
        let err = b.check().expect_err("over budget");
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err.to_string(),
            "intent_realtime.schedule: the polls alone need 60 requests/minute (5 bots × 12 \
             polls/minute (intent_realtime)), more than api.requests_per_minute = 60 admits (60 \
             per 61 s, 59.0 a minute): polls would fall behind and lose data. Poll less often or \
             poll fewer bots, or raise api.requests_per_minute if the account allows it"
        );
        // No snapshot dataset: nothing to say, nothing to refuse.
        let none = budget("enabled = false", 1);
        assert!(none.check().is_ok());
        assert_eq!(none.summary(), None);
    }
}
