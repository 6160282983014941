//! The output's S3 client against storage faults: moto's server behind the fault-injecting proxy
//! of `common::s3_faults` (500 InternalError, 503 SlowDown, connections dropped mid-request or
//! before the answer, slow answers), with the S3 client built by `Output::open_on` exactly
//! as `Output::open` builds it, only with explicit dummy credentials instead of the environment.
//! Written batches are the expected values; moto is asked directly (not through the proxy)
//! which objects and multipart uploads exist afterwards. The built binary (`backfill`, `run`)
//! against the same faults is tested in `s3_fault_runs.rs`.
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
use smartassist_export::config::{OutputLocation, StoreTuning};
use smartassist_export::datasets::user_status;
use smartassist_export::datasets::user_status::schema::user_status_schema;
use smartassist_export::sink::{Output, PartitionKey, UPLOAD_PART_BYTES};

const BUCKET: &str = "fault-bucket";
/// Accounts of the single-put partitions (sorted, as listings return them).
const SMALL: [&str; 4] = ["s1", "s2", "s3", "s4"];

/// The output's S3 client for `endpoint`, as `Output::open` builds it, with moto's dummy
/// credentials instead of the `AWS_*` environment.
fn open_output(endpoint: &str, prefix: &str, tuning: &StoreTuning) -> Output {
    let location = OutputLocation::S3 {
        bucket: BUCKET.into(),
        prefix: prefix.into(),
        endpoint: Some(endpoint.into()),
        region: Some("us-east-1".into()),
        allow_http: true,
        tuning: tuning.clone(),
    };
    Output::open_on(&location, None, || {
        AmazonS3Builder::new()
            .with_access_key_id("test")
            .with_secret_access_key("test")
    })
    .expect("open S3 output")
}

fn key(account: &str) -> PartitionKey {
    PartitionKey {
        table: &user_status::TABLE,
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
        user_status_schema(),
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
            Arc::new(StringArray::from(vec![None::<&str>; rows])),
        ],
    )
    .expect("batch")
}

/// The columns of all batches, concatenated, for comparing content regardless of how rows are
/// split into batches and of schema metadata.
fn columns(batches: &[RecordBatch]) -> Vec<ArrayRef> {
    let schema = user_status_schema();
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
    assert_eq!(c("POST", "/b?delete"), S3Op::DeleteObjects);
    assert_eq!(c("GET", "/b/k"), S3Op::GetObject);
    assert_eq!(c("HEAD", "/b/k"), S3Op::HeadObject);
    assert_eq!(S3Op::classify("PUT", "/b/k", true), S3Op::CopyObject);
}

/// Every kind of fault on 60 % of all requests (at most twice in a row per request): four
/// single-put partitions and a multipart partition are written and read back exactly with the
/// default tuning; then the multipart partition is rewritten while connections are cut in the
/// middle of part bodies. Every injected failure shows up once in the output's request counters,
/// and no multipart upload is left open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_reads_survive_injected_faults_with_the_default_tuning() {
    let Some(moto) = moto_or_skip() else { return };
    moto.create_bucket(BUCKET).await;
    let proxy = S3FaultProxy::start(&moto.endpoint(), None).await;
    let out = open_output(&proxy.endpoint(), "rt", &StoreTuning::default());
    let sink = &out.sink;
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
    let counts = out.request_counts();
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
    let out = open_output(&proxy.endpoint(), "never", &tuning);
    let sink = &out.sink;
    let mut rng = fastrand::Rng::with_seed(4);
    let big: Vec<RecordBatch> = (0..3).map(|_| batch(32_000, &mut rng)).collect();

    let err = sink
        .write_partition(&key("a"), big.clone())
        .await
        .expect_err("the completion never succeeds");
    assert_eq!(
        err.to_string(),
        format!("cannot write s3://{BUCKET}/never/user_status/account_id=a/dt=2026-06-01/part-00000.parquet")
    );
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
    let out = open_output(&proxy.endpoint(), "slow", &tuning);
    let sink = &out.sink;
    let mut rng = fastrand::Rng::with_seed(5);
    let rows = vec![batch(10, &mut rng)];
    sink.write_partition(&key("a"), rows.clone())
        .await
        .expect("the retry gets through");
    assert_eq!(proxy.injected().slow_response, 1);
    assert!(
        out.request_counts().transport_errors >= 1,
        "the slow answer timed out"
    );
    let back = sink.read_partition(&key("a")).await.expect("read");
    assert_eq!(columns(&back), columns(&rows));
}

