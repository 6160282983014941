//! The coverage record's types and the pure rules that change it: one [`CoverageMonth`] per
//! dataset, account and month (a [`StateObject`], stored by compare-and-swap like every other
//! `_state/` object), holding one [`UnitRecord`] per unit of work seen (a day, or an entity's
//! day). A record keeps the last successful export ([`Export`]), the last failure after it
//! ([`Failure`]) and, for a snapshot dataset, its polls of the day ([`Polls`]). Attempts are
//! ordered by when they started: an export replaces an older one, a failure never hides an
//! export that started after it, and an export clears the failures that started before it.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::state::StateObject;

/// A calendar month of local days: the unit of storage of the coverage record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
}

impl Month {
    /// The month holding `day`.
    pub fn of(day: NaiveDate) -> Month {
        Month {
            year: day.year(),
            month: day.month(),
        }
    }

    /// Its first day.
    pub fn first_day(self) -> NaiveDate {
        // Built from a real date's year and month, so the first of it exists.
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }

    /// The month after it.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// Every month that holds a day of `from..=to`, in order (none when `to < from`).
    pub fn span(from: NaiveDate, to: NaiveDate) -> Vec<Month> {
        let mut months = Vec::new();
        if to < from {
            return months;
        }
        let (mut m, last) = (Month::of(from), Month::of(to));
        while m <= last {
            months.push(m);
            m = m.next();
        }
        months
    }
}

/// `2024-05`.
impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Who wrote a unit: a scheduled run, a backfill, a snapshot poll, or `status --rebuild`
/// (which read it back from the Parquet files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Writer {
    Run,
    Backfill,
    Poll,
    Rebuild,
}

impl Writer {
    pub fn label(self) -> &'static str {
        match self {
            Writer::Run => "run",
            Writer::Backfill => "backfill",
            Writer::Poll => "poll",
            Writer::Rebuild => "rebuild",
        }
    }
}

/// What one table's partition of the unit holds after the export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableWrite {
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
}

/// The last successful export of a unit (for a snapshot dataset: what its polls added to the
/// day, summed, with the times of the latest poll).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    /// When the export of the unit began (orders attempts).
    pub started_at: DateTime<Utc>,
    /// When its files were committed.
    pub finished_at: DateTime<Utc>,
    /// The `exported_at` of its rows (the run's time).
    pub exported_at: DateTime<Utc>,
    /// The run or backfill that wrote it (empty when rebuilt from files).
    #[serde(default)]
    pub run_id: String,
    pub by: Writer,
    /// Per table: rows, files and bytes written.
    #[serde(default)]
    pub tables: BTreeMap<String, TableWrite>,
    #[serde(default)]
    pub rejects: u64,
    #[serde(default)]
    pub requests: u64,
    /// The dataset said the unit holds data that will still change.
    #[serde(default)]
    pub open: bool,
    /// Unmapped API fields of its records, by name: occurrences.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unmapped: BTreeMap<String, u64>,
}

impl Export {
    /// Rows over every table.
    pub fn rows(&self) -> u64 {
        self.tables.values().map(|t| t.rows).sum()
    }
}

/// The last failed attempt of a unit, kept while no export started after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub started_at: DateTime<Utc>,
    pub failed_at: DateTime<Utc>,
    #[serde(default)]
    pub run_id: String,
    pub by: Writer,
    /// The error, on one line.
    pub error: String,
}

/// The polls of an entity on one local day (snapshot datasets).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Polls {
    pub ok: u64,
    pub failed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ok_at: Option<DateTime<Utc>>,
    /// Polls whose answer was all new (sessions between polls were probably missed).
    #[serde(default)]
    pub gaps: u64,
    /// Polls answered without a record of the entity: they wrote nothing.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub empty: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What is known of one unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitRecord {
    pub day: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<Export>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polls: Option<Polls>,
}

