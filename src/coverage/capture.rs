//! The realtime-capture part of the status report: for each bot and local day that both a
//! history of every session (`bot_sessions`) and a realtime capture of them
//! (`intent_realtime`) cover, how many of the day's completed sessions the capture holds and
//! which it misses. This module owns the shape (`status --json`'s `capture`, the status
//! page's table), its text lines and [`CaptureCache`], the days measured before (so a status
//! page reload reads only the days whose units changed); the figures come from the Parquet
//! files, measured by the dataset that registers the reconciliation
//! ([`crate::datasets::reconcile`]), which fills [`CaptureSection`] for the days the report's
//! coverage says both datasets hold.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::status::UnitStatus;

/// Missed session ids a [`CaptureDay`] lists; beyond that, its `reconcile` command lists all.
pub const MISSED_IDS_SHOWN: usize = 10;

/// The capture of the days both datasets cover, over the report's range.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CaptureSection {
    /// The dataset holding every session (`bot_sessions`).
    pub history: String,
    /// The dataset capturing them in real time (`intent_realtime`).
    pub realtime: String,
    /// The zone both datasets cut their days in.
    pub timezone: String,
    /// The days looked at (the overlap of both datasets' ranges).
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// One entry per bot and day both datasets hold, by bot, then day.
    pub days: Vec<CaptureDay>,
    /// What could not be measured, and why.
    pub problems: Vec<String>,
}

/// The capture of one bot's local day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaptureDay {
    pub bot_id: String,
    pub day: NaiveDate,
    /// Completed sessions the history holds for the day.
    pub sessions: usize,
    /// Of those, the ones the realtime capture holds.
    pub captured: usize,
    /// `captured / sessions`; `null` for a day without completed sessions.
    pub ratio: Option<f64>,
    /// Sessions the realtime capture does not hold.
    pub missed: usize,
    /// The first [`MISSED_IDS_SHOWN`] of them, sorted.
    pub missed_ids: Vec<String>,
    /// When `missed_ids` is not the full list: the command that prints it.
    pub reconcile: Option<String>,
    /// Either dataset's unit of the day may still change (the day is not over, or the
    /// history was exported before it ended).
    pub provisional: bool,
}

impl CaptureDay {
    /// The day of `bot_id` from the full sorted list of `missed` ids; `command` names the
    /// program in the `reconcile` pointer.
    pub fn new(
        bot_id: &str,
        day: NaiveDate,
        (sessions, captured): (usize, usize),
        missed: &[String],
        provisional: bool,
        command: &str,
    ) -> CaptureDay {
        CaptureDay {
            bot_id: bot_id.to_string(),
            day,
            sessions,
            captured,
            ratio: (sessions > 0).then(|| captured as f64 / sessions as f64),
            missed: missed.len(),
            missed_ids: missed.iter().take(MISSED_IDS_SHOWN).cloned().collect(),
            reconcile: (missed.len() > MISSED_IDS_SHOWN)
                .then(|| format!("{command} reconcile --bot {bot_id} --from {day} --to {day}")),
            provisional,
        }
    }

    /// `97.50%`, or `-` without sessions.
    pub fn percent(&self) -> String {
        self.ratio
            .map_or_else(|| "-".to_string(), |r| format!("{:.2}%", r * 100.0))
    }
}

/// What the coverage record says of the units a day's capture is read from (the history's
/// day, the realtime day and the next): when their files change, so does this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(Vec<UnitPrint>);

/// A unit's last commit, rows and last successful poll.
type UnitPrint = (Option<DateTime<Utc>>, Option<u64>, Option<DateTime<Utc>>);

impl Fingerprint {
    pub fn of(units: [Option<&UnitStatus>; 3]) -> Fingerprint {
        Fingerprint(
            units
                .iter()
                .map(|u| {
                    u.map_or((None, None, None), |u| {
                        let polled = u.polls.as_ref().and_then(|p| p.last_ok_at);
                        (u.committed_at, u.rows, polled)
                    })
                })
                .collect(),
        )
    }
}

