//! The classification against hand-written records: every state, the reasons a unit is
//! provisional, holes and their commands, lag and freshness.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::*;
use crate::config::Schedule;
use crate::coverage::record::{Export, Failure, TableWrite};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("rfc3339")
}

fn d(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

fn schedule(expr: &str) -> Schedule {
    Schedule {
        expression: expr.into(),
        cron: croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .build()
            .parse(expr)
            .expect("cron"),
    }
}

fn facts(kind: Kind, entities: &[&str]) -> DatasetFacts {
    DatasetFacts {
        name: "foo",
        kind,
        timezone: chrono_tz::UTC,
        lookback_days: 1,
        schedule: schedule("0 */15 * * * *"),
        schedule_timezone: chrono_tz::UTC,
        entities: entities.iter().map(|e| e.to_string()).collect(),
        entity_kind: (!entities.is_empty()).then_some("bot"),
        no_past: kind == Kind::Snapshot,
    }
}

fn export(started: &str, rows: u64) -> Export {
    Export {
        started_at: t(started),
        finished_at: t(started) + chrono::Duration::seconds(2),
        exported_at: t(started),
        run_id: "run-1".into(),
        by: Writer::Backfill,
        tables: BTreeMap::from([(
            "foo".to_string(),
            TableWrite {
                rows,
                files: 1,
                bytes: 100 + rows,
            },
        )]),
        rejects: 0,
        requests: 1,
        open: false,
        unmapped: BTreeMap::new(),
    }
}

fn failure(started: &str, error: &str) -> Failure {
    Failure {
        started_at: t(started),
        failed_at: t(started) + chrono::Duration::seconds(1),
        run_id: "run-2".into(),
        by: Writer::Backfill,
        error: error.into(),
    }
}

/// A hand-written unit: day, entity, its export, its failure.
type Written<'a> = (&'a str, Option<&'a str>, Option<Export>, Option<Failure>);

fn stored(records: Vec<Written<'_>>) -> Stored {
    let mut s = Stored::default();
    for (day, entity, e, f) in records {
        let day = d(day);
        let rec = s
            .months
            .entry(Month::of(day))
            .or_default()
            .entry(day, entity);
        if let Some(e) = e {
            rec.apply_export(e);
        }
        if let Some(f) = f {
            rec.apply_failure(f);
        }
    }
    s
}

fn states(status: &DatasetStatus) -> Vec<(String, &'static str)> {
    status
        .units
        .iter()
        .map(|u| (u.day.to_string(), u.status.label()))
        .collect()
}

/// Ten days of May, written by hand: exported (rows), failed (never exported, and after an
/// export), never fetched, empty on the server.
#[test]
fn ten_days_are_classified_and_the_holes_become_commands() {
    let later = "2024-06-01T08:00:00Z";
    let s = stored(vec![
        ("2024-05-01", None, Some(export(later, 10)), None),
        ("2024-05-02", None, Some(export(later, 11)), None),
        (
            "2024-05-03",
            None,
            None,
            Some(failure(later, "HTTP 500 from the API")),
        ),
        ("2024-05-04", None, None, Some(failure(later, "HTTP 503"))),
        ("2024-05-05", None, Some(export(later, 12)), None),
        (
            "2024-05-06",
            None,
            Some(export("2024-06-01T07:00:00Z", 13)),
            Some(failure(later, "timeout")),
        ),
        ("2024-05-08", None, Some(export(later, 14)), None),
        ("2024-05-09", None, Some(export(later, 0)), None),
        ("2024-05-10", None, Some(export(later, 15)), None),
    ]);
    let now = t("2024-06-01T09:00:00Z");
    let status = classify(
        &facts(Kind::History, &[]),
        &s,
        (d("2024-05-01"), d("2024-05-10")),
        now,
        "smartassist-export -c c.toml",
    );
    assert_eq!(
        states(&status),
        [
            ("2024-05-01".into(), "OK"),
            ("2024-05-02".into(), "OK"),
            ("2024-05-03".into(), "FAILED"),
            ("2024-05-04".into(), "FAILED"),
            ("2024-05-05".into(), "OK"),
            ("2024-05-06".into(), "FAILED"),
            ("2024-05-07".into(), "MISSING"),
            ("2024-05-08".into(), "OK"),
            ("2024-05-09".into(), "EMPTY"),
            ("2024-05-10".into(), "OK"),
        ]
    );
    let failed = &status.units[2];
    assert_eq!(failed.error.as_deref(), Some("HTTP 500 from the API"));
    assert_eq!(failed.rows, None);
    // A failed re-export keeps showing the files it left in place.
    assert_eq!(status.units[5].rows, Some(13));
    assert_eq!(status.units[5].error.as_deref(), Some("timeout"));
    assert_eq!(
        status.counts,
        Counts {
            ok: 5,
            empty: 1,
            missing: 1,
            failed: 3,
            provisional: 0
        }
    );
    assert_eq!(
        status.holes,
        [
            Hole {
                from: d("2024-05-03"),
                to: d("2024-05-04"),
                units: 2
            },
            Hole {
                from: d("2024-05-06"),
                to: d("2024-05-07"),
                units: 2
            },
        ]
    );
    assert_eq!(
        status.backfill,
        [
            "smartassist-export -c c.toml backfill --missing --dataset foo --from 2024-05-03 --to 2024-05-04",
            "smartassist-export -c c.toml backfill --missing --dataset foo --from 2024-05-06 --to 2024-05-07",
        ]
    );
}

#[test]
fn a_unit_is_provisional_while_open_exported_early_or_inside_the_lookback() {
    let mut open = export("2024-05-03T08:00:00Z", 5);
    open.open = true;
    let s = Stored {
        watermark: Some(Watermark {
            through_day: d("2024-05-05"),
            covered_until: t("2024-05-05T12:00:00Z"),
            updated_at: t("2024-05-05T12:00:01Z"),
        }),
        ..stored(vec![
            (
                "2024-05-01",
                None,
                Some(export("2024-05-01T20:00:00Z", 5)),
                None,
            ),
            ("2024-05-02", None, Some(open), None),
            (
                "2024-05-03",
                None,
                Some(export("2024-05-04T01:00:00Z", 0)),
                None,
            ),
            (
                "2024-05-04",
                None,
                Some(export("2024-05-05T12:00:00Z", 5)),
                None,
            ),
            (
                "2024-05-05",
                None,
                Some(export("2024-05-05T12:00:00Z", 5)),
                None,
            ),
        ])
    };
    // The daemon stopped on the 5th; it is now the 20th: the lookback is the watermark's.
    let now = t("2024-05-20T00:00:00Z");
    let status = classify(
        &facts(Kind::History, &[]),
        &s,
        (d("2024-05-01"), d("2024-05-06")),
        now,
        "x",
    );
    let got: Vec<_> = status
        .units
        .iter()
        .map(|u| (u.day.to_string(), u.status.label(), u.provisional))
        .collect();
    assert_eq!(
        got,
        [
            (
                "2024-05-01".into(),
                "PROVISIONAL",
                Some(Provisional::PartialDay)
            ),
            ("2024-05-02".into(), "PROVISIONAL", Some(Provisional::Open)),
            ("2024-05-03".into(), "EMPTY", None),
            (
                "2024-05-04".into(),
                "PROVISIONAL",
                Some(Provisional::Lookback)
            ),
            (
                "2024-05-05".into(),
                "PROVISIONAL",
                Some(Provisional::PartialDay)
            ),
            ("2024-05-06".into(), "MISSING", None),
        ]
    );
    assert_eq!(
        status.watermark.as_ref().map(|w| w.through_day),
        Some(d("2024-05-05"))
    );
    // Newest data: the watermark's covered_until (the records end there too).
    assert_eq!(status.newest_data_at, Some(t("2024-05-05T12:00:00Z")));
    assert_eq!(
        status.lag_seconds,
        Some((now - t("2024-05-05T12:00:00Z")).num_seconds())
    );
    assert_eq!(status.freshness, Freshness::Late);
}

#[test]
fn freshness_counts_schedule_intervals_since_the_last_commit() {
    let s = stored(vec![(
        "2024-05-01",
        None,
        Some(export("2024-05-02T10:00:00Z", 5)),
        None,
    )]);
    let committed = t("2024-05-02T10:00:02Z");
    let f = facts(Kind::History, &[]);
    let at = |minutes: i64| {
        classify(
            &f,
            &s,
            (d("2024-05-01"), d("2024-05-01")),
            committed + chrono::Duration::minutes(minutes),
            "x",
        )
        .freshness
    };
    assert_eq!(at(15), Freshness::OnTime);
    assert_eq!(at(16), Freshness::Delayed);
    assert_eq!(at(30), Freshness::Delayed);
    assert_eq!(at(31), Freshness::Late);
    let nothing = classify(
        &f,
        &Stored::default(),
        (d("2024-05-01"), d("2024-05-01")),
        committed,
        "x",
    );
    assert_eq!(
        (nothing.freshness, nothing.lag_seconds),
        (Freshness::Never, None)
    );
}

#[test]
fn entities_are_units_of_their_own_and_recorded_ones_are_shown_too() {
    let s = stored(vec![
        (
            "2024-05-01",
            Some("a"),
            Some(export("2024-05-03T00:00:00Z", 1)),
            None,
        ),
        (
            "2024-05-01",
            Some("old"),
            Some(export("2024-05-03T00:00:00Z", 2)),
            None,
        ),
    ]);
    let status = classify(
        &facts(Kind::History, &["a", "b"]),
        &s,
        (d("2024-05-01"), d("2024-05-02")),
        t("2024-06-01T00:00:00Z"),
        "x",
    );
    let got: Vec<_> = status
        .units
        .iter()
        .map(|u| (u.day.to_string(), u.entity.clone(), u.status.label()))
        .collect();
    assert_eq!(
        got,
        [
            ("2024-05-01".into(), Some("a".into()), "OK"),
            ("2024-05-01".into(), Some("b".into()), "MISSING"),
            ("2024-05-01".into(), Some("old".into()), "OK"),
            ("2024-05-02".into(), Some("a".into()), "MISSING"),
            ("2024-05-02".into(), Some("b".into()), "MISSING"),
        ]
    );
    assert_eq!(
        status.holes,
        [Hole {
            from: d("2024-05-01"),
            to: d("2024-05-02"),
            units: 3
        }]
    );
}

#[test]
fn a_snapshot_day_is_what_its_polls_found_and_has_no_backfill() {
    let mut s = stored(vec![]);
    let polls = |ok, failed| Polls {
        ok,
        failed,
        last_ok_at: (ok > 0).then(|| t("2024-05-02T23:59:00Z")),
        gaps: 0,
        empty: 0,
    };
    for (day, p, rows) in [
        ("2024-05-01", polls(3, 0), Some(4)),
        ("2024-05-02", polls(2, 1), None),
        ("2024-05-03", polls(0, 2), None),
        ("2024-05-05", polls(1, 0), Some(1)),
    ] {
        let day = d(day);
        let rec = s
            .months
            .entry(Month::of(day))
            .or_default()
            .entry(day, Some("bot-1"));
        rec.polls = Some(p);
        rec.export = rows.map(|r| export("2024-05-01T12:00:00Z", r));
        if day == d("2024-05-03") {
            rec.failure = Some(failure("2024-05-03T10:00:00Z", "HTTP 502"));
        }
    }
    let status = classify(
        &facts(Kind::Snapshot, &["bot-1"]),
        &s,
        (d("2024-05-01"), d("2024-05-06")),
        t("2024-05-05T12:00:00Z"),
        "x",
    );
    assert_eq!(
        states(&status),
        [
            ("2024-05-01".into(), "OK"),
            ("2024-05-02".into(), "EMPTY"),
            ("2024-05-03".into(), "FAILED"),
            ("2024-05-04".into(), "MISSING"),
            ("2024-05-05".into(), "PROVISIONAL"),
        ],
        "days after today are left out"
    );
    assert!(status.backfill.is_empty());
    assert_eq!(status.problems.len(), 1, "{:?}", status.problems);
    assert_eq!(status.units[2].error.as_deref(), Some("HTTP 502"));
    assert_eq!(status.newest_data_at, Some(t("2024-05-02T23:59:00Z")));
}

#[test]
fn the_default_range_is_the_last_thirty_days_and_never_passes_today() {
    let f = facts(Kind::History, &[]);
    let now = t("2024-05-31T23:00:00Z");
    assert_eq!(f.range(None, None, now), (d("2024-05-02"), d("2024-05-31")));
    assert_eq!(
        f.range(Some(d("2024-01-01")), Some(d("2024-12-31")), now),
        (d("2024-01-01"), d("2024-05-31"))
    );
}

#[test]
fn the_json_shape_names_every_field() {
    let s = stored(vec![(
        "2024-05-01",
        None,
        Some(export("2024-05-03T00:00:00Z", 1)),
        None,
    )]);
    let status = classify(
        &facts(Kind::History, &[]),
        &s,
        (d("2024-05-01"), d("2024-05-01")),
        t("2024-05-03T00:10:00Z"),
        "x",
    );
    let v = serde_json::to_value(&status).expect("json");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "backfill",
            "counts",
            "dataset",
            "entity_kind",
            "freshness",
            "from",
            "holes",
            "kind",
            "lag_seconds",
            "last_export_at",
            "newest_data_at",
            "problems",
            "schedule",
            "schedule_interval_seconds",
            "timezone",
            "to",
            "units",
            "unmapped_fields",
            "watermark",
            "watermarks",
        ]
    );
    assert_eq!(
        v["units"][0],
        serde_json::json!({
            "day": "2024-05-01", "entity": null, "status": "ok", "provisional": null,
            "rows": 1, "tables": {"foo": 1}, "files": 1, "bytes": 101, "rejects": 0,
            "requests": 1, "exported_at": "2024-05-03T00:00:00Z",
            "committed_at": "2024-05-03T00:00:02Z", "run_id": "run-1", "by": "backfill",
            "error": null, "failed_at": null, "polls": null, "unmapped": {}
        })
    );
    assert_eq!(v["freshness"], "on_time");
}

