//! S3 output against a real S3 protocol server: moto's server mode, started on loopback by the
//! test (see `common::MotoServer`). The built binary backfills to `s3://test-bucket/...`; the
//! objects are read back with an object_store client of the test's own and compared with
//! figures from the simulator's generator. A fault-injecting proxy in front of moto makes
//! uploads fail mid-way (a partition's PutObject, or one UploadPart of a multipart upload).
//!
//! The tests FAIL when moto cannot start; a developer without moto opts out with
//! `SMARTASSIST_SKIP_S3=1`.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use common::*;
use object_store::ObjectStoreExt;
use smartassist_export::datasets::user_status;
use smartassist_export::datasets::user_status::schema::user_status_schema;
use smartassist_export::model::Granularity;
use smartassist_export::simulator::SimulatorConfig;
use smartassist_export::sink::{PartitionKey, UPLOAD_PART_BYTES};

const BUCKET: &str = "test-bucket";

const US_SECTION: &str = r#"
[user_status]
granularity = "PT30M"
timezone = "UTC"
page_size = 50
"#;

fn sim_config(agents: usize) -> SimulatorConfig {
    SimulatorConfig {
        seed: 23,
        agents,
        max_page_size: 50,
        ..SimulatorConfig::default()
    }
}

/// `[output]` keys for an S3-compatible endpoint (they land in `[output]` because
/// `write_config` inserts the sections right after `url`).
fn s3_output_keys(endpoint: &str) -> String {
    format!("endpoint = \"{endpoint}\"\nregion = \"us-east-1\"\nallow_http = true\n")
}

/// Runs the binary with moto's dummy credentials; `extra_env` adds e.g. `AWS_ENDPOINT_URL`.
fn run_bin_s3(config: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("-c")
        .arg(config)
        .args(args)
        .env(
            "SMARTASSIST_CLIENT_SECRET",
            SimulatorConfig::default().client_secret,
        )
        .env_remove("RUST_LOG")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().expect("binary runs")
}

/// Every key under `prefix` is either a `part-00000.parquet` data file or sits under a hidden
/// (`.`) or underscore (`_state`, `_rejects`) name that table readers skip.
fn assert_only_part_files(keys: &[String]) {
    for key in keys {
        let hidden = key
            .split('/')
            .any(|seg| seg.starts_with('_') || seg.starts_with('.'));
        assert!(
            hidden || key.ends_with("/part-00000.parquet"),
            "unexpected visible object {key}"
        );
    }
}

fn data_keys(keys: &[String]) -> Vec<String> {
    keys.iter()
        .filter(|k| {
            !k.split('/')
                .any(|s| s.starts_with('_') || s.starts_with('.'))
        })
        .cloned()
        .collect()
}

