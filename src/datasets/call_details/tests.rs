//! Request and decoder tests against hand-written fixtures (the documented samples, completed
//! where the docs elide values), and the fixtures and column readers the other test modules
//! share (the normalizer's in `normalize_tests`, the simulator's end-to-end export). Expected
//! values are written out here.

use arrow::array::{
    Array, BooleanArray, Int32Array, Int64Array, ListArray, StringArray, TimestampMillisecondArray,
};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::*;

pub(crate) fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("valid test timestamp")
        .with_timezone(&Utc)
}

/// Column readers shared with the normalizer tests and the simulator's end-to-end test.
pub(crate) mod cols {
    use super::*;

    fn col<'b, T: 'static>(b: &'b RecordBatch, name: &str) -> &'b T {
        b.column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name}"))
            .as_any()
            .downcast_ref::<T>()
            .unwrap_or_else(|| panic!("column {name} has another type"))
    }
    pub fn strs(b: &RecordBatch, name: &str) -> Vec<Option<String>> {
        let a = col::<StringArray>(b, name);
        (0..a.len())
            .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
            .collect()
    }
    pub fn times(b: &RecordBatch, name: &str) -> Vec<Option<DateTime<Utc>>> {
        let a = col::<TimestampMillisecondArray>(b, name);
        (0..a.len())
            .map(|i| {
                a.is_valid(i)
                    .then(|| DateTime::from_timestamp_millis(a.value(i)).expect("in range"))
            })
            .collect()
    }
    pub fn ints(b: &RecordBatch, name: &str) -> Vec<Option<i64>> {
        let a = col::<Int64Array>(b, name);
        (0..a.len())
            .map(|i| a.is_valid(i).then(|| a.value(i)))
            .collect()
    }
    pub fn int32s(b: &RecordBatch, name: &str) -> Vec<Option<i32>> {
        let a = col::<Int32Array>(b, name);
        (0..a.len())
            .map(|i| a.is_valid(i).then(|| a.value(i)))
            .collect()
    }
    pub fn bools(b: &RecordBatch, name: &str) -> Vec<Option<bool>> {
        let a = col::<BooleanArray>(b, name);
        (0..a.len())
            .map(|i| a.is_valid(i).then(|| a.value(i)))
            .collect()
    }
    pub fn lists(b: &RecordBatch, name: &str) -> Vec<Option<Vec<String>>> {
        let a = col::<ListArray>(b, name);
        (0..a.len())
            .map(|i| {
                a.is_valid(i).then(|| {
                    let v = a.value(i);
                    let s = v
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .expect("utf8 items");
                    (0..s.len()).map(|j| s.value(j).to_string()).collect()
                })
            })
            .collect()
    }
}

/// `Some(v)` as the compared value's type (a column's `String`, a record's `Cow`).
pub(super) fn s<'a, T: From<&'a str>>(v: &'a str) -> Option<T> {
    Some(T::from(v))
}

/// A decoded list's items.
fn items(list: &Option<StrList<'_>>) -> Option<Vec<String>> {
    list.as_ref().map(StrList::to_vec)
}

fn window(start: &str, end: &str, offset: i32) -> CallWindow {
    CallWindow::new(utc(start), utc(end), offset)
}

#[test]
fn request_body_sends_the_window_as_local_times_at_its_offset() {
    let w = window("2026-02-23T18:30:00Z", "2026-02-24T06:15:00Z", -330);
    let body = request_body(&w, &RequestFilter::default(), CallDetailsApi::default());
    assert_eq!(
        body,
        json!({"startDate": "2026-02-24 00:00:00", "endDate": "2026-02-24 11:45:00",
               "timeZoneOffset": -330, "channels": [], "queues": [],
               "selectedFields": ["skills", "customerinfo", "userleveltags",
                                  "sessionleveltags", "campaigninfo"]})
    );
    let filter = RequestFilter {
        channels: vec!["voice".into()],
        queues: vec!["qu-1".into()],
        direction: Some("Inbound".into()),
        selected_fields: Some(vec!["skills".into()]),
    };
    let w = window("2024-11-03T05:00:00Z", "2024-11-03T05:00:01Z", 300);
    let body = request_body(&w, &filter, CallDetailsApi::V1CallDetails);
    assert_eq!(
        body,
        json!({"startDate": "2024-11-03 00:00:00", "endDate": "2024-11-03 00:00:01",
               "timeZoneOffset": 300, "channels": ["voice"], "queues": ["qu-1"],
               "selectedFields": ["skills"], "direction": "Inbound"})
    );
    let body = request_body(&w, &RequestFilter::default(), CallDetailsApi::V1CallDetails);
    assert_eq!(
        body["selectedFields"],
        json!([
            "skills",
            "customerinfo",
            "userleveltags",
            "sessionleveltags"
        ])
    );
    assert_eq!(
        request_query(100, 10),
        vec![("limit", "100".to_string()), ("offset", "10".to_string())]
    );
}

