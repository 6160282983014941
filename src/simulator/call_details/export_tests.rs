//! The end-to-end export of busy and DST days through the Call Details simulator: `fetch_day`
//! over HTTP, normalization, and every exported row compared with the generator's ground
//! truth, never with what the decoder produced.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use super::tests::{sim, token};
use super::*;
use crate::datasets::call_details::tests::{cols, utc};
use crate::datasets::call_details::{
    decode_page, fetch_day, request_body, request_query, CallBatches, CallDetailsApi,
    CallDetailsNormalizer, CallWindow, DayFetch, Density, OwnedRecord, RequestFilter,
};
use crate::simulator::RunningSimulator;
use crate::sources::window::{local_day_bounds, plan_day};
use crate::sources::Reject;

#[derive(Debug)]
enum FetchError {
    Http(reqwest::Error),
    Status(u16, String),
    Decode(crate::sources::DecodeError),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Http(e) => write!(f, "{e}"),
            FetchError::Status(s, b) => write!(f, "HTTP {s}: {b}"),
            FetchError::Decode(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FetchError {}

struct Export {
    batches: CallBatches,
    rejects: Vec<Reject>,
    fetch: DayFetch<OwnedRecord>,
}

async fn export_day(
    s: &RunningSimulator,
    tz: Tz,
    day: NaiveDate,
    expected: Option<&Density>,
) -> Export {
    let client = reqwest::Client::new();
    let segments = plan_day(tz, day);
    let url = format!(
        "{}{}",
        s.base_url(),
        CallDetailsApi::default().path("demo-account")
    );
    let fetch = |w: &CallWindow, page: u32| {
        let mut u = url::Url::parse(&url).expect("url");
        for (k, v) in request_query(100, page) {
            u.query_pairs_mut().append_pair(k, &v);
        }
        let body = request_body(w, &RequestFilter::default(), CallDetailsApi::default());
        let req = client
            .post(u)
            .header("auth", token())
            .header("IId", "st-demo-stream")
            .header("accountId", "demo-account")
            .header("content-type", "application/json")
            .body(body.to_string());
        let offset = w.offset_minutes;
        async move {
            let resp = req.send().await.map_err(FetchError::Http)?;
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.map_err(FetchError::Http)?;
            if status != 200 {
                return Err(FetchError::Status(
                    status,
                    String::from_utf8_lossy(&bytes).into(),
                ));
            }
            decode_page(&bytes, offset)
                .map(|p| p.into_packed())
                .map_err(FetchError::Decode)
        }
    };
    let fetched = fetch_day(&segments, expected, 100, fetch)
        .await
        .expect("day fetched");
    let mut n = CallDetailsNormalizer::new("demo-account", utc("2026-01-01T00:00:00Z"));
    let claim = local_day_bounds(tz, day);
    for r in fetched.records.iter().map(OwnedRecord::get) {
        assert!(n.push(r, &claim), "{} outside the day", r.session_id);
    }
    for r in &fetched.rejects {
        n.push_reject(r.clone());
    }
    let (batches, rejects) = n.finish();
    Export {
        batches,
        rejects,
        fetch: fetched,
    }
}

fn json(text: &Option<String>) -> Option<Value> {
    text.as_deref()
        .map(|t| serde_json::from_str(t).expect("JSON text"))
}

/// The compared columns of one `call_details` row.
#[derive(Debug, PartialEq)]
struct DetailsRow {
    conversation_id: Option<String>,
    channel: Option<String>,
    times: (Option<DateTime<Utc>>, Option<DateTime<Utc>>, Option<i32>),
    statuses: (Option<String>, Option<String>, Option<String>),
    direction: Option<String>,
    is_voicemail: Option<bool>,
    lists: (Option<Vec<String>>, Option<Vec<String>>),
    json: (Option<Value>, Option<Value>, Option<Value>),
    survey: (Option<String>, Option<i64>, Option<i64>, Option<i64>),
    campaign: (Option<i64>, Option<String>, Option<DateTime<Utc>>),
    customer_phone: Option<String>,
    segment_count: Option<i32>,
}

fn details_rows(b: &CallBatches) -> HashMap<String, DetailsRow> {
    let d = &b.details;
    let (s, t, i, l) = (
        |n| cols::strs(d, n),
        |n| cols::times(d, n),
        |n| cols::ints(d, n),
        |n| cols::lists(d, n),
    );
    let (ids, conv, chan, start, end) = (
        s("session_id"),
        s("conversation_id"),
        s("channel"),
        t("session_start_time"),
        t("session_end_time"),
    );
    let (off, fin, smart, reason, dir) = (
        cols::int32s(d, "time_zone_offset"),
        s("final_status"),
        s("smart_status"),
        s("reason"),
        s("direction"),
    );
    let (vm, disp, bots, meta, skills, tags) = (
        cols::bools(d, "is_voicemail"),
        l("dispositions"),
        l("automation_bot_ids"),
        s("meta_info"),
        s("skills"),
        s("user_level_tags"),
    );
    let (stype, csat, nps, like) = (
        s("survey_type"),
        i("csat_score"),
        i("nps_score"),
        i("like_dislike_score"),
    );
    let (attempt, cstatus, run, phone, nseg) = (
        i("campaign_attempt"),
        s("campaign_contact_status"),
        t("campaign_run_date"),
        s("customer_phone"),
        cols::int32s(d, "segment_count"),
    );
    (0..d.num_rows())
        .map(|k| {
            let row = DetailsRow {
                conversation_id: conv[k].clone(),
                channel: chan[k].clone(),
                times: (start[k], end[k], off[k]),
                statuses: (fin[k].clone(), smart[k].clone(), reason[k].clone()),
                direction: dir[k].clone(),
                is_voicemail: vm[k],
                lists: (disp[k].clone(), bots[k].clone()),
                json: (json(&meta[k]), json(&skills[k]), json(&tags[k])),
                survey: (stype[k].clone(), csat[k], nps[k], like[k]),
                campaign: (attempt[k], cstatus[k].clone(), run[k]),
                customer_phone: phone[k].clone(),
                segment_count: nseg[k],
            };
            (ids[k].clone().expect("session id"), row)
        })
        .collect()
}

fn expected_details(c: &GeneratedCall, offset: i32) -> DetailsRow {
    let sv = c.survey.as_ref();
    let k = c.campaign.as_ref();
    DetailsRow {
        conversation_id: c.conversation_id.clone(),
        channel: Some(c.channel.clone()),
        times: (Some(c.start), Some(c.end), Some(offset)),
        statuses: (
            Some(c.final_status.clone()),
            Some(c.smart_status.clone()),
            Some(c.reason.clone()),
        ),
        direction: c.direction.clone(),
        is_voicemail: c.is_voicemail,
        lists: (c.dispositions.clone(), Some(c.automation_bot_ids.clone())),
        json: (
            c.meta_info.clone(),
            c.skills.clone(),
            c.user_level_tags.clone(),
        ),
        survey: (
            sv.map(|s| s.survey_type.clone()),
            sv.and_then(|s| s.csat_score),
            sv.and_then(|s| s.nps_score),
            sv.and_then(|s| s.like_dislike_score),
        ),
        campaign: (
            k.and_then(|k| k.attempt),
            k.map(|k| k.contact_status.clone()),
            k.and_then(|k| k.run_date),
        ),
        customer_phone: c.customer.as_ref().map(|k| k.phone.clone()),
        segment_count: Some(segments(c).len() as i32),
    }
}

/// Every `call_details` row equals its generated session; sessions are the expected set.
fn check_details(
    b: &CallBatches,
    truth: &[&GeneratedCall],
    offset_at: impl Fn(DateTime<Utc>) -> i32,
) {
    let rows = details_rows(b);
    assert_eq!(rows.len(), truth.len());
    assert_eq!(b.details.num_rows(), truth.len());
    for c in truth {
        let got = rows
            .get(&c.session_id)
            .unwrap_or_else(|| panic!("{} missing", c.session_id));
        assert_eq!(
            got,
            &expected_details(c, offset_at(c.start)),
            "{}",
            c.session_id
        );
    }
}

/// The compared columns of one `call_segments` row.
#[derive(Debug, PartialEq)]
struct SegmentRow {
    destination_type: Option<String>,
    queue: (Option<String>, Option<String>, Option<DateTime<Utc>>),
    callback: (Option<bool>, Option<DateTime<Utc>>),
    agent_id: Option<String>,
    responding: Option<bool>,
    status: (Option<String>, Option<String>),
    times: [Option<DateTime<Utc>>; 3],
    seconds: (Option<i64>, Option<i64>, Option<i64>),
    notes: Option<Vec<String>>,
    consulting_names: Vec<String>,
}

fn segment_rows(b: &CallBatches) -> HashMap<(String, i32), SegmentRow> {
    let g = &b.segments;
    let (s, t, i) = (
        |n| cols::strs(g, n),
        |n| cols::times(g, n),
        |n| cols::ints(g, n),
    );
    let (sid, idx, kind, qid, qname, enter) = (
        s("session_id"),
        cols::int32s(g, "segment_index"),
        s("destination_type"),
        s("queue_id"),
        s("queue_name"),
        t("enter_time"),
    );
    let (cb, cbt, agent, resp, status, nre) = (
        cols::bools(g, "callback_opted"),
        t("callback_opted_time"),
        s("agent_id"),
        cols::bools(g, "responding"),
        s("status"),
        s("non_response_event"),
    );
    let (assigned, accepted, acw_end, frs, is, acw) = (
        t("assigned_at"),
        t("accepted_time"),
        t("after_call_work_end_time"),
        i("first_response_seconds"),
        i("interaction_seconds"),
        i("after_call_work_seconds"),
    );
    let (notes, consult) = (cols::lists(g, "agent_notes"), s("consulting_agents"));
    (0..g.num_rows())
        .map(|k| {
            let names = json(&consult[k]).map_or_else(Vec::new, |v| {
                let list = v.as_array().cloned().unwrap_or_default();
                list.iter()
                    .map(|c| c["name"].as_str().unwrap_or("").to_string())
                    .collect()
            });
            let row = SegmentRow {
                destination_type: kind[k].clone(),
                queue: (qid[k].clone(), qname[k].clone(), enter[k]),
                callback: (cb[k], cbt[k]),
                agent_id: agent[k].clone(),
                responding: resp[k],
                status: (status[k].clone(), nre[k].clone()),
                times: [assigned[k], accepted[k], acw_end[k]],
                seconds: (frs[k], is[k], acw[k]),
                notes: notes[k].clone(),
                consulting_names: names,
            };
            ((sid[k].clone().expect("id"), idx[k].expect("index")), row)
        })
        .collect()
}

fn expected_segment(s: &GeneratedSegment) -> SegmentRow {
    let q = s.queue.as_ref();
    let l = s.leg.as_ref();
    SegmentRow {
        destination_type: Some(s.destination_type.to_string()),
        queue: (
            q.map(|q| q.queue_id.clone()),
            q.and_then(|q| q.queue_name.clone()),
            q.and_then(|q| q.enter_time),
        ),
        callback: (
            q.and_then(|q| q.callback_opted),
            q.and_then(|q| q.callback_opted_time),
        ),
        agent_id: l.map(|l| l.agent_id.clone()),
        responding: s.responding,
        status: (
            l.and_then(|l| l.status.clone()),
            l.and_then(|l| l.non_response_event.clone()),
        ),
        times: [
            l.map(|l| l.assigned_at),
            l.and_then(|l| l.accepted_time),
            l.and_then(|l| l.after_call_work_end_time),
        ],
        seconds: (
            l.and_then(|l| l.first_response_seconds),
            l.and_then(|l| l.interaction_seconds),
            l.and_then(|l| l.after_call_work_seconds),
        ),
        notes: l.map(|l| l.notes.clone()),
        consulting_names: l.map_or_else(Vec::new, |l| {
            l.consulting.iter().map(|c| c.name.clone()).collect()
        }),
    }
}

/// Every `call_segments` row equals its generated leg.
fn check_segments(b: &CallBatches, truth: &[&GeneratedCall]) {
    let rows = segment_rows(b);
    let mut expected = 0;
    for c in truth {
        for s in segments(c) {
            expected += 1;
            let key = (c.session_id.clone(), s.index as i32);
            let got = rows.get(&key).unwrap_or_else(|| panic!("{key:?} missing"));
            assert_eq!(got, &expected_segment(&s), "{key:?}");
        }
    }
    assert_eq!((rows.len(), b.segments.num_rows()), (expected, expected));
}

/// The rejects are exactly the hostile sessions of the day, each with its raw JSON.
fn check_rejects(rejects: &[Reject], hostile: &[&GeneratedCall]) {
    assert_eq!(rejects.len(), hostile.len(), "{rejects:?}");
    for c in hostile {
        assert!(
            rejects.iter().any(|r| r.raw_json.contains(&c.session_id)),
            "{} not rejected",
            c.session_id
        );
    }
}

fn truth_of(cfg: &SimulatorConfig, tz: Tz, day: NaiveDate) -> Vec<GeneratedCall> {
    calls_in(cfg, local_day_bounds(tz, day))
}

/// A 25 h day of over 3,000 sessions with a busy hour and hostile records, exported twice:
/// first with nothing known, then planned from the first run's profile.
async fn busy_fall_back_day(num_results: NumResults) {
    let tz = Tz::America__New_York;
    let day = NaiveDate::from_ymd_opt(2024, 11, 3).expect("date");
    let sim_cfg = CallDetailsSim {
        sessions_per_hour: 110,
        bursts: vec![CallBurst {
            start: utc("2024-11-03T15:00:00Z"),
            seconds: 3600,
            sessions: 500,
        }],
        num_results,
        ..CallDetailsSim::default()
    };
    let s = sim(sim_cfg, Some(97)).await;
    let truth = truth_of(s.config(), tz, day);
    assert!(truth.len() > 3000, "{}", truth.len());
    let (good, hostile): (Vec<&GeneratedCall>, Vec<&GeneratedCall>) =
        truth.iter().partition(|c| c.malformed.is_none());
    assert!(!hostile.is_empty());
    // The first 24 h are served at EDT (240), the repeated hour at EST (300).
    let offset_at = |t: DateTime<Utc>| {
        if t < utc("2024-11-04T04:00:00Z") {
            240
        } else {
            300
        }
    };

    let first = export_day(&s, tz, day, None).await;
    check_details(&first.batches, &good, offset_at);
    check_segments(&first.batches, &good);
    check_rejects(&first.rejects, &hostile);
    let st = s.stats();
    assert_eq!(st.count(ENDPOINT, 400), 0, "a request broke a cap");
    assert_eq!(st.requests(ENDPOINT), first.fetch.stats.requests);

    let next = export_day(&s, tz, day, Some(&first.fetch.density)).await;
    check_details(&next.batches, &good, offset_at);
    check_rejects(&next.rejects, &hostile);
    assert_eq!(s.stats().count(ENDPOINT, 400), 0);
    for (run, f) in [("first", &first.fetch.stats), ("next", &next.fetch.stats)] {
        println!(
            "numResults {num_results:?}, {run} run: {} sessions, {} rejects, {} requests, minimum for its \
             {} windows {}, lower bound {} ({:.2}×), {} overflows, {} early splits",
            f.sessions,
            f.rejects,
            f.requests,
            f.windows,
            f.minimum_requests(),
            f.lower_bound_requests(),
            f.ratio(),
            f.overflows,
            f.early_splits
        );
    }
    let (f, n) = (&first.fetch.stats, &next.fetch.stats);
    assert!(n.ratio() <= 1.15, "{n:?}");
    if num_results == NumResults::WindowTotal {
        let limit = 1.15 * f.lower_bound_requests() as f64 + 11.0;
        assert!(f.requests as f64 <= limit, "{f:?}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn a_busy_fall_back_day_is_exported_completely_within_the_caps() {
    busy_fall_back_day(NumResults::WindowTotal).await;
}

#[tokio::test]
async fn a_busy_day_is_exported_completely_without_num_results() {
    busy_fall_back_day(NumResults::Absent).await;
}

#[tokio::test]
async fn a_spring_forward_day_exports_exactly_its_23_hours() {
    let tz = Tz::America__New_York;
    let day = NaiveDate::from_ymd_opt(2024, 3, 10).expect("date");
    let s = sim(
        CallDetailsSim {
            sessions_per_hour: 20,
            ..CallDetailsSim::default()
        },
        None,
    )
    .await;
    let truth = truth_of(s.config(), tz, day);
    let all: Vec<&GeneratedCall> = truth.iter().collect();
    let out = export_day(&s, tz, day, None).await;
    check_details(&out.batches, &all, |_| 300);
    check_segments(&out.batches, &all);
    assert!(out.rejects.is_empty());
    // Sessions just outside the day exist and were not exported.
    let cfg = s.config();
    assert!(!calls_in(
        cfg,
        utc("2024-03-10T04:00:00Z")..utc("2024-03-10T05:00:00Z")
    )
    .is_empty());
    assert!(!calls_in(
        cfg,
        utc("2024-03-11T04:00:00Z")..utc("2024-03-11T05:00:00Z")
    )
    .is_empty());
    s.shutdown().await;
}