fn assert_rows_exact(rows: &[StatusRow], expected: &BTreeMap<String, (usize, i64, usize)>) {
    let actual = actual_per_day(rows);
    for (day, (exp_rows, exp_sum, _)) in expected {
        assert_eq!(actual.get(day), Some(&(*exp_rows, *exp_sum)), "day {day}");
    }
    assert_eq!(actual.len(), expected.len(), "days present: {actual:?}");
    let keys: HashSet<_> = rows
        .iter()
        .map(|r| (&r.user_id, r.bucket_start, &r.metric, &r.value))
        .collect();
    assert_eq!(keys.len(), rows.len(), "duplicate rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_to_s3_is_exact_and_rerun_through_env_config_is_identical() {
    let Some(moto) = moto_or_skip() else { return };
    moto.create_bucket(BUCKET).await;
    let cfg = sim_config(6);
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let url = Path::new("s3://test-bucket/lake");
    let sections = format!("{}{US_SECTION}", s3_output_keys(&moto.endpoint()));
    let config = write_config(tmp.path(), &sim.base_url(), url, &sections);
    let args = ["backfill", "--from", "2026-06-01", "--to", "2026-06-03"];
    assert_success(&run_bin_s3(&config, &args, &[]));

    let days = [date("2026-06-01"), date("2026-06-02"), date("2026-06-03")];
    let expected = expected_user_status(
        cfg.seed,
        cfg.agents,
        chrono_tz::UTC,
        &days,
        Granularity::PT30M,
        None,
    );
    let store = s3_client(&moto.endpoint(), BUCKET);
    let rows = status_rows_of(read_s3_dataset(store.as_ref(), "lake", "user_status").await);
    assert_rows_exact(&rows, &expected);
    let keys = s3_keys(store.as_ref(), "lake").await;
    assert_only_part_files(&keys);
    assert_eq!(data_keys(&keys).len(), 3, "one object per day: {keys:?}");
    assert!(moto.open_multipart_uploads(BUCKET).await.is_empty());

    // Rerun with the endpoint from the standard AWS environment instead of [output] keys:
    // same rows, same object list (each partition's single object replaced).
    let env_config_dir = tmp.path().join("env");
    std::fs::create_dir_all(&env_config_dir).expect("mkdir");
    let env_config = write_config(&env_config_dir, &sim.base_url(), url, US_SECTION);
    let endpoint = moto.endpoint();
    let rerun = run_bin_s3(
        &env_config,
        &args,
        &[
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
        ],
    );
    assert_success(&rerun);
    let rows_again = status_rows_of(read_s3_dataset(store.as_ref(), "lake", "user_status").await);
    assert_eq!(rows_again, rows);
    assert_eq!(s3_keys(store.as_ref(), "lake").await, keys);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_uploads_leave_no_partial_object_and_the_next_run_completes() {
    let Some(moto) = moto_or_skip() else { return };
    moto.create_bucket(BUCKET).await;
    let proxy = FaultProxy::start(moto.endpoint()).await;
    let cfg = sim_config(4);
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let url = Path::new("s3://test-bucket/faulty");
    let sections = format!("{}{US_SECTION}", s3_output_keys(&proxy.endpoint()));
    let config = write_config(tmp.path(), &sim.base_url(), url, &sections);
    let args = ["backfill", "--from", "2026-07-01", "--to", "2026-07-03"];

    // Every upload of the middle day fails (both the first try and the end-of-run retry).
    proxy.set_fault(Some(Fault::PutPathContains("dt=2026-07-02".into())));
    let failed = run_bin_s3(&config, &args, &[]);
    assert!(proxy.injected() >= 1, "the fault was injected");
    assert!(
        !failed.status.success(),
        "a day whose upload fails must fail the backfill"
    );
    let store = s3_client(&moto.endpoint(), BUCKET);
    let keys = s3_keys(store.as_ref(), "faulty").await;
    assert_only_part_files(&keys);
    assert!(
        !keys.iter().any(|k| k.contains("dt=2026-07-02")),
        "no object of the failed day may be visible: {keys:?}"
    );
    assert_eq!(data_keys(&keys).len(), 2, "{keys:?}");
    assert!(moto.open_multipart_uploads(BUCKET).await.is_empty());

    // The next run completes the data exactly.
    proxy.set_fault(None);
    assert_success(&run_bin_s3(&config, &args, &[]));
    let days = [date("2026-07-01"), date("2026-07-02"), date("2026-07-03")];
    let expected = expected_user_status(
        cfg.seed,
        cfg.agents,
        chrono_tz::UTC,
        &days,
        Granularity::PT30M,
        None,
    );
    let rows = status_rows_of(read_s3_dataset(store.as_ref(), "faulty", "user_status").await);
    assert_rows_exact(&rows, &expected);
    let keys = s3_keys(store.as_ref(), "faulty").await;
    assert_only_part_files(&keys);
    assert_eq!(data_keys(&keys).len(), 3);
    sim.shutdown().await;
}

/// `rows` UserStatus rows with three 64-character random strings each, so ZSTD cannot shrink
/// the file below the multipart threshold.
fn incompressible_batch(rows: usize, rng: &mut fastrand::Rng) -> RecordBatch {
    let mut random = || -> Vec<String> {
        (0..rows)
            .map(|_| (0..64).map(|_| rng.alphanumeric()).collect())
            .collect()
    };
    let (email, first, custom) = (random(), random(), random());
    let fixed = |v: &str| Arc::new(StringArray::from(vec![v; rows]));
    let ts = |base: i64| {
        Arc::new(
            TimestampMillisecondArray::from((0..rows as i64).map(|i| base + i).collect::<Vec<_>>())
                .with_timezone("UTC"),
        )
    };
    RecordBatch::try_new(
        user_status_schema(),
        vec![
            fixed("acct"),
            Arc::new(StringArray::from(
                (0..rows).map(|i| format!("u-{i}")).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(email)),
            Arc::new(StringArray::from(first)),
            fixed("last"),
            Arc::new(StringArray::from(custom)),
            ts(1_780_000_000_000),
            ts(1_780_000_900_000),
            fixed("PT15M"),
            fixed("status"),
            fixed("Available"),
            Arc::new(Int64Array::from(vec![60i64; rows])),
            ts(1_780_001_000_000),
            Arc::new(StringArray::from(vec![None::<&str>; rows])),
        ],
    )
    .expect("batch")
}

/// Through the library API: a file larger than the upload part size goes up as a multipart
/// upload; when one part fails mid-way the upload is aborted (moto lists no open multipart
/// upload), readers still see the previous complete object, and a retry replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_failing_mid_way_is_aborted_and_the_old_object_stays() {
    let Some(moto) = moto_or_skip() else { return };
    moto.create_bucket(BUCKET).await;
    let proxy = FaultProxy::start(moto.endpoint()).await;
    let sink = smartassist_export::sink::Output::with_store(
        s3_client(&proxy.endpoint(), BUCKET),
        object_store::path::Path::from("big"),
    )
    .sink;
    let key = PartitionKey {
        table: &user_status::TABLE,
        account_id: "acct".into(),
        bot_id: None,
        dt: date("2026-06-01"),
    };
    let mut rng = fastrand::Rng::with_seed(5);
    let small = incompressible_batch(10, &mut rng);
    sink.write_partition(&key, vec![small]).await.expect("v1");

    let big: Vec<RecordBatch> = (0..4)
        .map(|_| incompressible_batch(25_000, &mut rng))
        .collect();
    proxy.set_fault(Some(Fault::UploadPart(2)));
    let err = sink.write_partition(&key, big.clone()).await;
    assert!(err.is_err(), "the write must fail when a part fails");
    assert!(proxy.injected() >= 1, "the fault was injected");
    assert_eq!(
        moto.open_multipart_uploads(BUCKET).await,
        Vec::<String>::new(),
        "the failed multipart upload must be aborted"
    );
    let visible: usize = sink
        .read_partition(&key)
        .await
        .expect("read")
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(
        visible, 10,
        "readers still see the previous complete object"
    );

    proxy.set_fault(None);
    let stats = sink.write_partition(&key, big).await.expect("v2");
    assert!(
        stats.bytes > UPLOAD_PART_BYTES as u64,
        "the file ({} bytes) must exceed one part ({UPLOAD_PART_BYTES}) to exercise multipart",
        stats.bytes
    );
    let store = s3_client(&moto.endpoint(), BUCKET);
    let keys = s3_keys(store.as_ref(), "big").await;
    assert_eq!(
        keys,
        vec!["big/user_status/account_id=acct/dt=2026-06-01/part-00000.parquet".to_string()]
    );
    let head = store
        .head(&object_store::path::Path::from(keys[0].as_str()))
        .await
        .expect("head");
    // A multipart object's ETag is `<md5 of part md5s>-<part count>`.
    let etag = head.e_tag.unwrap_or_default();
    assert!(
        etag.trim_matches('"').contains('-'),
        "ETag {etag} shows a multipart upload"
    );
    let visible: usize = sink
        .read_partition(&key)
        .await
        .expect("read")
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(visible, 100_000);
    assert!(moto.open_multipart_uploads(BUCKET).await.is_empty());
}

/// A write cancelled while its multipart upload is in flight (the future is dropped, as on a
/// shutdown signal) does not strand the upload: it runs on to its end on its own task, here a
/// failed part, and is aborted instead of leaving its parts behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_multipart_upload_is_aborted() {
    let Some(moto) = moto_or_skip() else { return };
    moto.create_bucket(BUCKET).await;
    let proxy = FaultProxy::start(moto.endpoint()).await;
    let sink = smartassist_export::sink::Output::with_store(
        s3_client(&proxy.endpoint(), BUCKET),
        object_store::path::Path::from("cancel"),
    )
    .sink;
    let key = PartitionKey {
        table: &user_status::TABLE,
        account_id: "acct".into(),
        bot_id: None,
        dt: date("2026-06-01"),
    };
    let mut rng = fastrand::Rng::with_seed(9);
    let big: Vec<RecordBatch> = (0..4)
        .map(|_| incompressible_batch(25_000, &mut rng))
        .collect();
    proxy.set_fault(Some(Fault::StallUploadPart(2)));
    let stalled = proxy.stalled();
    tokio::select! {
        r = sink.write_partition(&key, big) => panic!("the write must stall, got {r:?}"),
        _ = stalled => {}
    }
    assert_eq!(proxy.injected(), 1);
    proxy.release();
    // The upload goes on in the background: wait for moto to report no open upload (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let open = moto.open_multipart_uploads(BUCKET).await;
        if open.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cancelled upload was never aborted: {open:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let store = s3_client(&moto.endpoint(), BUCKET);
    assert!(s3_keys(store.as_ref(), "cancel").await.is_empty());
}
