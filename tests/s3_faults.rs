//! The sink's S3 client against storage faults: moto's server behind the fault-injecting proxy
//! of `common::s3_faults` (500 InternalError, 503 SlowDown, connections dropped mid-request or
//! before the answer, slow answers), with the sink's S3 client built by `Sink::open_on` exactly
//! as `Sink::open` builds it, only with explicit dummy credentials instead of the environment.
//! Written batches are the expected values; moto is asked directly (not through the proxy)
//! which objects and multipart uploads exist afterwards.
//!
//! The tests FAIL when moto cannot start; a developer without moto opts out with
//! `SMARTASSIST_SKIP_S3=1`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use common::s3_faults::{FaultKind, FaultPlan, S3FaultProxy, S3Op};
use common::*;
use object_store::aws::AmazonS3Builder;
use smartassist_export::model::Dataset;
use smartassist_export::schema::schema_for;
use smartassist_export::sink::{
    OutputLocation, PartitionKey, Sink, StoreTuning, UPLOAD_PART_BYTES,
};

const BUCKET: &str = "fault-bucket";
/// Accounts of the single-put partitions (sorted, as listings return them).
const SMALL: [&str; 4] = ["s1", "s2", "s3", "s4"];

/// The sink's S3 client for `endpoint`, as `Sink::open` builds it, with moto's dummy
/// credentials instead of the `AWS_*` environment.
fn open_sink(endpoint: &str, prefix: &str, tuning: &StoreTuning) -> Sink {
    let location = OutputLocation::S3 {
        bucket: BUCKET.into(),
        prefix: prefix.into(),
        endpoint: Some(endpoint.into()),
        region: Some("us-east-1".into()),
        allow_http: true,
    };
    Sink::open_on(&location, tuning, || {
        AmazonS3Builder::new()
            .with_access_key_id("test")
            .with_secret_access_key("test")
    })
    .expect("open S3 sink")
}

fn key(account: &str) -> PartitionKey {
    PartitionKey {
        dataset: Dataset::UserStatus,
        account_id: account.into(),
        bot_id: None,
        dt: date("2026-06-01"),
    }
}

