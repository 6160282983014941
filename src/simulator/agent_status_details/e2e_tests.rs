//! End to end: a fetch loop written here (request bodies, paging, decoding and normalization
//! from `datasets::agent_status_details::decode`) exports three local days across a DST change from a
//! running simulator, and every row is compared with the generator's [`agent_spans`], never
//! with what the decoder produced.

use std::collections::{BTreeMap, HashSet};

use chrono::{Duration as TimeSpan, NaiveDate};
use chrono_tz::Tz;
use serde_json::Value;

use super::tests::{day, sim, suffix, token, utc, BASE};
use super::*;
use crate::datasets::agent_status_details::decode::{
    decode_page, request_body_with, DateStyle, Normalizer,
};
use crate::simulator::{generator, RunningSimulator, SimulatorConfig};
use crate::sources::window::{js_offset_minutes, local_date, local_day_bounds, plan_day};
use crate::sources::Reject;

/// One exported row, every column but `account_id` and `exported_at`, with its `dt`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    dt: NaiveDate,
    user_id: String,
    agent_id: Option<String>,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    custom_id: Option<String>,
    primary: String,
    secondary: Option<String>,
    start_ms: i64,
    end_ms: Option<i64>,
    duration_seconds: Option<i64>,
    offset: i32,
}

fn rows_of(dt: NaiveDate, batch: &arrow::record_batch::RecordBatch) -> Vec<Row> {
    use arrow::array::{Array, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
    let col = |n: &str| batch.column_by_name(n).expect("column");
    let st = |n: &str| -> Vec<Option<String>> {
        let a = col(n).as_any().downcast_ref::<StringArray>().expect("utf8");
        a.iter().map(|v| v.map(str::to_owned)).collect()
    };
    let ts = |n: &str| -> Vec<Option<i64>> {
        let a = col(n)
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .expect("ts");
        a.iter().collect()
    };
    let dur = col("duration_seconds")
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("i64")
        .clone();
    let off = col("timezone_offset_minutes")
        .as_any()
        .downcast_ref::<Int32Array>()
        .expect("i32")
        .clone();
    let (user, aid, email, first, last, custom) = (
        st("user_id"),
        st("agent_id"),
        st("email"),
        st("first_name"),
        st("last_name"),
        st("custom_id"),
    );
    let (primary, secondary, start, end) = (
        st("primary_status"),
        st("secondary_status"),
        ts("start_time"),
        ts("end_time"),
    );
    (0..batch.num_rows())
        .map(|i| Row {
            dt,
            user_id: user[i].clone().expect("user_id"),
            agent_id: aid[i].clone(),
            email: email[i].clone(),
            first_name: first[i].clone(),
            last_name: last[i].clone(),
            custom_id: custom[i].clone(),
            primary: primary[i].clone().expect("primary"),
            secondary: secondary[i].clone(),
            start_ms: start[i].expect("start"),
            end_ms: end[i],
            duration_seconds: (!dur.is_null(i)).then(|| dur.value(i)),
            offset: off.value(i),
        })
        .collect()
}

struct Export {
    rows: Vec<Row>,
    rejects: Vec<Reject>,
    requests: u64,
    /// `status[]` entries served over all responses (a span overlapping two days counts twice).
    served_spans: usize,
}

/// The loop a pipeline runs: each day's windows, each window's pages, agents deduped per
/// window, one normalizer per day.
async fn export(
    s: &RunningSimulator,
    generation: Generation,
    tz: Tz,
    days: &[NaiveDate],
) -> Export {
    let client = reqwest::Client::new();
    let path = format!("{BASE}{}", suffix(generation));
    let style = DateStyle::for_path(&path);
    let mut out = Export {
        rows: Vec::new(),
        rejects: Vec::new(),
        requests: 0,
        served_spans: 0,
    };
    for &dt in days {
        let mut n = Normalizer::new("demo-account", utc("2030-01-01T00:00:00Z"));
        for w in plan_day(tz, dt) {
            let body = request_body_with(&[], &w, style).to_string();
            let mut seen = HashSet::new();
            let mut offset = 0;
            loop {
                let resp = client
                    .post(format!("{}{path}?limit=7&offset={offset}", s.base_url()))
                    .header("auth", token())
                    .header("iId", "st-demo-stream")
                    .header("accountId", "demo-account")
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("request");
                out.requests += 1;
                assert_eq!(resp.status().as_u16(), 200);
                let bytes = resp.bytes().await.expect("body");
                let page = decode_page(&bytes).expect("page decodes");
                for agent in page.agents {
                    match agent {
                        Ok(a) => {
                            out.served_spans += a.span_count();
                            if seen.insert(a.user_id().to_owned()) {
                                n.push_agent(&a, &w);
                            }
                        }
                        Err(r) => n.push_reject(r),
                    }
                }
                if !page.has_more {
                    break;
                }
                offset += page.record_count;
            }
        }
        let (batch, rejects) = n.finish();
        out.rows.extend(rows_of(dt, &batch));
        out.rejects.extend(rejects);
    }
    out
}

/// The `timeZoneOffSet` of the request that claims a span starting at `start`: the offset at
/// the start of its local day, or, past the first 24 h of a 25 h day, the offset at `start`.
fn claiming_offset(tz: Tz, start: DateTime<Utc>) -> i32 {
    let bounds = local_day_bounds(tz, local_date(tz, start));
    if start < bounds.start + TimeSpan::hours(24) {
        js_offset_minutes(tz, bounds.start)
    } else {
        js_offset_minutes(tz, start)
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Rows the export must produce, straight from the generator, and the number of malformed
/// spans it must reject.
fn expected(
    cfg: &SimulatorConfig,
    generation: Generation,
    tz: Tz,
    days: &[NaiveDate],
) -> (Vec<Row>, usize) {
    let first = local_day_bounds(tz, days[0]).start;
    let last = local_day_bounds(tz, days[days.len() - 1]).end;
    let now = cfg.frozen_now.expect("tests freeze now");
    let (mut rows, mut malformed) = (Vec::new(), 0);
    for idx in 0..cfg.agents {
        let a = generator::agent(cfg.seed, idx);
        for span in agent_spans(cfg.seed, idx, first..last, now, cfg.malformed_every) {
            if span.start < first {
                continue;
            }
            if span.malformed.is_some() {
                malformed += 1;
                continue;
            }
            rows.push(Row {
                dt: local_date(tz, span.start),
                user_id: a.user_id.clone(),
                agent_id: (generation == Generation::V3).then(|| agent_id(cfg.seed, idx)),
                email: non_empty(&a.email),
                first_name: Some(a.first_name.clone()),
                last_name: Some(a.last_name.clone()),
                custom_id: non_empty(&a.custom_id),
                primary: span.primary.to_owned(),
                secondary: Some(span.secondary.to_owned()),
                start_ms: span.start.timestamp() * 1000,
                end_ms: span.end.map(|e| e.timestamp() * 1000),
                duration_seconds: span.duration_ms().map(|d| d.div_euclid(1000)),
                offset: claiming_offset(tz, span.start),
            });
        }
    }
    (rows, malformed)
}

async fn check_export(generation: Generation, tz: Tz, days: [NaiveDate; 3], now: &str) {
    let cfg = SimulatorConfig {
        agents: 16,
        strict_page_size: true,
        malformed_every: Some(11),
        frozen_now: Some(utc(now)),
        ..SimulatorConfig::default()
    };
    let s = sim(cfg.clone()).await;
    let got = export(&s, generation, tz, &days).await;
    let (mut want, malformed) = expected(&cfg, generation, tz, &days);
    let mut rows = got.rows.clone();
    rows.sort();
    want.sort();
    let label = format!("{generation:?} {tz} {}", days[0]);
    assert_eq!(rows.len(), want.len(), "{label}: row count");
    for (g, w) in rows.iter().zip(&want) {
        assert_eq!(g, w, "{label}");
    }
    // Each malformed span rejected once, with its raw JSON.
    assert_eq!(got.rejects.len(), malformed, "{label}: {:#?}", got.rejects);
    assert!(malformed > 0, "{label}: the run exercises rejects");
    for r in &got.rejects {
        serde_json::from_str::<Value>(&r.raw_json).expect("reject raw_json is JSON");
    }
    // The run covers what it claims to: spans crossing local midnight that the API served to
    // two days, open spans, and every day present.
    let crossing = want
        .iter()
        .filter(|r| {
            r.end_ms.is_some_and(|e| {
                local_date(tz, DateTime::from_timestamp_millis(e - 1).expect("ms")) != r.dt
            })
        })
        .count();
    assert!(crossing > 0, "{label}: no span crosses local midnight");
    assert!(
        want.iter().any(|r| r.end_ms.is_none()),
        "{label}: no open span"
    );
    assert!(
        got.served_spans > got.rows.len() + got.rejects.len(),
        "{label}"
    );
    let per_day: BTreeMap<NaiveDate, usize> = want.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.dt).or_default() += 1;
        m
    });
    assert_eq!(per_day.len(), 3, "{label}: {per_day:?}");
    assert_eq!(s.stats().count(ENDPOINT, 200), got.requests, "{label}");
}

