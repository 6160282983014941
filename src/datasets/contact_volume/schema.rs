//! The columns of `contact_volume` (one row per queue and interval) and `contact_volume_skills`
//! (one row per queue, interval and skill of `skillBreakdown`). Both share the interval's
//! columns, then the measures: four counts, the eight durations each kept as sent (in the unit
//! named by the field metadata key `unit`) and next to it as `<name>_ms` (milliseconds under the
//! configured unit), the message counts and CSAT.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::config::DurationUnit;
use crate::schema::{ts, utf8};
use crate::sources::extra::extra_field;

/// Field metadata key naming the unit of a duration column.
pub const UNIT_KEY: &str = "unit";

/// The four contact counts, `(wire key, column)`, before the durations.
pub const COUNTS: [(&str, &str); 4] = [
    ("offeredContacts", "offered_contacts"),
    ("answeredContacts", "answered_contacts"),
    ("abandonedContacts", "abandoned_contacts"),
    ("completedContacts", "completed_contacts"),
];

/// The eight durations, `(wire key, column)`. Keys match in any casing, so the documented
/// `maxqueueHoldTimeAbandoned` (lower-case q) and `maxQueueHoldTimeAbandoned` are both read.
pub const DURATIONS: [(&str, &str); 8] = [
    ("queueHoldTimeAnswered", "queue_hold_time_answered"),
    ("maxQueueHoldTimeAnswered", "max_queue_hold_time_answered"),
    ("queueHoldTimeAbandoned", "queue_hold_time_abandoned"),
    ("maxqueueHoldTimeAbandoned", "max_queue_hold_time_abandoned"),
    ("acwDuration", "acw_duration"),
    ("conversationHandleTime", "conversation_handle_time"),
    ("conversationTalkTime", "conversation_talk_time"),
    ("holdDuration", "hold_duration"),
];

/// The counts after the durations, `(wire key, column)`.
pub const MESSAGES: [(&str, &str); 3] = [
    ("messageCount", "message_count"),
    ("savedMessageCount", "saved_message_count"),
    ("csatResponses", "csat_responses"),
];

/// The skill columns of `contact_volume_skills`, `(wire key, column)`; `skillId` is required.
pub const SKILL: [(&str, &str); 4] = [
    ("skillId", "skill_id"),
    ("skillName", "skill_name"),
    ("skillGroupId", "skill_group_id"),
    ("skillGroupName", "skill_group_name"),
];

/// `contact_volume` with the documented record unit (seconds) on its duration columns.
pub fn contact_volume_schema() -> SchemaRef {
    schema(false, DurationUnit::Seconds)
}

/// `contact_volume_skills` with the documented skill unit (milliseconds).
pub fn contact_volume_skills_schema() -> SchemaRef {
    schema(true, DurationUnit::Milliseconds)
}

fn int(name: &str) -> Field {
    Field::new(name, DataType::Int64, true)
}

fn with_unit(field: Field, unit: DurationUnit) -> Field {
    field.with_metadata(HashMap::from([(
        UNIT_KEY.to_string(),
        unit.as_str().to_string(),
    )]))
}

/// The table's columns with `unit` on the as-sent duration columns (`skills`: the skills
/// table). What the export writes, with the configured units.
pub fn schema(skills: bool, unit: DurationUnit) -> SchemaRef {
    let mut fields = vec![
        utf8("account_id", false),
        utf8("org_id", false),
        utf8("record_id", true),
        utf8("stream_id", true),
        utf8("queue_id", false),
        utf8("queue_name", true),
        ts("interval_start", false),
        ts("interval_end", true),
        utf8("source", true),
    ];
    if skills {
        fields.extend(SKILL.iter().map(|(_, c)| utf8(c, *c != "skill_id")));
    }
    fields.extend(COUNTS.iter().map(|(_, c)| int(c)));
    for (_, c) in DURATIONS {
        fields.push(with_unit(int(c), unit));
        fields.push(with_unit(
            int(&format!("{c}_ms")),
            DurationUnit::Milliseconds,
        ));
    }
    fields.extend(MESSAGES.iter().map(|(_, c)| int(c)));
    fields.push(Field::new("csat_score", DataType::Float64, true));
    fields.push(ts("exported_at", false));
    fields.push(extra_field());
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_has_its_unit_and_a_normalized_twin() {
        let s = schema(false, DurationUnit::Milliseconds);
        for (_, c) in DURATIONS {
            let sent = s.field_with_name(c).expect("as sent");
            assert_eq!(sent.metadata()[UNIT_KEY], "milliseconds");
            let ms = s.field_with_name(&format!("{c}_ms")).expect("normalized");
            assert_eq!(ms.metadata()[UNIT_KEY], "milliseconds");
        }
        let s = contact_volume_schema();
        assert_eq!(
            s.field_with_name("acw_duration").unwrap().metadata()[UNIT_KEY],
            "seconds"
        );
        let skills = contact_volume_skills_schema();
        let names: Vec<&str> = skills
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .take(13)
            .collect();
        assert_eq!(
            names[9..],
            [
                "skill_id",
                "skill_name",
                "skill_group_id",
                "skill_group_name"
            ]
        );
    }
}
