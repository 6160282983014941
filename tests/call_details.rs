//! Call Details end to end: the built binary exports `call_details` and `call_segments` from
//! the in-process simulator, and every row read back from Parquet is compared, column by
//! column, with the simulator's generator (never with what the exporter decoded). Request
//! figures come from the simulator's own counters.

// One `json!` literal per expected row of 45 columns.
#![recursion_limit = "256"]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use arrow::array::{
    Array, AsArray, BooleanArray, Int32Array, Int64Array, ListArray, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::DataType;
use chrono::{DateTime, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use common::*;
use serde_json::{json, Value};
use smartassist_export::simulator::call_details::{
    calls_in, segments, CallBurst, CallDetailsSim, GeneratedCall, GeneratedLeg, GeneratedSegment,
    ENDPOINT,
};
use smartassist_export::simulator::{ModelSettings, SimulatorConfig};

const NY: Tz = chrono_tz::America::New_York;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("UTC timestamp literal")
}

fn section(tz: &str) -> String {
    format!("[user_status]\nenabled = false\n[call_details]\nenabled = true\ntimezone = \"{tz}\"\n")
}

// ---------------------------------------------------------------------------------------------
// Reading the output: every column of every row as JSON, by column name.
// ---------------------------------------------------------------------------------------------

type Row = BTreeMap<String, Value>;

fn cell(col: &dyn Array, i: usize) -> Value {
    if col.is_null(i) {
        return Value::Null;
    }
    let any = col.as_any();
    match col.data_type() {
        DataType::Utf8 => json!(any.downcast_ref::<StringArray>().expect("utf8").value(i)),
        DataType::Int32 => json!(any.downcast_ref::<Int32Array>().expect("i32").value(i)),
        DataType::Int64 => json!(any.downcast_ref::<Int64Array>().expect("i64").value(i)),
        DataType::Boolean => json!(any.downcast_ref::<BooleanArray>().expect("bool").value(i)),
        DataType::Timestamp(_, _) => json!(any
            .downcast_ref::<TimestampMillisecondArray>()
            .expect("ts ms")
            .value(i)),
        DataType::List(_) => {
            let items = any.downcast_ref::<ListArray>().expect("list").value(i);
            let items = items.as_string::<i32>();
            Value::Array((0..items.len()).map(|k| json!(items.value(k))).collect())
        }
        other => panic!("unexpected column type {other}"),
    }
}

/// `(dt, row)` for every row of a table.
fn rows_of(root: &Path, table: &str) -> Vec<(String, Row)> {
    let mut out = Vec::new();
    for (file, batches) in read_dataset(root, table) {
        let dt = file
            .split('/')
            .find_map(|s| s.strip_prefix("dt="))
            .expect("dt= segment")
            .to_string();
        for b in batches {
            out.extend((0..b.num_rows()).map(|i| (dt.clone(), row(&b, i))));
        }
    }
    out
}

fn row(b: &RecordBatch, i: usize) -> Row {
    b.schema()
        .fields()
        .iter()
        .zip(b.columns())
        .map(|(f, c)| (f.name().clone(), cell(c.as_ref(), i)))
        .collect()
}

