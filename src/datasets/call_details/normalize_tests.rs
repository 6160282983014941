//! Normalizer and schema tests against the documented sample of [`tests`](super::tests): one
//! `call_details` row per claimed session, one `call_segments` row per leg in walk order, the
//! required columns and list types, and the unmapped fields kept in `extra`. Expected values
//! are written out here.

use serde_json::json;

use super::tests::{cols, decoded, s, utc, V2_PAGE};
use super::*;
use crate::sources::Reject;

/// The documented page normalized for the local day 2025-10-01 at IST.
fn normalized_sample() -> (CallBatches, Vec<Reject>) {
    let recs = decoded(V2_PAGE, -330);
    let at = utc("2026-03-01T00:00:00Z");
    let mut n = CallDetailsNormalizer::new("acc-1", at);
    // The local day 2025-10-01 at IST: only the second record belongs to it.
    let claim = utc("2025-09-30T18:30:00Z")..utc("2025-10-01T18:30:00Z");
    assert!(!n.push(&recs[0], &claim));
    assert!(n.push(&recs[1], &claim));
    n.push_reject(Reject {
        reason: "r".into(),
        raw_json: "{}".into(),
    });
    n.finish()
}

#[test]
fn normalizer_writes_one_details_row_per_claimed_session() {
    let (b, rejects) = normalized_sample();
    assert_eq!(rejects.len(), 1);
    let at = utc("2026-03-01T00:00:00Z");
    let d = &b.details;
    assert_eq!(d.schema(), details_schema());
    assert_eq!(d.num_rows(), 1);
    assert_eq!(cols::strs(d, "account_id"), vec![s("acc-1")]);
    assert_eq!(
        cols::strs(d, "session_id"),
        vec![s("68dcfba48d99cc7cd125bbbb")]
    );
    assert_eq!(cols::strs(d, "conversation_id"), vec![s("c-252425a-1")]);
    assert_eq!(
        cols::times(d, "session_start_time"),
        vec![Some(utc("2025-10-01T02:10:36Z"))]
    );
    assert_eq!(cols::int32s(d, "time_zone_offset"), vec![Some(-330)]);
    assert_eq!(cols::strs(d, "direction"), vec![s("Inbound")]);
    assert_eq!(cols::bools(d, "is_voicemail"), vec![Some(false)]);
    assert_eq!(
        cols::lists(d, "dispositions"),
        vec![Some(vec!["Resolved".into()])]
    );
    assert_eq!(
        cols::lists(d, "automation_bot_ids"),
        vec![Some(vec!["st-1".into()])]
    );
    assert_eq!(cols::ints(d, "csat_score"), vec![Some(4)]);
    assert_eq!(cols::ints(d, "nps_score"), vec![None]);
    assert_eq!(cols::ints(d, "campaign_attempt"), vec![Some(2)]);
    assert_eq!(cols::strs(d, "campaign_id"), vec![s("cd-1")]);
    assert_eq!(cols::strs(d, "customer_first_name"), vec![s("Ann")]);
    assert_eq!(cols::int32s(d, "segment_count"), vec![Some(4)]);
    assert_eq!(cols::times(d, "exported_at"), vec![Some(at)]);
    let meta: serde_json::Value =
        serde_json::from_str(cols::strs(d, "meta_info")[0].as_deref().expect("meta"))
            .expect("json");
    assert_eq!(
        meta,
        json!({"caller": "+919550000000", "customData": {"k": [1, 2]}})
    );
}