#[test]
fn the_three_documented_paths_are_selectable() {
    assert_eq!(
        CallDetailsApi::default().path("acc-1"),
        "/agentassist/api/public/analytics/account/acc-1/v2/interactionDetails"
    );
    assert_eq!(
        CallDetailsApi::V2CallDetails.path("acc-1"),
        "/agentassist/api/public/analytics/account/acc-1/v2/calldetails"
    );
    assert_eq!(
        CallDetailsApi::V1CallDetails.path("acc-1"),
        "/agentassist/api/public/analytics/account/acc-1/calldetails"
    );
    assert_eq!("/callDetails".parse(), Ok(CallDetailsApi::V1CallDetails));
    assert_eq!(
        "V2/InteractionDetails".parse(),
        Ok(CallDetailsApi::V2InteractionDetails)
    );
    assert!("v3/calldetails".parse::<CallDetailsApi>().is_err());
}

/// The documented composite sample (bot-only and agent-routed mixed), values completed.
pub(super) const V2_PAGE: &str = r#"{ "numResults": 10, "data": [
  { "sessionId": "68db745779cb8cebd651aaaa", "channel": "Web/Mobile Client",
    "sessionStartTime": "2025-09-30T11:40:31", "sessionEndTime": "2025-09-30T11:40:42",
    "botId": "st-1", "userId": "u-1", "channelSpecificUserId": "john.doe@example.com",
    "orgId": "o-1", "smartStatus": "CLOSED AT BOT", "reason": "", "disconnectingEvent": "",
    "errorDetails": "", "finalStatus": "BotResolved", "automationBotIDs": ["st-1"] },
  { "conversationId": "c-252425a-1", "sessionId": "68dcfba48d99cc7cd125bbbb", "channel": "Voice",
    "isVoicemail": "NO", "Direction": "Inbound", "skills": [], "finalStatus": "CLOSED",
    "smartStatus": "CLOSED", "Reason": "Resolved", "disconnectingEvent": "Agent Closed",
    "errorDetails": "", "botId": "st-1", "dispositions": ["Resolved"],
    "dispositionRemarks": ["called back"],
    "metaInfo": {"caller": "+919550000000", "customData": {"k": [1, 2]}},
    "customerinfo": { "CustomerPhone": "+1555", "CenterPhone": "", "CustomerFirstName": "Ann",
                      "CustomerLastName": "", "CustomerEmail": "" },
    "sessionStartTime": "2025-10-01T07:40:36", "sessionEndTime": "2025-10-01T07:50:00",
    "channelSpecificUserId": "cs-1/2", "userId": "u-2",
    "destinations": [
      { "destinationType": "QueueEntry", "queueId": "qu-1", "queueName": "Default Queue",
        "CallbackOpted": true, "CallbackOptedTime": "2025-10-01T02:10:57.780Z",
        "userCallbackAcceptTime": "2025-10-01T02:11:24.591Z", "EnterTime": "2025-10-01T07:40:36",
        "respondingAgent": { "agentId": "u-a1", "agentNotes": ["n1"],
          "destinationType": "AgentSegment", "status": "Answered",
          "firstResponseTime": "2025-10-01T07:41:06", "firstResponseDuration": 6,
          "interactionEndTime": "2025-10-01T07:41:17", "interactionDuration": 11,
          "afterCallWorkDuration": 5, "afterCallWorkEndTime": "2025-10-01T07:41:22",
          "ConsultingAgents": [ { "name": "+919550000000", "acceptedTime": "2025-10-01T07:41:08",
              "assignedAt": "2025-10-01T07:41:07", "consultingEndTime": "2025-10-01T07:41:15" } ],
          "JoinedUsers": [], "email": "a1@example.com", "name": "Agent One",
          "acceptedTime": "2025-10-01T07:41:00", "assignedAt": "2025-10-01T07:40:50",
          "snoozeinfo": [], "agentChoseTranslate": false },
        "nonRespondingAgents": [ { "agentId": "u-a2", "agentNotes": [],
          "destinationType": "AgentSegment", "email": "a2@example.com", "name": "Agent Two",
          "assignedAt": "2025-10-01T07:40:40", "nonResponseEvent": "Supervisor Reassigned" } ] },
      { "destinationType": "AgentSegment", "agentId": "u-a3", "status": "Answered",
        "interactionDuration": 30, "assignedAt": "2025-10-01T07:42:00" },
      { "destinationType": "QueueEntry", "queueId": "qu-2" } ],
    "surveyType": "csat", "csatScore": 4, "csatFeedback": "services",
    "userleveltags": [ { "name": "accountnum", "value": "123" } ],
    "sessionleveltags": [ { "name": "audioCodesCallDisconnect", "value": "1" } ],
    "campaigninfo": { "campaignName": "Spring", "campaignId": "cd-1",
      "campaignInstanceId": "cid-1", "campaignDialingListId": "cdl-1", "attempt": 2,
      "contactStatus": "no-answer", "campaignRunDate": "2026-02-16T14:06:41.807Z",
      "contactListName": ["WANTED JAN23"] },
    "automationBotIDs": ["st-1"] } ] }"#;

