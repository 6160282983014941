//! Unit tests of reading a page from its index ([`Tape`]) and of the serde_json way it falls
//! back to: casings, the last of two casings, keys the index cannot decode (a lone surrogate
//! escape: valid JSON that serde_json cannot decode as a string), non-object entries and the
//! envelope's variants. Expected values are written out by hand.

use super::tests::{at, d, page_of, str_col, window};
use super::*;

fn day() -> DayWindow {
    window(
        d(2024, 5, 1),
        -330,
        "2024-04-30T18:30:00Z",
        "2024-05-01T18:30:00Z",
    )
}

fn normalize(body: &str) -> (RecordBatch, Vec<Reject>) {
    let page = decode_page(body.as_bytes()).expect("page");
    let mut n = Normalizer::new("acc-1", at("2024-05-02T00:00:00Z"));
    for agent in page.agents {
        match agent {
            Ok(a) => n.push_agent(&a, &day()),
            Err(r) => n.push_reject(r),
        }
    }
    n.finish()
}

const SPAN: &str =
    r#"{"primaryStatus":"A","startTime":"2024-05-01T12:00:00","endTime":"-","duration":"-"}"#;

#[test]
fn of_two_casings_of_a_key_the_last_wins_in_agents_and_spans() {
    let body = format!(
        r#"{{"hasMore":false,"data":[{{"userId":"u-1","USERID":"u-2","email":"a@x","EMAIL":null,
        "status":[{{"primaryStatus":"A","PRIMARYSTATUS":"B","startTime":"2024-05-01T12:00:00",
        "endTime":"-","duration":"-"}}],"STATUS":[{SPAN},{SPAN}]}}]}}"#
    );
    let (batch, rejects) = normalize(&body);
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(
        str_col(&batch, "user_id"),
        [Some("u-2".into()), Some("u-2".into())]
    );
    assert_eq!(str_col(&batch, "email"), [None, None]);
    assert_eq!(
        str_col(&batch, "primary_status"),
        [Some("A".into()), Some("A".into())]
    );
    let body = r#"{"data":[{"userId":"u-1","status":[{"primaryStatus":"A","PRIMARYSTATUS":"B",
        "startTime":"2024-05-01T12:00:00","endTime":"-","duration":"-"}]}]}"#;
    assert_eq!(
        str_col(&normalize(body).0, "primary_status"),
        [Some("B".into())]
    );
}

#[test]
fn an_agent_or_a_span_whose_keys_the_index_cannot_read_is_read_by_serde_json() {
    let lone_agent = r#"{"userId":"u-1","\ud800":1,"status":[]}"#;
    let lone_span = r#"{"primaryStatus":"A","startTime":"2024-05-01T12:00:00","endTime":"-","duration":"-","\udc00":2}"#;
    let body = format!(
        r#"{{"hasMore":true,"data":[{lone_agent},{{"userId":"u-2","status":[{lone_span},{SPAN}]}}]}}"#
    );
    let page = decode_page(body.as_bytes()).expect("page");
    assert!(page.has_more);
    let serde_reason = |raw: &str| {
        serde_json::from_str::<serde_json::Value>(raw)
            .expect_err("serde_json refuses it")
            .to_string()
    };
    let reject = page.agents[0].as_ref().expect_err("unreadable agent key");
    assert_eq!(
        reject.reason,
        format!("data[0]: {}", serde_reason(lone_agent))
    );
    assert_eq!(reject.raw_json, lone_agent);
    let (batch, rejects) = normalize(&body);
    assert_eq!(str_col(&batch, "user_id"), [Some("u-2".into())]);
    assert_eq!(rejects.len(), 2, "{rejects:?}");
    assert_eq!(
        rejects[1].reason,
        format!(
            "user u-2 status[0] (timeZoneOffSet -330): {}",
            serde_reason(lone_span)
        )
    );
    assert!(
        rejects[1].raw_json.contains(lone_span),
        "{}",
        rejects[1].raw_json
    );
}

#[test]
fn status_null_is_no_spans_and_status_of_another_type_rejects_the_agent() {
    let body = page_of(serde_json::json!([
        {"userId": "u-1", "status": null},
        {"userId": "u-2", "status": 5},
        {"userId": "u-3", "status": [7, serde_json::from_str::<serde_json::Value>(SPAN).expect("span")]},
        [1]
    ]));
    let page = decode_page(body.as_bytes()).expect("page");
    assert_eq!(page.record_count, 4);
    assert_eq!(page.agents[0].as_ref().expect("agent").span_count(), 0);
    let reasons: Vec<&str> = [1, 3]
        .iter()
        .map(|&i| page.agents[i].as_ref().expect_err("reject").reason.as_str())
        .collect();
    assert_eq!(
        reasons,
        [
            "data[1]: status is not an array: 5",
            "data[3]: agent record is not an object"
        ]
    );
    let (batch, rejects) = normalize(&body);
    assert_eq!(batch.num_rows(), 1);
    assert!(
        rejects.iter().any(|r| r.reason
            == "user u-3 status[0] (timeZoneOffSet -330): status entry is not an object"),
        "{rejects:?}"
    );
}

#[test]
fn envelope_variants_the_index_leaves_to_the_general_way() {
    // A `hasMore` of the wrong type anywhere is an error, even when a later one is right.
    assert!(decode_page(br#"{"hasMore":"yes","hasMore":true,"data":[]}"#).is_err());
    assert!(decode_page(br#"{"hasMore":true,"data":5}"#).is_err());
    assert!(decode_page(br#"{"hasMore":true}"#).is_err());
    let err = decode_page(br#"{"data":[],"errors":[{"msg":"no"}]}"#).expect_err("error body");
    assert!(err.reason.contains("error response"), "{}", err.reason);
    // `data: null` is an empty page; the last `data` wins; keys in any casing.
    let page = decode_page(br#"{"HASMORE":true,"data":null}"#).expect("page");
    assert_eq!((page.has_more, page.record_count), (true, 0));
    let page = decode_page(br#"{"Data":[{"userId":"u-1"}],"data":null}"#).expect("page");
    assert_eq!(page.record_count, 0);
    let page = decode_page(br#"{"data":null,"Data":[{"userId":"u-1"}]}"#).expect("page");
    assert_eq!(page.record_count, 1);
}
