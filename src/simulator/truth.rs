//! The ground truth of every dataset the simulator serves: for a dataset and a unit of its work
//! (local days in a zone, or one poll of an entity), which rows the simulated API holds, by
//! table, partition and row key, and how many of its records it serves broken (each must become
//! one reject). The compliance suite (`tests/compliance/`) compares every registered dataset's
//! Parquet output with it; it is computed by the API model that serves the dataset
//! ([`super::model::ApiModel::truth`]), from the same pure generator its handler renders, never
//! from the exporter's code.
//!
//! A query carries the dataset's config section as the exporter reads it (the keys as written,
//! each documented default filled in), because some keys shape what the API answers (a bucket
//! granularity, an agent or channel filter); a model reads the ones it honours with
//! [`TruthQuery::text`] and [`TruthQuery::texts`] and refuses what it cannot answer exactly
//! ([`TruthError::Unsupported`]).
//!
//! A row is named by the values of its table's key columns (`schema::Table::key`), each written
//! as its key text and joined by `|` ([`key`]): text as is, integers in decimal, instants in UTC
//! as RFC 3339 with milliseconds ([`instant_key`], `2024-03-10T05:00:00.000Z`). Whoever reads
//! the output back writes the values of its columns the same way.

use std::ops::Range;

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;

use super::model::ApiModel;
use super::SimulatorConfig;

/// A question to one dataset's model.
#[derive(Debug, Clone)]
pub struct TruthQuery<'a> {
    /// The dataset's config section as the exporter reads it: the keys as written, plus the
    /// documented default of every key not written.
    pub section: &'a toml::Table,
    /// The zone of the dataset's local days (its `timezone`).
    pub zone: Tz,
    pub unit: TruthUnit<'a>,
}

/// The unit of work a [`TruthQuery`] asks about.
#[derive(Debug, Clone, Copy)]
pub enum TruthUnit<'a> {
    /// Every record of these local days (a history dataset's units), of `entity` when the
    /// dataset exports each entity's day on its own.
    Days {
        days: &'a [NaiveDate],
        entity: Option<&'a str>,
    },
    /// What one poll of `entity` (a snapshot dataset's unit) returns at the simulator's "now"
    /// (its `frozen_now`, else the clock, as the server answers).
    Poll { entity: &'a str },
}

/// The answer: the rows the output must hold for the unit, and the broken records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Truth {
    pub rows: Vec<ExpectedRow>,
    /// The records served broken (`SimulatorConfig::malformed_every`), each named by an id of
    /// the model's choosing (so the answers of several queries can be merged); each must be one
    /// reject.
    pub rejects: Vec<String>,
}

/// The unmapped fields a row's `extra` column must hold: each field's path (its key; for a field
/// of a mapped object, the object's key then the field's) and its exact JSON text as the API
/// sent it. Empty: `extra` is null.
pub type ExpectedExtra = std::collections::BTreeMap<Vec<String>, String>;

/// One row the output must hold exactly once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExpectedRow {
    /// The table it belongs to.
    pub table: &'static str,
    /// The local day of its partition (its table's date column, e.g. `dt`).
    pub day: NaiveDate,
    /// The entity of its partition (`bot_id`), for a table partitioned by entity.
    pub entity: Option<String>,
    /// Its key columns' values (see the module docs).
    pub key: String,
    /// What its `extra` column holds (see [`super::unknown`]).
    pub extra: ExpectedExtra,
}

impl ExpectedRow {
    /// A row of `table` in the partition of `day` (and `entity`) named `key`, with no
    /// unmapped field.
    pub fn new(table: &'static str, day: NaiveDate, entity: Option<String>, key: String) -> Self {
        ExpectedRow {
            table,
            day,
            entity,
            key,
            extra: ExpectedExtra::new(),
        }
    }

    /// The same row whose `extra` holds `extra`.
    pub fn with_extra(mut self, extra: ExpectedExtra) -> Self {
        self.extra = extra;
        self
    }
}

