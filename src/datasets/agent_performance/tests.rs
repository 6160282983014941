//! What is Agent Performance's own: the documentation's sample decoded, the rejects at each
//! level, and an export of New York's spring-forward day against a simulator started here,
//! paged over agents, compared field by field with the simulator's generator.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMillisecondType};
use tokio_util::sync::CancellationToken;

use super::decode::{decode_page, Normalizer};
use super::schema::{COUNTS, DURATIONS};
use super::*;
use crate::app::App;
use crate::metrics::Metrics;
use crate::simulator::agent_performance::{performance, ENDPOINT as SIM_ENDPOINT};
use crate::simulator::{self, SimulatorConfig, DEFAULT_SECRET};
use crate::sink::PartitionKey;

const NY: chrono_tz::Tz = chrono_tz::America::New_York;

/// The documentation's sample, plus an interval at the claim's end and broken entries.
const SAMPLE: &str = r#"{ "hasMore": true, "totalCount": 42,
  "AgentPerformance": [ { "agentId": "a-xxxx-1",
    "intervals": [ { "intervalStartTimeStamp": "2023-01-07T09:45:00.000Z", "intervalEndTimeStamp": "2023-01-07T10:00:00.000Z",
      "queues": [ { "queueId": "qu-xxxx-1", "queueName": "General Information",
        "offeredContacts": 3, "answeredContacts": 3, "abandonedContacts": 0, "completedContacts": 2,
        "transferredContacts": 1, "conversationHandleTime": 95000, "conversationTalkTime": 82000,
        "acwDuration": 9000, "holdDuration": 4000, "csatScore": 4 },
        { "queueId": "qu-xxxx-2", "holdDuration": "4 s" } ] },
      { "intervalStartTimeStamp": "2023-01-08T00:00:00Z", "queues": [ { "queueId": "qu-xxxx-1" } ] },
      { "intervalStartTimeStamp": "yesterday" } ] },
    { "intervals": [] } ] }"#;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("instant")
}

fn int(batch: &RecordBatch, column: &str, row: usize) -> Option<i64> {
    let c = batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("{column}"))
        .as_primitive::<Int64Type>();
    c.is_valid(row).then(|| c.value(row))
}

fn text(batch: &RecordBatch, column: &str, row: usize) -> Option<String> {
    let c = batch
        .column_by_name(column)
        .expect("column")
        .as_string::<i32>();
    c.is_valid(row).then(|| c.value(row).to_string())
}

#[test]
fn the_documented_sample_decodes_and_each_level_is_rejected_alone() {
    let page = decode_page(SAMPLE.as_bytes()).expect("envelope");
    assert_eq!((page.has_more, page.total_count), (true, Some(42)));
    let mut n = Normalizer::new("acct", at("2024-01-01T00:00:00Z"));
    let claim = at("2023-01-07T05:00:00Z")..at("2023-01-08T00:00:00Z");
    assert_eq!(n.push_page(&page, &claim, &mut |_| true), 1);
    let reasons: Vec<String> = n.take_rejects().into_iter().map(|r| r.reason).collect();
    assert_eq!(
        reasons,
        [
            r#"agent a-xxxx-1, interval 2023-01-07 09:45:00 UTC: holdDuration "4 s" is not an integer"#,
            r#"agent a-xxxx-1: intervalStartTimeStamp "yesterday" is not an ISO-8601 timestamp with an offset"#,
            "agent has no agentId",
        ]
    );
    let batch = n.take_batch();
    assert_eq!(
        batch.num_rows(),
        1,
        "the interval at the claim's end is the next day's"
    );
    assert_eq!(text(&batch, "agent_id", 0).as_deref(), Some("a-xxxx-1"));
    assert_eq!(int(&batch, "transferred_contacts", 0), Some(1));
    assert_eq!(int(&batch, "conversation_handle_time_ms", 0), Some(95000));
    assert_eq!(int(&batch, "hold_duration_ms", 0), Some(4000));
    assert_eq!(text(&batch, "extra", 0), None);
    assert_eq!(
        batch
            .schema()
            .field_with_name("acw_duration_ms")
            .unwrap()
            .metadata()["unit"],
        "milliseconds"
    );
}

