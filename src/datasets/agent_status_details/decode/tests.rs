//! Unit tests of the parent module on hand-written fixtures (the documented samples, casing and
//! type variants, hostile records, DST days); expected values are written out by hand, never
//! computed by the code under test.

use arrow::array::{Array, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
use chrono::NaiveDate;
use serde_json::json;

use super::*;
use crate::schema::timestamp_type;

pub(super) fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("test instant")
}

pub(super) fn ms(s: &str) -> i64 {
    at(s).timestamp_millis()
}

pub(super) fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("test date")
}

pub(super) fn window(day: NaiveDate, offset: i32, start: &str, end: &str) -> DayWindow {
    DayWindow {
        day,
        offset_minutes: offset,
        claim: at(start)..at(end),
    }
}

/// The unversioned documentation sample (S4), with its missing comma after `customId` added.
const DOC_SAMPLE: &str = r#"{
   "hasMore": false,
   "limit": 3,
   "offset": 2,
   "data": [
       { "userId": "u-388b2b2a-264d-511d-918e-f746e5e1xxxx", "firstName": "John", "lastName": "Doe", "email": "john.doe@example.com" },
       { "userId": "u-fdc72ca0-a35d-57ff-bcb3-a33904a4xxxx", "firstName": "", "lastName": "", "email": "john.doe1@example.com",
         "customId": "123456",
         "status": [
           { "primaryStatus": "AVAILABLE", "secondaryStatus": "AVAILABLE", "startTime": "2023-03-09T13:20:38", "endTime": "2023-03-10T21:37:42", "duration": "32:17:04" },
           { "primaryStatus": "BUSY", "secondaryStatus": "BUSY", "startTime": "2023-03-10T21:38:52", "endTime": "2023-03-10T21:39:48", "duration": "00:00:55" },
           { "primaryStatus": "BUSY", "secondaryStatus": "NBK", "startTime": "2023-03-10T21:51:02", "endTime": "-", "duration": "-" }
         ]
       }
   ]
}"#;

/// The `/v3` sample: `aId`, `events`, and an agent without data.
const V3_SAMPLE: &str = r#"{ "hasMore": true, "limit": 2, "offset": 0,
  "data": [
    { "userId": "u-388b2b2a-1", "firstName": "John", "lastName": "Doe", "email": "john.doe@example.com" },
    { "userId": "u-3900adc6-2", "aId": "a-b03c008-3", "firstName": "agent", "lastName": "17",
      "email": "agent17@example.com", "customId": "",
      "status": [ { "primaryStatus": "AVAILABLE", "secondaryStatus": "AVAILABLE",
                    "startTime": "2026-09-18T14:31:58", "endTime": "2026-09-18T15:39:46", "duration": "01:07:48" } ],
      "events": [ { "type": "entry", "at": "2026-09-18T09:00:51.886Z", "ip": "10.32.130.10" } ] } ] }"#;

pub(super) fn str_col(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let col = batch.column_by_name(name).expect("column exists");
    let arr = col
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("utf8 column");
    arr.iter().map(|v| v.map(str::to_owned)).collect()
}

pub(super) fn ts_col(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let col = batch.column_by_name(name).expect("column exists");
    let arr = col
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .expect("timestamp column");
    arr.iter().collect()
}

fn i64_col(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let col = batch.column_by_name(name).expect("column exists");
    let arr = col
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("int64 column");
    arr.iter().collect()
}

pub(super) fn i32_col(batch: &RecordBatch, name: &str) -> Vec<Option<i32>> {
    let col = batch.column_by_name(name).expect("column exists");
    let arr = col
        .as_any()
        .downcast_ref::<Int32Array>()
        .expect("int32 column");
    arr.iter().collect()
}

pub(super) fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

