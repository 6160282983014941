//! The WFM agent list (`GET …/analytics/account/{accountId}/agents`), the master data that
//! turns the `a-…` ids of `agent_activity` into names: one row per agent, in one file per
//! snapshot day (`agents/account_id=A/snapshot_date=D/`, the local date of the run in
//! `[agents] timezone`), replaced by each run of that day. The list has no history, so only
//! today's snapshot can be exported ([`crate::datasets::DayScope::TodayOnly`]). Requests,
//! paging, decoding and the write are [`crate::datasets::list`]'s; this folder declares the
//! table, the keys each column reads and the section.

pub mod config;

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
pub use config::AgentsConfig;

/// Endpoint label used in logs, errors and metrics.
pub const ENDPOINT: &str = "agents";
/// `limit` of every request (the only sample asks for 5; no maximum is documented).
pub const PAGE_SIZE: usize = 100;

/// `account_id=A/snapshot_date=D`: the local date the list was taken.
pub const LAYOUT: PartitionLayout = PartitionLayout {
    columns: &["account_id", "snapshot_date"],
};

/// The `agents` table.
pub static TABLE: Table = Table {
    name: "agents",
    schema: agents_schema,
    layout: LAYOUT,
    key: &["agent_id"],
    dedupe: None,
};

/// One row per agent of the list: `agent_id` is the WFM `a-…` id, names as sent.
pub fn agents_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("account_id", false),
        utf8("agent_id", false),
        utf8("first_name", true),
        utf8("last_name", true),
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
            column: "agent_id",
            keys: &["agentId"],
        },
        ListField {
            column: "first_name",
            keys: &["firstName"],
        },
        ListField {
            column: "last_name",
            keys: &["lastName"],
        },
    ],
    page_size: PAGE_SIZE,
};

static CONFIG: SectionSpec = SectionSpec::of::<AgentsConfig>();

/// Registration of the dataset.
pub static INFO: DatasetInfo = DatasetInfo {
    name: "agents",
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
            about: "The latest agent list",
            sql: "SELECT agent_id, first_name, last_name\n\
                  FROM read_parquet('{out}/agents/*/*/*.parquet', hive_partitioning = true)\n\
                  WHERE snapshot_date = (SELECT max(snapshot_date) FROM read_parquet('{out}/agents/*/*/*.parquet', hive_partitioning = true))\n\
                  ORDER BY last_name, first_name LIMIT 20",
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
    let AgentsConfig(cfg) = config.section::<AgentsConfig>()?;
    cfg.keys
        .enabled
        .then(|| Dataset::History(Arc::new(ListDataset::new(&API, cfg.clone()))))
}