/// Unknown keys of the envelope are on every row of their page (level `response`, outermost,
/// qualified where an inner level has the same key) and counted once per page; on a page with
/// no row they are still counted.
#[test]
fn envelope_keys_are_kept_on_each_row_of_the_page_and_counted_once_per_page() {
    let body = r#"{"hasMore": false, "__v": 0, "cursor": {"next": null}, "note": "env",
      "AgentPerformance": [ {"agentId": "a-1", "note": "agent",
        "intervals": [ {"intervalStartTimeStamp": "2023-01-07T09:45:00Z",
          "queues": [ {"queueId": "qu-1"}, {"queueId": "qu-2", "tier": 2} ] } ] } ],
      "totalCount": 1}"#;
    let page = decode_page(body.as_bytes()).expect("envelope");
    let mut n = Normalizer::new("acct", at("2024-01-01T00:00:00Z"));
    let claim = at("2023-01-07T05:00:00Z")..at("2023-01-08T00:00:00Z");
    assert_eq!(n.push_page(&page, &claim, &mut |_| true), 2);
    let batch = n.take_batch();
    assert_eq!(
        text(&batch, "extra", 0).as_deref(),
        Some(r#"{"__v":0,"cursor":{"next": null},"response.note":"env","note":"agent"}"#)
    );
    assert_eq!(
        text(&batch, "extra", 1).as_deref(),
        Some(r#"{"__v":0,"cursor":{"next": null},"response.note":"env","note":"agent","tier":2}"#)
    );
    // A page of another day: no row, the envelope still counted.
    let other_day = at("2023-02-01T05:00:00Z")..at("2023-02-02T05:00:00Z");
    assert_eq!(n.push_page(&page, &other_day, &mut |_| true), 0);
    let counts = n.take_unmapped();
    let want: BTreeMap<String, u64> = [
        ("__v".to_string(), 2),
        ("cursor".into(), 2),
        ("note".into(), 3),
        ("tier".into(), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts.as_map(), &want);
}

/// Only an interval starting exactly at the range's end (the next day's) is skipped silently;
/// one starting a month before the range is rejected with its raw JSON and counted.
#[test]
fn an_interval_outside_the_range_is_rejected_and_counted_unless_it_starts_at_its_end() {
    let before =
        r#"{"intervalStartTimeStamp": "2022-12-07T09:45:00Z", "queues": [{"queueId": "qu-1"}]}"#;
    let at_end =
        r#"{"intervalStartTimeStamp": "2023-01-08T05:00:00Z", "queues": [{"queueId": "qu-1"}]}"#;
    let inside =
        r#"{"intervalStartTimeStamp": "2023-01-07T09:45:00Z", "queues": [{"queueId": "qu-1"}]}"#;
    let body = format!(
        r#"{{"hasMore": false, "AgentPerformance": [{{"agentId": "a-1", "intervals": [{before}, {at_end}, {inside}]}}]}}"#
    );
    let page = decode_page(body.as_bytes()).expect("envelope");
    let mut n = Normalizer::new("acct", at("2024-01-01T00:00:00Z"));
    let claim = at("2023-01-07T05:00:00Z")..at("2023-01-08T05:00:00Z");
    assert_eq!(n.push_page(&page, &claim, &mut |_| true), 1);
    assert_eq!(n.outside().records, 1);
    let rejects = n.take_rejects();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].raw_json, before);
    assert!(
        rejects[0]
            .reason
            .starts_with("agent a-1: intervalStartTimeStamp 2022-12-07T09:45:00Z")
            && rejects[0]
                .reason
                .contains("2023-01-07T05:00:00Z to 2023-01-08T05:00:00Z"),
        "{}",
        rejects[0].reason
    );
}