pub(super) fn decoded(body: &str, offset: i32) -> Vec<CallRecord<'_>> {
    decode_page(body.as_bytes(), offset)
        .expect("decodable page")
        .records
        .into_iter()
        .map(|r| r.expect("valid record"))
        .collect()
}

#[test]
fn a_documented_v2_page_decodes_with_zone_less_times_at_the_request_offset() {
    let page = decode_page(V2_PAGE.as_bytes(), -330).expect("decodable");
    assert_eq!(page.num_results, Some(10));
    let recs: Vec<CallRecord> = page.records.into_iter().map(|r| r.expect("ok")).collect();
    let bot = &recs[0];
    assert_eq!(bot.session_id, "68db745779cb8cebd651aaaa");
    assert_eq!(bot.conversation_id, None);
    assert_eq!(bot.session_start_time, utc("2025-09-30T06:10:31Z"));
    assert_eq!(bot.session_end_time, Some(utc("2025-09-30T06:10:42Z")));
    assert_eq!(bot.reason, s(""));
    assert_eq!(bot.smart_status, s("CLOSED AT BOT"));
    assert_eq!(items(&bot.automation_bot_ids), Some(vec!["st-1".into()]));
    assert!(bot.segments.is_empty());
    assert_eq!(bot.time_zone_offset, -330);

    let r = &recs[1];
    assert_eq!(r.session_start_time, utc("2025-10-01T02:10:36Z"));
    assert_eq!(r.direction, s("Inbound"));
    assert_eq!(r.reason, s("Resolved"));
    assert_eq!(r.is_voicemail, Some(false));
    assert_eq!(r.skills, s("[]"));
    assert_eq!(items(&r.dispositions), Some(vec!["Resolved".into()]));
    assert_eq!(r.csat_score, Some(4));
    assert_eq!(r.survey_type, s("csat"));
    assert_eq!(r.customer.phone, s("+1555"));
    assert_eq!(r.customer.last_name, s(""));
    assert_eq!(r.campaign.attempt, Some(2));
    assert_eq!(r.campaign.run_date, Some(utc("2026-02-16T14:06:41.807Z")));
    assert_eq!(
        items(&r.campaign.contact_list_names),
        Some(vec!["WANTED JAN23".into()])
    );
    assert_eq!(
        r.meta_info,
        s(r#"{"caller": "+919550000000", "customData": {"k": [1, 2]}}"#)
    );
    assert_eq!(
        r.user_level_tags,
        s(r#"[ { "name": "accountnum", "value": "123" } ]"#)
    );
}

#[test]
fn destinations_walk_into_legs_in_the_documented_order() {
    let r = &decoded(V2_PAGE, -330)[1];
    let kinds: Vec<_> = r
        .segments
        .iter()
        .map(|s| {
            (
                s.kind,
                s.queue_id.clone(),
                s.agent.as_ref().and_then(|a| a.agent_id.clone()),
                s.responding,
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (SegmentKind::QueueEntry, s("qu-1"), s("u-a1"), Some(true)),
            (SegmentKind::QueueEntry, s("qu-1"), s("u-a2"), Some(false)),
            (SegmentKind::AgentSegment, None, s("u-a3"), Some(true)),
            (SegmentKind::QueueEntry, s("qu-2"), None, None),
        ]
    );
    let q = &r.segments[0];
    assert_eq!(q.queue_name, s("Default Queue"));
    assert_eq!(q.enter_time, Some(utc("2025-10-01T02:10:36Z")));
    assert_eq!(q.callback_opted, Some(true));
    assert_eq!(q.callback_opted_time, Some(utc("2025-10-01T02:10:57.780Z")));
    let a = q.agent.as_ref().expect("responding agent");
    assert_eq!(a.first_response_seconds, Some(6));
    assert_eq!(a.interaction_seconds, Some(11));
    assert_eq!(a.after_call_work_seconds, Some(5));
    assert_eq!(a.assigned_at, Some(utc("2025-10-01T02:10:50Z")));
    assert_eq!(a.accepted_time, Some(utc("2025-10-01T02:11:00Z")));
    assert_eq!(items(&a.agent_notes), Some(vec!["n1".into()]));
    let consulting: serde_json::Value =
        serde_json::from_str(a.consulting_agents.as_deref().expect("consulting")).expect("json");
    assert_eq!(consulting[0]["name"], "+919550000000");
    let n = r.segments[1].agent.as_ref().expect("non-responding agent");
    assert_eq!(n.non_response_event, s("Supervisor Reassigned"));
    assert_eq!(n.interaction_seconds, None);
    // The agentless queue entry keeps its queue, and has no name or enter time.
    let bare = &r.segments[3];
    assert_eq!((bare.queue_name.clone(), bare.enter_time), (None, None));
    assert!(bare.agent.is_none());
}

#[test]
fn v1_records_carry_direction_inside_customerinfo() {
    let body = r#"{"numResults": 14, "data": [
        {"sessionId": "v1a", "sessionStartTime": "2026-02-23T15:20:04",
         "customerinfo": {"Direction": "Outbound", "CustomerPhone": "+1"},
         "destinations": [], "finalStatus": "CLOSED"}]}"#;
    let r = &decoded(body, 300)[0];
    assert_eq!(r.direction, s("Outbound"));
    assert_eq!(r.session_start_time, utc("2026-02-23T20:20:04Z"));
    assert_eq!((r.smart_status.clone(), r.reason.clone()), (None, None));
    assert_eq!(r.is_voicemail, None);
    assert_eq!(r.automation_bot_ids, None);
}

#[test]
fn casing_and_type_variants_are_accepted() {
    let body = r#"{"NUMRESULTS": "7", "Data": [
      {"SESSIONID": "a", "sessionStartTime": "2023-01-10 2:25:54", "isVoicemail": true,
       "direction": "Outbound", "reason": "", "Reason": "Escalated",
       "campaigninfo": {"attempt": "", "contactStatus": "answered"}},
      {"sessionId": "b", "sessionStartTime": "2023-01-10T02:25:54.250", "isVoicemail": "YES",
       "campaigninfo": {"attempt": "3"}, "csatScore": "", "npsScore": 9.0,
       "sessionEndTime": ""},
      {"sessionId": "c", "sessionStartTime": "2023-01-10T02:25:54+05:30", "isVoicemail": "no",
       "campaigninfo": {"attempt": 1, "contactListName": "LIST A"}, "reason": "Resolved",
       "destinations": [{"queueId": "qu-9", "respondingAgent": null,
                         "nonRespondingAgents": [{"agentId": "u-x"}]},
                        {"agentId": "u-y", "interactionDuration": "12"}]},
      {"sessionId": "d", "sessionStartTime": "2023-01-10T02:25:54Z", "isVoicemail": "",
       "destinations": null, "metaInfo": null}
    ]}"#;
    let page = decode_page(body.as_bytes(), 0).expect("decodable");
    assert_eq!(page.num_results, Some(7));
    let r: Vec<CallRecord> = page.records.into_iter().map(|r| r.expect("ok")).collect();
    assert_eq!(r[0].session_start_time, utc("2023-01-10T02:25:54Z"));
    assert_eq!(r[0].is_voicemail, Some(true));
    assert_eq!(r[0].reason, s("Escalated"));
    assert_eq!(r[0].campaign.attempt, None);
    assert_eq!(r[0].campaign.contact_status, s("answered"));
    assert_eq!(r[1].session_start_time, utc("2023-01-10T02:25:54.250Z"));
    assert_eq!(r[1].is_voicemail, Some(true));
    assert_eq!(r[1].campaign.attempt, Some(3));
    assert_eq!((r[1].csat_score, r[1].nps_score), (None, Some(9)));
    assert_eq!(r[1].session_end_time, None);
    assert_eq!(r[2].session_start_time, utc("2023-01-09T20:55:54Z"));
    assert_eq!(r[2].is_voicemail, Some(false));
    assert_eq!(
        items(&r[2].campaign.contact_list_names),
        Some(vec!["LIST A".into()])
    );
    let legs: Vec<_> = r[2]
        .segments
        .iter()
        .map(|s| {
            (
                s.kind,
                s.responding,
                s.agent.as_ref().and_then(|a| a.agent_id.clone()),
            )
        })
        .collect();
    assert_eq!(
        legs,
        vec![
            (SegmentKind::QueueEntry, Some(false), s("u-x")),
            (SegmentKind::AgentSegment, Some(true), s("u-y")),
        ]
    );
    assert_eq!(
        r[2].segments[1]
            .agent
            .as_ref()
            .and_then(|a| a.interaction_seconds),
        Some(12)
    );
    assert_eq!((r[3].is_voicemail, r[3].meta_info.clone()), (None, None));
    assert!(r[3].segments.is_empty());
}