/// Decodes `body` and normalizes every agent with `window`.
pub(super) fn normalize(body: &str, window: &DayWindow) -> (RecordBatch, Vec<Reject>) {
    let page = decode_page(body.as_bytes()).expect("page decodes");
    let mut n = Normalizer::new("acc-1", at("2026-01-02T03:04:05.678Z"));
    for agent in page.agents {
        match agent {
            Ok(a) => n.push_agent(&a, window),
            Err(r) => n.push_reject(r),
        }
    }
    n.finish()
}

pub(super) fn page_of(agents: serde_json::Value) -> String {
    json!({"hasMore": false, "limit": 50, "offset": 0, "data": agents}).to_string()
}

pub(super) fn assert_valid_json(raw: &str) {
    serde_json::from_str::<serde_json::Value>(raw)
        .unwrap_or_else(|e| panic!("reject raw_json is not JSON ({e}): {raw}"));
}

#[test]
fn schema_has_the_required_columns_in_order() {
    let names: Vec<_> = agent_status_details_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        [
            "account_id",
            "user_id",
            "agent_id",
            "email",
            "first_name",
            "last_name",
            "custom_id",
            "primary_status",
            "secondary_status",
            "start_time",
            "end_time",
            "duration_seconds",
            "timezone_offset_minutes",
            "exported_at",
            "extra"
        ]
    );
    let sc = agent_status_details_schema();
    for name in ["start_time", "end_time", "exported_at"] {
        let f = sc.field_with_name(name).expect("time column");
        assert_eq!(f.data_type(), &timestamp_type(), "{name}");
    }
    let nullable = |name: &str| sc.field_with_name(name).expect("column").is_nullable();
    assert!(nullable("end_time") && nullable("duration_seconds") && nullable("agent_id"));
    assert!(!nullable("start_time") && !nullable("user_id") && !nullable("primary_status"));
}

#[test]
fn request_body_sends_date_and_start_end_for_the_same_day() {
    let w = window(
        d(2024, 3, 10),
        300,
        "2024-03-10T05:00:00Z",
        "2024-03-11T04:00:00Z",
    );
    assert_eq!(
        request_body(&["a@x.com".into(), "b@x.com".into()], &w),
        json!({"filter": {
            "agents": ["a@x.com", "b@x.com"],
            "dateFilter": {"date": "2024-03-10", "startDate": "2024-03-10", "endDate": "2024-03-10",
                           "timeZoneOffSet": 300}
        }})
    );
    let ist = DayWindow {
        offset_minutes: -330,
        ..w.clone()
    };
    assert_eq!(
        request_body_with(&[], &ist, DateStyle::DateTime),
        json!({"filter": {
            "dateFilter": {"date": "2024-03-10", "startDate": "2024-03-10T00:00:00",
                           "endDate": "2024-03-11T00:00:00", "timeZoneOffSet": -330}
        }})
    );
}

#[test]
fn date_style_follows_the_path_generation() {
    let base = "/agentassist/api/public/analytics/account/acc";
    assert_eq!(
        DateStyle::for_path(&format!("{base}/agentstatusdetails")),
        DateStyle::Date
    );
    assert_eq!(
        DateStyle::for_path(&format!("{base}/v3/agentstatusdetails")),
        DateStyle::Date
    );
    assert_eq!(
        DateStyle::for_path(&format!("{base}/v2/agentstatusdetails")),
        DateStyle::DateTime
    );
    assert_eq!(
        DateStyle::for_path(&format!("{base}/V2/agentstatusdetails/")),
        DateStyle::DateTime
    );
    assert_eq!(DateStyle::for_path("/v2"), DateStyle::Date);
}