/// `rows` UserStatus rows with two 64-character random strings each, so ZSTD cannot shrink a
/// large file below the multipart threshold.
fn batch(rows: usize, rng: &mut fastrand::Rng) -> RecordBatch {
    let mut random = || -> ArrayRef {
        Arc::new(StringArray::from(
            (0..rows)
                .map(|_| (0..64).map(|_| rng.alphanumeric()).collect::<String>())
                .collect::<Vec<_>>(),
        ))
    };
    let (email, custom) = (random(), random());
    let fixed = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v; rows])) };
    let ts = |base: i64| -> ArrayRef {
        Arc::new(
            TimestampMillisecondArray::from((0..rows as i64).map(|i| base + i).collect::<Vec<_>>())
                .with_timezone("UTC"),
        )
    };
    let users: ArrayRef = Arc::new(StringArray::from(
        (0..rows).map(|i| format!("u-{i}")).collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(
        schema_for(Dataset::UserStatus),
        vec![
            fixed("acct"),
            users,
            email,
            fixed("first"),
            fixed("last"),
            custom,
            ts(1_780_000_000_000),
            ts(1_780_000_900_000),
            fixed("PT15M"),
            fixed("status"),
            fixed("Available"),
            Arc::new(Int64Array::from(vec![60i64; rows])),
            ts(1_780_001_000_000),
        ],
    )
    .expect("batch")
}

/// The columns of all batches, concatenated, for comparing content regardless of how rows are
/// split into batches and of schema metadata.
fn columns(batches: &[RecordBatch]) -> Vec<ArrayRef> {
    let schema = schema_for(Dataset::UserStatus);
    let all = arrow::compute::concat_batches(&schema, batches).expect("concat");
    all.columns().to_vec()
}

/// Object keys under `prefix`, asked of moto directly.
async fn keys_in_moto(moto: &MotoServer, prefix: &str) -> Vec<String> {
    s3_keys(s3_client(&moto.endpoint(), BUCKET).as_ref(), prefix).await
}

#[test]
fn the_proxy_tells_s3_operations_apart_by_method_path_and_query() {
    let c = |m, t| S3Op::classify(m, t, false);
    assert_eq!(c("PUT", "/b"), S3Op::CreateBucket);
    assert_eq!(c("GET", "/b?list-type=2&prefix=x"), S3Op::ListObjects);
    assert_eq!(c("GET", "/b?uploads"), S3Op::ListMultipartUploads);
    assert_eq!(c("PUT", "/b/k/part.parquet"), S3Op::PutObject);
    assert_eq!(c("PUT", "/b/k?partNumber=2&uploadId=a"), S3Op::UploadPart);
    assert_eq!(c("POST", "/b/k?uploads"), S3Op::CreateMultipartUpload);
    assert_eq!(c("POST", "/b/k?uploadId=a"), S3Op::CompleteMultipartUpload);
    assert_eq!(c("DELETE", "/b/k?uploadId=a"), S3Op::AbortMultipartUpload);
    assert_eq!(c("DELETE", "/b/k"), S3Op::DeleteObject);
    assert_eq!(c("GET", "/b/k"), S3Op::GetObject);
    assert_eq!(c("HEAD", "/b/k"), S3Op::HeadObject);
    assert_eq!(S3Op::classify("PUT", "/b/k", true), S3Op::CopyObject);
}

/// Every kind of fault on 60 % of all requests (at most twice in a row per request): four
/// single-put partitions and a multipart partition are written and read back exactly with the
/// default tuning; then the multipart partition is rewritten while connections are cut in the
/// middle of part bodies. Every injected failure shows up once in the sink's request counters,
/// and no multipart upload is left open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_reads_survive_injected_faults_with_the_default_tuning() {
    let Some(moto) = moto_or_skip() else { return };
    moto.create_bucket(BUCKET).await;
    let proxy = S3FaultProxy::start(&moto.endpoint(), None).await;
    let sink = open_sink(&proxy.endpoint(), "rt", &StoreTuning::default());
    let mut rng = fastrand::Rng::with_seed(3);
    let small = vec![batch(10, &mut rng)];
    let big: Vec<RecordBatch> = (0..3).map(|_| batch(32_000, &mut rng)).collect();

    proxy.set_plan(Some(FaultPlan::random(11, 0.6, 2)));
    for account in SMALL {
        sink.write_partition(&key(account), small.clone())
            .await
            .expect("single put survives");
    }
    let stats = sink
        .write_partition(&key("big"), big.clone())
        .await
        .expect("multipart upload survives");
    assert!(
        stats.bytes > UPLOAD_PART_BYTES as u64,
        "{} bytes must exceed one part to exercise multipart",
        stats.bytes
    );
    for account in SMALL {
        let back = sink
            .read_partition(&key(account))
            .await
            .expect("read small");
        assert_eq!(columns(&back), columns(&small), "{account}");
    }
    let big_back = sink.read_partition(&key("big")).await.expect("read big");
    assert_eq!(columns(&big_back), columns(&big));

    let cut_bodies = FaultPlan::random(12, 0.6, 2)
        .only(&[S3Op::UploadPart])
        .with_kinds(&[FaultKind::DropMidRequest]);
    proxy.set_plan(Some(cut_bodies));
    let big: Vec<RecordBatch> = (0..3).map(|_| batch(32_000, &mut rng)).collect();
    sink.write_partition(&key("big"), big.clone())
        .await
        .expect("rewrite survives cut part bodies");
    assert!(proxy.injected_into(S3Op::UploadPart, FaultKind::DropMidRequest) > 0);
    proxy.set_plan(None);
    let big_back = sink.read_partition(&key("big")).await.expect("read big");
    assert_eq!(columns(&big_back), columns(&big));
    eprintln!("injected: {:?}", proxy.injected());
    let injected = proxy.injected();
    for kind in FaultKind::ALL {
        assert!(injected.get(kind) > 0, "no {kind:?} injected: {injected:?}");
    }
    for op in [
        S3Op::PutObject,
        S3Op::UploadPart,
        S3Op::CompleteMultipartUpload,
    ] {
        let faulted: u64 = FaultKind::ALL
            .iter()
            .filter(|k| k.fails())
            .map(|k| proxy.injected_into(op, *k))
            .sum();
        assert!(faulted > 0, "no failure injected into {op:?}");
    }
    let counts = sink.request_counts();
    assert_eq!(counts.server_errors, injected.internal_error, "{counts:?}");
    assert_eq!(counts.throttled, injected.slow_down, "{counts:?}");
    assert_eq!(
        counts.transport_errors,
        injected.drop_mid_request + injected.drop_before_response,
        "{counts:?}"
    );
    assert!(moto.open_multipart_uploads(BUCKET).await.is_empty());
    let expected_keys: Vec<String> = ["big"]
        .iter()
        .chain(SMALL.iter())
        .map(|a| format!("rt/user_status/account_id={a}/dt=2026-06-01/part-00000.parquet"))
        .collect();
    assert_eq!(keys_in_moto(&moto, "rt").await, expected_keys);
}