/// Why a model cannot answer a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TruthError {
    #[error("the {dataset} model cannot answer exactly: {what}")]
    Unsupported { dataset: &'static str, what: String },
    #[error("{dataset}.{key}: {reason}")]
    BadSection {
        dataset: &'static str,
        key: String,
        reason: String,
    },
}

/// The dataset an API model serves and how it answers for it.
pub(crate) struct DatasetTruth {
    /// The dataset's registry name.
    pub dataset: &'static str,
    pub answer: fn(&SimulatorConfig, &TruthQuery<'_>) -> Result<Truth, TruthError>,
    /// The response bodies the model serves for one request window, page by page, without a
    /// server (see [`PageRequest`]).
    pub pages: fn(&SimulatorConfig, &PageRequest) -> Vec<String>,
}

/// The pages of one request window, as the exporter asks for them: the local `day` at the
/// JavaScript-convention `offset_minutes` (UTC = local + offset), `page_size` records a page.
/// A model whose API has no window answers one poll of its first bot at the end of that day.
/// Request parameters that shape a body (a granularity, a path) are the dataset's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub day: NaiveDate,
    pub offset_minutes: i32,
    pub page_size: usize,
}

impl PageRequest {
    /// `[start, end)` of the window in UTC.
    pub fn utc_range(&self) -> Range<DateTime<Utc>> {
        let offset = chrono::TimeDelta::minutes(i64::from(self.offset_minutes));
        let start = self.day.and_time(chrono::NaiveTime::MIN).and_utc() + offset;
        start..start + chrono::TimeDelta::days(1)
    }
}

/// The response bodies the model serving `dataset` answers for `request`, in page order (the
/// bytes a server started with `cfg` sends); `None` when no model serves `dataset`. For
/// benchmarks of the decoders on realistic pages.
pub fn pages(cfg: &SimulatorConfig, dataset: &str, request: &PageRequest) -> Option<Vec<String>> {
    super::MODELS
        .iter()
        .filter_map(|m| m.truth.as_ref())
        .find(|t| t.dataset == dataset)
        .map(|t| (t.pages)(cfg, request))
}

/// What the model serving `dataset` says about `query`; `None` when no model of the table
/// declares the truth of `dataset`.
pub fn truth(
    cfg: &SimulatorConfig,
    dataset: &str,
    query: &TruthQuery<'_>,
) -> Option<Result<Truth, TruthError>> {
    truth_in(super::MODELS, cfg, dataset, query)
}

pub(crate) fn truth_in(
    models: &[&ApiModel],
    cfg: &SimulatorConfig,
    dataset: &str,
    query: &TruthQuery<'_>,
) -> Option<Result<Truth, TruthError>> {
    let t = models
        .iter()
        .filter_map(|m| m.truth.as_ref())
        .find(|t| t.dataset == dataset)?;
    Some((t.answer)(cfg, query))
}

/// Every dataset some model declares the truth of, in table order.
pub fn datasets() -> Vec<&'static str> {
    super::MODELS
        .iter()
        .filter_map(|m| m.truth.as_ref().map(|t| t.dataset))
        .collect()
}

/// The key text of an instant: UTC, RFC 3339, milliseconds.
pub fn instant_key(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A row key from its columns' key texts, in the table's key order.
pub fn key<S: AsRef<str>>(parts: &[S]) -> String {
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        out.push_str(p.as_ref());
    }
    out
}

/// `[start, end)` of a local day of `zone` in UTC: from the first instant of the day (local
/// midnight, or the first local time after a gap) to that of the next day, so 23 or 25 hours
/// on a DST change. Computed with chrono-tz alone.
pub fn local_day(zone: Tz, day: NaiveDate) -> Range<DateTime<Utc>> {
    let start = |d: NaiveDate| -> DateTime<Utc> {
        let mut t = d.and_time(chrono::NaiveTime::MIN);
        // A zone skips at most a few hours; 15-minute steps find the first local time.
        for _ in 0..24 * 4 {
            if let Some(x) = zone.from_local_datetime(&t).earliest() {
                return x.with_timezone(&Utc);
            }
            t += chrono::TimeDelta::minutes(15);
        }
        t.and_utc()
    };
    start(day)..start(day.succ_opt().unwrap_or(day))
}