/// Columns holding JSON text are compared as parsed JSON.
fn parse_json_columns(row: &mut Row, names: &[&str]) {
    for n in names {
        if let Some(Value::String(text)) = row.get(*n) {
            let parsed = serde_json::from_str(text).expect("JSON text column");
            row.insert((*n).to_string(), parsed);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Expected rows, from the generator.
// ---------------------------------------------------------------------------------------------

/// The request offset (JavaScript convention) in force at `t`: what the exporter must send for
/// a window containing `t`, computed from chrono-tz alone.
fn offset_at(tz: Tz, t: DateTime<Utc>) -> i32 {
    -tz.offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc()
        / 60
}

fn ms(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| json!(t.timestamp_millis()))
}

fn opt<T: serde::Serialize>(v: Option<T>) -> Value {
    v.map_or(Value::Null, |v| json!(v))
}

fn expected_details(account: &str, c: &GeneratedCall, offset: i32) -> Row {
    let s = c.survey.as_ref();
    let k = c.campaign.as_ref();
    let p = c.customer.as_ref();
    let v = json!({
        "account_id": account,
        "session_id": c.session_id,
        "conversation_id": c.conversation_id,
        "channel": c.channel,
        "bot_id": c.bot_id,
        "user_id": c.user_id,
        "channel_specific_user_id": c.channel_specific_user_id,
        "org_id": c.org_id,
        "session_start_time": ms(Some(c.start)),
        "session_end_time": ms(Some(c.end)),
        "time_zone_offset": offset,
        "final_status": c.final_status,
        "smart_status": c.smart_status,
        "reason": c.reason,
        "disconnecting_event": c.disconnecting_event,
        "error_details": c.error_details,
        "direction": c.direction,
        "is_voicemail": c.is_voicemail,
        "skills": c.skills,
        "dispositions": c.dispositions,
        "disposition_remarks": c.disposition_remarks,
        "survey_type": s.map(|s| &s.survey_type),
        "csat_score": s.and_then(|s| s.csat_score),
        "csat_feedback": s.and_then(|s| s.csat_feedback.as_ref()),
        "nps_score": s.and_then(|s| s.nps_score),
        "like_dislike_score": s.and_then(|s| s.like_dislike_score),
        "customer_phone": p.map(|p| &p.phone),
        "center_phone": p.map(|p| &p.center_phone),
        "customer_first_name": p.map(|p| &p.first_name),
        "customer_last_name": p.map(|p| &p.last_name),
        "customer_email": p.map(|p| &p.email),
        "user_level_tags": c.user_level_tags,
        "session_level_tags": c.session_level_tags,
        "campaign_id": k.and_then(|k| k.id.as_ref()),
        "campaign_name": k.and_then(|k| k.name.as_ref()),
        "campaign_instance_id": k.and_then(|k| k.instance_id.as_ref()),
        "campaign_dialing_list_id": k.and_then(|k| k.dialing_list_id.as_ref()),
        "campaign_attempt": k.and_then(|k| k.attempt),
        "campaign_contact_status": k.map(|k| &k.contact_status),
        "campaign_run_date": ms(k.and_then(|k| k.run_date)),
        "campaign_contact_list_names": k.and_then(|k| k.contact_list_names.as_ref()),
        "automation_bot_ids": c.automation_bot_ids,
        "meta_info": c.meta_info,
        "segment_count": segments(c).len(),
    });
    serde_json::from_value(v).expect("row")
}

/// A zone-less time as the API renders it: local at the request's offset.
fn local(t: DateTime<Utc>, offset: i32) -> String {
    (t - chrono::Duration::minutes(i64::from(offset)))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

fn consulting(leg: &GeneratedLeg, offset: i32) -> Value {
    if leg.status.is_none() {
        return Value::Null;
    }
    leg.consulting
        .iter()
        .map(|c| {
            json!({"name": c.name, "acceptedTime": local(c.accepted_time, offset),
                   "assignedAt": local(c.assigned_at, offset),
                   "consultingEndTime": local(c.consulting_end_time, offset)})
        })
        .collect()
}

fn expected_segment(account: &str, c: &GeneratedCall, s: &GeneratedSegment, offset: i32) -> Row {
    let q = s.queue.as_ref();
    let l = s.leg.as_ref();
    let v = json!({
        "account_id": account,
        "session_id": c.session_id,
        "segment_index": s.index,
        "destination_type": s.destination_type,
        "queue_id": q.map(|q| &q.queue_id),
        "queue_name": q.and_then(|q| q.queue_name.as_ref()),
        "enter_time": ms(q.and_then(|q| q.enter_time)),
        "callback_opted": q.and_then(|q| q.callback_opted),
        "callback_opted_time": ms(q.and_then(|q| q.callback_opted_time)),
        "user_callback_accept_time": ms(q.and_then(|q| q.user_callback_accept_time)),
        "agent_id": l.map(|l| &l.agent_id),
        "agent_email": l.map(|l| &l.email),
        "agent_name": l.map(|l| &l.name),
        "responding": s.responding,
        "status": l.and_then(|l| l.status.as_ref()),
        "non_response_event": l.and_then(|l| l.non_response_event.as_ref()),
        "assigned_at": ms(l.map(|l| l.assigned_at)),
        "accepted_time": ms(l.and_then(|l| l.accepted_time)),
        "first_response_time": ms(l.and_then(|l| l.first_response_time)),
        "first_response_seconds": opt(l.and_then(|l| l.first_response_seconds)),
        "interaction_end_time": ms(l.and_then(|l| l.interaction_end_time)),
        "interaction_seconds": opt(l.and_then(|l| l.interaction_seconds)),
        "after_call_work_end_time": ms(l.and_then(|l| l.after_call_work_end_time)),
        "after_call_work_seconds": opt(l.and_then(|l| l.after_call_work_seconds)),
        "agent_notes": l.map(|l| &l.notes),
        "consulting_agents": l.map_or(Value::Null, |l| consulting(l, offset)),
        "session_start_time": ms(Some(c.start)),
        "time_zone_offset": offset,
    });
    serde_json::from_value(v).expect("row")
}

/// Takes `extra` out of the row: the session's `holdDuration`, which the API sends and no
/// column maps, is in it (the compliance suite checks every row's `extra` exactly).
fn assert_untyped_fields_kept(r: &mut Row) {
    let extra = r.remove("extra").expect("an extra column");
    let extra: serde_json::Value =
        serde_json::from_str(extra.as_str().expect("extra is JSON text")).expect("JSON");
    assert_eq!(extra["holdDuration"], json!(0), "{extra}");
}

/// Exported rows by key, with the partition they are in; each key exactly once.
struct Exported {
    details: HashMap<String, (String, Row)>,
    legs: HashMap<(String, i64), (String, Row)>,
}

fn exported(out: &Path) -> Exported {
    let json_columns = [
        "skills",
        "user_level_tags",
        "session_level_tags",
        "meta_info",
    ];
    let mut details = HashMap::new();
    for (dt, mut r) in rows_of(out, "call_details") {
        assert!(r.remove("exported_at").is_some_and(|v| !v.is_null()));
        assert_untyped_fields_kept(&mut r);
        parse_json_columns(&mut r, &json_columns);
        let id = r["session_id"].as_str().expect("session_id").to_string();
        let twice = details.insert(id.clone(), (dt, r)).is_some();
        assert!(!twice, "session {id} exported twice");
    }
    let mut legs = HashMap::new();
    for (dt, mut r) in rows_of(out, "call_segments") {
        assert!(r.remove("exported_at").is_some_and(|v| !v.is_null()));
        assert_untyped_fields_kept(&mut r);
        parse_json_columns(&mut r, &["consulting_agents"]);
        let key = (
            r["session_id"].as_str().expect("id").to_string(),
            r["segment_index"].as_i64().expect("index"),
        );
        let twice = legs.insert(key.clone(), (dt, r)).is_some();
        assert!(!twice, "leg {key:?} exported twice");
    }
    Exported { details, legs }
}

/// Exported rows compared with the generator's sessions of `days` (local days of `tz`): every
/// good session and leg exactly once, in the partition of its local start date, every column
/// equal; the hostile sessions only in the rejects, with their raw JSON. Returns per day
/// (sessions, legs, sum of interaction seconds, sum of after-call-work seconds).
fn assert_exact(
    out: &Path,
    cfg: &SimulatorConfig,
    tz: Tz,
    days: &[NaiveDate],
) -> BTreeMap<String, (usize, usize, i64, i64)> {
    let account = &cfg.account_id;
    let got = exported(out);
    let mut sums = BTreeMap::new();
    for &day in days {
        let (start, end) = day_bounds(tz, day);
        let dt = day.to_string();
        let truth = calls_in(cfg, start..end);
        assert!(!truth.is_empty(), "the fixture has sessions on {day}");
        let offsets = [
            offset_at(tz, start),
            offset_at(tz, end - chrono::Duration::seconds(1)),
        ];
        let hostile: Vec<&GeneratedCall> = truth.iter().filter(|c| c.malformed.is_some()).collect();
        assert_rejects(out, account, &dt, &hostile);
        let mut day_sums = (0, 0, 0i64, 0i64);
        for c in truth.iter().filter(|c| c.malformed.is_none()) {
            let id = &c.session_id;
            let (got_dt, row) = got
                .details
                .get(id)
                .unwrap_or_else(|| panic!("session {id} missing"));
            // Which of the day's offsets a window is sent at is the exporter's choice; every
            // zone-less value must then be read (and kept, as JSON text) at that offset.
            let offset = row["time_zone_offset"].as_i64().expect("offset") as i32;
            assert!(
                offsets.contains(&offset),
                "{offset} is not one of {offsets:?}"
            );
            assert_eq!(got_dt, &dt, "session {id} in the wrong partition");
            assert_eq!(row, &expected_details(account, c, offset), "session {id}");
            day_sums.0 += 1;
            for s in segments(c) {
                let key = (id.clone(), s.index as i64);
                let (got_dt, row) = got
                    .legs
                    .get(&key)
                    .unwrap_or_else(|| panic!("leg {key:?} missing"));
                assert_eq!(got_dt, &dt, "leg {key:?} in the wrong partition");
                let want = expected_segment(account, c, &s, offset);
                assert_eq!(row, &want, "leg {key:?}");
                let leg = s.leg.as_ref();
                day_sums.1 += 1;
                day_sums.2 += leg.and_then(|l| l.interaction_seconds).unwrap_or(0);
                day_sums.3 += leg.and_then(|l| l.after_call_work_seconds).unwrap_or(0);
            }
        }
        sums.insert(dt, day_sums);
    }
    let sessions: usize = sums.values().map(|v| v.0).sum();
    let legs: usize = sums.values().map(|v| v.1).sum();
    assert_eq!(
        got.details.len(),
        sessions,
        "sessions outside the expected set"
    );
    assert_eq!(got.legs.len(), legs, "legs outside the expected set");
    sums
}

/// Per day of the exported `call_segments`: (sessions in call_details, legs, interaction
/// seconds, after-call-work seconds), summed from the files.
fn exported_sums(out: &Path) -> BTreeMap<String, (usize, usize, i64, i64)> {
    let mut sums: BTreeMap<String, (usize, usize, i64, i64)> = BTreeMap::new();
    for (dt, _) in rows_of(out, "call_details") {
        sums.entry(dt).or_default().0 += 1;
    }
    for (dt, r) in rows_of(out, "call_segments") {
        let e = sums.entry(dt).or_default();
        e.1 += 1;
        e.2 += r["interaction_seconds"].as_i64().unwrap_or(0);
        e.3 += r["after_call_work_seconds"].as_i64().unwrap_or(0);
    }
    sums
}

/// The rejects of a day are exactly its hostile sessions, each with its raw JSON.
fn assert_rejects(out: &Path, account: &str, dt: &str, hostile: &[&GeneratedCall]) {
    let dir = format!("_rejects/call_details/account_id={account}/dt={dt}");
    let raw: Vec<String> = read_dataset(out, &dir)
        .into_iter()
        .flat_map(|(_, batches)| batches)
        .flat_map(|b| {
            let col = b
                .column_by_name("raw_json")
                .expect("raw_json")
                .as_string::<i32>()
                .clone();
            (0..col.len()).map(move |i| col.value(i).to_string())
        })
        .collect();
    assert_eq!(raw.len(), hostile.len(), "rejects of {dt}: {raw:?}");
    for c in hostile {
        let found = raw.iter().find(|r| r.contains(&c.session_id));
        let found =
            found.unwrap_or_else(|| panic!("hostile session {} not rejected", c.session_id));
        serde_json::from_str::<Value>(found).expect("the raw record is JSON");
    }
}

/// What no plan can beat for the records of a local day: every window ends with a short page
/// and holds at most 1,099 records (11 pages of 100, the last short), so `W` windows holding
/// `n` records cost at least `ceil((n + W) / 100)` requests, with `W ≥ max(1, ceil(n / 1099))`.
fn lower_bound(cfg: &SimulatorConfig, tz: Tz, day: NaiveDate) -> u64 {
    let (start, end) = day_bounds(tz, day);
    let n = calls_in(cfg, start..end).len() as u64;
    let windows = n.div_ceil(1099).max(1);
    (n + windows).div_ceil(100)
}

/// `_state/<name>` as JSON.
fn state(out: &Path, name: &str) -> Value {
    let text = std::fs::read_to_string(out.join("_state").join(name))
        .unwrap_or_else(|e| panic!("state object {name}: {e}"));
    serde_json::from_str(&text).expect("state JSON")
}

// ---------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------

/// Three New York days around the 25-hour fall-back day of 2024, which holds over 3,000
/// sessions (a busy afternoon on top of the base load), with hostile records mixed in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_backfill_across_fall_back_is_exact_and_spends_close_to_the_minimum_requests() {
    let cfg = SimulatorConfig {
        seed: 11,
        malformed_every: Some(97),
        models: ModelSettings::default().with(CallDetailsSim {
            sessions_per_hour: 20,
            bursts: vec![CallBurst {
                start: utc("2024-11-03T16:00:00Z"),
                seconds: 6 * 3600,
                sessions: 2_700,
            }],
            ..CallDetailsSim::default()
        }),
        ..SimulatorConfig::default()
    };
    let days = [date("2024-11-02"), date("2024-11-03"), date("2024-11-04")];
    let busy = calls_in(&cfg, {
        let (s, e) = day_bounds(NY, days[1]);
        s..e
    });
    assert!(
        busy.len() >= 3_000,
        "the busy day has {} sessions",
        busy.len()
    );
    assert_eq!(
        (day_bounds(NY, days[1]).1 - day_bounds(NY, days[1]).0).num_hours(),
        25
    );
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = write_config(
        tmp.path(),
        &sim.base_url(),
        &out,
        &section("America/New_York"),
    );
    let run = run_bin(
        &config,
        &[
            "backfill",
            "--from",
            "2024-11-02",
            "--to",
            "2024-11-04",
            "--dataset",
            "call_details",
        ],
    );
    assert_success(&run);

    let expected = assert_exact(&out, &cfg, NY, &days);
    assert_eq!(exported_sums(&out), expected, "handle-time sums per day");
    let stats = sim.stats();
    assert_eq!(
        stats.count(ENDPOINT, 400),
        0,
        "a request broke a cap: {stats:?}"
    );
    let used = stats.requests(ENDPOINT);
    let minimum: u64 = days.iter().map(|&d| lower_bound(&cfg, NY, d)).sum();
    let limit = 1.15 * minimum as f64 + 11.0;
    println!(
        "call_details backfill: {} sessions; {used} requests, lower bound {minimum}, \
         limit {limit:.1} ({:.3}x the lower bound)",
        expected.values().map(|v| v.0).sum::<usize>(),
        used as f64 / minimum as f64
    );
    let log = String::from_utf8_lossy(&run.stderr);
    for line in log.lines().filter(|l| l.contains("Exported day.")) {
        println!("  {line}");
    }
    assert!(
        used as f64 <= limit,
        "{used} requests, more than {limit:.1}"
    );
    assert!(
        log.contains("minimum_requests"),
        "the day's line reports the minimum:\n{log}"
    );
    // Backfilled days are complete: the latest one's profile is kept for planning.
    let density = state(&out, "call_details/account_id=demo-account/density.json");
    assert_eq!(density["day"], json!("2024-11-04"));
    assert_eq!(density["timezone"], json!("America/New_York"));
    assert_eq!(density["hourly"].as_array().map(Vec::len), Some(24));
    sim.shutdown().await;
}

/// The 23-hour spring-forward day: exactly its sessions, none from the hours around it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spring_forward_day_exports_exactly_its_23_hours() {
    let cfg = SimulatorConfig {
        seed: 12,
        models: ModelSettings::default().with(CallDetailsSim {
            sessions_per_hour: 40,
            ..CallDetailsSim::default()
        }),
        ..SimulatorConfig::default()
    };
    let day = date("2024-03-10");
    let (start, end) = day_bounds(NY, day);
    assert_eq!((end - start).num_hours(), 23);
    // Sessions exist just before and after the day; they must stay out of it.
    assert!(!calls_in(&cfg, start - chrono::Duration::hours(1)..start).is_empty());
    assert!(!calls_in(&cfg, end..end + chrono::Duration::hours(1)).is_empty());
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = write_config(
        tmp.path(),
        &sim.base_url(),
        &out,
        &section("America/New_York"),
    );
    assert_success(&run_bin(
        &config,
        &["backfill", "--from", "2024-03-10", "--to", "2024-03-10"],
    ));
    let expected = assert_exact(&out, &cfg, NY, &[day]);
    assert_eq!(exported_sums(&out), expected);
    assert_eq!(sim.stats().count(ENDPOINT, 400), 0);
    sim.shutdown().await;
}

/// `run --once` exports yesterday and today into both tables, advances the watermark and keeps
/// the density of the complete day; `check` probes the endpoint; `schema --format athena`
/// declares both tables with the `dt` projection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_check_and_schema_cover_both_tables() {
    let cfg = SimulatorConfig {
        seed: 13,
        ..SimulatorConfig::default()
    };
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = write_config(tmp.path(), &sim.base_url(), &out, &section("UTC"));
    let before = Utc::now().date_naive();
    assert_success(&run_bin(&config, &["run", "--once"]));
    let today = Utc::now().date_naive();
    let yesterday = before.pred_opt().expect("date");
    let mark = state(&out, "call_details/account_id=demo-account.json");
    let through = mark["through_day"].as_str().expect("through_day");
    assert!(
        [before.to_string(), today.to_string()].contains(&through.to_string()),
        "{mark}"
    );
    let density = state(&out, "call_details/account_id=demo-account/density.json");
    assert_eq!(density["day"], json!(yesterday.to_string()), "{density}");
    for table in ["call_details", "call_segments"] {
        let dts: std::collections::BTreeSet<String> =
            rows_of(&out, table).into_iter().map(|(dt, _)| dt).collect();
        assert!(dts.contains(&yesterday.to_string()), "{table}: {dts:?}");
        assert!(dts.contains(through), "{table}: {dts:?}");
    }
    let mut days = vec![yesterday, date(through)];
    days.dedup();
    let expected = assert_exact(&out, &cfg, chrono_tz::UTC, &days);
    assert_eq!(exported_sums(&out), expected);

    let check = run_bin(&config, &["check"]);
    assert_success(&check);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(stdout.contains("call_details: OK ("), "{stdout}");

    let schema = run_bin(
        &config,
        &[
            "schema",
            "--format",
            "athena",
            "--location",
            "s3://lake/p",
            "--injected-ids",
        ],
    );
    assert_success(&schema);
    let sql = String::from_utf8_lossy(&schema.stdout);
    for table in ["call_details", "call_segments"] {
        let ddl = sql
            .split("CREATE EXTERNAL TABLE IF NOT EXISTS ")
            .find(|t| t.starts_with(&format!("`{table}`")))
            .unwrap_or_else(|| panic!("no table {table} in\n{sql}"));
        assert!(
            ddl.contains("PARTITIONED BY (`account_id` string, `dt` string)"),
            "{ddl}"
        );
        assert!(ddl.contains("'projection.dt.type' = 'date'"), "{ddl}");
        assert!(
            ddl.contains(&format!(
                "'storage.location.template' = 's3://lake/p/{table}/account_id=${{account_id}}/dt=${{dt}}/'"
            )),
            "{ddl}"
        );
    }
    sim.shutdown().await;
}

