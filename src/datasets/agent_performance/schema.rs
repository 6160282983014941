//! The `agent_performance` table's columns: one row per agent, interval and queue. The four
//! durations are documented in milliseconds and carry the Parquet field metadata
//! `unit = milliseconds`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::schema::{ts, utf8};
use crate::sources::extra::extra_field;

/// The five counts, `(wire key, column)`.
pub const COUNTS: [(&str, &str); 5] = [
    ("offeredContacts", "offered_contacts"),
    ("answeredContacts", "answered_contacts"),
    ("abandonedContacts", "abandoned_contacts"),
    ("completedContacts", "completed_contacts"),
    ("transferredContacts", "transferred_contacts"),
];

/// The four durations (milliseconds), `(wire key, column)`.
pub const DURATIONS: [(&str, &str); 4] = [
    ("conversationHandleTime", "conversation_handle_time_ms"),
    ("conversationTalkTime", "conversation_talk_time_ms"),
    ("acwDuration", "acw_duration_ms"),
    ("holdDuration", "hold_duration_ms"),
];

/// One row per agent, interval and queue.
pub fn agent_performance_schema() -> SchemaRef {
    let mut fields = vec![
        utf8("account_id", false),
        utf8("agent_id", false),
        ts("interval_start", false),
        ts("interval_end", true),
        utf8("queue_id", false),
        utf8("queue_name", true),
    ];
    fields.extend(
        COUNTS
            .iter()
            .map(|(_, c)| Field::new(*c, DataType::Int64, true)),
    );
    fields.extend(DURATIONS.iter().map(|(_, c)| {
        Field::new(*c, DataType::Int64, true).with_metadata(HashMap::from([(
            "unit".to_string(),
            "milliseconds".to_string(),
        )]))
    }));
    fields.push(Field::new("csat_score", DataType::Float64, true));
    fields.push(ts("exported_at", false));
    fields.push(extra_field());
    Arc::new(Schema::new(fields))
}
