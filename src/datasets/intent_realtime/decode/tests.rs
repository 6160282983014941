//! Unit tests of the parent module on hand-written fixtures (doc samples, casing variants,
//! malformed records); expected values are written out, never computed by the code under test.

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("test instant")
}

/// The documented sample (S5), rewritten as valid JSON: values quoted, the spaced timestamps
/// (`14: 07: 08.185+00: 00`) and the trailing comma fixed.
const DOC_SAMPLE: &str = r#"[
 {
  "intent": ["Book a Ticket", "Book a Flight"],
  "ANI": "st-bb0e8899-a753-568f-984f-3338de26xxxx",
  "DNI": "username@domain.com",
  "channel": "rtm",
  "startTime": "2022-01-06T14:07:08.185+00:00",
  "endTime": "2022-01-06T14:44:17.527+00:00",
  "status": "completed",
  "timeHandled": "50s",
  "deflectedTo": "rtm",
  "userId": "u-6b184e56-ebe3-5acb-af3c-1e6bcb25xxxx",
  "sessionId": "6364a8616d8e6a6a0effxxxx"
 }
]"#;

fn doc_session() -> IntentSession {
    IntentSession {
        session_id: "6364a8616d8e6a6a0effxxxx".into(),
        user_id: Some("u-6b184e56-ebe3-5acb-af3c-1e6bcb25xxxx".into()),
        channel: Some("rtm".into()),
        ani: Some("st-bb0e8899-a753-568f-984f-3338de26xxxx".into()),
        dni: Some("username@domain.com".into()),
        intents: vec!["Book a Ticket".into(), "Book a Flight".into()],
        start_time: Some(at("2022-01-06T14:07:08.185Z")),
        end_time: at("2022-01-06T14:44:17.527Z"),
        status: Some("completed".into()),
        time_handled: Some("50s".into()),
        time_handled_seconds: Some(50),
        deflected_to: Some("rtm".into()),
        extra: None,
    }
}

fn decode_ok(body: &str) -> Vec<IntentSession> {
    decode_sessions(body.as_bytes())
        .expect("body decodes")
        .into_iter()
        .map(|r| r.expect("session decodes"))
        .collect()
}

#[test]
fn doc_sample_decodes() {
    assert_eq!(decode_ok(DOC_SAMPLE), vec![doc_session()]);
}

#[test]
fn offsets_become_utc_and_casing_does_not_matter() {
    let body = r#"[
        {"SESSIONID": "s-1", "endtime": "2026-03-01T10:00:00+05:30", "StartTime": "2026-03-01T09:46:52Z",
         "Intent": ["A"], "ani": "+126529865", "Dni": "d", "CHANNEL": "audiocodes", "Status": "Dropoff",
         "TimeHandled": "13m: 8s", "DeflectedTo": null, "USERID": "u-1", "unknown": {"nested": [1]}},
        {"sessionId": "s-2", "endTime": "2026-03-01T04:30:00.000Z"}
    ]"#;
    let got = decode_ok(body);
    assert_eq!(
        got[0],
        IntentSession {
            session_id: "s-1".into(),
            user_id: Some("u-1".into()),
            channel: Some("audiocodes".into()),
            ani: Some("+126529865".into()),
            dni: Some("d".into()),
            intents: vec!["A".into()],
            start_time: Some(at("2026-03-01T09:46:52Z")),
            end_time: at("2026-03-01T04:30:00Z"),
            status: Some("Dropoff".into()),
            time_handled: Some("13m: 8s".into()),
            time_handled_seconds: Some(788),
            deflected_to: None,
            extra: Some(r#"{"unknown":{"nested": [1]}}"#.into()),
        }
    );
    assert_eq!(
        got[1],
        IntentSession {
            session_id: "s-2".into(),
            user_id: None,
            channel: None,
            ani: None,
            dni: None,
            intents: vec![],
            start_time: None,
            end_time: at("2026-03-01T04:30:00Z"),
            status: None,
            time_handled: None,
            time_handled_seconds: None,
            deflected_to: None,
            extra: None,
        }
    );
}