#[test]
fn hostile_records_become_rejects_with_their_exact_json() {
    let hostile = [
        r#""just a string""#,
        r#"{"session_id": "x1", "sessionStartTime": "2025-01-01T00:00:00"}"#,
        r#"{"sessionId": "x2"}"#,
        r#"{"sessionId": "x3", "sessionStartTime": "2025-13-45T99:00:00"}"#,
        r#"{"sessionId": "x4", "sessionStartTime": "1970-01-01T00:00:00"}"#,
        r#"{"sessionId": "x5", "sessionStartTime": "2025-01-01T00:00:00", "destinations": "no"}"#,
        r#"{"sessionId": "x6", "sessionStartTime": "2025-01-01T00:00:00", "isVoicemail": "MAYBE"}"#,
        r#"{"sessionId": "x7", "sessionStartTime": "2025-01-01T00:00:00", "csatScore": "five"}"#,
        r#"{"sessionId": "x8", "sessionStartTime": "2025-01-01T00:00:00", "dispositions": [1]}"#,
        r#"{"sessionId": "x9", "sessionStartTime": "2025-01-01T00:00:00",
            "destinations": [{"destinationType": "Robot"}]}"#,
        r#"{"sessionId": "x10", "sessionStartTime": "2025-01-01T00:00:00",
            "destinations": [{"agentId": "u", "interactionDuration": -5}]}"#,
        r#"{"sessionId": "x11", "sessionStartTime": "2025-01-01T00:00:00",
            "destinations": [{"queueId": "q", "nonRespondingAgents": [7]}]}"#,
        r#"{"sessionId": 12, "sessionStartTime": "2025-01-01T00:00:00"}"#,
        r#"{"sessionId": "x13", "sessionStartTime": "2025-01-01T00:00:00", "channel": {"a": 1}}"#,
    ];
    let good = r#"{"sessionId": "ok", "sessionStartTime": "2025-01-01T00:00:00"}"#;
    let body = format!(r#"{{"data": [{good}, {}]}}"#, hostile.join(", "));
    let page = decode_page(body.as_bytes(), 0).expect("decodable");
    assert_eq!(page.records.len(), hostile.len() + 1);
    assert_eq!(
        page.records[0].as_ref().map(|r| r.session_id.to_string()),
        Ok("ok".to_string())
    );
    for (i, (rec, raw)) in page.records[1..].iter().zip(hostile).enumerate() {
        let rej = rec.as_ref().expect_err(raw);
        assert_eq!(rej.raw_json, raw, "record {i}");
        assert!(
            rej.reason.starts_with(&format!("data[{}]: ", i + 1)),
            "{}",
            rej.reason
        );
    }
    let reason = |i: usize| page.records[i].as_ref().expect_err("reject").reason.clone();
    assert!(reason(2).contains("no sessionId"), "{}", reason(2));
    assert!(
        reason(4).contains("session x3: sessionStartTime"),
        "{}",
        reason(4)
    );
    assert!(reason(11).contains("negative"), "{}", reason(11));
}