/// The unmapped fields of every unit of the range are summed per dataset and listed in the
/// JSON, in the lines and under the grid.
#[test]
fn unmapped_fields_are_summed_per_dataset_and_listed_in_every_form() {
    let later = "2024-06-01T08:00:00Z";
    let with = |fields: &[(&str, u64)]| {
        let mut e = export(later, 5);
        e.unmapped = fields.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        e
    };
    let s = stored(vec![
        (
            "2024-05-01",
            None,
            Some(with(&[("apiRevision", 2), ("newField", 2)])),
            None,
        ),
        ("2024-05-02", None, Some(with(&[("apiRevision", 1)])), None),
        ("2024-05-03", None, Some(export(later, 5)), None),
    ]);
    let f = facts(Kind::History, &[]);
    let want = BTreeMap::from([("apiRevision".to_string(), 3), ("newField".to_string(), 2)]);
    let line = "  unmapped API fields: apiRevision (3), newField (2)";
    for to in ["2024-05-03", "2024-07-31"] {
        let status = classify(&f, &s, (d("2024-05-01"), d(to)), t(later), "x");
        assert_eq!(status.unmapped_fields, want, "to {to}");
        let report = StatusReport {
            version: REPORT_VERSION,
            generated_at: t(later),
            account_id: "a".into(),
            datasets: vec![status],
            capture: None,
        };
        let lines = crate::coverage::text::lines(&report, "x");
        assert!(lines.iter().any(|l| l == line), "to {to}: {lines:#?}");
        let grid = lines.iter().any(|l| l.starts_with("  grid:"));
        assert_eq!(grid, to == "2024-07-31", "a grid for the long range only");
    }
}

