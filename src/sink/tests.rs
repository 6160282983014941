//! Sink tests on a temp dir (LocalFileSystem) and on `InMemory`. Expected rows are hand-written
//! fixtures; files are read back with the parquet crate directly, not only through the sink.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use object_store::aws::AmazonS3ConfigKey;
use object_store::memory::InMemory;
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;

use super::*;
use crate::datasets::user_status::schema::user_status_schema;
use crate::datasets::{intent_realtime, user_status};
use crate::schema::{DATASET_KEY, SCHEMA_VERSION, SCHEMA_VERSION_KEY};

const MAY_1_2024_UTC_MS: i64 = 1_714_521_600_000;

pub(super) fn us_key(account: &str, day: u32) -> PartitionKey {
    PartitionKey {
        table: &user_status::TABLE,
        account_id: account.into(),
        bot_id: None,
        dt: NaiveDate::from_ymd_opt(2024, 5, day).expect("valid test date"),
    }
}

fn intent_key() -> PartitionKey {
    PartitionKey {
        table: &intent_realtime::TABLE,
        account_id: "A".into(),
        bot_id: Some("st-bot-1".into()),
        dt: NaiveDate::from_ymd_opt(2024, 5, 1).expect("valid test date"),
    }
}

fn ts(values: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from(values).with_timezone("UTC"))
}

fn strs(values: Vec<&str>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

/// A user_status batch of `users` rows (one per user id), hand-built.
pub(super) fn user_status_batch(users: &[&str]) -> RecordBatch {
    let n = users.len();
    let start = MAY_1_2024_UTC_MS;
    let columns: Vec<ArrayRef> = vec![
        strs(vec!["A"; n]),
        strs(users.to_vec()),
        Arc::new(StringArray::from(vec![Some("a@example.com"); n])),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        ts(vec![start; n]),
        ts(vec![start + 900_000; n]),
        strs(vec!["PT15M"; n]),
        strs(vec!["status"; n]),
        strs(vec!["Available"; n]),
        Arc::new(Int64Array::from(vec![919_i64; n])),
        ts(vec![start + 3_600_000; n]),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
    ];
    RecordBatch::try_new(user_status_schema(), columns).expect("fixture matches schema")
}

fn rejects_batch(n: usize) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        strs(vec!["user_status"; n]),
        strs(vec!["A"; n]),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        strs(vec!["/api/public/UserStatus"; n]),
        strs(vec!["unparseable duration"; n]),
        strs(vec![r#"{"value":"13m: 8s?"}"#; n]),
        ts(vec![MAY_1_2024_UTC_MS; n]),
    ];
    RecordBatch::try_new(rejects_schema(), columns).expect("fixture matches schema")
}

fn local_output() -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Output::open(&OutputLocation::Local(dir.path().join("out"))).expect("open");
    (dir, out)
}

pub(super) fn local_sink() -> (tempfile::TempDir, Sink) {
    let (dir, out) = local_output();
    (dir, out.sink)
}

pub(super) fn out_dir(tmp: &tempfile::TempDir) -> PathBuf {
    std::fs::canonicalize(tmp.path().join("out")).expect("output dir exists")
}

fn file_names(dir: &FsPath) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn all_files(dir: &FsPath, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            all_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn total_rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

pub(super) fn user_ids(batches: &[RecordBatch]) -> Vec<String> {
    let mut ids = Vec::new();
    for b in batches {
        let col = b
            .column_by_name("user_id")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .expect("user_id column");
        ids.extend(col.iter().map(|v| v.unwrap_or_default().to_string()));
    }
    ids
}

fn age_file(path: &FsPath, by: Duration) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open to age");
    file.set_modified(SystemTime::now() - by)
        .expect("set mtime");
}

