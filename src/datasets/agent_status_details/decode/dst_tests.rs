//! The normalizer on America/New_York's DST days, from hand-written responses: each request's
//! body lists what the API would return (every span overlapping the served 24 h, rendered at
//! that request's offset), and each span must land once, in the `dt` of its local start.

use chrono_tz::Tz;
use serde_json::json;

use super::tests::{at, d, i32_col, ms, normalize, page_of, s, str_col, ts_col};
use super::*;
use crate::sources::window::plan_day;

/// America/New_York 2024-11-03 lasts 25 h and is fetched in two windows (EDT, then EST). The
/// fixture lists, for each request, what the API would return: every span overlapping the
/// served 24 h, rendered at that request's offset. True spans (UTC):
/// A 11-03 03:30–04:30 (crosses local midnight 11-02/11-03), B 05:30–06:15 (01:30 EDT–01:15 EST),
/// C 06:30–07:00, D 11-04 04:30–05:20 (23:30 EST–00:20, crosses midnight), E 11-04 05:10– (open).
#[test]
fn fall_back_day_takes_each_span_once_from_the_window_that_claims_it() {
    let tz = Tz::America__New_York;
    let span = |p: &str, start: &str, end: &str, dur: &str| json!({"primaryStatus": p, "secondaryStatus": p, "startTime": start, "endTime": end, "duration": dur});
    // Served [11-02 04:00Z, 11-03 04:00Z) at 240.
    let nov02 = page_of(json!([{"userId": "u-1", "status": [
        span("A", "2024-11-02T23:30:00", "2024-11-03T00:30:00", "01:00:00")]}]));
    // Served [11-03 04:00Z, 11-04 04:00Z) at 240.
    let nov03_edt = page_of(json!([{"userId": "u-1", "status": [
        span("A", "2024-11-02T23:30:00", "2024-11-03T00:30:00", "01:00:00"),
        span("B", "2024-11-03T01:30:00", "2024-11-03T02:15:00", "00:45:00"),
        span("C", "2024-11-03T02:30:00", "2024-11-03T03:00:00", "00:30:00")]}]));
    // Served [11-03 05:00Z, 11-04 05:00Z) at 300.
    let nov03_est = page_of(json!([{"userId": "u-1", "status": [
        span("B", "2024-11-03T00:30:00", "2024-11-03T01:15:00", "00:45:00"),
        span("C", "2024-11-03T01:30:00", "2024-11-03T02:00:00", "00:30:00"),
        span("D", "2024-11-03T23:30:00", "2024-11-04T00:20:00", "00:50:00")]}]));
    // Served [11-04 05:00Z, 11-05 05:00Z) at 300; now is 11-04 06:00Z.
    let nov04 = page_of(json!([{"userId": "u-1", "status": [
        span("D", "2024-11-03T23:30:00", "2024-11-04T00:20:00", "00:50:00"),
        {"primaryStatus": "E", "startTime": "2024-11-04T00:10:00", "endTime": "-", "duration": "-"}]}]));

    let responses = [
        (d(2024, 11, 2), vec![(240, nov02)]),
        (d(2024, 11, 3), vec![(240, nov03_edt), (300, nov03_est)]),
        (d(2024, 11, 4), vec![(300, nov04)]),
    ];
    let mut got = Vec::new();
    for (day, bodies) in &responses {
        let plan = plan_day(tz, *day);
        let offsets: Vec<i32> = plan.iter().map(|w| w.offset_minutes).collect();
        let sent: Vec<i32> = bodies.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, sent, "{day}: the fixture follows the plan");
        let mut n = Normalizer::new("acc-1", at("2024-11-05T00:00:00Z"));
        for (w, (_, body)) in plan.iter().zip(bodies) {
            for agent in decode_page(body.as_bytes()).expect("decodes").agents {
                n.push_agent(&agent.expect("ok"), w);
            }
        }
        let (batch, rejects) = n.finish();
        assert!(rejects.is_empty(), "{rejects:?}");
        let p = str_col(&batch, "primary_status");
        let st = ts_col(&batch, "start_time");
        let en = ts_col(&batch, "end_time");
        let off = i32_col(&batch, "timezone_offset_minutes");
        for i in 0..batch.num_rows() {
            got.push((day.to_string(), p[i].clone(), st[i], en[i], off[i]));
        }
    }
    let row = |day: &str, p: &str, start: &str, end: Option<&str>, off: i32| {
        (
            day.to_owned(),
            s(p),
            Some(ms(start)),
            end.map(ms),
            Some(off),
        )
    };
    assert_eq!(
        got,
        vec![
            row(
                "2024-11-02",
                "A",
                "2024-11-03T03:30:00Z",
                Some("2024-11-03T04:30:00Z"),
                240
            ),
            row(
                "2024-11-03",
                "B",
                "2024-11-03T05:30:00Z",
                Some("2024-11-03T06:15:00Z"),
                240
            ),
            row(
                "2024-11-03",
                "C",
                "2024-11-03T06:30:00Z",
                Some("2024-11-03T07:00:00Z"),
                240
            ),
            row(
                "2024-11-03",
                "D",
                "2024-11-04T04:30:00Z",
                Some("2024-11-04T05:20:00Z"),
                300
            ),
            row("2024-11-04", "E", "2024-11-04T05:10:00Z", None, 300),
        ]
    );
}

