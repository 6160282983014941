//! Writing the record through a real state store (`InMemory`): where it lives, the order of
//! attempts, a poll's day and the days its records went to, concurrent writers.

use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::path::Path;

use super::*;
use crate::datasets::PartitionWrite;
use crate::sink::{Output, WriteStats};

fn memory_store() -> StateStore {
    Output::with_store(Arc::new(InMemory::new()), Path::from("lake")).state
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("rfc3339")
}

fn d(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

fn attempt(started: &str, by: Writer) -> Attempt {
    Attempt {
        run_id: format!("run-{started}"),
        by,
        started_at: t(started),
    }
}

fn report(table: &'static str, days: &[(&str, usize)]) -> UnitReport {
    UnitReport {
        requests: 2,
        rejects: 1,
        rows: days.iter().map(|(_, n)| n).sum(),
        partitions: days
            .iter()
            .map(|(day, rows)| PartitionWrite {
                table,
                day: d(day),
                written: WriteStats {
                    files: 1,
                    rows: *rows,
                    bytes: 1000,
                },
            })
            .collect(),
        unmapped: [("newField".to_string(), 3)].into(),
        ..UnitReport::default()
    }
}

async fn month(store: &StateStore, dataset: &str, m: &str) -> CoverageMonth {
    let m = Month::of(d(&format!("{m}-01")));
    state::load_object::<CoverageMonth>(store, dataset, "A", &m)
        .await
        .expect("readable")
        .unwrap_or_default()
}

#[tokio::test]
async fn a_unit_is_recorded_under_its_month_and_an_earlier_failure_keeps_the_later_export() {
    let store = memory_store();
    let unit = DayUnit::day(d("2024-05-03"));
    let ok = report("foo", &[("2024-05-03", 7)]);
    let later = attempt("2024-05-04T10:00:00Z", Writer::Run);
    let earlier = attempt("2024-05-04T09:00:00Z", Writer::Backfill);
    record_unit(
        (&store, "A"),
        "foo",
        &unit,
        &later,
        Ok(&ok),
        later.started_at,
    )
    .await;
    record_unit(
        (&store, "A"),
        "foo",
        &unit,
        &earlier,
        Err("HTTP 500".into()),
        earlier.started_at,
    )
    .await;
    let raw = store
        .get("foo/account_id=A/coverage/2024-05.json")
        .await
        .expect("get");
    assert!(
        raw.is_some(),
        "stored under the dataset's account and month"
    );
    let m = month(&store, "foo", "2024-05").await;
    let rec = m.get(d("2024-05-03"), None).expect("recorded");
    assert!(!rec.failed_last());
    assert_eq!(rec.failure, None);
    let e = rec.export.as_ref().expect("export");
    assert_eq!(
        (e.rows(), e.requests, e.rejects, e.by),
        (7, 2, 1, Writer::Run)
    );
    assert_eq!(e.run_id, later.run_id);
    assert_eq!(e.unmapped.get("newField"), Some(&3));

    // A failure that started after the export is the unit's last word.
    let retry = attempt("2024-05-05T00:00:00Z", Writer::Backfill);
    record_unit(
        (&store, "A"),
        "foo",
        &unit,
        &retry,
        Err("HTTP 503".into()),
        retry.started_at,
    )
    .await;
    let m = month(&store, "foo", "2024-05").await;
    let rec = m.get(d("2024-05-03"), None).expect("recorded");
    assert!(rec.failed_last());
    assert_eq!(
        rec.failure.as_ref().map(|f| f.error.as_str()),
        Some("HTTP 503")
    );
    assert_eq!(rec.export.as_ref().map(Export::rows), Some(7), "files kept");
}

#[tokio::test]
async fn a_poll_counts_on_its_day_and_its_records_on_theirs_across_a_month_boundary() {
    let store = memory_store();
    // New York: 2024-06-01T04:00:10Z is 00:00:10 on June 1; sessions that ended on May 31.
    let tz = chrono_tz::America::New_York;
    let at = t("2024-06-01T04:00:10Z");
    let a = attempt("2024-06-01T04:00:10Z", Writer::Poll);
    let r = report("intent_realtime", &[("2024-05-31", 4), ("2024-06-01", 1)]);
    record_poll((&store, "A"), "snap", tz, "bot-1", &a, Ok(&r), at).await;
    let failed = attempt("2024-06-01T04:00:40Z", Writer::Poll);
    record_poll(
        (&store, "A"),
        "snap",
        tz,
        "bot-1",
        &failed,
        Err("HTTP 502".into()),
        failed.started_at,
    )
    .await;

    let may = month(&store, "snap", "2024-05").await;
    let may31 = may.get(d("2024-05-31"), Some("bot-1")).expect("May 31");
    assert_eq!(may31.polls, None, "no poll ran on May 31");
    let e = may31.export.as_ref().expect("rows");
    assert_eq!((e.rows(), e.requests), (4, 0));

    let june = month(&store, "snap", "2024-06").await;
    let june1 = june.get(d("2024-06-01"), Some("bot-1")).expect("June 1");
    let polls = june1.polls.as_ref().expect("polls");
    assert_eq!((polls.ok, polls.failed, polls.last_ok_at), (1, 1, Some(at)));
    let e = june1.export.as_ref().expect("export");
    assert_eq!((e.rows(), e.requests, e.rejects), (1, 2, 1));
    assert_eq!(
        june1.failure.as_ref().map(|f| f.error.as_str()),
        Some("HTTP 502")
    );
}

#[tokio::test]
async fn concurrent_writers_of_one_month_lose_no_unit() {
    let store = memory_store();
    let mut tasks = Vec::new();
    for day in 1..=20u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let rows = day as usize;
            let day = NaiveDate::from_ymd_opt(2024, 5, day).expect("date");
            let r = report("foo", &[(&day.to_string(), rows)]);
            let a = Attempt::now("r", Writer::Backfill);
            record_unit(
                (&store, "A"),
                "foo",
                &DayUnit::day(day),
                &a,
                Ok(&r),
                a.started_at,
            )
            .await;
        }));
    }
    for task in tasks {
        task.await.expect("join");
    }
    let m = month(&store, "foo", "2024-05").await;
    let rows: Vec<u64> = m
        .units
        .iter()
        .map(|u| u.export.as_ref().map_or(0, Export::rows))
        .collect();
    assert_eq!(rows, (1..=20).collect::<Vec<u64>>());
}

#[tokio::test]
async fn load_reads_every_month_of_a_range_and_reports_a_corrupt_one() {
    let store = memory_store();
    store
        .put(
            "foo/account_id=A/coverage/2024-04.json",
            bytes::Bytes::from_static(b"{not json"),
        )
        .await
        .expect("put");
    let loaded = load(&store, "foo", "A", d("2024-03-31"), d("2024-05-01")).await;
    let summary: Vec<(String, bool)> = loaded
        .iter()
        .map(|(m, r)| (m.to_string(), r.is_ok()))
        .collect();
    assert_eq!(
        summary,
        [
            ("2024-03".into(), true),
            ("2024-04".into(), false),
            ("2024-05".into(), true)
        ]
    );
}