#[test]
fn normalizer_writes_one_segments_row_per_leg_in_walk_order() {
    let (b, _) = normalized_sample();
    let g = &b.segments;
    assert_eq!(g.schema(), segments_schema());
    assert_eq!(
        cols::int32s(g, "segment_index"),
        vec![Some(0), Some(1), Some(2), Some(3)]
    );
    assert_eq!(
        cols::strs(g, "destination_type"),
        vec![
            s("QueueEntry"),
            s("QueueEntry"),
            s("AgentSegment"),
            s("QueueEntry")
        ]
    );
    assert_eq!(
        cols::strs(g, "queue_id"),
        vec![s("qu-1"), s("qu-1"), None, s("qu-2")]
    );
    assert_eq!(
        cols::strs(g, "agent_id"),
        vec![s("u-a1"), s("u-a2"), s("u-a3"), None]
    );
    assert_eq!(
        cols::bools(g, "responding"),
        vec![Some(true), Some(false), Some(true), None]
    );
    assert_eq!(
        cols::ints(g, "interaction_seconds"),
        vec![Some(11), None, Some(30), None]
    );
    assert_eq!(
        cols::ints(g, "first_response_seconds"),
        vec![Some(6), None, None, None]
    );
    assert_eq!(
        cols::ints(g, "after_call_work_seconds"),
        vec![Some(5), None, None, None]
    );
    assert_eq!(
        cols::strs(g, "non_response_event"),
        vec![None, s("Supervisor Reassigned"), None, None]
    );
    assert_eq!(
        cols::times(g, "assigned_at"),
        vec![
            Some(utc("2025-10-01T02:10:50Z")),
            Some(utc("2025-10-01T02:10:40Z")),
            Some(utc("2025-10-01T02:12:00Z")),
            None
        ]
    );
    assert_eq!(
        cols::strs(g, "session_id"),
        vec![s("68dcfba48d99cc7cd125bbbb"); 4]
    );
    assert_eq!(cols::lists(g, "agent_notes")[0], Some(vec!["n1".into()]));
}

#[test]
fn schemas_have_the_required_columns_and_list_types() {
    let d = details_schema();
    for name in [
        "account_id",
        "session_id",
        "conversation_id",
        "channel",
        "bot_id",
        "user_id",
        "session_start_time",
        "session_end_time",
        "final_status",
        "smart_status",
        "disconnecting_event",
        "direction",
        "dispositions",
        "survey_type",
        "csat_score",
        "automation_bot_ids",
        "meta_info",
        "exported_at",
    ] {
        assert!(d.field_with_name(name).is_ok(), "call_details.{name}");
    }
    let g = segments_schema();
    for name in [
        "account_id",
        "session_id",
        "segment_index",
        "destination_type",
        "queue_id",
        "queue_name",
        "enter_time",
        "agent_id",
        "responding",
        "status",
        "non_response_event",
        "assigned_at",
        "accepted_time",
        "first_response_seconds",
        "interaction_seconds",
        "after_call_work_seconds",
        "exported_at",
    ] {
        assert!(g.field_with_name(name).is_ok(), "call_segments.{name}");
    }
    for (schema, name) in [
        (&d, "dispositions"),
        (&d, "automation_bot_ids"),
        (&g, "agent_notes"),
    ] {
        let f = schema.field_with_name(name).expect("list column");
        assert!(matches!(f.data_type(), arrow::datatypes::DataType::List(i)
            if i.data_type() == &arrow::datatypes::DataType::Utf8));
    }
    assert_eq!(DETAILS.partition_columns(), ["account_id", "dt"]);
    assert_eq!(SEGMENTS.partition_columns(), ["account_id", "dt"]);
    for f in d.fields().iter().chain(g.fields().iter()) {
        if let arrow::datatypes::DataType::Timestamp(_, _) = f.data_type() {
            assert_eq!(
                f.data_type(),
                &crate::schema::timestamp_type(),
                "{}",
                f.name()
            );
        }
    }
}

