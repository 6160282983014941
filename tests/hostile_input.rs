//! Hostile or broken API responses never panic the parsers and decoders: property tests over
//! arbitrary bytes and strings, over structurally plausible JSON whose leaves are wrong types,
//! huge numbers, NaN-like strings, absurd timestamps (year 0, 9999, beyond) and negative or
//! gigantic durations, and explicit checks that deep nesting is an error, not a stack overflow.
//! A decoder may refuse a body (`DecodeError`) or reject a record; it must not panic, and the
//! records it accepts must normalize into a batch.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use smartassist_export::datasets::intent_realtime::decode::{decode_sessions, sessions_to_batch};
use smartassist_export::datasets::user_status::decode::{decode_page, UserStatusNormalizer};
use smartassist_export::model::Granularity;
use smartassist_export::sources::durations::{parse_sec_sum, parse_time_handled};

/// Field names the decoders look for (in several casings), so generated objects hit real paths.
const KEYS: &[&str] = &[
    "hasMore",
    "hasmore",
    "limit",
    "offset",
    "data",
    "userId",
    "USERID",
    "email",
    "emailId",
    "firstName",
    "lastName",
    "customId",
    "timeInterval",
    "startTime",
    "endTime",
    "status",
    "metric",
    "value",
    "stats",
    "sum",
    "errors",
    "msg",
    "code",
    "sessionId",
    "intent",
    "ANI",
    "DNI",
    "channel",
    "timeHandled",
    "deflectedTo",
];

/// Leaves chosen to break naive parsing.
fn hostile_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN/inf", |f| f.is_finite())
            .prop_map(Value::from),
        Just(json!(1e308)),
        Just(json!(-1e308)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        prop::sample::select(vec![
            "",
            "NaN",
            "nan",
            "Infinity",
            "-Infinity",
            "null",
            "919 sec",
            "-5 sec",
            "99999999999999999999999 sec",
            "9223372036854775807 sec",
            "9223372036854775808 sec",
            "1e309 sec",
            " sec",
            "sec",
            "13m: 8s",
            "-13m: 8s",
            "99999999999999999h: 99m: 99s",
            "9223372036854775807h",
            "0000-01-01T00:00:00Z",
            "0000-01-01T00:00:00.000Z",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59.999+14:00",
            "+275760-09-13T00:00:00Z",
            "-000001-01-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:60Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00+99:99",
            "2026-01-01 00:00:00+0530",
            "\u{0}",
            "\u{FFFD}\u{FFFD}",
            "é😀",
        ])
        .prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
    ]
}

/// JSON trees built from the real field names and hostile leaves, a few levels deep.
fn hostile_json() -> impl Strategy<Value = Value> {
    hostile_leaf().prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|kvs| {
                let mut m = Map::new();
                for (k, v) in kvs {
                    m.insert(k.to_string(), v);
                }
                Value::Object(m)
            }),
        ]
    })
}

/// A UserStatus envelope whose agent/bucket/entry leaves are hostile.
fn hostile_user_status_page() -> impl Strategy<Value = Value> {
    let entry = (hostile_leaf(), hostile_leaf(), hostile_leaf(), hostile_json()).prop_map(
        |(metric, value, sum, extra)| {
            json!({"metric": metric, "value": value, "stats": {"sum": sum}, "x": extra})
        },
    );
    let bucket = (
        hostile_leaf(),
        hostile_leaf(),
        prop::collection::vec(entry, 0..4),
    )
        .prop_map(
            |(start, end, status)| json!({"startTime": start, "endTime": end, "status": status}),
        );
    let agent = (
        hostile_leaf(),
        hostile_leaf(),
        hostile_leaf(),
        prop::collection::vec(bucket, 0..4),
    )
        .prop_map(|(user, email, first, buckets)| {
            json!({"userId": user, "email": email, "firstName": first, "timeInterval": buckets})
        });
    (hostile_leaf(), prop::collection::vec(agent, 0..4)).prop_map(
        |(has_more, data)| json!({"hasMore": has_more, "limit": 3, "offset": 0, "data": data}),
    )
}

/// An IntentRealtimeData array whose session leaves are hostile.
fn hostile_sessions() -> impl Strategy<Value = Value> {
    let session = (
        hostile_leaf(),
        hostile_leaf(),
        hostile_leaf(),
        hostile_leaf(),
        hostile_json(),
    )
        .prop_map(|(id, start, end, handled, intent)| {
            json!({"sessionId": id, "startTime": start, "endTime": end,
                   "timeHandled": handled, "intent": intent, "channel": "rtm"})
        });
    prop::collection::vec(session, 0..6).prop_map(Value::Array)
}

/// Decode a UserStatus body and push whatever decoded through the normalizer.
fn exercise_user_status(body: &[u8]) {
    if let Ok(page) = decode_page(body) {
        let claim = Utc.timestamp_opt(0, 0).single().expect("epoch")
            ..Utc
                .with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
                .single()
                .expect("far future");
        let mut n = UserStatusNormalizer::new("acct", Granularity::PT30M, Utc::now());
        for agent in &page.agents {
            match agent {
                Ok(a) => n.push_agent(a, &claim),
                Err(r) => n.push_reject(r.clone()),
            }
        }
        let rows = n.rows();
        let (batch, _rejects) = n.finish();
        assert_eq!(batch.num_rows(), rows);
    }
}

