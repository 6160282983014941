//! What is Contact Volume's own: the documentation's sample decoded (both casings of the
//! lower-case-q key, units, the implausible count), and exports against a simulator started
//! here, across New York's fall-back day, paged, compared field by field with the simulator's
//! generator, with the units of the tenant declared right and wrong.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMillisecondType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tokio_util::sync::CancellationToken;

use super::decode::{decode_page, Normalizer, Pushed};
use super::schema::{COUNTS, DURATIONS, UNIT_KEY};
use super::*;
use crate::app::App;
use crate::metrics::Metrics;
use crate::simulator::contact_volume::{volumes, ContactVolumeSim, GeneratedVolume, SimUnit};
use crate::simulator::{self, ModelSettings, RunningSimulator, SimulatorConfig, DEFAULT_SECRET};

const NY: chrono_tz::Tz = chrono_tz::America::New_York;

/// The documentation's sample, with a second record using the regular casing.
const SAMPLE: &str = r#"{ "hasMore": false, "totalCount": 1,
  "CallVolumeUpdate": [ { "_id": "647868bfc0cf4c7b7671xxxx",
    "intervalStartTimeStamp": "2023-06-01T09:45:00.000Z", "intervalEndTimeStamp": "2023-06-01T10:00:00.000Z",
    "orgId": "o-1", "queueId": "qu-1", "queueName": "custom day", "source": "rtm", "iId": "st-1", "__v": 0,
    "offeredContacts": 1, "answeredContacts": 1, "abandonedContacts": 1, "completedContacts": 1,
    "maxQueueHoldTimeAnswered": 34035, "queueHoldTimeAnswered": 34035,
    "maxqueueHoldTimeAbandoned": 180150, "queueHoldTimeAbandoned": 180150,
    "acwDuration": 3949, "conversationHandleTime": 68043, "conversationTalkTime": 64094, "holdDuration": 0,
    "messageCount": 0, "savedMessageCount": 0, "csatResponses": 1, "csatScore": 1,
    "skillBreakdown": [ { "skillId": "sk-xxxx-1", "skillName": "Italian Market", "skillGroupId": "sg-xxxx",
      "skillGroupName": "Languages", "offeredContacts": 6, "answeredContacts": 5, "abandonedContacts": 1,
      "completedContacts": 5, "conversationHandleTime": 190000, "conversationTalkTime": 170000,
      "acwDuration": 11000, "holdDuration": 2000, "queueHoldTimeAnswered": 30000,
      "maxQueueHoldTimeAnswered": 8000, "queueHoldTimeAbandoned": 15000,
      "maxqueueHoldTimeAbandoned": 15000, "csatResponses": 3, "csatScore": 4 } ] },
    { "intervalStartTimeStamp": "2023-06-01T10:00:00Z", "queueId": "qu-1", "maxQueueHoldTimeAbandoned": 7 },
    { "intervalStartTimeStamp": "2023-06-02T00:00:00Z", "queueId": "qu-1" },
    { "intervalStartTimeStamp": "2023-06-01T10:15:00Z", "queueId": "qu-2", "offeredContacts": "3" } ] }"#;

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

fn decode_sample(record_unit: DurationUnit) -> (Normalizer, Vec<Pushed>) {
    let page = decode_page(SAMPLE.as_bytes()).expect("envelope");
    assert_eq!((page.has_more, page.total_count), (false, Some(1)));
    let mut n = Normalizer::new(
        "acct",
        at("2024-01-01T00:00:00Z"),
        "o-asked",
        record_unit,
        DurationUnit::Milliseconds,
    );
    let claim = at("2023-06-01T04:00:00Z")..at("2023-06-02T00:00:00Z");
    let pushed = page
        .records
        .iter()
        .map(|r| n.push_record(r, &page.extra, &claim, &mut |_| true))
        .collect();
    (n, pushed)
}

