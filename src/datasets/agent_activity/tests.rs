//! Unit tests of Agent Activity's request windows and of placing updates in them: the
//! fixtures and the instants they must land on are written out by hand (New York is UTC-4
//! in daylight time, UTC-5 in standard time; its 2024 fall-back repeats 01:00-02:00 local on
//! 3 November, i.e. 05:00-06:00Z then 06:00-07:00Z).

use std::collections::BTreeMap;
use std::ops::Range;

use arrow::array::AsArray;
use arrow::datatypes::TimestampMillisecondType;
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::decode::{
    decode_page, read_event_time, Normalizer, PageCounts, Readings, RequestWindow,
};
use super::*;

const NY: Tz = chrono_tz::America::New_York;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("instant")
}

fn span(from: &str, to: &str) -> Range<DateTime<Utc>> {
    at(from)..at(to)
}

/// New York's 2024-11-03, 25 hours.
fn fall_back_day() -> Range<DateTime<Utc>> {
    span("2024-11-03T04:00:00Z", "2024-11-04T05:00:00Z")
}

/// New York's 2024-06-12.
fn june_day() -> Range<DateTime<Utc>> {
    span("2024-06-12T04:00:00Z", "2024-06-13T04:00:00Z")
}

fn update(time: &str, activity: &str) -> String {
    format!(r#"{{"AgentId":"a-1","EventTime":"{time}","Activity":"{activity}"}}"#)
}

fn body(updates: &[String]) -> String {
    format!(
        r#"{{"accountId":"acct","AgentUpdates":[{}]}}"#,
        updates.join(",")
    )
}

/// The `event_time` of every row the normalizer holds, in push order.
fn event_times(n: &mut Normalizer<'_>) -> Vec<DateTime<Utc>> {
    let batch = n.take_batch().expect("batch");
    let col = batch
        .column_by_name("event_time")
        .expect("event_time")
        .as_primitive::<TimestampMillisecondType>();
    (0..batch.num_rows())
        .map(|i| DateTime::from_timestamp_millis(col.value(i)).expect("ms"))
        .collect()
}

#[test]
fn windows_cover_dst_days_exactly_and_ask_one_second_early() {
    for (day, hours) in [("2024-03-10", 23), ("2024-06-12", 24), ("2024-11-03", 25)] {
        let bounds = local_day_bounds(NY, day.parse().expect("day"));
        let w = windows(bounds.clone(), 60, chrono_tz::UTC);
        assert_eq!(w.len(), hours, "{day}");
        assert_eq!((w[0].start, w[hours - 1].end), (bounds.start, bounds.end));
        assert!(w.windows(2).all(|p| p[0].end == p[1].start));
    }
    let bounds = local_day_bounds(NY, "2024-03-10".parse().expect("day"));
    assert_eq!(windows(bounds.clone(), 600, chrono_tz::UTC).len(), 3);
    // Spring forward repeats nothing: New York event times change nothing.
    assert_eq!(windows(bounds.clone(), 60, NY).len(), 23);
    let q = window_query(&windows(bounds, 60, chrono_tz::UTC)[0]);
    assert_eq!(q[0], ("fromTimeStamp", "2024-03-10T04:59:59Z".to_string()));
    assert_eq!(q[1], ("toTimeStamp", "2024-03-10T06:00:00Z".to_string()));
}

#[test]
fn windows_around_a_fall_back_of_the_event_zone_are_cut_to_half_an_hour() {
    let w = windows(fall_back_day(), 60, NY);
    let want = [
        span("2024-11-03T04:00:00Z", "2024-11-03T05:00:00Z"),
        span("2024-11-03T05:00:00Z", "2024-11-03T05:30:00Z"),
        span("2024-11-03T05:30:00Z", "2024-11-03T06:00:00Z"),
        span("2024-11-03T06:00:00Z", "2024-11-03T06:30:00Z"),
        span("2024-11-03T06:30:00Z", "2024-11-03T07:00:00Z"),
        span("2024-11-03T07:00:00Z", "2024-11-03T08:00:00Z"),
    ];
    assert_eq!(&w[..6], &want);
    assert_eq!(w.len(), 27);
    assert_eq!(w[26], span("2024-11-04T04:00:00Z", "2024-11-04T05:00:00Z"));
    assert!(w.windows(2).all(|p| p[0].end == p[1].start));
    // Windows of a day: only the repeated period is cut.
    let day = windows(fall_back_day(), 1440, NY);
    assert_eq!(
        day.iter().map(|r| r.start).collect::<Vec<_>>(),
        [
            "2024-11-03T04:00:00Z",
            "2024-11-03T05:00:00Z",
            "2024-11-03T05:30:00Z",
            "2024-11-03T06:00:00Z",
            "2024-11-03T06:30:00Z",
            "2024-11-03T07:00:00Z",
            // The 25-hour day's last hour, past the first 1440 minutes.
            "2024-11-04T04:00:00Z",
        ]
        .map(at)
    );
    // Event times in UTC repeat nothing.
    assert_eq!(windows(fall_back_day(), 60, chrono_tz::UTC).len(), 25);
}

#[test]
fn repeated_periods_are_found_to_the_second_whatever_the_shift() {
    assert_eq!(
        repeated_periods(NY, &fall_back_day()),
        [(at("2024-11-03T05:00:00Z"), TimeDelta::hours(1))]
    );
    assert_eq!(repeated_periods(NY, &june_day()), []);
    // Lord Howe falls back half an hour: 02:00 (+11) becomes 01:30 (+10:30) on 2024-04-07,
    // so 01:30-02:00 local is first 14:30-15:00Z.
    assert_eq!(
        repeated_periods(
            chrono_tz::Australia::Lord_Howe,
            &span("2024-04-06T13:00:00Z", "2024-04-07T13:00:00Z")
        ),
        [(at("2024-04-06T14:30:00Z"), TimeDelta::minutes(30))]
    );
}

#[test]
fn an_ambiguous_time_names_both_instants_and_a_gap_time_none() {
    assert_eq!(
        read_event_time("11/03/2024 1:30:00", NY),
        Ok(Readings {
            earlier: at("2024-11-03T05:30:00Z"),
            later: at("2024-11-03T06:30:00Z"),
        })
    );
    let gap = read_event_time("03/10/2024 2:30:00", NY).expect_err("a gap time");
    assert!(
        gap.contains("spring-forward gap") && gap.contains("event_time_zone"),
        "{gap}"
    );
    // Both readings in the range: the earlier (the exporter's windows never ask for both).
    let both = read_event_time("11/03/2024 1:00:00", NY).expect("time");
    let hour = at("2024-11-03T04:59:59Z")..=at("2024-11-03T06:00:00Z");
    assert_eq!(both.inside(&hour), Some(at("2024-11-03T05:00:00Z")));
    let later = at("2024-11-03T05:59:59Z")..=at("2024-11-03T06:30:00Z");
    assert_eq!(both.inside(&later), Some(at("2024-11-03T06:00:00Z")));
}

#[test]
fn both_occurrences_of_a_repeated_hour_are_written_at_their_own_instants() {
    let page_text = body(&[
        update("11/03/2024 1:10:00", "ready"),
        update("11/03/2024 1:00:00", "busy"),
        update("11/03/2024 1:59:59", "wrapup"),
    ]);
    let page = decode_page(page_text.as_bytes()).expect("page");
    let mut n = Normalizer::new("acct", at("2024-11-05T00:00:00Z"), NY, fall_back_day());
    // Every window of the repeated period answers the same three texts, as a server with
    // both bounds inclusive would if the agent did the same at the same local second in both
    // occurrences; each window keeps the reading it asked for.
    for claim in &windows(fall_back_day(), 60, NY)[1..5] {
        n.push_page(&page, &RequestWindow::of(claim.clone()));
    }
    let mut got = event_times(&mut n);
    got.sort();
    assert_eq!(
        got,
        [
            "2024-11-03T05:00:00Z",
            "2024-11-03T05:10:00Z",
            "2024-11-03T05:59:59Z",
            "2024-11-03T06:00:00Z",
            "2024-11-03T06:10:00Z",
            "2024-11-03T06:59:59Z",
        ]
        .map(at)
    );
}

#[test]
fn a_second_occurrence_at_a_window_end_is_left_to_the_next_window() {
    // Only the second 01:00:00 (06:00Z) exists; an inclusive toTimeStamp returns it for the
    // window ending then too. That window leaves it, the next writes it once.
    let page_text = body(&[update("11/03/2024 1:00:00", "busy")]);
    let page = decode_page(page_text.as_bytes()).expect("page");
    let mut n = Normalizer::new("acct", at("2024-11-05T00:00:00Z"), NY, fall_back_day());
    let ending = RequestWindow::of(span("2024-11-03T05:30:00Z", "2024-11-03T06:00:00Z"));
    let next = RequestWindow::of(span("2024-11-03T06:00:00Z", "2024-11-03T06:30:00Z"));
    let edge = n.push_page(&page, &ending);
    assert_eq!(
        edge,
        PageCounts {
            updates: 1,
            rows: 0,
            outside: 0
        }
    );
    n.push_page(&page, &next);
    assert_eq!(event_times(&mut n), [at("2024-11-03T06:00:00Z")]);
    assert_eq!(n.outside(), 0);
}

#[test]
fn events_outside_the_window_are_counted_left_to_their_window_or_rejected_outside_the_day() {
    let in_claim = update("06/12/2024 10:15:00", "ready");
    let other_window = update("06/12/2024 14:15:00", "busy");
    let at_end = update("06/12/2024 11:00:00", "wrapup");
    let second_before = update("06/12/2024 9:59:59", "logout");
    let before_day = update("06/11/2024 23:00:00", "notready");
    let page_text = body(&[
        in_claim,
        other_window,
        at_end,
        second_before,
        before_day.clone(),
    ]);
    let page = decode_page(page_text.as_bytes()).expect("page");
    let mut n = Normalizer::new(
        "acct",
        at("2024-06-13T00:00:00Z"),
        chrono_tz::UTC,
        june_day(),
    );
    let ten = RequestWindow::of(span("2024-06-12T10:00:00Z", "2024-06-12T11:00:00Z"));
    // The edges (11:00:00, 09:59:59) are the neighbours' and expected: not counted.
    assert_eq!(
        n.push_page(&page, &ten),
        PageCounts {
            updates: 5,
            rows: 1,
            outside: 2
        }
    );
    assert_eq!(event_times(&mut n), [at("2024-06-12T10:15:00Z")]);
    // The window holding 14:15 writes it, once; the other four are outside this one.
    let two = RequestWindow::of(span("2024-06-12T14:00:00Z", "2024-06-12T15:00:00Z"));
    assert_eq!(n.push_page(&page, &two).outside, 4);
    assert_eq!(event_times(&mut n), [at("2024-06-12T14:15:00Z")]);
    assert_eq!(n.outside(), 6);
    // Outside the day: one reject, with its raw JSON and a reason naming the zone key.
    let (rejects, _) = n.finish();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].raw_json, before_day);
    assert!(
        rejects[0].reason.contains("2024-06-11T23:00:00Z")
            && rejects[0].reason.contains("agent_activity.event_time_zone"),
        "{}",
        rejects[0].reason
    );
}