/// A today-only list: each day's snapshot is taken during that day, so it is provisional only
/// while the day is today; past days are OK (or EMPTY), and a day never taken is not a hole
/// with a command, since the API cannot serve it again.
#[test]
fn a_today_only_list_is_final_once_its_day_has_passed() {
    let mut f = facts(Kind::History, &[]);
    f.no_past = true;
    let s = stored(vec![
        (
            "2024-05-01",
            None,
            Some(export("2024-05-01T10:00:00Z", 7)),
            None,
        ),
        (
            "2024-05-02",
            None,
            Some(export("2024-05-02T10:00:00Z", 0)),
            None,
        ),
        (
            "2024-05-04",
            None,
            Some(export("2024-05-04T08:00:00Z", 7)),
            None,
        ),
    ]);
    let now = t("2024-05-04T09:00:00Z");
    let status = classify(&f, &s, (d("2024-05-01"), d("2024-05-04")), now, "x");
    assert_eq!(
        states(&status),
        [
            ("2024-05-01".into(), "OK"),
            ("2024-05-02".into(), "EMPTY"),
            ("2024-05-03".into(), "MISSING"),
            ("2024-05-04".into(), "PROVISIONAL"),
        ]
    );
    assert!(status.holes.is_empty(), "{:?}", status.holes);
}