#[test]
fn the_documented_sample_decodes_with_both_casings_and_units_kept_as_sent() {
    let (mut n, pushed) = decode_sample(DurationUnit::Seconds);
    // The record at the claim's end belongs to the next day: skipped, not rejected.
    assert_eq!(
        pushed,
        [
            Pushed::Rows,
            Pushed::Rows,
            Pushed::Skipped,
            Pushed::Rejected
        ]
    );
    let rejects = n.take_rejects();
    assert_eq!(
        rejects[0].reason,
        r#"offeredContacts "3" is not an integer"#
    );
    // 180150 s of abandoned wait in a 900 s interval with one contact.
    assert_eq!(n.implausible(), 1);
    let [queues, skills] = n.take_batches();
    assert_eq!((queues.num_rows(), skills.num_rows()), (2, 1));
    assert_eq!(
        int(&queues, "max_queue_hold_time_abandoned", 0),
        Some(180150)
    );
    assert_eq!(
        int(&queues, "max_queue_hold_time_abandoned_ms", 0),
        Some(180_150_000)
    );
    assert_eq!(int(&queues, "max_queue_hold_time_abandoned", 1), Some(7));
    assert_eq!(int(&queues, "acw_duration_ms", 0), Some(3_949_000));
    assert_eq!(text(&queues, "org_id", 0).as_deref(), Some("o-1"));
    assert_eq!(text(&queues, "org_id", 1).as_deref(), Some("o-asked"));
    assert_eq!(
        text(&queues, "record_id", 0).as_deref(),
        Some("647868bfc0cf4c7b7671xxxx")
    );
    assert_eq!(text(&queues, "extra", 0).as_deref(), Some(r#"{"__v":0}"#));
    assert_eq!(text(&queues, "extra", 1), None);
    assert_eq!(
        int(&skills, "max_queue_hold_time_abandoned", 0),
        Some(15000)
    );
    assert_eq!(
        int(&skills, "max_queue_hold_time_abandoned_ms", 0),
        Some(15000)
    );
    assert_eq!(int(&skills, "offered_contacts", 0), Some(6));
    assert_eq!(
        text(&skills, "skill_group_name", 0).as_deref(),
        Some("Languages")
    );
    assert_eq!(text(&skills, "extra", 0).as_deref(), Some(r#"{"__v":0}"#));
    assert_eq!(
        queues
            .schema()
            .field_with_name("hold_duration")
            .unwrap()
            .metadata()[UNIT_KEY],
        "seconds"
    );

    let (n, _) = decode_sample(DurationUnit::Milliseconds);
    assert_eq!(
        n.implausible(),
        0,
        "as milliseconds the sample is plausible"
    );
}

fn normalizer() -> Normalizer {
    Normalizer::new(
        "acct",
        at("2024-01-01T00:00:00Z"),
        "o-asked",
        DurationUnit::Seconds,
        DurationUnit::Milliseconds,
    )
}

/// Unknown keys of the envelope are on every row of their page, record and skill rows alike
/// (level `response`, outermost, qualified where an inner level has the same key), and
/// counted once per page; a page with no row in the day still counts them.
#[test]
fn envelope_keys_are_kept_on_each_row_of_the_page_and_counted_once_per_page() {
    let body = r#"{"hasMore": false, "__v": 3, "note": "env", "paging": {"cursor": "c1"},
      "CallVolumeUpdate": [
        {"intervalStartTimeStamp": "2023-06-01T10:00:00Z", "queueId": "qu-1", "note": "rec",
         "skillBreakdown": [{"skillId": "sk-1", "tier": 1}]},
        {"intervalStartTimeStamp": "2023-06-01T10:15:00Z", "queueId": "qu-1"}]}"#;
    let page = decode_page(body.as_bytes()).expect("envelope");
    let mut n = normalizer();
    let claim = at("2023-06-01T04:00:00Z")..at("2023-06-02T04:00:00Z");
    assert_eq!(n.push_page(&page, &claim, &mut |_| true), 2);
    let [queues, skills] = n.take_batches();
    assert_eq!(
        text(&queues, "extra", 0).as_deref(),
        Some(r#"{"__v":3,"response.note":"env","paging":{"cursor": "c1"},"note":"rec"}"#)
    );
    assert_eq!(
        text(&queues, "extra", 1).as_deref(),
        Some(r#"{"__v":3,"note":"env","paging":{"cursor": "c1"}}"#)
    );
    assert_eq!(
        text(&skills, "extra", 0).as_deref(),
        Some(r#"{"__v":3,"response.note":"env","paging":{"cursor": "c1"},"note":"rec","tier":1}"#)
    );
    // The same page for another day: no row, the envelope still counted.
    let other_day = at("2023-07-01T04:00:00Z")..at("2023-07-02T04:00:00Z");
    assert_eq!(n.push_page(&page, &other_day, &mut |_| true), 0);
    let want: BTreeMap<String, u64> = [
        ("__v".to_string(), 2),
        ("note".into(), 3),
        ("paging".into(), 2),
        ("tier".into(), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(n.take_unmapped().as_map(), &want);
    // Its records were not asked for by that day: rejected, not dropped.
    assert_eq!(n.take_rejects().len(), 2);
}

/// Only a record starting exactly at the range's end (the next day's, returned by a server
/// reading `toTimeStamp` as inclusive) is skipped silently; one starting anywhere else outside
/// the range (four days before it here) is rejected once with its raw JSON and counted.
#[test]
fn a_record_outside_the_range_is_rejected_and_counted_unless_it_starts_at_its_end() {
    let before = r#"{"intervalStartTimeStamp": "2023-05-28T10:00:00Z", "queueId": "qu-1"}"#;
    let at_end = r#"{"intervalStartTimeStamp": "2023-06-02T04:00:00Z", "queueId": "qu-1"}"#;
    let inside = r#"{"intervalStartTimeStamp": "2023-06-01T10:00:00Z", "queueId": "qu-1"}"#;
    let body = format!(
        r#"{{"hasMore": false, "CallVolumeUpdate": [{before}, {at_end}, {inside}, {before}]}}"#
    );
    let page = decode_page(body.as_bytes()).expect("envelope");
    let mut n = normalizer();
    let mut seen = crate::datasets::paging::Seen::default();
    let claim = at("2023-06-01T04:00:00Z")..at("2023-06-02T04:00:00Z");
    let pushed: Vec<Pushed> = page
        .records
        .iter()
        .map(|r| n.push_record(r, &page.extra, &claim, &mut |k| seen.first(k)))
        .collect();
    assert_eq!(
        pushed,
        [
            Pushed::Rejected,
            Pushed::Skipped,
            Pushed::Rows,
            Pushed::Skipped
        ]
    );
    assert_eq!(n.outside().records, 1);
    let rejects = n.take_rejects();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].raw_json, before);
    assert!(
        rejects[0].reason.contains("2023-05-28T10:00:00Z")
            && rejects[0]
                .reason
                .contains("2023-06-01T04:00:00Z to 2023-06-02T04:00:00Z"),
        "{}",
        rejects[0].reason
    );
    assert_eq!(n.rows(), [1, 0]);
}

/// A row is one queue and interval start: the same record again (pages shifting) is kept
/// once, another record of the key (another `source` or `_id`) is rejected once, with its raw
/// JSON, and never written.
#[test]
fn a_second_record_of_a_queue_and_interval_is_a_repeat_or_a_reject() {
    let kept = r#"{"_id": "r-1", "intervalStartTimeStamp": "2023-06-01T10:00:00Z", "queueId": "qu-1", "source": "rtm", "offeredContacts": 4}"#;
    let repeat = r#"{"_id": "r-1", "intervalStartTimeStamp": "2023-06-01T10:00:00.000Z", "queueId": "qu-1", "source": "rtm", "offeredContacts": 5}"#;
    let other_source = r#"{"_id": "r-1", "intervalStartTimeStamp": "2023-06-01T10:00:00Z", "queueId": "qu-1", "source": "voice", "offeredContacts": 9}"#;
    let other_id = r#"{"_id": "r-2", "intervalStartTimeStamp": "2023-06-01T10:00:00Z", "queueId": "qu-1", "source": "rtm"}"#;
    let other_queue = r#"{"_id": "r-3", "intervalStartTimeStamp": "2023-06-01T10:00:00Z", "queueId": "qu-2", "source": "voice"}"#;
    let body = format!(
        r#"{{"hasMore": false, "CallVolumeUpdate": [{kept}, {repeat}, {other_source}, {other_id}, {other_source}, {other_queue}]}}"#
    );
    let page = decode_page(body.as_bytes()).expect("envelope");
    let mut n = normalizer();
    let mut seen = crate::datasets::paging::Seen::default();
    let claim = at("2023-06-01T04:00:00Z")..at("2023-06-02T04:00:00Z");
    let pushed: Vec<Pushed> = page
        .records
        .iter()
        .map(|r| n.push_record(r, &page.extra, &claim, &mut |k| seen.first(k)))
        .collect();
    assert_eq!(
        pushed,
        [
            Pushed::Rows,
            Pushed::Skipped,
            Pushed::Rejected,
            Pushed::Rejected,
            Pushed::Skipped,
            Pushed::Rows
        ]
    );
    let rejects = n.take_rejects();
    assert_eq!(
        rejects
            .iter()
            .map(|r| r.raw_json.as_str())
            .collect::<Vec<_>>(),
        [other_source, other_id]
    );
    assert!(
        rejects[0].reason.contains("queue qu-1") && rejects[0].reason.contains("\"voice\""),
        "{}",
        rejects[0].reason
    );
    let [queues, _] = n.take_batches();
    assert_eq!(queues.num_rows(), 2);
    assert_eq!(int(&queues, "offered_contacts", 0), Some(4));
    assert_eq!(text(&queues, "queue_id", 1).as_deref(), Some("qu-2"));
}

/// A skill row is one queue, interval and skill: an entry repeating an earlier `skillId` of the
/// record byte for byte is skipped, one that differs is rejected alone with its raw JSON, and
/// the first entry stays the row.
#[test]
fn a_repeated_skill_of_a_record_is_skipped_when_identical_and_rejected_when_it_differs() {
    let first = r#"{"skillId": "sk-1", "offeredContacts": 2}"#;
    let other = r#"{"skillId": "sk-2", "offeredContacts": 3}"#;
    let differing = r#"{"skillId": "sk-1", "offeredContacts": 7}"#;
    let body = format!(
        r#"{{"hasMore": false, "CallVolumeUpdate": [{{"intervalStartTimeStamp": "2023-06-01T10:00:00Z",
          "queueId": "qu-1", "skillBreakdown": [{first}, {other}, {first}, {differing}]}}]}}"#
    );
    let page = decode_page(body.as_bytes()).expect("envelope");
    let mut n = normalizer();
    let claim = at("2023-06-01T04:00:00Z")..at("2023-06-02T04:00:00Z");
    assert_eq!(n.push_page(&page, &claim, &mut |_| true), 1);
    let rejects = n.take_rejects();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].raw_json, differing);
    assert!(
        rejects[0].reason.contains("\"sk-1\""),
        "{}",
        rejects[0].reason
    );
    let [queues, skills] = n.take_batches();
    assert_eq!((queues.num_rows(), skills.num_rows()), (1, 2));
    assert_eq!(text(&skills, "skill_id", 0).as_deref(), Some("sk-1"));
    assert_eq!(int(&skills, "offered_contacts", 0), Some(2));
    assert_eq!(text(&skills, "skill_id", 1).as_deref(), Some("sk-2"));
}

