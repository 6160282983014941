//! The moment of a merge. An `intent_realtime` partition's merge writes the merged file, then
//! deletes its inputs; no object store does both in one step, so in between the folder holds
//! every merged session twice. The generated query DDL reads the table through views that keep
//! one row per session. This test stops a real merge between its two steps (moto behind a
//! proxy that refuses every delete request), copies the folder as it is to a local directory,
//! and has DuckDB query it through the generated views: the files hold duplicates, the DuckDB
//! view and the Athena view (translated to DuckDB by sqlglot) return each session once. Then
//! the store recovers and the next merge finishes: one file, each session once.
//!
//! Expected sessions are written by hand here, never read back from the code under test. FAILS
//! without moto or Python unless `SMARTASSIST_SKIP_S3=1` / `SMARTASSIST_SKIP_PY=1`.

mod common;

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use common::s3_faults::{FaultKind, FaultPlan, S3FaultProxy, S3Op};
use common::*;
use object_store::aws::AmazonS3Builder;
use smartassist_export::config::{OutputLocation, StoreTuning};
use smartassist_export::datasets::intent_realtime::decode::IntentSession;
use smartassist_export::datasets::intent_realtime::partition::{
    add_sessions, compact, ids_of, Merge,
};
use smartassist_export::datasets::intent_realtime::TABLE;
use smartassist_export::ddl;
use smartassist_export::sink::{Output, PartitionKey};

const BUCKET: &str = "merge-window";
const PREFIX: &str = "lake";

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 1).expect("date")
}

/// Session `k` of the test's day: ends `k` minutes after 08:00 UTC.
fn session(k: u32) -> IntentSession {
    let end: DateTime<Utc> = Utc
        .with_ymd_and_hms(2026, 6, 1, 8, 0, 0)
        .single()
        .expect("time")
        + TimeDelta::minutes(i64::from(k));
    IntentSession {
        session_id: format!("s-{k:03}"),
        user_id: Some(format!("u-{k}")),
        channel: Some("voice".into()),
        ani: Some("+15550100".into()),
        dni: Some("+15550199".into()),
        intents: vec!["Billing".into(), format!("Intent{}", k % 3)],
        start_time: Some(end - TimeDelta::seconds(95)),
        end_time: end,
        status: Some("Deflected".into()),
        time_handled: Some("1m: 35s".into()),
        time_handled_seconds: Some(95),
        deflected_to: None,
        extra: None,
    }
}

/// An output on the proxy that fails fast: one retry, short backoff.
fn output_through(endpoint: &str) -> Output {
    let location = OutputLocation::S3 {
        bucket: BUCKET.into(),
        prefix: PREFIX.into(),
        endpoint: Some(endpoint.into()),
        region: Some("us-east-1".into()),
        allow_http: true,
        tuning: StoreTuning {
            max_retries: 1,
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(50),
            ..StoreTuning::default()
        },
    };
    Output::open_on(&location, None, || {
        AmazonS3Builder::new()
            .with_access_key_id("test")
            .with_secret_access_key("test")
    })
    .expect("S3 output")
}

/// Copies every Parquet object of the dataset to `dir`, keeping the Hive layout.
async fn copy_dataset(store: &dyn object_store::ObjectStore, dir: &std::path::Path) -> usize {
    let mut copied = 0;
    for (key, bytes) in s3_parquet_objects(store, &format!("{PREFIX}/{}", TABLE.name)).await {
        let rel = percent_decode(key.strip_prefix(&format!("{PREFIX}/")).expect("prefix"));
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &bytes).expect("write");
        copied += 1;
    }
    copied
}

/// The Athena view of [`TABLE`] alone (`ddl::athena_views` declares one per merged table;
/// the check's DuckDB holds only this table's files).
fn athena_view_of_table() -> String {
    let head = "\nCREATE OR REPLACE VIEW ";
    ddl::athena_views()
        .split(head)
        .filter(|v| v.starts_with(&format!("{} AS", TABLE.name)))
        .map(|v| format!("{head}{v}"))
        .collect()
}

fn check_views_with_duckdb(local: &std::path::Path, expected: &[String]) {
    let spec = serde_json::json!({
        "duckdb_sql": ddl::duckdb_table_views(&local.display().to_string(), &TABLE),
        "athena_sql": athena_view_of_table(),
        "expected": expected,
    });
    let spec_path = local.join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).expect("spec");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/check_merge_window.py");
    let out = std::process::Command::new(python())
        .arg(script)
        .arg(&spec_path)
        .output()
        .expect("run check_merge_window.py");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "the views are not exact mid-merge:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_views_return_each_session_once_while_a_merge_is_half_done() {
    if opted_out(SKIP_PY_ENV, "the DuckDB check of the views mid-merge") {
        return;
    }
    let Some(moto) = moto_or_skip() else { return };
    moto.create_bucket(BUCKET).await;
    let proxy = S3FaultProxy::start(&moto.endpoint(), None).await;
    let out = output_through(&proxy.endpoint());
    let key = PartitionKey {
        table: &TABLE,
        account_id: "acct".into(),
        bot_id: Some("st-bot".into()),
        dt: day(),
    };
    let at = Utc::now();
    // Two polls: 0..25, then 20..40 (the overlap is already stored and not written again).
    add_sessions(
        &out.sink,
        &out.state,
        &key,
        (0..25).map(session).collect(),
        at,
    )
    .await
    .expect("first poll");
    add_sessions(
        &out.sink,
        &out.state,
        &key,
        (20..40).map(session).collect(),
        at + TimeDelta::seconds(30),
    )
    .await
    .expect("second poll");
    let expected: Vec<String> = (0..40).map(|k| format!("s-{k:03}")).collect();

    proxy.set_plan(Some(FaultPlan::permanent(
        FaultKind::InternalError,
        &[S3Op::DeleteObject, S3Op::DeleteObjects],
    )));
    let stopped = compact(&out.sink, &out.state, &key, Merge::All).await;
    assert!(
        stopped.is_err(),
        "the merge must stop at its deletes: {stopped:?}"
    );
    assert!(proxy.injected_into(S3Op::DeleteObjects, FaultKind::InternalError) > 0);

    let store = s3_client(&moto.endpoint(), BUCKET);
    let tmp = tempfile::tempdir().expect("tmp");
    let copied = copy_dataset(store.as_ref(), tmp.path()).await;
    assert_eq!(copied, 3, "the merged file and its two inputs");
    check_views_with_duckdb(tmp.path(), &expected);

    proxy.set_plan(None);
    compact(&out.sink, &out.state, &key, Merge::All)
        .await
        .expect("the merge finishes");
    let files = read_s3_dataset(store.as_ref(), PREFIX, TABLE.name).await;
    assert_eq!(files.len(), 1, "{files:?}");
    let mut ids: Vec<String> = files.iter().flat_map(|(_, b)| ids_of(b)).collect();
    ids.sort();
    assert_eq!(ids, expected);
}
