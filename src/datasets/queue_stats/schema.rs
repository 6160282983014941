//! The `queue_stats` table's columns: one row per queue per poll.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::schema::{ts, utf8};
use crate::sources::extra::extra_field;

/// One row per queue and poll of Queue Size (`queueStatsById`).
pub fn queue_stats_schema() -> SchemaRef {
    let int = |name: &str| Field::new(name, DataType::Int64, true);
    let float = |name: &str| Field::new(name, DataType::Float64, true);
    Arc::new(Schema::new(vec![
        utf8("account_id", false),
        ts("polled_at", false),
        utf8("queue_id", false),
        utf8("queue_name", true),
        int("waiting"),
        int("engaged"),
        int("drop_off"),
        int("agents_available"),
        int("agents_offline"),
        int("agents_busy"),
        int("agents_away"),
        int("agents"),
        float("avg_wait"),
        float("max_wait"),
        float("asa"),
        utf8("skills", true),
        ts("exported_at", false),
        extra_field(),
    ]))
}