#[test]
fn bodies_that_are_not_the_envelope_are_decode_errors() {
    for body in [
        "[]",
        r#"{"hasMore":false}"#,
        r#"{"errors":[{"msg":"bad"}]}"#,
        r#"{"hasMore":"no","CallVolumeUpdate":[]}"#,
        r#"{"CallVolumeUpdate":{}}"#,
    ] {
        assert!(decode_page(body.as_bytes()).is_err(), "{body}");
    }
    let page = decode_page(br#"{"callVolumeUpdate":null}"#).expect("null is empty");
    assert!(page.records.is_empty() && !page.has_more);
}

async fn sim(cv: ContactVolumeSim, now: &str) -> RunningSimulator {
    let cfg = SimulatorConfig {
        seed: 11,
        max_page_size: 40,
        frozen_now: Some(at(now)),
        models: ModelSettings::default().with(cv),
        ..SimulatorConfig::default()
    };
    simulator::start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator")
}

async fn app(sim: &RunningSimulator, out: &Path, extra: &str) -> (App, Arc<dyn HistoryDataset>) {
    let text = format!(
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
[contact_volume]
enabled = true
org_id = "o-test"
{extra}
"#,
        base = sim.base_url(),
        out = out.display()
    );
    let config =
        crate::datasets::config_from_toml(&text, Path::new("cv.toml"), Some(DEFAULT_SECRET.into()))
            .expect("valid test config");
    let app = App::start(config, CancellationToken::new(), Metrics::new())
        .await
        .expect("app");
    let Some(Dataset::History(cv)) = app.datasets().first().cloned() else {
        panic!("contact_volume is the only enabled dataset");
    };
    (app, cv)
}

/// The rows of one partition file, and its schema as stored.
fn read(out: &Path, table: &str, day: &str) -> (Vec<RecordBatch>, arrow::datatypes::SchemaRef) {
    let path = out.join(format!(
        "{table}/account_id=demo-account/dt={day}/part-00000.parquet"
    ));
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet");
    let schema = reader.schema().clone();
    let batches = reader
        .build()
        .expect("reader")
        .map(|b| b.expect("batch"))
        .collect();
    (batches, schema)
}

/// Every row of a table, by its key text (queue, start ms[, skill]), as
/// `column=value` strings of every measure.
fn rows_by_key(batches: &[RecordBatch], skills: bool) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for b in batches {
        let starts = b
            .column_by_name("interval_start")
            .expect("start")
            .as_primitive::<TimestampMillisecondType>();
        let csat = b
            .column_by_name("csat_score")
            .expect("csat")
            .as_primitive::<Float64Type>();
        for r in 0..b.num_rows() {
            let mut key = format!(
                "{}|{}",
                text(b, "queue_id", r).expect("queue"),
                starts.value(r)
            );
            if skills {
                key.push('|');
                key.push_str(&text(b, "skill_id", r).expect("skill"));
            }
            let mut values: Vec<String> = COUNTS
                .iter()
                .map(|(_, c)| *c)
                .chain(DURATIONS.iter().map(|(_, c)| *c))
                .map(|c| format!("{c}={:?}", int(b, c, r)))
                .collect();
            for (_, c) in DURATIONS {
                values.push(format!("{c}_ms={:?}", int(b, &format!("{c}_ms"), r)));
            }
            values.push(format!("csat={}", csat.value(r)));
            values.push(format!("queue_name={:?}", text(b, "queue_name", r)));
            values.push(format!("org={:?}", text(b, "org_id", r)));
            if skills {
                values.push(format!("skill_name={:?}", text(b, "skill_name", r)));
            }
            assert!(out.insert(key.clone(), values).is_none(), "{key} twice");
        }
    }
    out
}