#[test]
fn doc_sample_spans_land_in_the_day_of_their_local_start() {
    let page = decode_page(DOC_SAMPLE.as_bytes()).expect("doc sample decodes");
    assert!(!page.has_more);
    assert_eq!(page.record_count, 2);
    let agents: Vec<_> = page
        .agents
        .iter()
        .map(|a| a.as_ref().expect("ok"))
        .collect();
    assert_eq!(
        agents[0].user_id(),
        "u-388b2b2a-264d-511d-918e-f746e5e1xxxx"
    );
    assert_eq!(agents[0].span_count(), 0);
    assert_eq!(agents[0].custom_id(), None);
    assert_eq!(agents[1].span_count(), 3);
    assert_eq!(agents[1].first_name(), Some(""));

    // IST: local day 2023-03-10 is [03-09 18:30Z, 03-10 18:30Z).
    let mar10 = window(
        d(2023, 3, 10),
        -330,
        "2023-03-09T18:30:00Z",
        "2023-03-10T18:30:00Z",
    );
    let (batch, rejects) = normalize(DOC_SAMPLE, &mar10);
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(batch.schema(), agent_status_details_schema());
    let user = "u-fdc72ca0-a35d-57ff-bcb3-a33904a4xxxx";
    assert_eq!(str_col(&batch, "account_id"), vec![s("acc-1"); 2]);
    assert_eq!(str_col(&batch, "user_id"), vec![s(user); 2]);
    assert_eq!(str_col(&batch, "agent_id"), vec![None; 2]);
    assert_eq!(
        str_col(&batch, "email"),
        vec![s("john.doe1@example.com"); 2]
    );
    assert_eq!(str_col(&batch, "first_name"), vec![s(""); 2]);
    assert_eq!(str_col(&batch, "custom_id"), vec![s("123456"); 2]);
    assert_eq!(str_col(&batch, "primary_status"), vec![s("BUSY"); 2]);
    assert_eq!(
        str_col(&batch, "secondary_status"),
        vec![s("BUSY"), s("NBK")]
    );
    assert_eq!(
        ts_col(&batch, "start_time"),
        vec![
            Some(ms("2023-03-10T16:08:52Z")),
            Some(ms("2023-03-10T16:21:02Z"))
        ]
    );
    assert_eq!(
        ts_col(&batch, "end_time"),
        vec![Some(ms("2023-03-10T16:09:48Z")), None]
    );
    // As sent: the sample's 55 s disagrees with its own end − start (56 s).
    assert_eq!(i64_col(&batch, "duration_seconds"), vec![Some(55), None]);
    assert_eq!(
        i32_col(&batch, "timezone_offset_minutes"),
        vec![Some(-330); 2]
    );
    assert_eq!(
        ts_col(&batch, "exported_at"),
        vec![Some(ms("2026-01-02T03:04:05.678Z")); 2]
    );

    let mar09 = window(
        d(2023, 3, 9),
        -330,
        "2023-03-08T18:30:00Z",
        "2023-03-09T18:30:00Z",
    );
    let (batch, rejects) = normalize(DOC_SAMPLE, &mar09);
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(
        ts_col(&batch, "start_time"),
        vec![Some(ms("2023-03-09T07:50:38Z"))]
    );
    assert_eq!(
        ts_col(&batch, "end_time"),
        vec![Some(ms("2023-03-10T16:07:42Z"))]
    );
    assert_eq!(
        i64_col(&batch, "duration_seconds"),
        vec![Some(32 * 3600 + 17 * 60 + 4)]
    );
}

#[test]
fn the_samples_missing_comma_is_a_decode_error() {
    let broken = DOC_SAMPLE.replace("\"123456\",", "\"123456\"");
    assert!(decode_page(broken.as_bytes()).is_err());
}

#[test]
fn v3_sample_keeps_aid_and_ignores_events() {
    let page = decode_page(V3_SAMPLE.as_bytes()).expect("decodes");
    assert!(page.has_more);
    assert_eq!(page.record_count, 2);
    let w = window(
        d(2026, 9, 18),
        -330,
        "2026-09-17T18:30:00Z",
        "2026-09-18T18:30:00Z",
    );
    let (batch, rejects) = normalize(V3_SAMPLE, &w);
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(str_col(&batch, "user_id"), vec![s("u-3900adc6-2")]);
    assert_eq!(str_col(&batch, "agent_id"), vec![s("a-b03c008-3")]);
    assert_eq!(str_col(&batch, "custom_id"), vec![None]);
    assert_eq!(
        ts_col(&batch, "start_time"),
        vec![Some(ms("2026-09-18T09:01:58Z"))]
    );
    assert_eq!(
        ts_col(&batch, "end_time"),
        vec![Some(ms("2026-09-18T10:09:46Z"))]
    );
    assert_eq!(i64_col(&batch, "duration_seconds"), vec![Some(4068)]);
}