/// America/New_York 2024-03-10 lasts 23 h: one request at EST serves 24 h, and its last hour
/// belongs to March 11. F crosses the 02:00 gap; H crosses local midnight; G (00:30 EDT on the
/// 11th, still open) is served by both days' requests.
#[test]
fn spring_forward_day_leaves_its_extra_served_hour_to_the_next_day() {
    let tz = Tz::America__New_York;
    // Served [03-10 05:00Z, 03-11 05:00Z) at 300; now is 03-11 05:30Z.
    let mar10 = page_of(json!([{"userId": "u-1", "status": [
        {"primaryStatus": "F", "startTime": "2024-03-10T01:50:00", "endTime": "2024-03-10T02:10:00", "duration": "00:20:00"},
        {"primaryStatus": "H", "startTime": "2024-03-10T22:45:00", "endTime": "2024-03-10T23:15:00", "duration": "00:30:00"},
        {"primaryStatus": "G", "startTime": "2024-03-10T23:30:00", "endTime": "-", "duration": "-"}]}]));
    // Served [03-11 04:00Z, 03-12 04:00Z) at 240.
    let mar11 = page_of(json!([{"userId": "u-1", "status": [
        {"primaryStatus": "H", "startTime": "2024-03-10T23:45:00", "endTime": "2024-03-11T00:15:00", "duration": "00:30:00"},
        {"primaryStatus": "G", "startTime": "2024-03-11T00:30:00", "endTime": "-", "duration": "-"}]}]));
    let mut got = Vec::new();
    for (day, body) in [(d(2024, 3, 10), mar10), (d(2024, 3, 11), mar11)] {
        let plan = plan_day(tz, day);
        assert_eq!(plan.len(), 1);
        let (batch, rejects) = normalize(&body, &plan[0]);
        assert!(rejects.is_empty(), "{rejects:?}");
        let p = str_col(&batch, "primary_status");
        let st = ts_col(&batch, "start_time");
        for i in 0..batch.num_rows() {
            got.push((day.to_string(), p[i].clone(), st[i]));
        }
    }
    assert_eq!(
        got,
        vec![
            (
                "2024-03-10".to_owned(),
                s("F"),
                Some(ms("2024-03-10T06:50:00Z"))
            ),
            (
                "2024-03-10".to_owned(),
                s("H"),
                Some(ms("2024-03-11T03:45:00Z"))
            ),
            (
                "2024-03-11".to_owned(),
                s("G"),
                Some(ms("2024-03-11T04:30:00Z"))
            ),
        ]
    );
}