/// The local date of `t` in `zone`.
pub fn local_date(zone: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&zone).date_naive()
}

impl TruthQuery<'_> {
    /// The string value of `key` in the section; `None` when absent.
    pub fn text(&self, dataset: &'static str, key: &str) -> Result<Option<&str>, TruthError> {
        match self.section.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(bad(dataset, key, &format!("a string, not {other}"))),
        }
    }

    /// The string value of `key`, which the query's section must have (a documented default
    /// fills in every key not written).
    pub fn required_text(&self, dataset: &'static str, key: &str) -> Result<&str, TruthError> {
        self.text(dataset, key)?
            .ok_or_else(|| bad(dataset, key, "a value (the section lacks its default)"))
    }

    /// The strings of the array `key` in the section; empty when absent.
    pub fn texts(&self, dataset: &'static str, key: &str) -> Result<Vec<String>, TruthError> {
        match self.section.get(key) {
            None => Ok(Vec::new()),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => Err(bad(dataset, key, &format!("strings, not {other}"))),
                })
                .collect(),
            Some(other) => Err(bad(dataset, key, &format!("an array, not {other}"))),
        }
    }

    /// The days of a [`TruthUnit::Days`] query without an entity, for a dataset whose days
    /// are account-wide; anything else is unsupported.
    pub fn account_days(&self, dataset: &'static str) -> Result<&[NaiveDate], TruthError> {
        match self.unit {
            TruthUnit::Days { days, entity: None } => Ok(days),
            other => Err(TruthError::Unsupported {
                dataset,
                what: format!("its units are account-wide local days, not {other:?}"),
            }),
        }
    }
}

fn bad(dataset: &'static str, key: &str, reason: &str) -> TruthError {
    TruthError::BadSection {
        dataset,
        key: key.to_string(),
        reason: format!("expected {reason}"),
    }
}

/// The simulator's "now", as its handlers read it.
pub(crate) fn sim_now(cfg: &SimulatorConfig) -> DateTime<Utc> {
    cfg.frozen_now.unwrap_or_else(Utc::now)
}