#[test]
fn keys_match_in_any_casing() {
    let body = r#"{"HASMORE": true, "Limit": 1, "OFFSET": 0, "Data": [
        {"USERID": "u-1", "AID": "a-1", "Email": "x@y.z", "firstname": "F", "LASTNAME": "L",
         "CustomID": "9", "Status": [
            {"PrimaryStatus": "AWAY", "SECONDARYSTATUS": "Break", "starttime": "2024-05-01T10:00:00",
             "ENDTIME": "2024-05-01T10:30:00", "Duration": "00:30:00"}]}]}"#;
    let page = decode_page(body.as_bytes()).expect("decodes");
    assert!(page.has_more);
    let w = window(
        d(2024, 5, 1),
        0,
        "2024-05-01T00:00:00Z",
        "2024-05-02T00:00:00Z",
    );
    let (batch, rejects) = normalize(body, &w);
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(str_col(&batch, "user_id"), vec![s("u-1")]);
    assert_eq!(str_col(&batch, "agent_id"), vec![s("a-1")]);
    assert_eq!(str_col(&batch, "email"), vec![s("x@y.z")]);
    assert_eq!(str_col(&batch, "first_name"), vec![s("F")]);
    assert_eq!(str_col(&batch, "last_name"), vec![s("L")]);
    assert_eq!(str_col(&batch, "custom_id"), vec![s("9")]);
    assert_eq!(str_col(&batch, "primary_status"), vec![s("AWAY")]);
    assert_eq!(str_col(&batch, "secondary_status"), vec![s("Break")]);
    assert_eq!(
        ts_col(&batch, "start_time"),
        vec![Some(ms("2024-05-01T10:00:00Z"))]
    );
    assert_eq!(i64_col(&batch, "duration_seconds"), vec![Some(1800)]);
}

