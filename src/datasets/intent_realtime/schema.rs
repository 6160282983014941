//! The `intent_realtime` table's columns: one row per completed bot session.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::schema::{ts, utf8};
use crate::sources::extra::extra_field;

/// One row per completed bot session returned by IntentRealtimeData.
pub fn intent_realtime_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("account_id", false),
        utf8("bot_id", false),
        utf8("session_id", false),
        utf8("user_id", true),
        utf8("channel", true),
        utf8("ani", true),
        utf8("dni", true),
        Field::new(
            "intents",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        ts("start_time", true),
        ts("end_time", false),
        utf8("status", true),
        utf8("time_handled", true),
        Field::new("time_handled_seconds", DataType::Int64, true),
        utf8("deflected_to", true),
        ts("exported_at", false),
        extra_field(),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intent_schema_has_list_of_strings_and_nullable_seconds() {
        let s = intent_realtime_schema();
        let intents = s.field_with_name("intents").expect("intents column");
        assert!(
            matches!(intents.data_type(), DataType::List(f) if f.data_type() == &DataType::Utf8)
        );
        let secs = s
            .field_with_name("time_handled_seconds")
            .expect("seconds column");
        assert!(secs.is_nullable());
        assert!(s
            .field_with_name("deflected_to")
            .expect("deflected_to")
            .is_nullable());
    }
}