/// The indexes of the agents a request with `emails` as its agent filter selects (every agent
/// when empty), in index order.
pub(crate) fn selected_agents(cfg: &SimulatorConfig, emails: &[String]) -> Vec<usize> {
    (0..cfg.agents)
        .filter(|&i| {
            emails.is_empty() || emails.contains(&super::generator::agent(cfg.seed, i).email)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn local_days_are_23_and_25_hours_on_dst_changes() {
        let ny = chrono_tz::America::New_York;
        let spring = local_day(ny, day("2024-03-10"));
        assert_eq!(instant_key(spring.start), "2024-03-10T05:00:00.000Z");
        assert_eq!((spring.end - spring.start).num_hours(), 23);
        let fall = local_day(ny, day("2024-11-03"));
        assert_eq!(instant_key(fall.start), "2024-11-03T04:00:00.000Z");
        assert_eq!((fall.end - fall.start).num_hours(), 25);
        // A zone whose DST change is at midnight: the day starts at 01:00.
        let havana = local_day(chrono_tz::America::Havana, day("2024-03-10"));
        assert_eq!(instant_key(havana.start), "2024-03-10T05:00:00.000Z");
    }

    #[test]
    fn keys_join_their_parts_and_instants_carry_milliseconds() {
        let t = DateTime::from_timestamp_millis(1_710_046_800_123).unwrap();
        assert_eq!(instant_key(t), "2024-03-10T05:00:00.123Z");
        assert_eq!(
            key(&["u-1", &instant_key(t), "AgentStatus"]),
            "u-1|2024-03-10T05:00:00.123Z|AgentStatus"
        );
        assert_eq!(key::<&str>(&[]), "");
    }

    /// A registered dataset's demo section with its documented defaults, as the suite asks.
    fn section_of(d: &crate::datasets::DatasetInfo) -> toml::Table {
        let mut t: toml::Table = d.demo.section.unwrap_or_default().parse().unwrap();
        for (k, v) in d.config.all_defaults() {
            let parsed: toml::Table = format!("v = {v}").parse().unwrap();
            t.entry(k.to_string()).or_insert(parsed["v"].clone());
        }
        t
    }

    /// Each model's answer for `cfg`: local days of New York for a history dataset, else a poll
    /// of the simulator's first bot.
    fn answer(cfg: &SimulatorConfig, d: &crate::datasets::DatasetInfo) -> Truth {
        let section = section_of(d);
        let days = [day("2024-03-10"), day("2024-11-03")];
        let ask = |unit| {
            let q = TruthQuery {
                section: &section,
                zone: chrono_tz::America::New_York,
                unit,
            };
            truth(cfg, d.name, &q).expect("a model answers")
        };
        match ask(TruthUnit::Days {
            days: &days,
            entity: None,
        }) {
            Err(TruthError::Unsupported { .. }) => ask(TruthUnit::Poll {
                entity: &cfg.bots[0],
            })
            .unwrap(),
            other => other.unwrap(),
        }
    }

    #[test]
    fn a_broken_record_is_a_reject_instead_of_its_row_and_nothing_else_changes() {
        let now = "2024-11-05T12:00:00Z".parse().unwrap();
        let clean = SimulatorConfig {
            agents: 6,
            frozen_now: Some(now),
            ..SimulatorConfig::default()
        };
        let hostile = SimulatorConfig {
            malformed_every: Some(4),
            ..clean.clone()
        };
        for d in crate::datasets::REGISTRY {
            let all = answer(&clean, d);
            let some = answer(&hostile, d);
            assert!(!all.rows.is_empty() && all.rejects.is_empty(), "{}", d.name);
            assert!(!some.rejects.is_empty(), "{}: no broken record", d.name);
            let primary = |t: &Truth| -> std::collections::BTreeSet<String> {
                t.rows
                    .iter()
                    .filter(|r| r.table == d.name)
                    .map(|r| r.key.clone())
                    .collect()
            };
            let (all_keys, kept) = (primary(&all), primary(&some));
            let rejected: std::collections::BTreeSet<String> =
                some.rejects.iter().cloned().collect();
            assert_eq!(
                rejected.len(),
                some.rejects.len(),
                "{}: a record rejected twice",
                d.name
            );
            assert!(kept.is_disjoint(&rejected), "{}", d.name);
            let union: std::collections::BTreeSet<String> =
                kept.union(&rejected).cloned().collect();
            assert_eq!(
                union, all_keys,
                "{}: rows + rejects = the clean rows",
                d.name
            );
        }
    }

    #[test]
    fn a_model_refuses_a_unit_it_cannot_answer() {
        let cfg = SimulatorConfig::default();
        for d in crate::datasets::REGISTRY {
            let section = section_of(d);
            let q = |unit| TruthQuery {
                section: &section,
                zone: chrono_tz::UTC,
                unit,
            };
            let days = [day("2024-06-01")];
            let by_day = truth(
                &cfg,
                d.name,
                &q(TruthUnit::Days {
                    days: &days,
                    entity: None,
                }),
            );
            let by_poll = truth(
                &cfg,
                d.name,
                &q(TruthUnit::Poll {
                    entity: "st-demo-bot",
                }),
            );
            let refused = |r: &Option<Result<Truth, TruthError>>| {
                matches!(r, Some(Err(TruthError::Unsupported { .. })))
            };
            assert!(
                refused(&by_day) != refused(&by_poll),
                "{}: exactly one unit kind",
                d.name
            );
        }
    }

    #[test]
    fn every_model_answers_for_a_dataset_of_its_own() {
        let names = datasets();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for d in crate::datasets::REGISTRY {
            assert!(names.contains(&d.name), "no model answers for {}", d.name);
        }
    }
}