#[tokio::test]
async fn written_file_reads_back_with_zstd_statistics_and_metadata() {
    let (tmp, sink) = local_sink();
    let key = us_key("A", 1);
    let stats = sink
        .write_partition(&key, vec![user_status_batch(&["u1", "u2", "u3"])])
        .await
        .expect("write");
    assert_eq!(stats.files, 1);
    assert_eq!(stats.rows, 3);

    let file_path = out_dir(&tmp).join("user_status/account_id=A/dt=2024-05-01/part-00000.parquet");
    let on_disk = std::fs::metadata(&file_path)
        .expect("final file exists")
        .len();
    assert_eq!(stats.bytes, on_disk);

    let file = std::fs::File::open(&file_path).expect("open parquet");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet footer");
    let meta = builder.metadata().clone();
    assert_eq!(builder.schema().fields(), user_status_schema().fields());
    let fm = meta.file_metadata();
    assert_eq!(fm.num_rows(), 3);
    assert_eq!(
        fm.created_by(),
        Some(format!("smartassist-export {}", env!("CARGO_PKG_VERSION")).as_str())
    );
    let kv = fm.key_value_metadata().expect("key-value metadata");
    let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
    assert_eq!(get(SCHEMA_VERSION_KEY).as_deref(), Some(SCHEMA_VERSION));
    assert_eq!(get(DATASET_KEY).as_deref(), Some("user_status"));
    assert_eq!(meta.num_row_groups(), 1);
    for col in meta.row_group(0).columns() {
        assert!(
            matches!(col.compression(), Compression::ZSTD(_)),
            "{:?}",
            col.compression()
        );
        assert!(
            col.statistics().is_some(),
            "statistics for {}",
            col.column_path()
        );
    }
    let rows: Vec<RecordBatch> = builder
        .build()
        .expect("reader")
        .collect::<Result<_, _>>()
        .expect("batches");
    assert_eq!(user_ids(&rows), ["u1", "u2", "u3"]);

    let back = sink.read_partition(&key).await.expect("read back");
    assert_eq!(user_ids(&back), ["u1", "u2", "u3"]);
    assert!(sink.partition_exists(&key).await.expect("exists"));
    assert!(!sink
        .partition_exists(&us_key("A", 2))
        .await
        .expect("exists"));
    assert!(sink
        .read_partition(&us_key("B", 2))
        .await
        .expect("absent partition")
        .is_empty());
}

#[tokio::test]
async fn rewrite_replaces_the_partition_with_one_file() {
    let (tmp, sink) = local_sink();
    let key = us_key("A", 1);
    sink.write_partition(&key, vec![user_status_batch(&["u1", "u2", "u3"])])
        .await
        .expect("first write");
    let stats = sink
        .write_partition(&key, vec![user_status_batch(&["u9"])])
        .await
        .expect("second write");
    assert_eq!(stats.rows, 1);
    let back = sink.read_partition(&key).await.expect("read");
    assert_eq!(user_ids(&back), ["u9"]);
    let dir = out_dir(&tmp).join("user_status/account_id=A/dt=2024-05-01");
    assert_eq!(file_names(&dir), ["part-00000.parquet"]);
    let listed = sink.list_partition_files(&key).await.expect("list");
    assert_eq!(
        listed,
        [Path::from(
            "user_status/account_id=A/dt=2024-05-01/part-00000.parquet"
        )]
    );
}

#[tokio::test]
async fn zero_rows_write_a_schema_only_file_that_replaces_old_rows() {
    let (tmp, sink) = local_sink();
    let key = intent_key();
    let empty = sink.write_partition(&key, Vec::new()).await.expect("write");
    assert_eq!((empty.files, empty.rows), (1, 0));
    let file_path = out_dir(&tmp)
        .join("intent_realtime/account_id=A/bot_id=st-bot-1/dt=2024-05-01/part-00000.parquet");
    let builder = ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&file_path).expect("file exists"),
    )
    .expect("valid parquet");
    assert_eq!(builder.metadata().file_metadata().num_rows(), 0);
    assert_eq!(
        builder.schema().fields(),
        crate::datasets::intent_realtime::schema::intent_realtime_schema().fields()
    );

    let us = us_key("A", 1);
    sink.write_partition(&us, vec![user_status_batch(&["u1"])])
        .await
        .expect("write rows");
    sink.write_partition(&us, Vec::new())
        .await
        .expect("write none");
    assert!(sink.read_partition(&us).await.expect("read").is_empty());
    assert!(sink.partition_exists(&us).await.expect("exists"));
}

#[tokio::test]
async fn wrong_schema_is_refused_and_leaves_nothing_behind() {
    let (tmp, sink) = local_sink();
    let key = intent_key();
    let err = sink
        .write_partition(&key, vec![user_status_batch(&["u1"])])
        .await
        .expect_err("user_status rows in intent partition");
    assert!(matches!(err, SinkError::SchemaMismatch { .. }), "{err:?}");
    let mut files = Vec::new();
    all_files(&out_dir(&tmp), &mut files);
    assert!(files.is_empty(), "{files:?}");
}