#[tokio::test]
async fn fall_back_days_export_every_generated_span_once_v3() {
    let days = [day(2024, 11, 2), day(2024, 11, 3), day(2024, 11, 4)];
    check_export(
        Generation::V3,
        Tz::America__New_York,
        days,
        "2024-11-04T15:00:00Z",
    )
    .await;
    // The 25 h day's second window (EST) claims the day's last hour.
    let cfg = SimulatorConfig {
        agents: 16,
        ..SimulatorConfig::default()
    };
    let last_hour = utc("2024-11-04T04:00:00Z")..utc("2024-11-04T05:00:00Z");
    let starts_there = (0..cfg.agents).any(|i| {
        agent_spans(
            cfg.seed,
            i,
            last_hour.clone(),
            utc("2024-11-04T15:00:00Z"),
            None,
        )
        .iter()
        .any(|s| last_hour.contains(&s.start))
    });
    assert!(
        starts_there,
        "the fixture should have a span in the repeated hour"
    );
}

#[tokio::test]
async fn spring_forward_days_export_every_generated_span_once_unversioned() {
    let days = [day(2024, 3, 9), day(2024, 3, 10), day(2024, 3, 11)];
    check_export(
        Generation::Unversioned,
        Tz::America__New_York,
        days,
        "2024-03-11T16:00:00Z",
    )
    .await;
}

#[tokio::test]
async fn v2_date_times_export_the_same_spans() {
    let days = [day(2024, 10, 26), day(2024, 10, 27), day(2024, 10, 28)];
    check_export(
        Generation::V2,
        Tz::Europe__London,
        days,
        "2024-10-28T12:00:00Z",
    )
    .await;
}

#[test]
fn claiming_offset_matches_the_plan_on_a_25_hour_day() {
    let tz = Tz::America__New_York;
    assert_eq!(claiming_offset(tz, utc("2024-11-03T05:30:00Z")), 240);
    assert_eq!(claiming_offset(tz, utc("2024-11-04T04:30:00Z")), 300);
    assert_eq!(claiming_offset(tz, utc("2024-03-11T03:30:00Z")), 300);
}