/// What the generator says each row holds, with durations sent in `unit` and normalized by
/// `declared`.
fn expected(
    all: &[GeneratedVolume],
    sent: [SimUnit; 2],
    declared: [i64; 2],
) -> [BTreeMap<String, Vec<String>>; 2] {
    let factor = |u: SimUnit| if u == SimUnit::Seconds { 1 } else { 1000 };
    let values = |m: &crate::simulator::contact_volume::GeneratedMeasures,
                  f: i64,
                  d: i64,
                  name: &str,
                  extra: Option<&str>| {
        let mut v: Vec<String> = COUNTS
            .iter()
            .zip(m.counts)
            .map(|((_, c), n)| format!("{c}={:?}", Some(n)))
            .collect();
        v.extend(
            DURATIONS
                .iter()
                .zip(m.durations_s)
                .map(|((_, c), s)| format!("{c}={:?}", Some(s * f))),
        );
        v.extend(
            DURATIONS
                .iter()
                .zip(m.durations_s)
                .map(|((_, c), s)| format!("{c}_ms={:?}", Some(s * f * d))),
        );
        v.push(format!("csat={}", m.csat_score));
        v.push(format!("queue_name={:?}", Some(name)));
        v.push(format!("org={:?}", Some("o-test")));
        if let Some(skill) = extra {
            v.push(format!("skill_name={:?}", Some(skill)));
        }
        v
    };
    let mut queues = BTreeMap::new();
    let mut skills = BTreeMap::new();
    for g in all {
        let key = format!("{}|{}", g.queue.id, g.start.timestamp_millis());
        let f = factor(sent[0]);
        queues.insert(
            key.clone(),
            values(&g.measures, f, declared[0], g.queue.name, None),
        );
        for s in &g.skills {
            let f = factor(sent[1]);
            skills.insert(
                format!("{key}|{}", s.id),
                values(&s.measures, f, declared[1], g.queue.name, Some(s.name)),
            );
        }
    }
    [queues, skills]
}