#[tokio::test]
async fn invalid_partition_values_are_refused_before_io() {
    let (_tmp, sink) = local_sink();
    let err = sink
        .write_partition(&us_key("../etc", 1), Vec::new())
        .await
        .expect_err("path traversal");
    assert!(
        matches!(err, SinkError::InvalidPartitionValue { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn next_write_removes_old_staging_leftovers_and_keeps_a_concurrent_writers() {
    let (tmp, sink) = local_sink();
    let key = us_key("A", 1);
    let dir = out_dir(&tmp).join("user_status/account_id=A/dt=2024-05-01");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let old = [
        ".tmp-deadbeef.part-00000.parquet",
        "part-00000.parquet#3",
        ".tmp-deadbeef.part-00000.parquet#1",
    ];
    for name in old {
        std::fs::write(dir.join(name), b"partial").expect("fake");
        age_file(
            &dir.join(name),
            DEFAULT_STAGING_GRACE + Duration::from_secs(60),
        );
    }
    // Another process writing the same partition right now.
    let running = ".tmp-cafe.part-00000.parquet";
    std::fs::write(dir.join(running), b"in progress").expect("fake");
    sink.write_partition(&key, vec![user_status_batch(&["u1"])])
        .await
        .expect("write");
    assert_eq!(file_names(&dir), [running, "part-00000.parquet"]);
}

#[tokio::test]
async fn cleanup_staging_respects_the_grace_period() {
    let (tmp, out) = local_output();
    let sink = &out.sink;
    let root = out_dir(&tmp);
    let data_dir = root.join("user_status/account_id=A/dt=2024-05-02");
    let rejects_dir = root.join("_rejects/user_status/account_id=A/dt=2024-05-02");
    let other_dataset = root.join("intent_realtime/account_id=A/bot_id=b/dt=2024-05-02");
    for d in [&data_dir, &rejects_dir, &other_dataset] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let old_tmp = data_dir.join(".tmp-1.part-00000.parquet");
    let old_hash = data_dir.join("part-00000.parquet#3");
    let old_rejects = rejects_dir.join(".tmp-2.part-00000.parquet");
    let fresh = data_dir.join(".tmp-3.part-00000.parquet");
    let real = data_dir.join("part-00000.parquet");
    let other = other_dataset.join(".tmp-4.part-00000.parquet");
    for f in [&old_tmp, &old_hash, &old_rejects, &fresh, &real, &other] {
        std::fs::write(f, b"x").expect("fake file");
    }
    for f in [&old_tmp, &old_hash, &old_rejects, &real, &other] {
        age_file(f, Duration::from_secs(3600));
    }

    let removed = sink
        .cleanup_staging(&user_status::TABLE)
        .await
        .expect("cleanup");
    assert_eq!(removed, 3);
    assert!(!old_tmp.exists() && !old_hash.exists() && !old_rejects.exists());
    assert!(
        fresh.exists(),
        "fresh staging file of a running writer kept"
    );
    assert!(real.exists(), "published file kept");
    assert!(other.exists(), "other dataset untouched");

    let eager = out.clone().with_staging_grace(Duration::ZERO).sink;
    assert_eq!(
        eager
            .cleanup_staging(&user_status::TABLE)
            .await
            .expect("cleanup"),
        1
    );
    assert!(!fresh.exists());
    assert_eq!(
        eager
            .cleanup_staging(&user_status::TABLE)
            .await
            .expect("cleanup"),
        0
    );
}

#[tokio::test]
async fn rejects_are_written_and_cleared() {
    let (tmp, sink) = local_sink();
    let key = us_key("A", 1);
    let stats = sink
        .write_rejects(&key, Some(rejects_batch(2)))
        .await
        .expect("write rejects");
    assert_eq!((stats.files, stats.rows), (1, 2));
    let file_path =
        out_dir(&tmp).join("_rejects/user_status/account_id=A/dt=2024-05-01/part-00000.parquet");
    assert!(file_path.exists());
    assert_eq!(total_rows(&sink.read_rejects(&key).await.expect("read")), 2);
    // Rejects never show up as data.
    assert!(sink.read_partition(&key).await.expect("read").is_empty());

    let cleared = sink
        .write_rejects(&key, Some(rejects_batch(0)))
        .await
        .expect("clear");
    assert_eq!(cleared, WriteStats::default());
    assert!(!file_path.exists());
    sink.write_rejects(&key, Some(rejects_batch(1)))
        .await
        .expect("write again");
    sink.write_rejects(&key, None).await.expect("clear again");
    assert!(!file_path.exists());
    // Clearing when nothing exists is fine.
    sink.write_rejects(&key, None).await.expect("clear absent");
}

#[tokio::test]
async fn in_memory_store_writes_under_the_prefix() {
    let store = Arc::new(InMemory::new());
    let sink = Output::with_store(store.clone(), Path::from("exports/kore")).sink;
    let key = intent_key();
    assert!(!sink.partition_exists(&key).await.expect("exists"));
    sink.write_partition(&key, Vec::new()).await.expect("write");
    let expected =
        Path::from("exports/kore/intent_realtime/account_id=A/bot_id=st-bot-1/dt=2024-05-01/part-00000.parquet");
    let bytes = object_store::ObjectStoreExt::get(store.as_ref(), &expected)
        .await
        .expect("object at the exact key")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(&bytes[..4], b"PAR1");
    assert!(sink.partition_exists(&key).await.expect("exists"));

    let us = us_key("A", 3);
    sink.write_partition(&us, vec![user_status_batch(&["x", "y"])])
        .await
        .expect("write");
    assert_eq!(
        user_ids(&sink.read_partition(&us).await.expect("read")),
        ["x", "y"]
    );
}

#[tokio::test]
async fn dataset_tree_holds_only_part_files_after_writes() {
    let (tmp, sink) = local_sink();
    for day in 1..=3 {
        for account in ["A", "B"] {
            sink.write_partition(&us_key(account, day), vec![user_status_batch(&["u"])])
                .await
                .expect("write");
        }
    }
    sink.write_partition(&us_key("A", 1), Vec::new())
        .await
        .expect("rewrite");
    let mut files = Vec::new();
    all_files(&out_dir(&tmp).join("user_status"), &mut files);
    assert_eq!(files.len(), 6);
    for f in files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert!(
            (name.starts_with("part-") && name.ends_with(".parquet")) || name.starts_with('.'),
            "unexpected file {}",
            f.display()
        );
    }
}

#[test]
fn open_creates_a_missing_local_directory() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("a/b/c");
    let out = Output::open(&OutputLocation::Local(dir.clone())).expect("open");
    assert!(dir.is_dir());
    assert!(out.root().is_root());
}

#[test]
fn open_s3_builds_without_network_and_uses_the_prefix() {
    let out = Output::open(&OutputLocation::S3 {
        bucket: "bucket".into(),
        prefix: "/exports/kore/".into(),
        endpoint: Some("http://127.0.0.1:9".into()),
        region: Some("us-east-1".into()),
        allow_http: true,
        tuning: crate::config::StoreTuning::default(),
    })
    .expect("open s3");
    assert_eq!(out.root(), &Path::from("exports/kore"));
    let debug = format!("{:?}", out.sink);
    assert!(
        debug.contains("bucket") && debug.contains("exports/kore"),
        "{debug}"
    );
}

/// A file larger than one upload part goes through the multipart path and still reads back whole.
#[tokio::test]
async fn large_partition_uses_multipart_upload_and_reads_back() {
    let store = Arc::new(InMemory::new());
    let sink = Output::with_store(store, Path::default()).sink;
    let key = us_key("A", 1);
    // Random alphanumerics barely compress, so ~12 MiB of them exceed UPLOAD_PART_BYTES (8 MiB).
    let mut rng = fastrand::Rng::with_seed(7);
    let rows = 12 * 1024;
    let ids: Vec<String> = (0..rows)
        .map(|_| (0..1024).map(|_| rng.alphanumeric()).collect())
        .collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let stats = sink
        .write_partition(&key, vec![user_status_batch(&refs)])
        .await
        .expect("write");
    assert_eq!(stats.rows, rows);
    assert!(stats.bytes > UPLOAD_PART_BYTES as u64, "{}", stats.bytes);
    let back = sink.read_partition(&key).await.expect("read");
    assert_eq!(user_ids(&back), ids);
}

#[test]
fn configured_s3_endpoint_wins_over_the_environment() {
    // As if the environment had AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL / AWS_REGION set.
    let from_env = object_store::aws::AmazonS3Builder::new()
        .with_config(AmazonS3ConfigKey::S3Endpoint, "http://env-s3.invalid:1")
        .with_config(AmazonS3ConfigKey::Endpoint, "http://env.invalid:1")
        .with_config(AmazonS3ConfigKey::Region, "eu-central-1");
    let b = s3::with_output_overrides(
        from_env.clone(),
        "lake",
        Some("http://127.0.0.1:9000"),
        Some("us-east-1"),
        true,
    );
    let get = |k: AmazonS3ConfigKey| b.get_config_value(&k);
    assert_eq!(
        get(AmazonS3ConfigKey::S3Endpoint).as_deref(),
        Some("http://127.0.0.1:9000")
    );
    assert_eq!(
        get(AmazonS3ConfigKey::Endpoint).as_deref(),
        Some("http://127.0.0.1:9000")
    );
    assert_eq!(get(AmazonS3ConfigKey::Region).as_deref(), Some("us-east-1"));
    assert_eq!(get(AmazonS3ConfigKey::Bucket).as_deref(), Some("lake"));
    assert_eq!(
        get(AmazonS3ConfigKey::VirtualHostedStyleRequest).as_deref(),
        Some("false")
    );
    // Without [output] overrides the environment's values stand.
    let b = s3::with_output_overrides(from_env, "lake", None, None, false);
    assert_eq!(
        b.get_config_value(&AmazonS3ConfigKey::S3Endpoint)
            .as_deref(),
        Some("http://env-s3.invalid:1")
    );
    assert_eq!(
        b.get_config_value(&AmazonS3ConfigKey::Region).as_deref(),
        Some("eu-central-1")
    );
}

#[tokio::test]
async fn a_failed_or_abandoned_streaming_write_keeps_the_previous_file() {
    let (tmp, sink) = local_sink();
    let key = us_key("A", 1);
    sink.write_partition(&key, vec![user_status_batch(&["u1", "u2"])])
        .await
        .expect("first write");

    // The encoder stops on a batch of the wrong schema; later writes report that error and
    // abort() after it must not panic (the encoder's result was already collected).
    let mut writer = sink.begin_partition(&key).await.expect("begin");
    let mut err = writer.write(intent_batch_for_test()).await.err();
    for _ in 0..10_000 {
        if err.is_some() {
            break;
        }
        // Sends are buffered; once the encoder has stopped, the next send reports why.
        tokio::task::yield_now().await;
        err = writer.write(user_status_batch(&["u3"])).await.err();
    }
    let err = err.expect("a write fails once the encoder stopped");
    assert!(matches!(err, SinkError::SchemaMismatch { .. }), "{err:?}");
    assert!(writer.write(user_status_batch(&["u4"])).await.is_err());
    writer.abort().await;

    // A commit after a bad batch fails the same way and publishes nothing.
    let mut writer = sink.begin_partition(&key).await.expect("begin");
    writer.write(intent_batch_for_test()).await.ok();
    let err = writer.commit().await.expect_err("bad batch");
    assert!(matches!(err, SinkError::SchemaMismatch { .. }), "{err:?}");

    // Dropping a writer mid-way abandons it too.
    let mut writer = sink.begin_partition(&key).await.expect("begin");
    writer
        .write(user_status_batch(&["u9"]))
        .await
        .expect("write");
    drop(writer);

    assert_eq!(
        user_ids(&sink.read_partition(&key).await.expect("read")),
        ["u1", "u2"]
    );
    let dir = out_dir(&tmp).join("user_status/account_id=A/dt=2024-05-01");
    let visible: Vec<String> = file_names(&dir)
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(visible, ["part-00000.parquet"]);
}

/// A batch with the intent schema (wrong for a user_status partition).
fn intent_batch_for_test() -> RecordBatch {
    RecordBatch::new_empty(crate::datasets::intent_realtime::schema::intent_realtime_schema())
}

#[tokio::test]
async fn a_partition_written_as_another_schema_keeps_its_field_metadata_but_not_other_columns() {
    let (tmp, sink) = local_sink();
    let key = us_key("A", 1);
    let table = user_status_schema();
    let fields: Vec<arrow::datatypes::Field> = table
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "duration_seconds" => {
                f.as_ref()
                    .clone()
                    .with_metadata(std::collections::HashMap::from([(
                        "unit".to_string(),
                        "seconds".to_string(),
                    )]))
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    let schema = Arc::new(arrow::datatypes::Schema::new(fields));
    let batch = user_status_batch(&["u1"]);
    let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec()).expect("batch");
    let mut writer = sink
        .begin_partition_as(&key, schema)
        .await
        .expect("same columns");
    writer.write(batch).await.expect("write");
    writer.commit().await.expect("commit");
    let file_path = out_dir(&tmp).join("user_status/account_id=A/dt=2024-05-01/part-00000.parquet");
    let file = std::fs::File::open(&file_path).expect("open parquet");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet footer");
    let read = builder.schema().clone();
    let field = read.field_with_name("duration_seconds").expect("column");
    assert_eq!(
        field.metadata().get("unit").map(String::as_str),
        Some("seconds")
    );

    let mut renamed: Vec<arrow::datatypes::Field> =
        table.fields().iter().map(|f| f.as_ref().clone()).collect();
    renamed[1] = arrow::datatypes::Field::new("someone", arrow::datatypes::DataType::Utf8, false);
    let other = Arc::new(arrow::datatypes::Schema::new(renamed));
    let Err(err) = sink.begin_partition_as(&key, other).await else {
        panic!("other columns are refused");
    };
    assert!(matches!(err, SinkError::SchemaMismatch { .. }), "{err:?}");
}
