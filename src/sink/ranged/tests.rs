//! Ranged, pruned reads on a counting `InMemory` store. Files are hand-built: row `i` ends
//! `i` seconds into the day and has a pseudo-random id, so which rows each row group holds,
//! and so the expected ids, follow from `i` and the row group size.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use object_store::ObjectStoreExt;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::*;
use crate::datasets::intent_realtime::decode::{session_ids, sessions_to_batch, IntentSession};
use crate::datasets::intent_realtime::TABLE;
use crate::sink::counting::CountingStore;
use crate::sink::{Output, PartitionKey, Sink};

const ROWS: usize = 20_000;
const GROUP: usize = 1_000;

fn key() -> PartitionKey {
    PartitionKey {
        table: &TABLE,
        account_id: "A".into(),
        bot_id: Some("bot".into()),
        dt: chrono::NaiveDate::from_ymd_opt(2024, 5, 1).expect("date"),
    }
}

fn end(i: usize) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0)
        .single()
        .expect("t")
        + TimeDelta::seconds(i as i64)
}

/// 24 hex digits that do not compress away (splitmix64 of `i`, then `i`).
fn id(i: usize) -> String {
    let mut z = (i as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:016x}{:08x}", z ^ (z >> 31), i)
}

fn rows(range: std::ops::Range<usize>) -> Vec<IntentSession> {
    range
        .map(|i| IntentSession {
            session_id: id(i),
            user_id: Some(format!("u-{}", i % 97)),
            channel: Some("rtm".into()),
            ani: None,
            dni: None,
            intents: vec!["Book a Flight".into()],
            start_time: None,
            end_time: end(i),
            status: Some("completed".into()),
            time_handled: None,
            time_handled_seconds: None,
            deflected_to: None,
            extra: None,
        })
        .collect()
}

fn batch(range: std::ops::Range<usize>) -> arrow::record_batch::RecordBatch {
    sessions_to_batch("A", "bot", &rows(range), end(0))
}

fn ids(read: &PrunedRead) -> Vec<String> {
    read.batches.iter().flat_map(session_ids).collect()
}

fn filter(any_of: &[i64]) -> RowGroupFilter<'_> {
    RowGroupFilter {
        column: "end_time",
        any_of,
    }
}

/// The file's size and its footer's length (the 4-byte little-endian length before `PAR1`).
async fn file_size(store: &CountingStore, name: &str) -> (u64, u64) {
    let path = object_store::path::Path::from(format!("lake/{}/{name}", key().relative_dir()));
    let size = store.head(&path).await.expect("head").size;
    let end = ObjectStore::get_opts(
        store,
        &path,
        object_store::GetOptions {
            range: Some((size - 8..size).into()),
            ..Default::default()
        },
    )
    .await
    .expect("get")
    .bytes()
    .await
    .expect("bytes");
    let footer = u32::from_le_bytes([end[0], end[1], end[2], end[3]]);
    (size, u64::from(footer))
}

#[tokio::test]
async fn a_pruned_read_fetches_only_the_row_groups_whose_end_times_cover_a_value() {
    let store = Arc::new(CountingStore::default());
    let sink = Output::with_store(store.clone(), "lake".into()).sink;
    sink.write_partition_file(&key(), "part-big.parquet", &[batch(0..ROWS)], GROUP)
        .await
        .expect("write");
    let (size, footer) = file_size(&store, "part-big.parquet").await;
    assert!(size > 4 * FOOTER_FETCH_BYTES, "the file is large: {size}");
    // At most the first suffix request, the rest of the footer and one column chunk.
    let bound = FOOTER_FETCH_BYTES + footer + size / 10;
    let before = store.parquet_bytes();
    let t = end(12_345).timestamp_millis();
    let read = sink
        .read_partition_file_pruned(&key(), "part-big.parquet", &["session_id"], filter(&[t]))
        .await
        .expect("read")
        .expect("exists");
    let fetched = store.parquet_bytes() - before;
    assert_eq!((read.row_groups, read.row_groups_read), (ROWS / GROUP, 1));
    let expected: Vec<String> = (12_000..13_000).map(id).collect();
    assert_eq!(ids(&read), expected, "the ids of row group 12 alone");
    assert!(fetched < bound, "fetched {fetched} of {size} bytes");
    // An end time no row group covers reads nothing but the footer.
    let before = store.parquet_bytes();
    let none = [end(ROWS + 5).timestamp_millis()];
    let read = sink
        .read_partition_file_pruned(&key(), "part-big.parquet", &["session_id"], filter(&none))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!((read.row_groups_read, ids(&read).len()), (0, 0));
    assert!(store.parquet_bytes() - before <= FOOTER_FETCH_BYTES + footer);
}