/// The 25 h fall-back day and the next day, paged 40 records at a time with an inclusive
/// `toTimeStamp`: every record of each local day once, in the `dt` of its start, every field
/// the generator's, and the units in each duration column's metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dst_day_and_the_next_hold_every_interval_once_with_every_field() {
    let s = sim(ContactVolumeSim::default(), "2024-11-10T00:00:00Z").await;
    let dir = tempfile::tempdir().expect("tmp");
    let (app, cv) = app(&s, dir.path(), "").await;
    let mut requests = 0;
    for day in ["2024-11-03", "2024-11-04"] {
        let day: NaiveDate = day.parse().expect("day");
        let report = cv
            .export_day(&app.cx, &DayUnit::day(day), at("2024-11-10T00:00:00Z"))
            .await
            .expect("day exported");
        requests += report.requests;
        let bounds = local_day_bounds(NY, day);
        let all = volumes(11, bounds, at("2024-11-10T00:00:00Z"), None);
        let [want_queues, want_skills] =
            expected(&all, [SimUnit::Seconds, SimUnit::Milliseconds], [1000, 1]);
        let (queues, schema) = read(dir.path(), "contact_volume", &day.to_string());
        assert_eq!(rows_by_key(&queues, false), want_queues, "{day}");
        assert_eq!(
            schema.field_with_name("acw_duration").unwrap().metadata()[UNIT_KEY],
            "seconds"
        );
        assert_eq!(
            schema
                .field_with_name("acw_duration_ms")
                .unwrap()
                .metadata()[UNIT_KEY],
            "milliseconds"
        );
        let (skills, schema) = read(dir.path(), "contact_volume_skills", &day.to_string());
        assert_eq!(rows_by_key(&skills, true), want_skills, "{day}");
        assert_eq!(
            schema.field_with_name("acw_duration").unwrap().metadata()[UNIT_KEY],
            "milliseconds"
        );
        // 25 h of 15-minute intervals of three queues: more than one page of 40.
        assert!(all.len() > 40 && report.requests as usize >= all.len().div_ceil(40));
    }
    assert_eq!(
        s.stats()
            .requests(crate::simulator::contact_volume::ENDPOINT) as usize,
        requests
    );
    app.shutdown().await;
    s.shutdown().await;
}