/// The daemon runs the call_details job at startup: both tables get yesterday and today, and
/// `/metrics` counts exactly the requests the simulator answered, against the minimum of
/// `floor(n / 100) + 1` per quiet day (one window each) of the generator's `n` sessions.
#[test]
fn the_daemon_exports_both_tables_and_reports_requests_against_the_minimum() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = SimulatorConfig {
        seed: 14,
        ..SimulatorConfig::default()
    };
    let sim = rt.block_on(start_sim(cfg.clone()));
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config_for = |addr: std::net::SocketAddr| {
        let sections = format!(
            "{}\n[server]\nlisten = \"{addr}\"\nshutdown_timeout_seconds = 2\n",
            section("UTC")
        );
        write_config(tmp.path(), &sim.base_url(), &out, &sections)
    };
    let (mut child, addr) = spawn_daemon_on_free_port(config_for, &tmp.path().join("run.log"));
    let series = |name: &str, dataset: &str| format!("{name}{{dataset=\"{dataset}\"}}");
    let success = "smartassist_runs_total{dataset=\"call_details\",outcome=\"success\"}";
    let body = wait_for_metrics(addr, &mut child, std::time::Duration::from_secs(60), |b| {
        metric(b, success) >= 1.0
    });
    let status = sigterm_and_wait(&mut child, std::time::Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));

    let today = Utc::now().date_naive();
    let days = [today.pred_opt().expect("date"), today];
    let minimum: u64 = days
        .iter()
        .map(|&d| {
            let (start, end) = day_bounds(chrono_tz::UTC, d);
            calls_in(&cfg, start..end).len() as u64 / 100 + 1
        })
        .sum();
    let used = sim.stats().requests(ENDPOINT);
    assert_eq!(used, minimum, "quiet days waste no request");
    let api = |name| metric(&body, &series(name, "call_details"));
    assert_eq!(api("smartassist_api_requests_total"), used as f64, "{body}");
    assert_eq!(
        api("smartassist_api_requests_minimum_total"),
        minimum as f64,
        "{body}"
    );
    for table in ["call_details", "call_segments"] {
        let rows = metric(&body, &series("smartassist_rows_written_total", table));
        let files = metric(&body, &series("smartassist_files_written_total", table));
        assert!(
            rows > 0.0 && files == 2.0,
            "{table}: {rows} rows in {files} files\n{body}"
        );
        let dts: std::collections::BTreeSet<String> =
            rows_of(&out, table).into_iter().map(|(dt, _)| dt).collect();
        let want: std::collections::BTreeSet<String> = days.iter().map(|d| d.to_string()).collect();
        assert_eq!(dts, want, "{table}");
    }
    rt.block_on(sim.shutdown());
}
