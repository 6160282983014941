//! The `bot_sessions` table's columns: one row per bot session of Sessions History
//! (`getSessions`).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::schema::{ts, utf8};
use crate::sources::extra::extra_field;

/// One row per session. `user_tags` and `session_tags` are the tag arrays' JSON text as sent
/// (their values have mixed types); `end_time` is null while a session is active.
pub fn bot_sessions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("account_id", false),
        utf8("bot_id", false),
        utf8("session_id", false),
        utf8("user_id", true),
        utf8("channel", true),
        ts("start_time", false),
        ts("end_time", true),
        Field::new(
            "session_lang",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        utf8("session_type", true),
        utf8("containment_type", true),
        Field::new("is_developer", DataType::Boolean, true),
        utf8("session_status", true),
        utf8("user_tags", true),
        utf8("session_tags", true),
        Field::new("messages_exchanged", DataType::Int64, true),
        Field::new("tasks_executed", DataType::Int64, true),
        ts("exported_at", false),
        extra_field(),
    ]))
}