#[test]
fn a_wrong_event_zone_empties_no_window_silently() {
    // The API writes New York time (14:30Z is 10:30 EDT); read as UTC it is 4 h early.
    let page_text = body(&[update("06/12/2024 10:30:00", "ready")]);
    let page = decode_page(page_text.as_bytes()).expect("page");
    let mut n = Normalizer::new(
        "acct",
        at("2024-06-13T00:00:00Z"),
        chrono_tz::UTC,
        june_day(),
    );
    let window = RequestWindow::of(span("2024-06-12T14:00:00Z", "2024-06-12T15:00:00Z"));
    assert_eq!(n.push_page(&page, &window).outside, 1);
    assert_eq!(n.rows(), 0);
    // The day's first window (00:00-01:00 EDT) answers events of 04:xxZ, read as 00:xxZ:
    // before the day, so kept as rejects.
    let early = body(&[update("06/12/2024 0:20:00", "busy")]);
    let early = decode_page(early.as_bytes()).expect("page");
    let first = RequestWindow::of(span("2024-06-12T04:00:00Z", "2024-06-12T05:00:00Z"));
    assert_eq!(n.push_page(&early, &first).outside, 1);
    assert_eq!(n.finish().0.len(), 1);
}

#[test]
fn unknown_keys_of_each_update_count_once_and_the_envelope_once_per_page() {
    let page_text = r#"{"accountId":"acct","note":"x","AgentUpdates":[
        {"AgentId":"a-1","EventTime":"06/12/2024 10:15:00","Activity":"ready","foo":1},
        {"AgentId":"a-2","EventTime":"06/12/2024 10:20:00","Activity":"busy"},
        {"AgentId":"a-3","EventTime":"06/12/2024 14:20:00","Activity":"busy","foo":2}]}"#;
    let page = decode_page(page_text.as_bytes()).expect("page");
    let mut n = Normalizer::new(
        "acct",
        at("2024-06-13T00:00:00Z"),
        chrono_tz::UTC,
        june_day(),
    );
    let ten = RequestWindow::of(span("2024-06-12T10:00:00Z", "2024-06-12T11:00:00Z"));
    n.push_page(&page, &ten);
    // The same page for a window holding none of its events: its envelope counts again.
    let noon = RequestWindow::of(span("2024-06-12T12:00:00Z", "2024-06-12T13:00:00Z"));
    n.push_page(&page, &noon);
    let batch = n.take_batch().expect("batch");
    let extra = batch
        .column_by_name("extra")
        .expect("extra")
        .as_string::<i32>();
    assert_eq!(extra.value(0), r#"{"note":"x","foo":1}"#);
    assert_eq!(extra.value(1), r#"{"note":"x"}"#);
    let (_, counts) = n.finish();
    let want: BTreeMap<String, u64> = [("foo".to_string(), 1), ("note".to_string(), 2)].into();
    assert_eq!(counts.as_map(), &want);
}

/// An app exporting agent_activity (the only dataset) from `sim` into `dir`, local days in New
/// York, `event_time_zone` left at UTC.
async fn utc_reading_app(
    sim: &crate::simulator::RunningSimulator,
    sim_cfg: &crate::simulator::SimulatorConfig,
    dir: &std::path::Path,
) -> (crate::app::App, std::sync::Arc<dyn HistoryDataset>) {
    let text = format!(
        "[api]\nbase_url = \"{}\"\naccount_id = \"{}\"\niid = \"{}\"\nclient_id = \"{}\"\n\
         requests_per_minute = 100000\ntimezone = \"America/New_York\"\n[output]\nurl = {:?}\n\
         [user_status]\nenabled = false\n[agent_activity]\nenabled = true\n\
         event_time_zone = \"UTC\"\n",
        sim.base_url(),
        sim_cfg.account_id,
        sim_cfg.iid,
        sim_cfg.client_id,
        dir.display().to_string()
    );
    let config = crate::datasets::config_from_toml(
        &text,
        std::path::Path::new("aa.toml"),
        Some(crate::simulator::DEFAULT_SECRET.into()),
    )
    .expect("valid test config");
    let app = crate::app::App::start(
        config,
        tokio_util::sync::CancellationToken::new(),
        crate::metrics::Metrics::new(),
    )
    .await
    .expect("app");
    let Some(Dataset::History(aa)) = app.datasets().first().cloned() else {
        panic!("agent_activity is the only enabled dataset");
    };
    (app, aa)
}

/// Every batch of the Parquet file at `path`; none when there is no file.
fn parquet_rows(path: &std::path::Path) -> Vec<arrow::record_batch::RecordBatch> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader")
        .map(|b| b.expect("batch"))
        .collect()
}

