//! `status` for a terminal: per dataset a header (kind, zone, schedule), the watermark, lag
//! and freshness, then a line per unit for ranges up to [`LINES_UP_TO_DAYS`] days and a grid
//! of one character per day beyond, the counts, the unmapped API fields, and the commands that
//! fill the holes; then the realtime capture, when the report has it ([`super::capture`]).
//! Pure: the caller prints the lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Utc};

use super::record::Month;
use super::status::{DatasetStatus, StatusReport, UnitState, UnitStatus};

/// Ranges up to this many days get a line per unit; longer ones a grid.
pub const LINES_UP_TO_DAYS: i64 = 31;

/// Hole commands printed one by one; beyond that a single command covers them all.
const COMMANDS_SHOWN: usize = 10;

/// The grid's character for a state.
pub fn grid_char(state: UnitState) -> char {
    match state {
        UnitState::Ok => 'O',
        UnitState::Empty => 'E',
        UnitState::Missing => '.',
        UnitState::Failed => 'F',
        UnitState::Provisional => 'P',
    }
}

/// Every line of the report.
pub fn lines(report: &StatusReport, command: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, d) in report.datasets.iter().enumerate() {
        if i > 0 {
            out.push(String::new());
        }
        dataset_lines(d, report.generated_at, command, &mut out);
    }
    if let Some(c) = &report.capture {
        out.push(String::new());
        super::capture::lines(c, &mut out);
    }
    out
}

