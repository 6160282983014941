//! The wire format of Queue Size against hand-written bodies: the documented sample with its
//! `//` comment, comments that must stay (inside strings) or must not be accepted, and broken
//! records that become rejects.

use chrono::TimeZone;

use super::*;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 12, 14, 3, 0)
        .single()
        .expect("t")
}

/// The documented sample (reference §9), with a `//` comment where a reader of the docs finds
/// one, and an unknown key at each level.
const SAMPLE: &str = r#"[
  // queue size of one queue
  { "queueId": "qu-aa16c29", "queueName": "Default Queue", "skills": [],
    "waiting": 0, "engaged": 0, "dropOff": 44,
    "agentStatus": { "available": 1, "offline": 0, "busy": 0, "away": 0, "onBreak": 2 },
    "noOfAgents": 1,
    "queueSummary": { "avgWait": 0, "maxWait": 0, "ASA": 0.5, "slaPct": 93 },
    "region": "eu" } // end of the queue
]"#;

#[test]
fn the_documented_sample_with_its_comment_decodes_every_field() {
    let records = decode_queue_stats(SAMPLE.as_bytes(), at()).expect("decodes");
    let [Ok(q)] = records.as_slice() else {
        panic!("one record: {records:?}");
    };
    let want = QueueSnapshot {
        polled_at: at(),
        queue_id: "qu-aa16c29".into(),
        queue_name: Some("Default Queue".into()),
        waiting: Some(0),
        engaged: Some(0),
        drop_off: Some(44),
        agents_available: Some(1),
        agents_offline: Some(0),
        agents_busy: Some(0),
        agents_away: Some(0),
        agents: Some(1),
        avg_wait: Some(0.0),
        max_wait: Some(0.0),
        asa: Some(0.5),
        skills: Some("[]".into()),
        extra: Some(
            r#"{"agentStatus":{"onBreak":2},"queueSummary":{"slaPct":93},"region":"eu"}"#.into(),
        ),
    };
    assert_eq!(q, &want);
}

#[test]
fn slashes_inside_strings_are_data_not_comments() {
    let body = r#"[{"queueId":"qu-1","queueName":"a // b \" // c","skills":["http://x"]}]"#;
    let records = decode_queue_stats(body.as_bytes(), at()).expect("decodes");
    let Ok(q) = &records[0] else {
        panic!("{records:?}")
    };
    assert_eq!(q.queue_name.as_deref(), Some("a // b \" // c"));
    assert_eq!(q.skills.as_deref(), Some(r#"["http://x"]"#));
}

#[test]
fn only_line_comments_are_tolerated_anything_else_is_an_error() {
    for body in [
        "[ /* block */ {\"queueId\":\"qu-1\"} ]",
        "[ / {\"queueId\":\"qu-1\"} ]",
        "[ {\"queueId\":\"qu-1\"}, ]",
        "[ {\"queueId\":\"qu-1\"} ] trailing garbage",
        "# not json\n[]",
        "{\"queueId\":\"qu-1\"}",
        "<html>502 Bad Gateway</html>",
        "",
    ] {
        let err = decode_queue_stats(body.as_bytes(), at()).expect_err(body);
        assert_eq!(err.api, "queueStatsById", "{body}");
    }
    // A comment that runs to the end of the body leaves nothing unclosed behind it.
    let records =
        decode_queue_stats(b"[{\"queueId\":\"qu-1\"}] // last line", at()).expect("decodes");
    assert_eq!(records.len(), 1);
    assert_eq!(strip_line_comments("[1]"), Cow::Borrowed("[1]"));
}

#[test]
fn broken_records_are_rejects_with_their_raw_json_and_a_reason() {
    let body = r#"[
      {"queueId":"qu-ok","waiting":3},
      {"queueName":"no id"},
      {"queueId":"qu-2","waiting":"many"},
      {"queueId":"qu-3","waiting":2.5},
      {"queueId":"qu-4","agentStatus":[1,2]},
      {"queueId":"qu-5","queueSummary":{"avgWait":"12s"}},
      {"queueId":7},
      42
    ]"#;
    let records = decode_queue_stats(body.as_bytes(), at()).expect("decodes");
    assert!(matches!(&records[0], Ok(q) if q.waiting == Some(3) && q.extra.is_none()));
    let reasons: Vec<String> = records[1..]
        .iter()
        .map(|r| {
            let r = r.as_ref().expect_err("a reject");
            serde_json::from_str::<serde_json::Value>(&r.raw_json).expect("raw JSON");
            r.reason.clone()
        })
        .collect();
    for (reason, want) in reasons.iter().zip([
        "[1]: queue record has no queueId",
        "[2]: waiting is not an integer: \"many\"",
        "[3]: waiting is not an integer: 2.5",
        "[4]: agentStatus is not an object: [1,2]",
        "[5]: queueSummary.avgWait is not a number: \"12s\"",
        "[6]: queueId is a number, not a string: 7",
        "[7]: queue record is not an object",
    ]) {
        assert_eq!(reason, want);
    }
    assert_eq!(reasons.len(), 7);
}

#[test]
fn keys_are_matched_in_any_case_and_nulls_are_absent_values() {
    let body = r#"[{"QUEUEID":"qu-1","Waiting":null,"agentstatus":null,"queuesummary":{"asa":4},"skills":null}]"#;
    let records = decode_queue_stats(body.as_bytes(), at()).expect("decodes");
    let Ok(q) = &records[0] else {
        panic!("{records:?}")
    };
    assert_eq!(q.queue_id, "qu-1");
    assert_eq!(
        (q.waiting, q.agents_busy, q.asa, &q.skills),
        (None, None, Some(4.0), &None)
    );
    assert_eq!(q.extra, None);
}

#[test]
fn a_batch_reads_back_as_the_keys_of_its_rows() {
    let records = decode_queue_stats(SAMPLE.as_bytes(), at()).expect("decodes");
    let snapshots: Vec<QueueSnapshot> = records.into_iter().map(|r| r.expect("ok")).collect();
    let batch = snapshots_to_batch("acct", &snapshots, at());
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(row_keys(&batch), ["qu-aa16c29|2024-06-12T14:03:00.000Z"]);
}