fn exercise_intent(body: &[u8]) {
    if let Ok(records) = decode_sessions(body) {
        let ok: Vec<_> = records.into_iter().filter_map(Result::ok).collect();
        let batch = sessions_to_batch("acct", "bot", &ok, Utc::now());
        assert_eq!(batch.num_rows(), ok.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn duration_parsers_never_panic(s in "\\PC{0,40}") {
        let _ = parse_sec_sum(&s);
        let _ = parse_time_handled(&s);
    }

    #[test]
    fn duration_parsers_never_panic_on_number_shaped_text(
        n in any::<i128>(), m in any::<i64>(), unit in prop::sample::select(vec![" sec", "s", "m", "h", "m: ", "h: "])
    ) {
        let _ = parse_sec_sum(&format!("{n}{unit}"));
        let _ = parse_time_handled(&format!("{n}{unit}{m}s"));
        let _ = parse_time_handled(&format!("{n}h: {m}m: {n}s"));
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise_user_status(&body);
        exercise_intent(&body);
    }

    #[test]
    fn decoders_never_panic_on_hostile_json(v in hostile_json()) {
        let body = serde_json::to_vec(&v).expect("serializable");
        exercise_user_status(&body);
        exercise_intent(&body);
    }

    #[test]
    fn user_status_pages_with_hostile_leaves_never_panic(v in hostile_user_status_page()) {
        exercise_user_status(&serde_json::to_vec(&v).expect("serializable"));
    }

    #[test]
    fn intent_sessions_with_hostile_leaves_never_panic(v in hostile_sessions()) {
        exercise_intent(&serde_json::to_vec(&v).expect("serializable"));
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [200usize, 10_000, 100_000] {
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let objects = format!("{}1{}", "{\"data\":".repeat(depth), "}".repeat(depth));
        let in_page =
            format!(r#"{{"hasMore":false,"data":[{{"userId":"u","timeInterval":{arrays}}}]}}"#);
        let in_session =
            format!(r#"[{{"sessionId":"s","endTime":"2026-01-01T00:00:00Z","intent":{arrays}}}]"#);
        // Either the body is refused or every record in it is rejected; nothing is accepted
        // and nothing overflows the stack (serde_json's depth limit is 128; RawValue skipping
        // is iterative).
        for body in [&arrays, &objects, &in_page, &in_session] {
            match decode_page(body.as_bytes()) {
                Err(_) => {}
                Ok(page) => assert!(
                    page.agents.iter().all(|a| a.is_err()),
                    "depth {depth}: a nested UserStatus record was accepted"
                ),
            }
            match decode_sessions(body.as_bytes()) {
                Err(_) => {}
                Ok(records) => assert!(
                    records.iter().all(|r| r.is_err()),
                    "depth {depth}: a nested session was accepted"
                ),
            }
        }
    }
}

#[test]
fn non_utf8_and_truncated_bodies_are_decode_errors() {
    for body in [
        &b"\xff\xfe\x00{"[..],
        b"{\"hasMore\":true,\"data\":[{\"userId\":\"\xc3\x28\"}]}",
        b"{\"hasMore\":true,\"data\":[",
        b"[{\"sessionId\":\"s\"",
        b"",
    ] {
        assert!(decode_page(body).is_err(), "{body:?}");
        assert!(decode_sessions(body).is_err(), "{body:?}");
    }
}

#[test]
fn absurd_timestamps_and_durations_become_rejects() {
    let page = json!({"hasMore": false, "data": [{
        "userId": "u-1",
        "timeInterval": [
            {"startTime": "0000-01-01T00:00:00Z", "endTime": "0000-01-01T00:30:00Z",
             "status": [{"metric": "AgentStatus", "value": "Available", "stats": {"sum": "5 sec"}}]},
            {"startTime": "9999-12-31T23:00:00Z", "endTime": "9999-12-31T23:30:00Z",
             "status": [{"metric": "AgentStatus", "value": "Available", "stats": {"sum": "5 sec"}}]},
            {"startTime": "2026-01-01T00:00:00Z", "endTime": "2026-01-01T00:30:00Z",
             "status": [
                {"metric": "AgentStatus", "value": "Available", "stats": {"sum": "-5 sec"}},
                {"metric": "AgentStatus", "value": "Away", "stats": {"sum": "99999999999999999999 sec"}},
                {"metric": "AgentStatus", "value": "Busy", "stats": {"sum": "NaN"}},
                {"metric": "AgentStatus", "value": "Lunch", "stats": {"sum": 12}},
                {"metric": "AgentStatus", "value": "Ok", "stats": {"sum": "7 sec"}}
             ]}
        ]
    }]});
    let body = serde_json::to_vec(&page).expect("json");
    let page = decode_page(&body).expect("the envelope is valid");
    let agent = page.agents[0].as_ref().expect("agent decodes");
    let claim = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("t")
        ..Utc
            .with_ymd_and_hms(2026, 1, 2, 0, 0, 0)
            .single()
            .expect("t");
    let mut n = UserStatusNormalizer::new("acct", Granularity::PT30M, Utc::now());
    n.push_agent(agent, &claim);
    let (batch, rejects) = n.finish();
    // Only the one well-formed entry in the claimed day becomes a row; the malformed entries in
    // it are rejected, not dropped silently. (Buckets outside the claim belong to other days.)
    assert_eq!(batch.num_rows(), 1, "rejects: {rejects:?}");
    assert!(rejects.len() >= 3, "rejects: {rejects:?}");
}
