//! Unit tests of the parent module on hand-written fixtures (doc samples, casing variants,
//! malformed records); expected values are written out, never computed by the code under test.

use arrow::array::{Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::TimeUnit;
use chrono::NaiveDate;
use serde_json::json;

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("test instant")
}

fn ms(s: &str) -> i64 {
    at(s).timestamp_millis()
}

fn utc_day(day: &str) -> Range<DateTime<Utc>> {
    let start = at(&format!("{day}T00:00:00Z"));
    start..start + chrono::Duration::days(1)
}

/// The documented Gen C sample response (S2), with its stray trailing comma removed.
const DOC_SAMPLE: &str = r#"{
    "hasMore": true,
    "limit": 50,
    "offset": 0,
    "data": [
        {
            "userId": "u-0572f8c7-970b-5c78-ab20-e9c1a10fxxxx",
            "firstName": "Nick",
            "lastName": "J",
            "email": "nick.j@domain.com",
            "customId": "101010",
            "timeInterval": []
        },
        {
            "userId": "u-2b991240-7f3e-53a1-a09c-aba82a4cxxxx",
            "firstName": "Joce",
            "lastName": "Tay",
            "email": "joce.tay@domain.com",
            "customId": "505951",
            "timeInterval": [
                {
                    "startTime": "2022-12-12T00:00:00Z",
                    "endTime": "2022-12-12T00:30:00Z",
                    "status": []
                },
                {
                    "startTime": "2022-12-12T15:30:00Z",
                    "endTime": "2022-12-12T16:00:00Z",
                    "status": [
                        { "metric": "AgentStatus", "value": "Available",             "stats": { "sum": "919 sec" } },
                        { "metric": "AgentState",  "value": "Available:Idle",        "stats": { "sum": "565 sec" } },
                        { "metric": "AgentState",  "value": "AVAILABLE:Interacting", "stats": { "sum": "354 sec" } }
                    ]
                }
            ]
        }
    ]
}"#;

/// The legacy (Gen A) shape: an object keyed by user id, `emailId`, no `lastName`.
const LEGACY_SAMPLE: &str = r#"{
    "u-93735585-7d99-5608-ba6f-a21c71136808": {
        "emailId": "gau@gmail.com",
        "firstName": "gautham",
        "timeInterval": [
            {
                "startTime": "2022-08-25T10:30:00Z",
                "endTime": "2022-08-25T10:50:00Z",
                "status": [
                    { "metric": "AgentStatus", "value": "Away", "stats": { "sum": "1200 sec" } }
                ]
            }
        ]
    }
}"#;

fn ok_agents<'a>(page: &'a UserStatusPage<'a>) -> Vec<&'a AgentRecord<'a>> {
    page.agents
        .iter()
        .map(|a| a.as_ref().expect("agent decodes"))
        .collect()
}

fn str_col(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let col = batch.column_by_name(name).expect("column exists");
    let arr = col
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("utf8 column");
    arr.iter().map(|v| v.map(str::to_owned)).collect()
}

fn ts_col(batch: &RecordBatch, name: &str) -> Vec<i64> {
    let col = batch.column_by_name(name).expect("column exists");
    let arr = col
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .expect("timestamp column");
    assert_eq!(arr.null_count(), 0);
    arr.values().to_vec()
}