#[test]
fn documented_type_variants_are_accepted() {
    // customId as a number; null aId, email, names and secondaryStatus; null status; no
    // hasMore; a null data array in another page.
    let body = page_of(json!([
        {"userId": "u-1", "aId": null, "email": "", "firstName": null, "customId": 123456,
         "status": [{"primaryStatus": "BUSY", "secondaryStatus": null,
                     "startTime": "2024-05-01T08:00:00", "endTime": "2024-05-01T08:00:09", "duration": "00:00:09"}]},
        {"userId": "u-2", "status": null},
        {"userId": "u-3", "status": []}
    ]));
    let w = window(
        d(2024, 5, 1),
        0,
        "2024-05-01T00:00:00Z",
        "2024-05-02T00:00:00Z",
    );
    let (batch, rejects) = normalize(&body, &w);
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(str_col(&batch, "custom_id"), vec![s("123456")]);
    assert_eq!(str_col(&batch, "agent_id"), vec![None]);
    assert_eq!(str_col(&batch, "email"), vec![None]);
    assert_eq!(str_col(&batch, "first_name"), vec![None]);
    assert_eq!(str_col(&batch, "secondary_status"), vec![None]);

    let no_more = decode_page(br#"{"data": []}"#).expect("decodes");
    assert!(!no_more.has_more);
    let null_data = decode_page(br#"{"hasMore": false, "data": null}"#).expect("decodes");
    assert_eq!((null_data.record_count, null_data.agents.len()), (0, 0));
}

#[test]
fn time_variants_are_read_at_the_offset_unless_they_carry_a_zone() {
    let spans = json!([
        // fraction, local at -330
        {"primaryStatus": "A", "startTime": "2024-05-01T10:00:00.250", "endTime": "2024-05-01 10:00:01", "duration": "00:00:00"},
        // trailing Z: absolute
        {"primaryStatus": "B", "startTime": "2024-05-01T04:31:00Z", "endTime": "2024-05-01T04:32:00.5Z", "duration": "00:01:00"},
        // explicit offset: absolute
        {"primaryStatus": "C", "startTime": "2024-05-01T10:02:00+05:30", "endTime": "2024-05-01T04:33:00+00:00", "duration": "00:01:00"},
        // space separator, local
        {"primaryStatus": "D", "startTime": " 2024-05-01 23:59:59 ", "endTime": "2024-05-02T00:00:00", "duration": "00:00:01"}
    ]);
    let body = page_of(json!([{ "userId": "u-1", "status": spans }]));
    let w = window(
        d(2024, 5, 1),
        -330,
        "2024-04-30T18:30:00Z",
        "2024-05-01T18:30:00Z",
    );
    let (batch, rejects) = normalize(&body, &w);
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(
        ts_col(&batch, "start_time"),
        vec![
            Some(ms("2024-05-01T04:30:00.250Z")),
            Some(ms("2024-05-01T04:31:00Z")),
            Some(ms("2024-05-01T04:32:00Z")),
            Some(ms("2024-05-01T18:29:59Z")),
        ]
    );
    assert_eq!(
        ts_col(&batch, "end_time"),
        vec![
            Some(ms("2024-05-01T04:30:01Z")),
            Some(ms("2024-05-01T04:32:00.500Z")),
            Some(ms("2024-05-01T04:33:00Z")),
            Some(ms("2024-05-01T18:30:00Z")),
        ]
    );
}

#[test]
fn hostile_agents_are_rejected_whole_with_their_raw_json() {
    let body = r#"{"hasMore": false, "data": [
        7, "u-1", [1], {"firstName": "no id"}, {"userId": ""}, {"userId": 42},
        {"userId": "u-2", "status": "busy"}, {"userId": "u-3", "status": {"a": 1}},
        {"userId": "u-4", "email": ["x"]}, {"userId": "u-5", "customId": 1.5},
        {"userId": "u-ok"}
    ]}"#;
    let page = decode_page(body.as_bytes()).expect("decodes");
    assert_eq!(page.record_count, 11);
    let raws: Vec<&str> = page
        .agents
        .iter()
        .filter_map(|a| a.as_ref().err())
        .map(|r| r.raw_json.as_str())
        .collect();
    assert_eq!(
        raws,
        [
            "7",
            r#""u-1""#,
            "[1]",
            r#"{"firstName": "no id"}"#,
            r#"{"userId": ""}"#,
            r#"{"userId": 42}"#,
            r#"{"userId": "u-2", "status": "busy"}"#,
            r#"{"userId": "u-3", "status": {"a": 1}}"#,
            r#"{"userId": "u-4", "email": ["x"]}"#,
            r#"{"userId": "u-5", "customId": 1.5}"#,
        ]
    );
    let reasons: Vec<&str> = page
        .agents
        .iter()
        .filter_map(|a| a.as_ref().err())
        .map(|r| r.reason.as_str())
        .collect();
    assert!(reasons[0].starts_with("data[0]: ") && reasons[0].contains("not an object"));
    assert!(reasons[3].contains("no userId") && reasons[4].contains("no userId"));
    assert!(reasons[6].contains("status is not an array"));
    assert!(reasons[8].contains("email is an array"));
    assert!(page.agents[10].is_ok());
}

