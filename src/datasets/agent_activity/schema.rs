//! The `agent_activity` table's columns: one row per agent event.

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};

use crate::schema::{ts, utf8};
use crate::sources::extra::extra_field;

/// One row per Agent Activity update: the WFM agent id (`a-…`), the event's instant (its
/// zone-less `EventTime` read in `event_time_zone`), the activity and its reason code.
pub fn agent_activity_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("account_id", false),
        utf8("agent_id", false),
        ts("event_time", false),
        utf8("activity", false),
        utf8("reason_code", true),
        ts("exported_at", false),
        extra_field(),
    ]))
}