fn i64_col(batch: &RecordBatch, name: &str) -> Vec<i64> {
    let col = batch.column_by_name(name).expect("column exists");
    col.as_any()
        .downcast_ref::<Int64Array>()
        .expect("int64 column")
        .values()
        .to_vec()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn normalize(body: &str, claim: Range<DateTime<Utc>>) -> (RecordBatch, Vec<Reject>) {
    let page = decode_page(body.as_bytes()).expect("page decodes");
    let mut n =
        UserStatusNormalizer::new("acc-1", Granularity::PT30M, at("2026-01-02T03:04:05.678Z"));
    for agent in page.agents {
        match agent {
            Ok(a) => n.push_agent(&a, &claim),
            Err(r) => n.push_reject(r),
        }
    }
    n.finish()
}

fn assert_valid_json(raw: &str) {
    serde_json::from_str::<serde_json::Value>(raw)
        .unwrap_or_else(|e| panic!("reject raw_json is not JSON ({e}): {raw}"));
}

#[test]
fn request_body_matches_the_documented_shape() {
    let window = DayWindow {
        day: NaiveDate::from_ymd_opt(2026, 3, 8).expect("date"),
        offset_minutes: 300,
        claim: at("2026-03-08T05:00:00Z")..at("2026-03-09T04:00:00Z"),
    };
    assert_eq!(
        request_body(
            &["a@x.com".into(), "b@x.com".into()],
            &window,
            Granularity::PT30M
        ),
        json!({
            "filter": {
                "agents": ["a@x.com", "b@x.com"],
                "dateFilter": {"startDate": "2026-03-08", "endDate": "2026-03-08", "timeZoneOffSet": 300}
            },
            "granularity": "PT30M"
        })
    );
    let ist = DayWindow {
        offset_minutes: -330,
        ..window
    };
    assert_eq!(
        request_body(&[], &ist, Granularity::PT15M),
        json!({
            "filter": {
                "dateFilter": {"startDate": "2026-03-08", "endDate": "2026-03-08", "timeZoneOffSet": -330}
            },
            "granularity": "PT15M"
        })
    );
}

#[test]
fn doc_sample_decodes_and_normalizes() {
    let page = decode_page(DOC_SAMPLE.as_bytes()).expect("doc sample decodes");
    assert!(page.has_more);
    assert_eq!(page.record_count, 2);
    let agents = ok_agents(&page);
    assert_eq!(
        agents[0].user_id(),
        "u-0572f8c7-970b-5c78-ab20-e9c1a10fxxxx"
    );
    assert_eq!(agents[0].email(), Some("nick.j@domain.com"));
    assert_eq!(agents[0].first_name(), Some("Nick"));
    assert_eq!(agents[0].last_name(), Some("J"));
    assert_eq!(agents[0].custom_id(), Some("101010"));
    assert_eq!(agents[0].bucket_count(), 0);
    assert_eq!(agents[1].bucket_count(), 2);
    assert_eq!(agents[1].status_count(), 3);

    let (batch, rejects) = normalize(DOC_SAMPLE, utc_day("2022-12-12"));
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(batch.schema(), user_status_schema());
    assert_eq!(batch.num_rows(), 3);
    let joce = "u-2b991240-7f3e-53a1-a09c-aba82a4cxxxx";
    assert_eq!(str_col(&batch, "account_id"), vec![s("acc-1"); 3]);
    assert_eq!(str_col(&batch, "user_id"), vec![s(joce); 3]);
    assert_eq!(str_col(&batch, "email"), vec![s("joce.tay@domain.com"); 3]);
    assert_eq!(str_col(&batch, "first_name"), vec![s("Joce"); 3]);
    assert_eq!(str_col(&batch, "last_name"), vec![s("Tay"); 3]);
    assert_eq!(str_col(&batch, "custom_id"), vec![s("505951"); 3]);
    assert_eq!(
        ts_col(&batch, "bucket_start"),
        vec![ms("2022-12-12T15:30:00Z"); 3]
    );
    assert_eq!(
        ts_col(&batch, "bucket_end"),
        vec![ms("2022-12-12T16:00:00Z"); 3]
    );
    assert_eq!(str_col(&batch, "granularity"), vec![s("PT30M"); 3]);
    assert_eq!(
        str_col(&batch, "metric"),
        vec![s("AgentStatus"), s("AgentState"), s("AgentState")]
    );
    assert_eq!(
        str_col(&batch, "value"),
        vec![
            s("Available"),
            s("Available:Idle"),
            s("AVAILABLE:Interacting")
        ]
    );
    assert_eq!(i64_col(&batch, "duration_seconds"), vec![919, 565, 354]);
    assert_eq!(
        ts_col(&batch, "exported_at"),
        vec![ms("2026-01-02T03:04:05.678Z"); 3]
    );
    let DataType::Timestamp(unit, tz) = batch.column(6).data_type().clone() else {
        panic!("bucket_start is a timestamp");
    };
    assert_eq!((unit, tz.as_deref()), (TimeUnit::Millisecond, Some("UTC")));
}

use arrow::datatypes::DataType;

#[test]
fn legacy_shape_is_one_unpaginated_page() {
    let page = decode_page(LEGACY_SAMPLE.as_bytes()).expect("legacy decodes");
    assert!(!page.has_more);
    assert_eq!(page.record_count, 1);
    let agents = ok_agents(&page);
    assert_eq!(
        agents[0].user_id(),
        "u-93735585-7d99-5608-ba6f-a21c71136808"
    );
    assert_eq!(agents[0].email(), Some("gau@gmail.com"));
    assert_eq!(agents[0].first_name(), Some("gautham"));
    assert_eq!(agents[0].last_name(), None);
    assert_eq!(agents[0].custom_id(), None);

    let (batch, rejects) = normalize(LEGACY_SAMPLE, utc_day("2022-08-25"));
    assert!(rejects.is_empty());
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(str_col(&batch, "email"), vec![s("gau@gmail.com")]);
    assert_eq!(str_col(&batch, "last_name"), vec![None]);
    assert_eq!(str_col(&batch, "custom_id"), vec![None]);
    assert_eq!(i64_col(&batch, "duration_seconds"), vec![1200]);
    assert_eq!(
        ts_col(&batch, "bucket_end"),
        vec![ms("2022-08-25T10:50:00Z")]
    );
}

#[test]
fn empty_objects_and_empty_envelopes_are_empty_pages() {
    let page = decode_page(b"{}").expect("empty legacy");
    assert!(!page.has_more);
    assert_eq!(page.record_count, 0);
    let page =
        decode_page(br#"{"hasMore":false,"limit":50,"offset":50,"data":[]}"#).expect("empty");
    assert_eq!((page.has_more, page.record_count), (false, 0));
    let page = decode_page(br#"{"hasMore":false,"data":null}"#).expect("null data");
    assert_eq!(page.record_count, 0);
}

#[test]
fn keys_match_case_insensitively_and_values_are_kept_verbatim() {
    let body = r#"{
        "HASMORE": true, "Limit": 2, "OffSet": 0, "futureField": {"x": [1, 2]},
        "Data": [
            {"userid": "u-1", "EmailId": "a@x.com", "FIRSTNAME": "Ann", "lastname": "Lee",
             "CustomID": "", "newThing": [null],
             "TimeInterval": [
                {"StartTime": "2026-01-05T10:00:00Z", "ENDTIME": "2026-01-05T10:30:00Z", "extra": 1,
                 "Status": [
                    {"Metric": "AgentState", "VALUE": "AWAY:Interacting", "Stats": {"SUM": "42 sec", "avg": 3}, "x": true},
                    {"metric": "AgentStatus", "value": "away \u00e9\"q\"", "stats": {"sum": "7sec"}}
                 ]}
             ]}
        ]
    }"#;
    let page = decode_page(body.as_bytes()).expect("decodes");
    assert!(page.has_more);
    let agents = ok_agents(&page);
    assert_eq!(agents[0].user_id(), "u-1");
    assert_eq!(agents[0].email(), Some("a@x.com"));
    assert_eq!(agents[0].custom_id(), None);
    let (batch, rejects) = normalize(body, utc_day("2026-01-05"));
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(
        str_col(&batch, "value"),
        vec![s("AWAY:Interacting"), s("away é\"q\"")]
    );
    assert_eq!(str_col(&batch, "first_name"), vec![s("Ann"); 2]);
    assert_eq!(str_col(&batch, "last_name"), vec![s("Lee"); 2]);
    assert_eq!(str_col(&batch, "custom_id"), vec![None; 2]);
    assert_eq!(i64_col(&batch, "duration_seconds"), vec![42, 7]);
}

#[test]
fn missing_and_empty_fields_are_tolerated() {
    let body = r#"{"hasMore": false, "data": [
        {"userId": "u-1"},
        {"userId": "u-2", "email": "", "firstName": "", "lastName": null, "customId": null, "timeInterval": null},
        {"userId": "u-3", "timeInterval": [{"startTime": "2026-01-05T00:00:00Z", "endTime": "2026-01-05T00:30:00Z"}]},
        {"userId": "u-4", "timeInterval": [{"startTime": "2026-01-05T00:00:00Z", "endTime": "2026-01-05T00:30:00Z", "status": null}]},
        {"userId": "u-5", "firstName": "", "timeInterval": [{"startTime": "2026-01-05T00:00:00Z", "endTime": "2026-01-05T00:30:00Z",
            "status": [{"metric": "AgentStatus", "value": "", "stats": {"sum": "0 sec"}}]}]}
    ]}"#;
    let page = decode_page(body.as_bytes()).expect("decodes");
    assert_eq!(page.record_count, 5);
    let agents = ok_agents(&page);
    assert_eq!(agents[1].email(), None);
    assert_eq!(agents[1].first_name(), Some(""));
    assert_eq!(agents[1].last_name(), None);
    let (batch, rejects) = normalize(body, utc_day("2026-01-05"));
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(str_col(&batch, "user_id"), vec![s("u-5")]);
    assert_eq!(str_col(&batch, "first_name"), vec![s("")]);
    assert_eq!(str_col(&batch, "email"), vec![None]);
    assert_eq!(str_col(&batch, "value"), vec![s("")]);
    assert_eq!(i64_col(&batch, "duration_seconds"), vec![0]);
}