/// A row is one agent, interval and queue: an identical repeat of an agent (pages shifting) or
/// of a queue entry is skipped; an agent or queue entry of a kept key that differs is rejected
/// with its raw JSON, and the first stays the row.
#[test]
fn repeated_agents_and_queues_are_skipped_when_identical_and_rejected_when_they_differ() {
    let q1 = r#"{"queueId": "qu-1", "offeredContacts": 1}"#;
    let q1_other = r#"{"queueId": "qu-1", "offeredContacts": 9}"#;
    let agent = format!(
        r#"{{"agentId": "a-1", "intervals": [{{"intervalStartTimeStamp": "2023-01-07T09:45:00Z",
          "queues": [{q1}, {q1}, {q1_other}]}}]}}"#
    );
    let agent_other = r#"{"agentId": "a-1", "intervals": [{"intervalStartTimeStamp": "2023-01-07T10:00:00Z", "queues": [{"queueId": "qu-2"}]}]}"#;
    let body = format!(
        r#"{{"hasMore": false, "AgentPerformance": [{agent}, {agent}, {agent_other}, {agent_other}]}}"#
    );
    let page = decode_page(body.as_bytes()).expect("envelope");
    let mut n = Normalizer::new("acct", at("2024-01-01T00:00:00Z"));
    let mut seen = crate::datasets::paging::Seen::default();
    let claim = at("2023-01-07T05:00:00Z")..at("2023-01-08T05:00:00Z");
    assert_eq!(n.push_page(&page, &claim, &mut |k| seen.first(k)), 1);
    let rejects = n.take_rejects();
    assert_eq!(
        rejects
            .iter()
            .map(|r| r.raw_json.as_str())
            .collect::<Vec<_>>(),
        [q1_other, agent_other]
    );
    assert!(
        rejects[0].reason.contains("queue qu-1"),
        "{}",
        rejects[0].reason
    );
    assert!(
        rejects[1].reason.contains("agent a-1"),
        "{}",
        rejects[1].reason
    );
    let batch = n.take_batch();
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(int(&batch, "offered_contacts", 0), Some(1));
}

/// Every row by its key text (agent, start ms, queue), as `column=value` strings.
fn rows_by_key(batches: &[RecordBatch]) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for b in batches {
        let starts = b
            .column_by_name("interval_start")
            .expect("start")
            .as_primitive::<TimestampMillisecondType>();
        let ends = b
            .column_by_name("interval_end")
            .expect("end")
            .as_primitive::<TimestampMillisecondType>();
        let csat = b
            .column_by_name("csat_score")
            .expect("csat")
            .as_primitive::<Float64Type>();
        for r in 0..b.num_rows() {
            let key = format!(
                "{}|{}|{}",
                text(b, "agent_id", r).expect("agent"),
                starts.value(r),
                text(b, "queue_id", r).expect("queue")
            );
            let mut values: Vec<String> = COUNTS
                .iter()
                .chain(DURATIONS.iter())
                .map(|(_, c)| format!("{c}={:?}", int(b, c, r)))
                .collect();
            values.push(format!("end={}", ends.value(r)));
            values.push(format!("csat={}", csat.value(r)));
            values.push(format!("queue_name={:?}", text(b, "queue_name", r)));
            assert!(out.insert(key.clone(), values).is_none(), "{key} twice");
        }
    }
    out
}

/// Every queue entry of `all` as `rows_by_key` shows it, from the simulator's generator.
fn expected_rows(
    all: &[crate::simulator::agent_performance::GeneratedPerformance],
) -> BTreeMap<String, Vec<String>> {
    let mut want = BTreeMap::new();
    for p in all {
        for i in &p.intervals {
            for q in &i.queues {
                let mut v: Vec<String> = COUNTS
                    .iter()
                    .zip(q.counts)
                    .map(|((_, c), n)| format!("{c}={:?}", Some(n)))
                    .collect();
                v.extend(
                    DURATIONS
                        .iter()
                        .zip(q.durations_ms)
                        .map(|((_, c), n)| format!("{c}={:?}", Some(n))),
                );
                v.push(format!("end={}", i.end.timestamp_millis()));
                v.push(format!("csat={}", q.csat_score as f64));
                v.push(format!("queue_name={:?}", Some(q.queue.name)));
                let key = format!(
                    "{}|{}|{}",
                    p.agent_id,
                    i.start.timestamp_millis(),
                    q.queue.id
                );
                want.insert(key, v);
            }
        }
    }
    want
}