#[test]
fn unparsable_time_handled_keeps_the_raw_string() {
    let got = decode_ok(
        r#"[{"sessionId":"s","endTime":"2026-03-01T04:30:00Z","timeHandled":"about 5 minutes","intent":null,"startTime":""}]"#,
    );
    assert_eq!(got[0].time_handled.as_deref(), Some("about 5 minutes"));
    assert_eq!(got[0].time_handled_seconds, None);
    assert!(got[0].intents.is_empty());
    assert_eq!(got[0].start_time, None);
}

#[test]
fn bad_sessions_are_rejected_with_their_raw_json() {
    let cases: [(&str, &str); 15] = [
        (
            r#"{"endTime":"2026-03-01T04:30:00Z"}"#,
            "session has no sessionId",
        ),
        (
            r#"{"sessionId":"","endTime":"2026-03-01T04:30:00Z"}"#,
            "session has no sessionId",
        ),
        (
            r#"{"sessionId":null,"endTime":"2026-03-01T04:30:00Z"}"#,
            "session has no sessionId",
        ),
        (
            r#"{"sessionId":42,"endTime":"2026-03-01T04:30:00Z"}"#,
            "sessionId is a number",
        ),
        (r#"{"sessionId":"s"}"#, "session has no endTime"),
        (
            r#"{"sessionId":"s","endTime":"yesterday"}"#,
            "endTime \"yesterday\" is not an ISO-8601",
        ),
        (
            r#"{"sessionId":"s","endTime":"2026-03-01T04:30:00"}"#,
            "is not an ISO-8601",
        ),
        (
            r#"{"sessionId":"s","endTime":"9999-12-31T00:00:00Z"}"#,
            "outside the plausible range",
        ),
        (
            r#"{"sessionId":"s","endTime":"0000-01-01T00:00:00Z"}"#,
            "outside the plausible range",
        ),
        (
            r#"{"sessionId":"s","endTime":1646109000000}"#,
            "endTime is a number",
        ),
        (
            r#"{"sessionId":"s","endTime":"2026-03-01T04:30:00Z","startTime":"soon"}"#,
            "startTime \"soon\" is not an ISO-8601",
        ),
        (
            r#"{"sessionId":"s","endTime":"2026-03-01T04:30:00Z","intent":"Book"}"#,
            "intent is not an array",
        ),
        (
            r#"{"sessionId":"s","endTime":"2026-03-01T04:30:00Z","intent":["a",7]}"#,
            "intent[1] is a number",
        ),
        (
            r#"{"sessionId":"s","endTime":"2026-03-01T04:30:00Z","ANI":{"x":1}}"#,
            "ANI is an object",
        ),
        (
            r#"["not","a","session"]"#,
            "session record is not an object",
        ),
    ];
    let body = format!(
        "[{},{}]",
        cases.iter().map(|c| c.0).collect::<Vec<_>>().join(","),
        &DOC_SAMPLE[1..DOC_SAMPLE.len() - 1]
    );
    let got = decode_sessions(body.as_bytes()).expect("body decodes");
    assert_eq!(got.len(), cases.len() + 1);
    for (i, (raw, fragment)) in cases.iter().enumerate() {
        let r = got[i].as_ref().expect_err(raw);
        assert!(r.reason.starts_with(&format!("[{i}]: ")), "{}", r.reason);
        assert!(
            r.reason.contains(fragment),
            "{:?} should contain {fragment:?}",
            r.reason
        );
        assert_eq!(r.raw_json, *raw);
    }
    assert_eq!(got[cases.len()].as_ref().ok(), Some(&doc_session()));
}

#[test]
fn non_array_bodies_are_decode_errors() {
    for body in [
        &b""[..],
        b"{}",
        br#"{"errors":[{"msg":"Invalid SDK credentials","code":4002}]}"#,
        b"null",
        b"[{\"sessionId\":\"s\"",
        b"[1,2",
        b"<html>",
        b"[] x",
    ] {
        let err = decode_sessions(body).expect_err(&String::from_utf8_lossy(body));
        assert_eq!(err.api, "IntentRealtimeData");
    }
    assert_eq!(decode_sessions(b" [ ] ").expect("empty array").len(), 0);
}

#[test]
fn session_batch_round_trips() {
    let mut other = doc_session();
    other.session_id = "s-2".into();
    other.intents = vec![];
    other.start_time = None;
    other.user_id = None;
    other.time_handled = Some("?".into());
    other.time_handled_seconds = None;
    let sessions = vec![doc_session(), other];
    let batch = sessions_to_batch("acc-1", "st-bot", &sessions, at("2026-01-02T00:00:00Z"));
    assert_eq!(batch.schema(), intent_realtime_schema());
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(session_ids(&batch), vec!["6364a8616d8e6a6a0effxxxx", "s-2"]);
    assert_eq!(sessions_from_batch(&batch), Ok(sessions));

    let col = |name: &str| batch.column_by_name(name).expect("column").clone();
    let bot = col("bot_id");
    let bot = bot.as_any().downcast_ref::<StringArray>().expect("utf8");
    assert_eq!(bot.iter().collect::<Vec<_>>(), vec![Some("st-bot"); 2]);
    let exported = col("exported_at");
    let exported = exported
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .expect("ts");
    assert_eq!(
        exported.values().to_vec(),
        vec![at("2026-01-02T00:00:00Z").timestamp_millis(); 2]
    );
    let end = col("end_time");
    let end = end
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .expect("ts");
    assert_eq!(end.value(0), 1_641_480_257_527); // 2022-01-06T14:44:17.527Z
    let DataType::List(item) = col("intents").data_type().clone() else {
        panic!("intents is a list");
    };
    assert_eq!(item.name(), "item");
    assert!(item.is_nullable());
}

#[test]
fn empty_batches_and_foreign_batches() {
    let batch = sessions_to_batch("a", "b", &[], at("2026-01-02T00:00:00Z"));
    assert_eq!(batch.num_rows(), 0);
    assert_eq!(batch.schema(), intent_realtime_schema());
    assert!(session_ids(&batch).is_empty());
    assert_eq!(sessions_from_batch(&batch), Ok(vec![]));

    let foreign = RecordBatch::try_from_iter([(
        "session_id",
        Arc::new(Int64Array::from(vec![1])) as ArrayRef,
    )])
    .expect("batch");
    assert!(session_ids(&foreign).is_empty());
    assert_eq!(
        sessions_from_batch(&foreign),
        Err(NotAnIntentBatch {
            column: "session_id"
        })
    );
}

#[test]
fn an_end_time_finer_than_a_millisecond_is_kept_as_stored_in_milliseconds() {
    let body = r#"[{"sessionId": "s-1", "endTime": "2024-05-01T10:00:00.123456789Z"}]"#;
    let got = decode_ok(body);
    assert_eq!(
        got[0].end_time,
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2024, 5, 1, 10, 0, 0)
            .single()
            .expect("t")
            + chrono::TimeDelta::milliseconds(123)
    );
}

#[test]
fn extra_round_trips_and_a_file_written_before_the_column_reads_as_none() {
    let body = r#"[{"sessionId": "s-1", "endTime": "2024-05-01T10:00:00Z", "queue": {"id": 7}, "w": 1e2}]"#;
    let sessions = decode_ok(body);
    assert_eq!(
        sessions[0].extra.as_deref(),
        Some(r#"{"queue":{"id": 7},"w":1e2}"#)
    );
    let batch = sessions_to_batch("acc", "st-bot", &sessions, at("2024-05-01T11:00:00Z"));
    assert_eq!(sessions_from_batch(&batch), Ok(sessions.clone()));
    let older = batch
        .project(&(0..batch.num_columns() - 1).collect::<Vec<_>>())
        .expect("without extra");
    assert!(older.column_by_name("extra").is_none());
    let read = sessions_from_batch(&older).expect("an older batch");
    assert_eq!(read[0].extra, None);
    assert_eq!(read[0].session_id, "s-1");
}
