//! The WFM queue list (`GET …/analytics/account/{accountId}/queues`), the master data that
//! turns `qu-…` queue ids into names: one row per queue, in one file per snapshot day
//! (`queues/account_id=A/snapshot_date=D/`, the local date of the run in `[queues] timezone`),
//! replaced by each run of that day; only today's snapshot can be exported
//! ([`crate::datasets::DayScope::TodayOnly`]). Requests, paging, decoding and the write are
//! [`crate::datasets::list`]'s; this folder declares the table, the keys each column reads
//! (`collectionPointId`; `Description` as in the sample, `description` as in the table), the
//! section, and [`latest_queue_ids`] for datasets whose entities are the queues.

pub mod config;
mod latest;

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};

use super::list::{ListApi, ListDataset, ListField, ListRows};
use super::{
    Dataset, DatasetInfo, Demo, DemoQuery, PageDecoder, PartitionLayout, Table,
    PAGE_DECODER_ACCOUNT,
};
use crate::config::{Config, SectionSpec};
use crate::schema::{ts, utf8};
use crate::sources::extra::extra_field;
use crate::sources::DecodeError;
pub use config::QueuesConfig;
pub use latest::{latest_queue_ids, LatestQueues, QueueListReader};

/// Endpoint label used in logs, errors and metrics.
pub const ENDPOINT: &str = "queues";
/// `limit` of every request (paging is undocumented; no maximum is documented).
pub const PAGE_SIZE: usize = 100;

/// `account_id=A/snapshot_date=D`: the local date the list was taken.
pub const LAYOUT: PartitionLayout = PartitionLayout {
    columns: &["account_id", "snapshot_date"],
};

/// The `queues` table.
pub static TABLE: Table = Table {
    name: "queues",
    schema: queues_schema,
    layout: LAYOUT,
    key: &["queue_id"],
    dedupe: None,
};

/// One row per queue of the list: `queue_id` is the `collectionPointId` (`qu-…`).
pub fn queues_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("account_id", false),
        utf8("queue_id", false),
        utf8("description", true),
        ts("exported_at", false),
        extra_field(),
    ]))
}

/// The record keys each column reads.
pub static API: ListApi = ListApi {
    info: &INFO,
    table: &TABLE,
    fields: &[
        ListField {
            column: "queue_id",
            keys: &["collectionPointId", "queueId"],
        },
        ListField {
            column: "description",
            keys: &["description"],
        },
    ],
    page_size: PAGE_SIZE,
};

static CONFIG: SectionSpec = SectionSpec::of::<QueuesConfig>();

/// Registration of the dataset.
pub static INFO: DatasetInfo = DatasetInfo {
    name: "queues",
    tables: &[&TABLE],
    endpoint: ENDPOINT,
    config: &CONFIG,
    metrics: &[],
    build,
    decoder: PageDecoder {
        decode: |body, _| page_rows(body, &mut |_, _| {}),
        rows: |body, _, out| page_rows(body, out),
    },
    demo: Demo {
        section: Some("enabled = true"),
        queries: &[DemoQuery {
            about: "The latest queue list",
            sql: "SELECT queue_id, description\n\
                  FROM read_parquet('{out}/queues/*/*/*.parquet', hive_partitioning = true)\n\
                  WHERE snapshot_date = (SELECT max(snapshot_date) FROM read_parquet('{out}/queues/*/*/*.parquet', hive_partitioning = true))\n\
                  ORDER BY description",
        }],
    },
};

fn page_rows(
    body: &[u8],
    out: &mut dyn FnMut(&'static Table, arrow::record_batch::RecordBatch),
) -> Result<usize, DecodeError> {
    let mut rows = ListRows::new(
        &API,
        PAGE_DECODER_ACCOUNT,
        super::page_decoder_exported_at(),
    );
    let page = rows.push_page(body, &mut super::paging::Seen::default())?;
    if let Ok((batch, _, _)) = rows.finish() {
        out(&TABLE, batch);
    }
    Ok(page.records)
}

fn build(config: &Config) -> Option<Dataset> {
    let QueuesConfig(cfg) = config.section::<QueuesConfig>()?;
    cfg.keys
        .enabled
        .then(|| Dataset::History(Arc::new(ListDataset::new(&API, cfg.clone()))))
}
