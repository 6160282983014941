//! The `user_status` table's columns: one row per status bucket of an agent.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::schema::{ts, utf8};
use crate::sources::extra::extra_field;

/// One row per `data[].timeInterval[].status[]` entry of a UserStatus response.
pub fn user_status_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("account_id", false),
        utf8("user_id", false),
        utf8("email", true),
        utf8("first_name", true),
        utf8("last_name", true),
        utf8("custom_id", true),
        ts("bucket_start", false),
        ts("bucket_end", false),
        utf8("granularity", false),
        utf8("metric", false),
        utf8("value", false),
        Field::new("duration_seconds", DataType::Int64, false),
        ts("exported_at", false),
        extra_field(),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_status_has_the_documented_columns_in_order() {
        let names: Vec<_> = user_status_schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            [
                "account_id",
                "user_id",
                "email",
                "first_name",
                "last_name",
                "custom_id",
                "bucket_start",
                "bucket_end",
                "granularity",
                "metric",
                "value",
                "duration_seconds",
                "exported_at",
                "extra"
            ]
        );
        let f = user_status_schema();
        assert_eq!(
            f.field_with_name("duration_seconds")
                .map(|f| f.data_type().clone())
                .ok(),
            Some(DataType::Int64)
        );
    }
}