#[test]
fn undecodable_bodies_are_decode_errors() {
    for body in [
        "",
        "not json",
        r#"{"data": [{"sessionId": "a"}"#,
        r#"{"errors": [{"msg": "date range must not exceed 7 days", "code": 400}]}"#,
        r#"{"numResults": 3}"#,
        r#"{"data": {"sessionId": "a"}}"#,
        r#"[{"sessionId": "a"}]"#,
    ] {
        assert!(decode_page(body.as_bytes(), 0).is_err(), "{body:?}");
    }
    assert!(decode_page(&[0xff, 0xfe], 0).is_err());
    let empty = decode_page(br#"{"data": null, "numResults": -1}"#, 0).expect("empty page");
    assert!(empty.records.is_empty());
    assert_eq!(empty.num_results, None);
}

#[test]
fn the_one_pass_decoding_agrees_with_the_validating_one() {
    use super::wire::{decode_checked, decode_indexed};
    use crate::simulator::call_details::render::{page, RenderOpts, Selected};
    let day = utc("2026-06-01T00:00:00Z")..utc("2026-06-01T12:00:00Z");
    let calls = crate::simulator::call_details::calls_in(&Default::default(), day);
    assert!(calls.len() >= 100, "{}", calls.len());
    let opts = RenderOpts {
        seed: 7,
        offset_minutes: -330,
        v1: false,
        selected: Selected::ALL,
        unknown_fields: true,
    };
    let generated = page(&calls[..100], Some(100), &opts);
    let valid = [
        V2_PAGE,
        generated.as_str(),
        r#"{"data": null, "numResults": -1}"#,
        r#"{"data": [], "numResults": 0}"#,
        " \n{\"d\\u0061ta\": [{\"sessionId\": \"a\", \"sessionStartTime\": \"2025-10-01T10:00:00\"}, 7]}\t",
        r#"{"Data": [{"sessionId": "b", "sessionStartTime": "nope"}], "data": null}"#,
    ];
    for body in valid {
        let one_pass = decode_indexed(body, -330).expect("taken in one pass");
        let checked = decode_checked(body, -330).expect("decodable");
        assert_eq!(format!("{one_pass:?}"), format!("{checked:?}"), "{body}");
    }
    let sessions = decode_indexed(&generated, -330).expect("one pass").records;
    assert_eq!(sessions.iter().filter(|r| r.is_ok()).count(), 100);
    // Bodies the one pass leaves to the validating path: the same outcome either way.
    for body in [
        r#"{"data": [1,]}"#,
        r#"{"errors": [{"msg": "bad"}], "data": []}"#,
        r#"{"data": "x"}"#,
        r#"{"\ud800": 1, "data": []}"#,
        r#"[{"sessionId": "a"}]"#,
        r#"{"numResults": 3}"#,
    ] {
        assert!(decode_indexed(body, 0).is_none(), "{body}");
        assert_eq!(
            format!("{:?}", decode_page(body.as_bytes(), 0)),
            format!("{:?}", decode_checked(body, 0)),
            "{body}"
        );
    }
}