#[tokio::test]
async fn a_value_on_a_row_group_boundary_reads_both_row_groups_that_hold_it() {
    let store = Arc::new(CountingStore::default());
    let sink = Output::with_store(store.clone(), "lake".into()).sink;
    sink.write_partition_file(&key(), "part-big.parquet", &[batch(0..3 * GROUP)], GROUP)
        .await
        .expect("write");
    // Row groups end at rows 999 and 1999: the last end time of one, the first of the next.
    let ts = [end(999).timestamp_millis(), end(2_000).timestamp_millis()];
    let read = sink
        .read_partition_file_pruned(&key(), "part-big.parquet", &["session_id"], filter(&ts))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read.row_groups_read, 2);
    let expected: Vec<String> = (0..GROUP).chain(2 * GROUP..3 * GROUP).map(id).collect();
    assert_eq!(ids(&read), expected);
}

#[tokio::test]
async fn a_row_group_without_statistics_is_always_read() {
    let store = Arc::new(CountingStore::default());
    let sink = Output::with_store(store.clone(), "lake".into()).sink;
    let props = WriterProperties::builder()
        .set_statistics_enabled(EnabledStatistics::None)
        .set_max_row_group_row_count(Some(GROUP))
        .build();
    let mut bytes = Vec::new();
    let b = batch(0..3 * GROUP);
    let mut writer = ArrowWriter::try_new(&mut bytes, b.schema(), Some(props)).expect("writer");
    writer.write(&b).expect("write");
    writer.close().expect("close");
    let path = object_store::path::Path::from(format!(
        "lake/{}/part-nostats.parquet",
        key().relative_dir()
    ));
    store.put(&path, bytes.into()).await.expect("put");
    // An end time outside every row group: without statistics none can be ruled out.
    let t = [end(10 * GROUP).timestamp_millis()];
    let read = sink
        .read_partition_file_pruned(&key(), "part-nostats.parquet", &["session_id"], filter(&t))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!((read.row_groups, read.row_groups_read), (3, 3));
    assert_eq!(ids(&read), (0..3 * GROUP).map(id).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_missing_file_reads_as_none() {
    let sink = Output::with_store(Arc::new(CountingStore::default()), "lake".into()).sink;
    let read = sink
        .read_partition_file_pruned(&key(), "part-gone.parquet", &["session_id"], filter(&[0]))
        .await
        .expect("read");
    assert!(read.is_none());
}

/// A sink on a fresh counting store holding `name` with rows `range` in row groups of `group`.
async fn sink_holding(
    name: &str,
    range: std::ops::Range<usize>,
    group: usize,
) -> (Arc<CountingStore>, Sink) {
    let store = Arc::new(CountingStore::default());
    let sink = Output::with_store(store.clone(), "lake".into()).sink;
    sink.write_partition_file(&key(), name, &[batch(range)], group)
        .await
        .expect("write");
    (store, sink)
}

/// The pruned read of `name`'s `session_id` for the row ending at second `i`.
async fn read_at(sink: &Sink, name: &str, i: usize) -> Option<PrunedRead> {
    sink.read_partition_file_pruned(
        &key(),
        name,
        &["session_id"],
        filter(&[end(i).timestamp_millis()]),
    )
    .await
    .expect("read")
}

#[tokio::test]
async fn a_file_smaller_than_the_first_request_costs_one_get() {
    let (store, sink) = sink_holding("part-small.parquet", 0..20, GROUP).await;
    let (size, _) = file_size(&store, "part-small.parquet").await;
    assert!(size < FOOTER_FETCH_BYTES, "{size}");
    let gets = store.parquet_gets();
    let read = read_at(&sink, "part-small.parquet", 7)
        .await
        .expect("exists");
    assert_eq!(ids(&read), (0..20).map(id).collect::<Vec<_>>());
    let requests = store.parquet_gets() - gets;
    assert_eq!(requests, 1, "footer and chunks come from one request");
}

#[tokio::test]
async fn a_file_deleted_between_its_footer_and_its_chunks_reads_as_none() {
    let (store, sink) = sink_holding("part-big.parquet", 0..ROWS, GROUP).await;
    store.tamper_after_next_get(crate::sink::counting::Tamper::Delete);
    assert!(read_at(&sink, "part-big.parquet", 12_345).await.is_none());
}

#[tokio::test]
async fn a_file_replaced_between_its_footer_and_its_chunks_is_read_again_whole() {
    // The replacement: another layout (row groups of 500) and other rows under the same name.
    let (other, _) = sink_holding("part-big.parquet", 5_000..ROWS + 5_000, 500).await;
    let path =
        object_store::path::Path::from(format!("lake/{}/part-big.parquet", key().relative_dir()));
    let replacement = other.get(&path).await.expect("get");
    let replacement = replacement.bytes().await.expect("bytes");
    let (store, sink) = sink_holding("part-big.parquet", 0..ROWS, GROUP).await;
    store.tamper_after_next_get(crate::sink::counting::Tamper::Replace(replacement));
    let read = read_at(&sink, "part-big.parquet", 12_345)
        .await
        .expect("exists");
    // Only the replacement's row group of 500 holding second 12,345: never a mix of the two.
    assert_eq!(ids(&read), (12_000..12_500).map(id).collect::<Vec<_>>());
}