impl UnitRecord {
    fn new(day: NaiveDate, entity: Option<&str>) -> UnitRecord {
        UnitRecord {
            day,
            entity: entity.map(str::to_string),
            export: None,
            failure: None,
            polls: None,
        }
    }

    /// Keeps `export` unless an export that started later is already recorded; a failure
    /// that started before it is cleared. Whether the record changed.
    pub fn apply_export(&mut self, export: Export) -> bool {
        if self
            .export
            .as_ref()
            .is_some_and(|e| e.started_at > export.started_at)
        {
            return false;
        }
        if self
            .failure
            .as_ref()
            .is_some_and(|f| f.started_at <= export.started_at)
        {
            self.failure = None;
        }
        self.export = Some(export);
        true
    }

    /// Keeps `failure` unless an export or a failure that started later is recorded: an
    /// earlier failure never overwrites a later export. Whether the record changed.
    pub fn apply_failure(&mut self, failure: Failure) -> bool {
        let later_export = self
            .export
            .as_ref()
            .is_some_and(|e| e.started_at > failure.started_at);
        let later_failure = self
            .failure
            .as_ref()
            .is_some_and(|f| f.started_at > failure.started_at);
        if later_export || later_failure {
            return false;
        }
        self.failure = Some(failure);
        true
    }

