//! The sink's page writes: the page gate's permit comes back only once a page is encoded or
//! waits within the row-group bound, and pages share a row group up to
//! [`super::PAGE_ROW_GROUP_BYTES`].

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::tests::{local_sink, out_dir, us_key, user_ids, user_status_batch};

/// `write_page` returns the permit only once the page is taken in (encoded, or waiting as rows
/// within the row-group bound): a second page needing the gate's only permit cannot be handed
/// over before. Small pages share one row group (each row group costs a compression context
/// per column), the waiting ones are written at commit, and every row reads back once.
#[tokio::test]
async fn pages_release_their_permit_once_encoded_and_small_pages_share_a_row_group() {
    let (tmp, sink) = local_sink();
    let key = us_key("A", 1);
    let gate = crate::client::MemoryGate::new(1);
    let mut writer = sink.begin_partition(&key).await.expect("begin");
    let first = gate.acquire().await.expect("permit");
    writer
        .write_page(user_status_batch(&["u1", "u2"]), Some(first))
        .await
        .expect("first page");
    // Granted only once the encoder has written and dropped the first page.
    let second = gate
        .acquire()
        .await
        .expect("permit after the first page is encoded");
    writer
        .write_page(user_status_batch(&["u3"]), Some(second))
        .await
        .expect("second page");
    let stats = writer.commit().await.expect("commit");
    assert_eq!(stats.rows, 3);
    assert_eq!(gate.available(), 1, "every permit is back after commit");

    let file_path = out_dir(&tmp).join("user_status/account_id=A/dt=2024-05-01/part-00000.parquet");
    assert_eq!(
        row_groups(&file_path),
        [3],
        "two small pages, one row group"
    );
    assert_eq!(
        user_ids(&sink.read_partition(&key).await.expect("read")),
        ["u1", "u2", "u3"]
    );
}

/// A page whose rows alone fill the open row group past [`super::PAGE_ROW_GROUP_BYTES`] ends
/// it: pages of 400-byte random user ids, each page holding more than the bound in ids alone
/// even compressed, become one row group each, so the encoders never carry more than one such
/// page.
#[tokio::test]
async fn a_page_that_fills_the_row_group_bound_ends_its_row_group() {
    let (tmp, sink) = local_sink();
    let key = us_key("A", 1);
    let per_page = super::PAGE_ROW_GROUP_BYTES / 400 + 1;
    // 400 hex digits of a xorshift sequence per id: ZSTD cannot shrink them below the bound.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut page = |_: usize| -> Vec<String> {
        (0..per_page)
            .map(|_| {
                (0..25)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        format!("{state:016x}")
                    })
                    .collect()
            })
            .collect()
    };
    let mut writer = sink.begin_partition(&key).await.expect("begin");
    for p in 0..3 {
        let ids = page(p);
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        writer
            .write_page(user_status_batch(&ids), None)
            .await
            .expect("page");
    }
    let stats = writer.commit().await.expect("commit");
    assert_eq!(stats.rows, 3 * per_page);
    let file_path = out_dir(&tmp).join("user_status/account_id=A/dt=2024-05-01/part-00000.parquet");
    let groups = row_groups(&file_path);
    assert_eq!(groups, [per_page as i64; 3], "one row group per page");
}

/// Rows per row group of the Parquet file at `path`.
fn row_groups(path: &std::path::Path) -> Vec<i64> {
    let file = std::fs::File::open(path).expect("open parquet");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet footer");
    builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect()
}