/// The contract the read-modify-write code will rely on, pinned for the test server: moto
/// honours `If-None-Match: *` and `If-Match` on PutObject, and object_store maps the answers
/// to `AlreadyExists` and `Precondition`; LocalFileSystem has `Create` but not `Update`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_puts_map_to_already_exists_and_precondition() {
    use object_store::{ObjectStoreExt, PutMode, PutOptions, UpdateVersion};
    let Some(moto) = moto_or_skip() else { return };
    moto.create_bucket(BUCKET).await;
    let s3 = s3_client(&moto.endpoint(), BUCKET);
    let tmp = tempfile::tempdir().expect("tmp");
    let local = object_store::local::LocalFileSystem::new_with_prefix(tmp.path()).expect("fs");
    let path = object_store::path::Path::from("_state/x.json");
    let put = |mode: PutMode, body: &'static str| {
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        (opts, object_store::PutPayload::from_static(body.as_bytes()))
    };
    for store in [s3.as_ref(), &local as &dyn object_store::ObjectStore] {
        let (o, p) = put(PutMode::Create, "v1");
        let v1 = store.put_opts(&path, p, o).await.expect("create new");
        let (o, p) = put(PutMode::Create, "v2");
        let err = store
            .put_opts(&path, p, o)
            .await
            .expect_err("create existing");
        assert!(
            matches!(err, object_store::Error::AlreadyExists { .. }),
            "{store}: {err:?}"
        );
        let current = UpdateVersion {
            e_tag: v1.e_tag.clone(),
            version: None,
        };
        let (o, p) = put(PutMode::Update(current.clone()), "v3");
        let updated = store.put_opts(&path, p, o).await;
        if store.to_string().starts_with("LocalFileSystem") {
            assert!(
                matches!(updated, Err(object_store::Error::NotImplemented { .. })),
                "{updated:?}"
            );
            continue;
        }
        updated.expect("update with the current ETag");
        let (o, p) = put(PutMode::Update(current.clone()), "v4");
        let err = store.put_opts(&path, p, o).await.expect_err("stale ETag");
        assert!(
            matches!(err, object_store::Error::Precondition { .. }),
            "{err:?}"
        );
        let missing = object_store::path::Path::from("_state/missing.json");
        let (o, p) = put(PutMode::Update(current), "v5");
        let err = store.put_opts(&missing, p, o).await.expect_err("missing");
        assert!(
            matches!(err, object_store::Error::Precondition { .. }),
            "{err:?}"
        );
        let body = store
            .get(&path)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        assert_eq!(&body[..], b"v3");
    }
}

/// What the read-modify-write code must expect from a lost answer: a conditional create whose
/// request reached S3 but whose answer was lost on a closed connection is retried by
/// object_store (a connection closed before any answer counts as "request not sent"), and the
/// retry reports `AlreadyExists` although the object now holds this writer's own bytes. A
/// conflict must therefore be confirmed by re-reading, not assumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conditional_create_whose_answer_is_lost_reports_already_exists_for_its_own_write() {
    use object_store::{ObjectStoreExt, PutMode, PutOptions};
    let Some(moto) = moto_or_skip() else { return };
    moto.create_bucket(BUCKET).await;
    let plan = FaultPlan {
        max_consecutive: 1,
        ..FaultPlan::permanent(FaultKind::DropResponse, &[S3Op::PutObject])
    };
    let proxy = S3FaultProxy::start(&moto.endpoint(), Some(plan)).await;
    let store = s3_client(&proxy.endpoint(), BUCKET);
    let path = object_store::path::Path::from("_state/lost.json");
    let opts = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    let result = store
        .put_opts(&path, object_store::PutPayload::from_static(b"mine"), opts)
        .await;
    assert!(
        matches!(result, Err(object_store::Error::AlreadyExists { .. })),
        "{result:?}"
    );
    assert_eq!(proxy.injected().drop_response, 1);
    assert_eq!(proxy.requests(S3Op::PutObject), 2, "one retry");
    let body = s3_client(&moto.endpoint(), BUCKET)
        .get(&path)
        .await
        .expect("the first attempt landed")
        .bytes()
        .await
        .expect("body");
    assert_eq!(&body[..], b"mine");
}