/// The capture of each bot's day as last measured, with what its units were then (the
/// daemon's status page keeps one, so a reload reads only the days that changed). Holds the
/// days of the last section measured only.
#[derive(Debug, Default)]
pub struct CaptureCache {
    days: Mutex<BTreeMap<(String, NaiveDate), (Fingerprint, CaptureDay)>>,
}

impl CaptureCache {
    /// The day measured before, when its units have not changed since.
    pub fn get(&self, key: &(String, NaiveDate), print: &Fingerprint) -> Option<CaptureDay> {
        let days = self.days.lock().unwrap_or_else(|e| e.into_inner());
        days.get(key)
            .filter(|(p, _)| p == print)
            .map(|(_, d)| d.clone())
    }

    /// Keeps exactly `days`.
    pub fn replace(&self, days: BTreeMap<(String, NaiveDate), (Fingerprint, CaptureDay)>) {
        *self.days.lock().unwrap_or_else(|e| e.into_inner()) = days;
    }
}

/// The section as lines: a header, a line per bot and day, the problems.
pub fn lines(section: &CaptureSection, out: &mut Vec<String>) {
    let range = match (section.from, section.to) {
        (Some(f), Some(t)) => format!("{f} to {t}"),
        _ => "no common days".to_string(),
    };
    out.push(format!(
        "realtime capture ({} against {}), days in {}, {range}:",
        section.realtime, section.history, section.timezone
    ));
    for p in &section.problems {
        out.push(format!("  problem: {p}"));
    }
    if section.days.is_empty() && section.problems.is_empty() {
        out.push("  no day held by both datasets".into());
    }
    for d in &section.days {
        let mut line = format!(
            "  {} {}  {:>8} captured {:>6} of {:>6} sessions, {} missed",
            d.day,
            d.bot_id,
            d.percent(),
            d.captured,
            d.sessions,
            d.missed
        );
        if d.provisional {
            line.push_str(" (provisional)");
        }
        if !d.missed_ids.is_empty() {
            let _ = write!(line, ": {}", d.missed_ids.join(", "));
        }
        if let Some(c) = &d.reconcile {
            let _ = write!(line, ", ... all: {c}");
        }
        out.push(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("s-{i:02}")).collect()
    }

    #[test]
    fn a_day_lists_ten_missed_ids_and_points_to_reconcile_for_more() {
        let day: NaiveDate = "2026-03-08".parse().expect("date");
        let d = CaptureDay::new("st-a", day, (40, 28), &ids(12), false, "x -c c.toml");
        assert_eq!(d.missed, 12);
        assert_eq!(d.missed_ids, ids(10));
        assert_eq!(
            d.reconcile.as_deref(),
            Some("x -c c.toml reconcile --bot st-a --from 2026-03-08 --to 2026-03-08")
        );
        assert_eq!(d.ratio, Some(0.7));
        let few = CaptureDay::new("st-a", day, (3, 1), &ids(2), true, "x");
        assert_eq!((few.missed_ids.len(), few.reconcile), (2, None));
        let none = CaptureDay::new("st-a", day, (0, 0), &[], false, "x");
        assert_eq!((none.ratio, none.percent()), (None, "-".to_string()));
    }

    #[test]
    fn lines_show_each_bot_day_with_its_share_and_missed_ids() {
        let day: NaiveDate = "2026-03-08".parse().expect("date");
        let section = CaptureSection {
            history: "bot_sessions".into(),
            realtime: "intent_realtime".into(),
            timezone: "America/New_York".into(),
            from: Some(day),
            to: Some(day.succ_opt().expect("day")),
            days: vec![
                CaptureDay::new("st-a", day, (4, 3), &ids(1), false, "x"),
                CaptureDay::new("st-a", day.succ_opt().expect("day"), (0, 0), &[], true, "x"),
            ],
            problems: vec![],
        };
        let mut out = Vec::new();
        lines(&section, &mut out);
        assert_eq!(
            out,
            [
                "realtime capture (intent_realtime against bot_sessions), days in America/New_York, 2026-03-08 to 2026-03-09:",
                "  2026-03-08 st-a    75.00% captured      3 of      4 sessions, 1 missed: s-00",
                "  2026-03-09 st-a         - captured      0 of      0 sessions, 0 missed (provisional)",
            ]
        );
    }
}
