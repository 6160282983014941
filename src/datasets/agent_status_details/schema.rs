//! The `agent_status_details` table's columns: one row per status span of an agent.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::schema::{ts, utf8};
use crate::sources::extra::extra_field;

/// One row per Agent Status Details status span. `end_time` and `duration_seconds` are null
/// for an open span; `agent_id` is the `/v3` `aId`; `timezone_offset_minutes` is the
/// `timeZoneOffSet` of the request the row came from (the API's local times are at that offset).
pub fn agent_status_details_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("account_id", false),
        utf8("user_id", false),
        utf8("agent_id", true),
        utf8("email", true),
        utf8("first_name", true),
        utf8("last_name", true),
        utf8("custom_id", true),
        utf8("primary_status", false),
        utf8("secondary_status", true),
        ts("start_time", false),
        ts("end_time", true),
        Field::new("duration_seconds", DataType::Int64, true),
        Field::new("timezone_offset_minutes", DataType::Int32, false),
        ts("exported_at", false),
        extra_field(),
    ]))
}