fn bucket(start: &str, end: &str, sum: &str) -> String {
    format!(
        r#"{{"startTime":"{start}","endTime":"{end}","status":[{{"metric":"AgentStatus","value":"Available","stats":{{"sum":"{sum}"}}}}]}}"#
    )
}

#[test]
fn only_buckets_starting_inside_the_claim_are_kept() {
    let buckets = [
        bucket("2026-03-09T03:30:00Z", "2026-03-09T04:00:00Z", "1 sec"), // last in claim
        bucket("2026-03-09T04:00:00Z", "2026-03-09T04:30:00Z", "2 sec"), // at claim end
        bucket("2026-03-08T05:00:00Z", "2026-03-08T05:30:00Z", "3 sec"), // at claim start
        bucket("2026-03-08T04:30:00Z", "2026-03-08T05:00:00Z", "4 sec"), // before
        bucket(
            "2026-03-08T04:59:59.999Z",
            "2026-03-08T05:29:59.999Z",
            "5 sec",
        ), // 1 ms before
        // Outside the claim: not validated here, the owning window will.
        r#"{"startTime":"2026-03-09T04:30:00Z","endTime":"bogus","status":[{"metric":1}]}"#
            .to_owned(),
    ];
    let body = format!(
        r#"{{"hasMore":false,"data":[{{"userId":"u-1","timeInterval":[{}]}}]}}"#,
        buckets.join(",")
    );
    let (batch, rejects) = normalize(
        &body,
        at("2026-03-08T05:00:00Z")..at("2026-03-09T04:00:00Z"),
    );
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(i64_col(&batch, "duration_seconds"), vec![1, 3]);
    assert_eq!(
        ts_col(&batch, "bucket_start"),
        vec![ms("2026-03-09T03:30:00Z"), ms("2026-03-08T05:00:00Z")]
    );
}