#[test]
fn hostile_spans_are_rejected_alone_with_their_raw_json() {
    let good = r#"{"primaryStatus":"BUSY","secondaryStatus":"BUSY","startTime":"2024-05-01T08:00:00","endTime":"2024-05-01T09:00:00","duration":"01:00:00"}"#;
    let hostile = [
        ("7", "not an object"),
        (
            r#"{"primaryStatus":"A","startTime":"2024-05-01T25:00:00","endTime":"-","duration":"-"}"#,
            "startTime",
        ),
        (
            r#"{"primaryStatus":"A","startTime":"1970-01-01T00:00:00","endTime":"-","duration":"-"}"#,
            "plausible",
        ),
        (
            r#"{"primaryStatus":"A","startTime":1714550400,"endTime":"-","duration":"-"}"#,
            "startTime is a number",
        ),
        (
            r#"{"primaryStatus":"A","endTime":"-","duration":"-"}"#,
            "no startTime",
        ),
        (
            r#"{"primaryStatus":"A","startTime":"2024-05-01T08:00:00","endTime":"2024-05-01T08:99:00","duration":"00:01:00"}"#,
            "endTime",
        ),
        (
            r#"{"primaryStatus":"A","startTime":"2024-05-01T08:00:00","endTime":"2024-05-01T08:01:00","duration":"1:2"}"#,
            "HH:MM:SS",
        ),
        (
            r#"{"primaryStatus":"A","startTime":"2024-05-01T08:00:00","endTime":"2024-05-01T08:01:00","duration":60}"#,
            "duration is a number",
        ),
        (
            r#"{"primaryStatus":"A","startTime":"2024-05-01T08:00:00","endTime":"-","duration":"00:01:00"}"#,
            "disagree",
        ),
        (
            r#"{"primaryStatus":"A","startTime":"2024-05-01T08:00:00","endTime":"2024-05-01T08:01:00","duration":"-"}"#,
            "disagree",
        ),
        (
            r#"{"primaryStatus":"A","startTime":"2024-05-01T08:00:00","endTime":"2024-05-01T07:00:00","duration":"01:00:00"}"#,
            "before startTime",
        ),
        (
            r#"{"startTime":"2024-05-01T08:00:00","endTime":"-","duration":"-"}"#,
            "no primaryStatus",
        ),
        (
            r#"{"primaryStatus":"","startTime":"2024-05-01T08:00:00","endTime":"-","duration":"-"}"#,
            "empty",
        ),
        (
            r#"{"primaryStatus":["A"],"startTime":"2024-05-01T08:00:00","endTime":"-","duration":"-"}"#,
            "primaryStatus is an array",
        ),
        (
            r#"{"primaryStatus":"A","secondaryStatus":{},"startTime":"2024-05-01T08:00:00","endTime":"-","duration":"-"}"#,
            "secondaryStatus is an object",
        ),
        (
            r#"{"primaryStatus":"A","startTime":"2024-05-01T08:00:00","duration":"-"}"#,
            "no endTime",
        ),
    ];
    let spans: Vec<&str> = std::iter::once(good)
        .chain(hostile.iter().map(|(raw, _)| *raw))
        .collect();
    let body = format!(
        r#"{{"hasMore":false,"data":[{{"userId":"u-9","status":[{}]}}]}}"#,
        spans.join(",")
    );
    let w = window(
        d(2024, 5, 1),
        0,
        "2024-05-01T00:00:00Z",
        "2024-05-02T00:00:00Z",
    );
    let (batch, rejects) = normalize(&body, &w);
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(
        ts_col(&batch, "start_time"),
        vec![Some(ms("2024-05-01T08:00:00Z"))]
    );
    assert_eq!(rejects.len(), hostile.len(), "{rejects:#?}");
    for (i, (reject, (raw, why))) in rejects.iter().zip(hostile.iter()).enumerate() {
        assert_valid_json(&reject.raw_json);
        assert_eq!(
            reject.raw_json,
            format!(r#"{{"userId":"u-9","timeZoneOffSet":0,"status":[{raw}]}}"#)
        );
        assert!(
            reject
                .reason
                .starts_with(&format!("user u-9 status[{}] (timeZoneOffSet 0): ", i + 1)),
            "{}",
            reject.reason
        );
        assert!(
            reject.reason.contains(why),
            "{why:?} not in {:?}",
            reject.reason
        );
    }
}

#[test]
fn bad_spans_of_other_days_are_skipped_unless_their_start_is_unusable() {
    let body = page_of(json!([{"userId": "u-1", "status": [
        {"primaryStatus": "A", "startTime": "2024-04-30T08:00:00", "endTime": "garbage", "duration": 5},
        {"primaryStatus": "A", "startTime": "not a time", "endTime": "-", "duration": "-"}
    ]}]));
    let w = window(
        d(2024, 5, 1),
        0,
        "2024-05-01T00:00:00Z",
        "2024-05-02T00:00:00Z",
    );
    let (batch, rejects) = normalize(&body, &w);
    assert_eq!(batch.num_rows(), 0);
    assert_eq!(rejects.len(), 1);
    assert!(rejects[0].reason.contains("status[1]"), "{:?}", rejects[0]);
}

#[test]
fn error_and_malformed_bodies_are_decode_errors() {
    for body in [
        &b""[..],
        b"not json",
        b"[]",
        b"\"x\"",
        b"{}",
        b"{\"hasMore\": false}",
        b"{\"hasMore\": \"yes\", \"data\": []}",
        b"{\"data\": {}}",
        b"{\"errors\":[{\"msg\":\"Invalid SDK credentials\",\"code\":4002}]}",
        b"{\"hasMore\": false, \"data\": [{\"userId\": \"u-1\"}",
        b"{\"data\": [], \"x\": \"\xff\"}",
    ] {
        assert!(
            decode_page(body).is_err(),
            "{:?} decoded",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn take_batch_streams_rows_and_resets() {
    let w = window(
        d(2023, 3, 10),
        -330,
        "2023-03-09T18:30:00Z",
        "2023-03-10T18:30:00Z",
    );
    let page = decode_page(DOC_SAMPLE.as_bytes()).expect("decodes");
    let mut n = Normalizer::new("acc-1", at("2026-01-01T00:00:00Z"));
    for agent in page.agents.iter().flatten() {
        n.push_agent(agent, &w);
    }
    assert_eq!(n.rows(), 2);
    assert_eq!(n.take_batch().num_rows(), 2);
    assert_eq!(n.rows(), 0);
    n.push_reject(Reject {
        reason: "r".into(),
        raw_json: "{}".into(),
    });
    assert_eq!(n.rejects().len(), 1);
    let (batch, rejects) = n.finish();
    assert_eq!((batch.num_rows(), rejects.len()), (0, 1));
}

#[test]
fn v3_events_and_unknown_fields_are_kept_in_extra_and_a_shared_key_goes_to_the_span() {
    let w = window(
        d(2026, 9, 18),
        -330,
        "2026-09-17T18:30:00Z",
        "2026-09-18T18:30:00Z",
    );
    let (batch, _) = normalize(V3_SAMPLE, &w);
    assert_eq!(
        str_col(&batch, "extra"),
        vec![s(
            r#"{"events":[ { "type": "entry", "at": "2026-09-18T09:00:51.886Z", "ip": "10.32.130.10" } ]}"#
        )]
    );
    let body = r#"{"hasMore": false, "data": [{"userId": "u-1", "STATUS": [
        {"PrimaryStatus": "BUSY", "startTime": "2026-09-18T14:31:58", "endTime": "-", "duration": "-",
         "note": "span \"n\"", "rank": 1e3},
        {"primaryStatus": "BUSY", "startTime": "2026-09-18T15:31:58", "endTime": "-", "duration": "-"}
    ], "note": null}]}"#;
    let (batch, _) = normalize(body, &w);
    assert_eq!(
        str_col(&batch, "extra"),
        vec![
            s(r#"{"agent.note":null,"note":"span \"n\"","rank":1e3}"#),
            s(r#"{"note":null}"#),
        ]
    );
}