/// A tenant that writes New York time exported with `event_time_zone` left at UTC: every
/// event reads four hours early (daylight time), so no window keeps one. Nothing vanishes
/// silently: each returned event is counted, and those read before the day are rejects.
/// Expected values come from the simulator's generator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_event_time_zone_is_counted_and_the_days_edge_kept_as_rejects() {
    use crate::simulator::agent_activity::{agent_events, AgentActivitySim};
    use crate::simulator::{self, ModelSettings, SimulatorConfig};

    let now = at("2024-06-14T00:00:00Z");
    let sim_cfg = SimulatorConfig {
        seed: 7,
        agents: 3,
        frozen_now: Some(now),
        models: ModelSettings::default().with(AgentActivitySim {
            to_exclusive: true,
            ..AgentActivitySim::default()
        }),
        ..SimulatorConfig::default()
    };
    let sim = simulator::start(sim_cfg.clone(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator");
    let dir = tempfile::tempdir().expect("tmp");
    let (app, aa) = utc_reading_app(&sim, &sim_cfg, dir.path()).await;
    let day = "2024-06-12".parse().expect("day");
    aa.export_day(&app.cx, &super::super::DayUnit::day(day), now)
        .await
        .expect("day exported");

    // The generator's events of the day; an exclusive toTimeStamp returns each once, but an
    // event at an hour's last second twice (the next window asks from that second).
    let events: Vec<DateTime<Utc>> = (0..sim_cfg.agents)
        .flat_map(|idx| agent_events(sim_cfg.seed, idx, june_day(), now, NY, None))
        .map(|e| e.at)
        .collect();
    let twice = events
        .iter()
        .filter(|t| t.timestamp() % 3600 == 3599 && **t + TimeDelta::seconds(1) < june_day().end)
        .count();
    let before_day = events
        .iter()
        .filter(|t| **t - TimeDelta::hours(4) < june_day().start)
        .count();
    assert!(
        events.len() > 20 && before_day > 0,
        "{} {before_day}",
        events.len()
    );
    let counted = app
        .cx
        .metrics
        .value(OUTSIDE_WINDOW.name, &[("dataset", "agent_activity")])
        .expect("registered at start");
    assert_eq!(counted, (events.len() + twice) as f64);

    let part = |root: &str| {
        dir.path().join(format!(
            "{root}/account_id={}/dt=2024-06-12/part-00000.parquet",
            sim_cfg.account_id
        ))
    };
    let written: usize = parquet_rows(&part("agent_activity"))
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(written, 0);
    let rejects = parquet_rows(&part("_rejects/agent_activity"));
    assert_eq!(
        rejects.iter().map(|b| b.num_rows()).sum::<usize>(),
        before_day
    );
    let reasons = rejects[0]
        .column_by_name("reason")
        .expect("reason")
        .as_string::<i32>();
    assert!(reasons.value(0).contains("agent_activity.event_time_zone"));
    app.shutdown().await;
    sim.shutdown().await;
}