#[test]
fn bad_agents_are_rejected_whole_and_the_rest_of_the_page_survives() {
    let body = r#"{"hasMore": true, "data": [
        {"firstName": "NoId", "timeInterval": []},
        {"userId": "", "timeInterval": []},
        {"userId": 17, "timeInterval": []},
        {"userId": "u-4", "firstName": 5},
        {"userId": "u-5", "timeInterval": "none"},
        {"userId": "u-6", "timeInterval": [null]},
        {"userId": "u-7", "timeInterval": [{"startTime": "2026-01-05T00:00:00Z", "status": {"metric": "x"}}]},
        "not an object",
        null,
        {"userId": "u-ok", "timeInterval": [BUCKET]}
    ]}"#
    .replace("BUCKET", &bucket("2026-01-05T01:00:00Z", "2026-01-05T01:30:00Z", "9 sec"));
    let page = decode_page(body.as_bytes()).expect("decodes");
    assert_eq!(page.record_count, 10);
    let reasons: Vec<(usize, String, String)> = page
        .agents
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            a.as_ref()
                .err()
                .map(|r| (i, r.reason.clone(), r.raw_json.clone()))
        })
        .collect();
    assert_eq!(
        reasons.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4, 5, 6, 7, 8]
    );
    assert_eq!(reasons[0].1, "data[0]: agent has no userId");
    assert_eq!(reasons[0].2, r#"{"firstName": "NoId", "timeInterval": []}"#);
    assert_eq!(reasons[1].1, "data[1]: agent has no userId");
    assert!(
        reasons[2].1.contains("userId is a number"),
        "{}",
        reasons[2].1
    );
    assert!(
        reasons[3].1.contains("firstName is a number"),
        "{}",
        reasons[3].1
    );
    assert!(reasons[7].1.contains("not an object"), "{}", reasons[7].1);
    assert_eq!(reasons[7].2, r#""not an object""#);
    assert_eq!(reasons[8].2, "null");
    for (_, _, raw) in &reasons {
        assert_valid_json(raw);
    }
    let (batch, rejects) = normalize(&body, utc_day("2026-01-05"));
    assert_eq!(rejects.len(), 9);
    assert_eq!(str_col(&batch, "user_id"), vec![s("u-ok")]);
}

#[test]
fn legacy_agent_rejects_keep_the_user_id_key() {
    let body = r#"{"u-1": {"emailId": 3}, "u-2": "x", "u-3": {"emailId": "c@x.com"}}"#;
    let page = decode_page(body.as_bytes()).expect("decodes");
    assert_eq!(page.record_count, 3);
    let r0 = page.agents[0].as_ref().expect_err("emailId number");
    assert!(
        r0.reason.starts_with("agent \"u-1\": emailId is a number"),
        "{}",
        r0.reason
    );
    assert_eq!(r0.raw_json, r#"{"u-1":{"emailId": 3}}"#);
    let r1 = page.agents[1].as_ref().expect_err("not an object");
    assert_eq!(r1.raw_json, r#"{"u-2":"x"}"#);
    assert_eq!(
        page.agents[2].as_ref().map(|a| a.email()).ok(),
        Some(Some("c@x.com"))
    );
}

#[test]
fn bad_buckets_and_entries_are_rejected_individually() {
    let entry = |metric: &str, value: &str, stats: &str| {
        format!(r#"{{"metric":{metric},"value":{value},"stats":{stats}}}"#)
    };
    let good = entry(r#""AgentStatus""#, r#""Available""#, r#"{"sum":"10 sec"}"#);
    let bucket_with = |start: &str, end: &str, entries: &[String]| {
        format!(
            r#"{{"startTime":{start},"endTime":{end},"status":[{}]}}"#,
            entries.join(",")
        )
    };
    let b = |h: u32| format!("\"2026-01-05T{h:02}:00:00Z\"");
    let e = |h: u32| format!("\"2026-01-05T{h:02}:30:00Z\"");
    let buckets = [
        // Bucket-level problems: the whole bucket is one reject.
        bucket_with("\"garbage\"", &e(0), std::slice::from_ref(&good)),
        bucket_with("null", &e(0), std::slice::from_ref(&good)),
        bucket_with("1672531200", &e(0), std::slice::from_ref(&good)),
        bucket_with(
            "\"0000-01-01T00:00:00Z\"",
            &e(0),
            std::slice::from_ref(&good),
        ),
        bucket_with(
            &b(1),
            "\"9999-12-31T23:59:59Z\"",
            std::slice::from_ref(&good),
        ),
        bucket_with(
            &b(2),
            "\"2026-01-05T02:00:00Z\"",
            std::slice::from_ref(&good),
        ),
        bucket_with(&b(3), "\"not a time\"", std::slice::from_ref(&good)),
        // Entry-level problems: only that entry is rejected.
        bucket_with(
            &b(4),
            &e(4),
            &[
                good.clone(),
                entry("null", r#""Available""#, r#"{"sum":"1 sec"}"#),
                r#"{"value":"Available","stats":{"sum":"1 sec"}}"#.to_owned(),
                r#"{"metric":"AgentStatus","stats":{"sum":"1 sec"}}"#.to_owned(),
                entry(r#""AgentStatus""#, "5", r#"{"sum":"1 sec"}"#),
                entry(r#""AgentStatus""#, r#""Away""#, r#"{"sum":"abc sec"}"#),
                entry(r#""AgentStatus""#, r#""Away""#, r#"{"sum":919}"#),
                entry(r#""AgentStatus""#, r#""Away""#, r#"{"avg":"1 sec"}"#),
                entry(r#""AgentStatus""#, r#""Away""#, r#""919 sec""#),
                entry(r#""AgentStatus""#, r#""Away""#, "null"),
                entry(r#""AgentStatus""#, r#""Away""#, r#"{"sum":"-3 sec"}"#),
                good.clone(),
            ],
        ),
    ];
    let body = format!(
        r#"{{"hasMore":false,"data":[{{"userId":"u-1","timeInterval":[{}]}}]}}"#,
        buckets.join(",")
    );
    let (batch, rejects) = normalize(&body, utc_day("2026-01-05"));
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(
        ts_col(&batch, "bucket_start"),
        vec![ms("2026-01-05T04:00:00Z"); 2]
    );
    let reasons: Vec<&str> = rejects.iter().map(|r| r.reason.as_str()).collect();
    let expected_fragments = [
        "startTime \"garbage\" is not an ISO-8601 timestamp",
        "bucket has no startTime",
        "startTime is a number",
        "startTime \"0000-01-01T00:00:00Z\" is outside the plausible range",
        "endTime \"9999-12-31T23:59:59Z\" is outside the plausible range",
        "endTime is not after startTime",
        "endTime \"not a time\" is not an ISO-8601 timestamp",
        "status entry has no metric",
        "status entry has no metric",
        "status entry has no value",
        "value is a number",
        "stats.sum \"abc sec\" is not \"<n> sec\"",
        "stats.sum is a number",
        "status entry has no stats.sum",
        "stats is not an object",
        "status entry has no stats",
        "stats.sum \"-3 sec\" is not \"<n> sec\"",
    ];
    assert_eq!(reasons.len(), expected_fragments.len(), "{reasons:#?}");
    for (reason, fragment) in reasons.iter().zip(expected_fragments) {
        assert!(
            reason.contains(fragment),
            "{reason:?} should contain {fragment:?}"
        );
        assert!(reason.starts_with("user u-1 bucket "), "{reason}");
    }
    for r in &rejects {
        assert_valid_json(&r.raw_json);
    }
    // Context: the entry reject carries the user and the bucket bounds, and only the bad entry.
    let abc = &rejects[11];
    let v: serde_json::Value = serde_json::from_str(&abc.raw_json).expect("json");
    assert_eq!(
        v,
        json!({"userId": "u-1", "startTime": "2026-01-05T04:00:00Z", "endTime": "2026-01-05T04:30:00Z",
               "status": [{"metric": "AgentStatus", "value": "Away", "stats": {"sum": "abc sec"}}]})
    );
    // A bucket reject carries all of its entries.
    let v: serde_json::Value = serde_json::from_str(&rejects[0].raw_json).expect("json");
    assert_eq!(v["status"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["startTime"], json!("garbage"));
}

#[test]
fn undecodable_bodies_are_decode_errors() {
    for body in [
        &b""[..],
        b"not json",
        b"<html>502 Bad Gateway</html>",
        b"[]",
        b"\"x\"",
        b"42",
        b"null",
        br#"{"hasMore": true, "data": [{"userId": "u-1"}"#, // truncated
        br#"{"hasMore": "yes", "data": []}"#,
        br#"{"hasMore": false, "data": {"u-1": {}}}"#,
        br#"{"hasMore": false, "limit": 50}"#,
        br#"{"errors":[{"msg":"error verifying the jwt: possibly a replay","code":401}]}"#,
        br#"{"error":{"msg":"Invalid SDK credentials","code":4002}}"#,
        br#"{"hasMore": false, "data": []} trailing"#,
        b"\xff\xfe{}",
    ] {
        let err = decode_page(body).expect_err(&String::from_utf8_lossy(body));
        assert_eq!(err.api, "UserStatus");
    }
}

#[test]
fn normalizer_counts_rows_and_builds_empty_batches() {
    let n = UserStatusNormalizer::new("acc", Granularity::PT15M, at("2026-01-01T00:00:00Z"));
    assert_eq!(n.rows(), 0);
    let (batch, rejects) = n.finish();
    assert_eq!(batch.num_rows(), 0);
    assert_eq!(batch.schema(), user_status_schema());
    assert!(rejects.is_empty());

    let page = decode_page(DOC_SAMPLE.as_bytes()).expect("decodes");
    let mut n = UserStatusNormalizer::new("acc", Granularity::PT15M, at("2026-01-01T00:00:00Z"));
    for a in page.agents.iter().flatten() {
        n.push_agent(a, &utc_day("2022-12-12"));
        n.push_agent(a, &utc_day("2022-12-13"));
    }
    n.push_reject(Reject {
        reason: "r".into(),
        raw_json: "{}".into(),
    });
    assert_eq!(n.rows(), 3);
    assert_eq!(n.rejects().len(), 1);
    let (batch, rejects) = n.finish();
    assert_eq!(batch.num_rows(), 3);
    assert_eq!(str_col(&batch, "granularity"), vec![s("PT15M"); 3]);
    assert_eq!(rejects.len(), 1);
}

#[test]
fn stats_sum_is_found_among_other_keys_and_escapes() {
    let body = r#"{"hasMore":false,"data":[{"userId":"u-1","timeInterval":[{"startTime":"2026-01-05T00:00:00Z","endTime":"2026-01-05T00:30:00Z","status":[
        {"metric":"m","value":"v","stats":{"avg":"x","Sum":"3 sec"}},
        {"metric":"m","value":"v","stats":{"sum":"\u0034 sec"}}
    ]}]}]}"#;
    let (batch, rejects) = normalize(body, utc_day("2026-01-05"));
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(i64_col(&batch, "duration_seconds"), vec![3, 4]);
}

#[test]
fn unmapped_fields_of_every_level_are_kept_exactly_in_extra_and_counted_once_per_record() {
    let body = r#"{"hasMore": false, "futureField": 1, "data": [
        {"USERID": "u-1", "Email": "a@x.com", "newThing": [null], "timeInterval": [
            {"StartTime": "2026-01-05T10:00:00Z", "endTime": "2026-01-05T10:30:00Z", "extra": 1.50E+2,
             "status": [
                {"Metric": "AgentState", "value": "Away", "Stats": {"SUM": "42 sec", "avg": "\u00e9"}, "x": true},
                {"metric": "AgentStatus", "value": "Away", "stats": {"sum": "7 sec"}}
             ]},
            {"startTime": "2026-01-06T10:00:00Z", "endTime": "2026-01-06T10:30:00Z", "later": 2,
             "status": [{"metric": "AgentStatus", "value": "Away", "stats": {"sum": "7 sec"}}]}
        ]},
        {"userId": "u-2", "timeInterval": [{"startTime": "2026-01-05T11:00:00Z", "endTime": "2026-01-05T11:30:00Z",
            "status": [{"metric": "AgentStatus", "value": "Away", "stats": {"sum": "7 sec"}}]}]}
    ]}"#;
    let page = decode_page(body.as_bytes()).expect("decodes");
    let mut n = UserStatusNormalizer::new("acc-1", Granularity::PT30M, at("2026-01-07T00:00:00Z"));
    for agent in page.agents {
        n.push_agent(&agent.expect("agent"), &utc_day("2026-01-05"));
    }
    let counts = n.take_unmapped();
    let (batch, _) = n.finish();
    // The envelope's own keys are not a record's; the bucket of 2026-01-06 is not this day's.
    assert_eq!(
        str_col(&batch, "extra"),
        vec![
            s(r#"{"newThing":[null],"extra":1.50E+2,"x":true,"Stats":{"avg":"\u00e9"}}"#),
            s(r#"{"newThing":[null],"extra":1.50E+2}"#),
            None,
        ]
    );
    let want: std::collections::BTreeMap<String, u64> = [
        ("Stats.avg".to_string(), 1),
        ("extra".into(), 1),
        ("newThing".into(), 1),
        ("x".into(), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts.as_map(), &want);
}