#[test]
fn unmapped_fields_of_session_blocks_queue_entries_and_legs_are_kept_in_extra() {
    let body = r#"{"data": [{
        "sessionId": "s-1", "sessionStartTime": "2025-10-01T10:00:00", "Reason": "a", "reason": "",
        "holdDuration": 0, "rank": 1.0e1,
        "customerinfo": {"CustomerPhone": "1", "Direction": "inbound", "CustomerAge": 42},
        "campaigninfo": {"attempt": ""},
        "destinations": [
            {"destinationType": "QueueEntry", "queueId": "q-1", "wait": "long", "rank": 2,
             "respondingAgent": {"agentId": "u-1", "destinationType": "AgentSegment", "JoinedUsers": [], "rank": 3},
             "nonRespondingAgents": [{"AGENTID": "u-2"}]},
            {"destinationType": "AgentSegment", "agentId": "u-3", "snoozeinfo": [ ]}
        ]}]}"#;
    let recs = decoded(body, 0);
    let mut n = CallDetailsNormalizer::new("acc-1", utc("2026-03-01T00:00:00Z"));
    let claim = utc("2025-10-01T00:00:00Z")..utc("2025-10-02T00:00:00Z");
    assert!(n.push(&recs[0], &claim));
    let counts = n.take_unmapped();
    let (b, _) = n.finish();
    let session = r#""holdDuration":0,"rank":1.0e1,"customerinfo":{"CustomerAge":42}"#;
    assert_eq!(
        cols::strs(&b.details, "extra"),
        vec![s(&format!("{{{session}}}"))]
    );
    assert_eq!(
        cols::strs(&b.segments, "extra"),
        vec![
            s(
                r#"{"holdDuration":0,"session.rank":1.0e1,"customerinfo":{"CustomerAge":42},"wait":"long","destination.rank":2,"JoinedUsers":[],"rank":3}"#
            ),
            s(
                r#"{"holdDuration":0,"session.rank":1.0e1,"customerinfo":{"CustomerAge":42},"wait":"long","rank":2}"#
            ),
            s(
                r#"{"holdDuration":0,"rank":1.0e1,"customerinfo":{"CustomerAge":42},"snoozeinfo":[ ]}"#
            ),
        ]
    );
    let want: std::collections::BTreeMap<String, u64> = [
        ("JoinedUsers".to_string(), 1),
        ("customerinfo.CustomerAge".into(), 1),
        ("holdDuration".into(), 1),
        ("rank".into(), 3),
        ("snoozeinfo".into(), 1),
        ("wait".into(), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts.as_map(), &want);
}

#[test]
fn a_destinations_unmapped_fields_count_once_however_many_legs_repeat_them() {
    // Queue entries with no responding agent (their first non-responding leg opens them), with
    // both kinds, and with no agent at all; each carries its unmapped key on every leg's row.
    let body = r#"{"data": [{
        "sessionId": "s-1", "sessionStartTime": "2025-10-01T10:00:00",
        "destinations": [
            {"destinationType": "QueueEntry", "queueId": "q-1", "wait": 1,
             "nonRespondingAgents": [{"agentId": "u-1", "seen": 1}, {"agentId": "u-2"}, {"agentId": "u-3"}]},
            {"destinationType": "QueueEntry", "queueId": "q-2", "wait": 2,
             "respondingAgent": {"agentId": "u-4"},
             "nonRespondingAgents": [{"agentId": "u-5", "seen": 2}]},
            {"destinationType": "QueueEntry", "queueId": "q-3", "wait": 3},
            {"destinationType": "AgentSegment", "agentId": "u-6", "seen": 3}
        ]}]}"#;
    let recs = decoded(body, 0);
    let opens: Vec<bool> = recs[0]
        .segments
        .iter()
        .map(|s| s.opens_destination)
        .collect();
    assert_eq!(opens, [true, false, false, true, false, true, true]);
    let mut n = CallDetailsNormalizer::new("acc-1", utc("2026-03-01T00:00:00Z"));
    let claim = utc("2025-10-01T00:00:00Z")..utc("2025-10-02T00:00:00Z");
    assert!(n.push(&recs[0], &claim));
    let counts = n.take_unmapped();
    let (b, _) = n.finish();
    let waits = cols::strs(&b.segments, "extra")
        .iter()
        .filter(|e| e.as_deref().is_some_and(|e| e.contains("\"wait\"")))
        .count();
    assert_eq!(waits, 6, "the queue's key is on every row of its legs");
    let want: std::collections::BTreeMap<String, u64> =
        [("seen".to_string(), 3), ("wait".into(), 3)]
            .into_iter()
            .collect();
    assert_eq!(counts.as_map(), &want);
}

#[test]
fn the_documented_page_leaves_only_the_legs_untyped_fields_in_extra() {
    // Every other documented key is read by some column; `keys.rs` must list what `wire` reads.
    let untyped = r#"{"JoinedUsers":[],"snoozeinfo":[],"agentChoseTranslate":false}"#;
    for r in decoded(V2_PAGE, -330) {
        assert!(r.extra.is_empty(), "{}: {:?}", r.session_id, r.extra);
        for s in &r.segments {
            assert!(
                s.queue_extra.is_empty(),
                "{}: {:?}",
                r.session_id,
                s.queue_extra
            );
            if let Some(a) = &s.agent {
                let got = a.extra.to_json();
                assert!(got == "{}" || got == untyped, "{}: {got}", r.session_id);
            }
        }
    }
}