    /// Whether the last attempt failed (a failure that started after the export, or no export).
    pub fn failed_last(&self) -> bool {
        match (&self.failure, &self.export) {
            (Some(f), Some(e)) => f.started_at > e.started_at,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// The coverage record of one dataset, account and month:
/// `_state/<dataset>/account_id=A/coverage/YYYY-MM.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageMonth {
    /// Sorted by day, then entity (account-wide first).
    #[serde(default)]
    pub units: Vec<UnitRecord>,
}

impl StateObject for CoverageMonth {
    type Key = Month;
    fn file_name(month: &Month) -> String {
        format!("{COVERAGE_DIR}/{month}.json")
    }
}

/// The folder of a dataset's coverage objects under `_state/<dataset>/account_id=A/`.
pub const COVERAGE_DIR: &str = "coverage";

/// Whether `name` (under `_state/`) is a coverage object (tools that look for the commit
/// object of a run leave them aside: they describe data already committed).
pub fn is_coverage_object(name: &str) -> bool {
    name.split('/').nth(2) == Some(COVERAGE_DIR)
}

impl CoverageMonth {
    /// The record of `day` (of `entity`), if any.
    pub fn get(&self, day: NaiveDate, entity: Option<&str>) -> Option<&UnitRecord> {
        self.position(day, entity).ok().map(|i| &self.units[i])
    }

    /// The record of `day` (of `entity`), created empty when absent.
    pub fn entry(&mut self, day: NaiveDate, entity: Option<&str>) -> &mut UnitRecord {
        let i = match self.position(day, entity) {
            Ok(i) => i,
            Err(i) => {
                self.units.insert(i, UnitRecord::new(day, entity));
                i
            }
        };
        &mut self.units[i]
    }

    fn position(&self, day: NaiveDate, entity: Option<&str>) -> Result<usize, usize> {
        self.units
            .binary_search_by(|u| (u.day, u.entity.as_deref()).cmp(&(day, entity)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("rfc3339")
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    fn export(started: &str, rows: u64) -> Export {
        Export {
            started_at: t(started),
            finished_at: t(started),
            exported_at: t(started),
            run_id: "r".into(),
            by: Writer::Run,
            tables: BTreeMap::from([(
                "user_status".to_string(),
                TableWrite {
                    rows,
                    files: 1,
                    bytes: 10,
                },
            )]),
            rejects: 0,
            requests: 1,
            open: false,
            unmapped: BTreeMap::new(),
        }
    }

    fn failure(started: &str) -> Failure {
        Failure {
            started_at: t(started),
            failed_at: t(started),
            run_id: "f".into(),
            by: Writer::Backfill,
            error: "HTTP 500".into(),
        }
    }

    #[test]
    fn an_earlier_failure_never_hides_a_later_export() {
        let mut r = UnitRecord::new(d("2024-05-01"), None);
        assert!(r.apply_export(export("2024-05-02T10:00:00Z", 5)));
        // A backfill that started before the export fails afterwards.
        assert!(!r.apply_failure(failure("2024-05-02T09:00:00Z")));
        assert!(!r.failed_last());
        // A failure that started later is the last attempt.
        assert!(r.apply_failure(failure("2024-05-02T11:00:00Z")));
        assert!(r.failed_last());
        assert_eq!(r.export.as_ref().map(Export::rows), Some(5), "data kept");
        // An export that started before that failure does not clear it.
        assert!(r.apply_export(export("2024-05-02T10:30:00Z", 6)));
        assert!(r.failed_last());
        // One that started after it does.
        assert!(r.apply_export(export("2024-05-02T12:00:00Z", 7)));
        assert!(!r.failed_last());
        assert_eq!(r.failure, None);
        // An older export arriving late changes nothing.
        assert!(!r.apply_export(export("2024-05-02T08:00:00Z", 1)));
        assert_eq!(r.export.as_ref().map(Export::rows), Some(7));
    }

    #[test]
    fn units_stay_sorted_and_are_found_by_day_and_entity() {
        let mut m = CoverageMonth::default();
        m.entry(d("2024-05-03"), None);
        m.entry(d("2024-05-01"), Some("b"));
        m.entry(d("2024-05-01"), Some("a"));
        m.entry(d("2024-05-01"), None);
        m.entry(d("2024-05-01"), Some("a")).polls = Some(Polls::default());
        let keys: Vec<_> = m
            .units
            .iter()
            .map(|u| (u.day.to_string(), u.entity.clone()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("2024-05-01".into(), None),
                ("2024-05-01".into(), Some("a".into())),
                ("2024-05-01".into(), Some("b".into())),
                ("2024-05-03".into(), None),
            ]
        );
        assert!(m
            .get(d("2024-05-01"), Some("a"))
            .is_some_and(|u| u.polls.is_some()));
        assert!(m.get(d("2024-05-02"), None).is_none());
    }

    #[test]
    fn months_name_their_objects_and_span_ranges() {
        let may = Month::of(d("2024-05-31"));
        assert_eq!(may.to_string(), "2024-05");
        assert_eq!(CoverageMonth::file_name(&may), "coverage/2024-05.json");
        assert_eq!(may.first_day(), d("2024-05-01"));
        let span: Vec<String> = Month::span(d("2023-11-15"), d("2024-02-01"))
            .iter()
            .map(Month::to_string)
            .collect();
        assert_eq!(span, ["2023-11", "2023-12", "2024-01", "2024-02"]);
        assert!(Month::span(d("2024-02-01"), d("2024-01-01")).is_empty());
        assert!(is_coverage_object(
            "user_status/account_id=A/coverage/2024-05.json"
        ));
        assert!(!is_coverage_object("user_status/account_id=A.json"));
        assert!(!is_coverage_object(
            "intent_realtime/account_id=A/bot_id=b.json"
        ));
    }

    #[test]
    fn the_stored_form_is_compact_and_reads_back() {
        let mut m = CoverageMonth::default();
        m.entry(d("2024-05-01"), None)
            .apply_export(export("2024-05-02T10:00:00Z", 3));
        let json = serde_json::to_value(&m).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"units": [{"day": "2024-05-01", "export": {
                "started_at": "2024-05-02T10:00:00Z", "finished_at": "2024-05-02T10:00:00Z",
                "exported_at": "2024-05-02T10:00:00Z", "run_id": "r", "by": "run",
                "tables": {"user_status": {"rows": 3, "files": 1, "bytes": 10}},
                "rejects": 0, "requests": 1, "open": false}}]})
        );
        let back: CoverageMonth = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, m);
    }
}