/// A CompleteMultipartUpload that fails for ever: the client tries it exactly 1 + max_retries
/// times, the write fails, the upload is aborted, and no object appears; once the store heals
/// the same write succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_completion_failing_for_ever_is_aborted_and_leaves_no_object() {
    let Some(moto) = moto_or_skip() else { return };
    moto.create_bucket(BUCKET).await;
    let plan = FaultPlan::permanent(FaultKind::InternalError, &[S3Op::CompleteMultipartUpload]);
    let proxy = S3FaultProxy::start(&moto.endpoint(), Some(plan)).await;
    let tuning = StoreTuning {
        max_retries: 3,
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        ..StoreTuning::default()
    };
    let sink = open_sink(&proxy.endpoint(), "never", &tuning);
    let mut rng = fastrand::Rng::with_seed(4);
    let big: Vec<RecordBatch> = (0..3).map(|_| batch(32_000, &mut rng)).collect();

    let err = sink
        .write_partition(&key("a"), big.clone())
        .await
        .expect_err("the completion never succeeds");
    let message = format!("{err}");
    assert!(message.contains("account_id=a/dt=2026-06-01"), "{message}");
    assert_eq!(proxy.requests(S3Op::CompleteMultipartUpload), 4);
    assert_eq!(proxy.injected().internal_error, 4);
    assert!(proxy.requests(S3Op::UploadPart) >= 2, "multipart was used");
    assert!(proxy.requests(S3Op::AbortMultipartUpload) >= 1);
    assert_eq!(
        moto.open_multipart_uploads(BUCKET).await,
        Vec::<String>::new()
    );
    assert_eq!(keys_in_moto(&moto, "never").await, Vec::<String>::new());

    proxy.set_plan(None);
    sink.write_partition(&key("a"), big.clone())
        .await
        .expect("the healed store takes the write");
    let back = sink.read_partition(&key("a")).await.expect("read");
    assert_eq!(columns(&back), columns(&big));
    assert!(moto.open_multipart_uploads(BUCKET).await.is_empty());
}

/// An answer slower than the request timeout is cut by the client and the request retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_slower_than_the_request_timeout_is_retried() {
    let Some(moto) = moto_or_skip() else { return };
    moto.create_bucket(BUCKET).await;
    let plan = FaultPlan {
        max_consecutive: 1,
        delay: Duration::from_secs(3),
        ..FaultPlan::permanent(FaultKind::SlowResponse, &[S3Op::PutObject])
    };
    let proxy = S3FaultProxy::start(&moto.endpoint(), Some(plan)).await;
    let tuning = StoreTuning {
        request_timeout: Duration::from_secs(1),
        backoff_initial: Duration::from_millis(10),
        ..StoreTuning::default()
    };
    let sink = open_sink(&proxy.endpoint(), "slow", &tuning);
    let mut rng = fastrand::Rng::with_seed(5);
    let rows = vec![batch(10, &mut rng)];
    sink.write_partition(&key("a"), rows.clone())
        .await
        .expect("the retry gets through");
    assert_eq!(proxy.injected().slow_response, 1);
    assert!(
        sink.request_counts().transport_errors >= 1,
        "the slow answer timed out"
    );
    let back = sink.read_partition(&key("a")).await.expect("read");
    assert_eq!(columns(&back), columns(&rows));
}