/// The two largest units of a duration: `1d 2h`, `3h 4m`, `5m 6s`, `7s`; a zero second
/// part is left out (`15m`, `1d`).
pub fn duration_words(seconds: i64) -> String {
    let s = seconds.max(0);
    let parts = [
        (s / 86_400, 'd'),
        (s % 86_400 / 3600, 'h'),
        (s % 3600 / 60, 'm'),
        (s % 60, 's'),
    ];
    let first = parts.iter().position(|(n, _)| *n > 0).unwrap_or(3);
    let shown: Vec<String> = parts[first..(first + 2).min(4)]
        .iter()
        .enumerate()
        .filter(|(i, (n, _))| *i == 0 || *n > 0)
        .map(|(_, (n, unit))| format!("{n}{unit}"))
        .collect();
    shown.join(" ")
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn dataset_lines(d: &DatasetStatus, now: DateTime<Utc>, command: &str, out: &mut Vec<String>) {
    out.push(format!(
        "{}: {}, days in {}, schedule \"{}\" (every {})",
        d.dataset,
        d.kind,
        d.timezone,
        d.schedule,
        duration_words(d.schedule_interval_seconds as i64)
    ));
    let mut head = String::from(" ");
    let kind = d.entity_kind.as_deref().unwrap_or("entity");
    if let Some(w) = &d.watermark {
        let _ = write!(
            head,
            " watermark {} (data through {}){};",
            w.through_day,
            stamp(w.covered_until),
            if d.watermarks.is_empty() {
                String::new()
            } else {
                format!(", the least advanced {kind}'s")
            }
        );
    }
    match (d.lag_seconds, d.last_export_at) {
        (Some(lag), Some(last)) => {
            let _ = write!(
                head,
                " lag {}; {}: last export {} ({} ago)",
                duration_words(lag),
                d.freshness.label(),
                stamp(last),
                duration_words((now - last).num_seconds())
            );
        }
        _ => head.push_str(" nothing exported yet"),
    }
    out.push(head);
    for (entity, w) in &d.watermarks {
        out.push(format!(
            "  watermark of {kind} {entity}: {} (data through {})",
            w.through_day,
            stamp(w.covered_until)
        ));
    }
    for p in &d.problems {
        out.push(format!("  problem: {p}"));
    }
    let days = (d.to - d.from).num_days() + 1;
    if days <= LINES_UP_TO_DAYS {
        out.extend(d.units.iter().map(|u| unit_line(u).trim_end().to_string()));
    } else {
        grid(d, out);
    }
    let c = &d.counts;
    out.push(format!(
        "  {} unit(s) from {} to {}: {} OK, {} EMPTY, {} MISSING, {} FAILED, {} PROVISIONAL",
        d.units.len(),
        d.from,
        d.to,
        c.ok,
        c.empty,
        c.missing,
        c.failed,
        c.provisional
    ));
    if !d.unmapped_fields.is_empty() {
        let fields: Vec<String> = d
            .unmapped_fields
            .iter()
            .map(|(name, n)| format!("{name} ({n})"))
            .collect();
        out.push(format!("  unmapped API fields: {}", fields.join(", ")));
    }
    hole_lines(d, command, out);
}

fn unit_line(u: &UnitStatus) -> String {
    let mut line = format!("  {}", u.day);
    if let Some(e) = &u.entity {
        let _ = write!(line, " {e}");
    }
    let _ = write!(line, "  {:<11}", u.status.label());
    if let Some(rows) = u.rows {
        let _ = write!(
            line,
            " {rows:>9} rows {:>5} rejects",
            u.rejects.unwrap_or(0)
        );
    }
    if let Some(p) = &u.polls {
        let _ = write!(line, "  {} poll(s), {} failed", p.ok, p.failed);
        if p.gaps > 0 {
            let _ = write!(line, ", {} gap(s)", p.gaps);
        }
        if p.empty > 0 {
            let _ = write!(line, ", {} empty answer(s)", p.empty);
        }
    }
    if let Some(at) = u.committed_at {
        let _ = write!(line, "  exported {}", stamp(at));
    }
    if let Some(p) = u.provisional {
        let why = match p {
            super::status::Provisional::Open => "holds open data",
            super::status::Provisional::PartialDay => "exported before the day ended",
            super::status::Provisional::Lookback => "inside the lookback",
            super::status::Provisional::Today => "today",
        };
        let _ = write!(line, " ({why})");
    }
    if let Some(err) = &u.error {
        let when = u.failed_at.map(stamp).unwrap_or_default();
        let _ = write!(line, "  last error {when}: {err}");
    }
    line
}

/// One row per month (and entity): a character per day of the month.
fn grid(d: &DatasetStatus, out: &mut Vec<String>) {
    out.push(
        "  grid: O ok, E empty, . missing, F failed, P provisional (one column per day of the month)"
            .into(),
    );
    let mut rows: BTreeMap<(Month, Option<String>), [char; 31]> = BTreeMap::new();
    for u in &d.units {
        let row = rows
            .entry((Month::of(u.day), u.entity.clone()))
            .or_insert([' '; 31]);
        row[u.day.day0() as usize] = grid_char(u.status);
    }
    let width = rows
        .keys()
        .map(|(_, e)| e.as_deref().map_or(0, str::len))
        .max()
        .unwrap_or(0);
    let pad = " ".repeat(width + if width > 0 { 1 } else { 0 });
    out.push(format!("          {pad}1        10        20        30"));
    for ((month, entity), days) in rows {
        let label = entity.unwrap_or_default();
        let days: String = days.iter().collect();
        let label = if width > 0 {
            format!("{label:<width$} ")
        } else {
            String::new()
        };
        out.push(format!("  {month}  {label}{}", days.trim_end()));
    }
}

fn hole_lines(d: &DatasetStatus, command: &str, out: &mut Vec<String>) {
    if d.backfill.is_empty() {
        return;
    }
    out.push("  holes (MISSING or FAILED); fill them with:".into());
    for c in d.backfill.iter().take(COMMANDS_SHOWN) {
        out.push(format!("    {c}"));
    }
    if d.backfill.len() > COMMANDS_SHOWN {
        let (first, last) = (d.holes[0].from, d.holes[d.holes.len() - 1].to);
        out.push(format!(
            "    ... {} more; or all at once: {}",
            d.backfill.len() - COMMANDS_SHOWN,
            super::status::backfill_command(command, &d.dataset, first, last)
        ));
    }
}