/// New York's 23 h spring-forward day, paged three agents at a time with an inclusive
/// `toTimeStamp`: every queue entry of every interval starting in the day once, every field
/// the generator's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dst_day_holds_every_agent_interval_and_queue_once_with_every_field() {
    let cfg = SimulatorConfig {
        seed: 13,
        agents: 8,
        max_page_size: 3,
        frozen_now: Some(at("2024-03-20T00:00:00Z")),
        ..SimulatorConfig::default()
    };
    let s = simulator::start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator");
    let dir = tempfile::tempdir().expect("tmp");
    let text_cfg = format!(
        r#"
[api]
base_url = "{base}"
account_id = "demo-account"
iid = "st-demo-stream"
client_id = "cs-demo-client"
requests_per_minute = 100000
timezone = "America/New_York"
[output]
url = "{out}"
[user_status]
enabled = false
[agent_performance]
enabled = true
"#,
        base = s.base_url(),
        out = dir.path().display()
    );
    let config = crate::datasets::config_from_toml(
        &text_cfg,
        Path::new("ap.toml"),
        Some(DEFAULT_SECRET.into()),
    )
    .expect("valid test config");
    let app = App::start(config, CancellationToken::new(), Metrics::new())
        .await
        .expect("app");
    let Some(Dataset::History(ap)) = app.datasets().first().cloned() else {
        panic!("agent_performance is the only enabled dataset");
    };
    let mut agents = 0;
    for day in ["2024-03-10", "2024-03-11"] {
        let day: NaiveDate = day.parse().expect("day");
        let report = ap
            .export_day(&app.cx, &DayUnit::day(day), at("2024-03-20T00:00:00Z"))
            .await
            .expect("day exported");
        let bounds = local_day_bounds(NY, day);
        let all = performance(13, 8, bounds, at("2024-03-20T00:00:00Z"), None);
        agents = agents.max(all.len());
        assert_eq!(report.requests, all.len().div_ceil(3).max(1), "{day}");
        let key = PartitionKey::account_day(&TABLE, "demo-account", day);
        let batches = app.cx.sink.read_partition(&key).await.expect("read");
        assert_eq!(rows_by_key(&batches), expected_rows(&all), "{day}");
    }
    assert!(agents > 3, "more agents than a page: {agents}");
    assert!(s.stats().requests(SIM_ENDPOINT) >= 4);
    app.shutdown().await;
    s.shutdown().await;
}

#[test]
fn a_body_that_is_not_json_gets_serde_jsons_message_and_a_spaced_one_decodes() {
    for body in [
        "",
        "{",
        r#"{"AgentPerformance": [1,]}"#,
        r#"{"AgentPerformance": [{"agentId": "u-1" "x": 1}]}"#,
        r#"{"hasMore": tru, "AgentPerformance": []}"#,
        "{\"AgentPerformance\": [\"tab\tinside\"]}",
    ] {
        let want = serde_json::from_str::<&serde_json::value::RawValue>(body)
            .expect_err("not JSON")
            .to_string();
        let got = decode_page(body.as_bytes()).expect_err("a decode error");
        assert_eq!(got.reason, want, "{body:?}");
    }
    let spaced = format!("\n  {}  \n", SAMPLE.trim());
    let (a, b) = (
        decode_page(SAMPLE.as_bytes()).expect("envelope"),
        decode_page(spaced.as_bytes()).expect("envelope"),
    );
    assert_eq!(a.agents, b.agents);
    assert_eq!((a.has_more, a.total_count), (b.has_more, b.total_count));
    assert!(!a.agents.is_empty());
}