/// A tenant that sends record durations in milliseconds: declared, the `_ms` columns equal
/// the data and nothing is implausible; left at the documented seconds, the rows are written
/// as sent and counted as implausible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_declared_unit_normalizes_and_a_wrong_one_is_counted() {
    let cv = ContactVolumeSim {
        record_unit: SimUnit::Milliseconds,
        skill_unit: SimUnit::Milliseconds,
        exclusive_end: true,
    };
    let s = sim(cv, "2024-06-06T00:00:00Z").await;
    let day: NaiveDate = "2024-06-05".parse().expect("day");
    let all = volumes(
        11,
        local_day_bounds(NY, day),
        at("2024-06-06T00:00:00Z"),
        None,
    );
    for (declared, implausible) in [("milliseconds", false), ("seconds", true)] {
        let dir = tempfile::tempdir().expect("tmp");
        let (app, cv) = app(
            &s,
            dir.path(),
            &format!("duration_unit = \"{declared}\"\ninclude_skill_breakdown = false"),
        )
        .await;
        cv.export_day(&app.cx, &DayUnit::day(day), at("2024-06-06T00:00:00Z"))
            .await
            .expect("day exported");
        let factor = if implausible { 1000 } else { 1 };
        let [want, _] = expected(
            &all,
            [SimUnit::Milliseconds, SimUnit::Milliseconds],
            [factor, 1],
        );
        let (queues, schema) = read(dir.path(), "contact_volume", "2024-06-05");
        assert_eq!(rows_by_key(&queues, false), want, "{declared}");
        assert_eq!(
            schema.field_with_name("hold_duration").unwrap().metadata()[UNIT_KEY],
            declared
        );
        let (skills, _) = read(dir.path(), "contact_volume_skills", "2024-06-05");
        assert_eq!(skills.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
        let counted = app
            .cx
            .metrics
            .value(IMPLAUSIBLE.name, &[("dataset", "contact_volume")])
            .expect("registered at start");
        assert_eq!(counted > 0.0, implausible, "{declared}: {counted}");
        app.shutdown().await;
    }
    s.shutdown().await;
}
