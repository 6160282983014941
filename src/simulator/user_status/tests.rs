//! HTTP-level tests of the UserStatus model: paging, the request window at an offset, the
//! buckets against the generator, URL spellings, header and body checks, the agent filter, the
//! legacy shape and malformed sums. Expected values are hand-written or come from the pure
//! generator, never from the server's own rendering.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::*;
use crate::simulator::tests::{
    send, sim, token, us_body, user_status, user_status_with, utc, US_PATH,
};
use crate::simulator::{self, ModelSettings, SimulatorConfig};

#[tokio::test]
async fn pagination_covers_every_agent_exactly_once() {
    let s = sim(SimulatorConfig {
        agents: 23,
        max_page_size: 10,
        ..SimulatorConfig::default()
    })
    .await;
    let c = reqwest::Client::new();
    let body = us_body("2024-03-10", "2024-03-10", -330, "PT30M");
    let mut seen = Vec::new();
    let mut offset = 0;
    let mut pages = 0;
    loop {
        let r = send(user_status(
            &c,
            &s,
            &format!("?limit=4&offset={offset}"),
            &body,
        ))
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        assert_eq!(v["limit"], 4);
        assert_eq!(v["offset"], offset);
        for a in v["data"].as_array().unwrap() {
            seen.push(a["userId"].as_str().unwrap().to_string());
        }
        pages += 1;
        if !v["hasMore"].as_bool().unwrap() {
            break;
        }
        offset += 4;
    }
    assert_eq!(pages, 6);
    let want: Vec<String> = (0..23)
        .map(|i| simulator::generator::agent(42, i).user_id)
        .collect();
    assert_eq!(seen, want);

    // limit is clamped to max_page_size and defaults to 50 (clamped too).
    let v = send(user_status(&c, &s, "?limit=1000", &body)).await.json();
    assert_eq!(
        (v["limit"].as_u64(), v["data"].as_array().unwrap().len()),
        (Some(10), 10)
    );
    let v = send(user_status(&c, &s, "", &body)).await.json();
    assert_eq!(v["limit"], 10);
    assert_eq!(v["hasMore"], true);
    // Offset past the end: empty page.
    let v = send(user_status(&c, &s, "?offset=40", &body)).await.json();
    assert_eq!(v["data"], json!([]));
    assert_eq!(v["hasMore"], false);
    s.shutdown().await;
}

/// Listed bucket starts of every agent in a Gen C response, with their statuses decoded.
/// (metric, value, raw `stats.sum` JSON) of one status entry.
type WireStatus = (String, String, String);

fn buckets(v: &Value) -> HashMap<(String, String), Vec<WireStatus>> {
    let mut out = HashMap::new();
    for a in v["data"].as_array().unwrap() {
        let user = a["userId"].as_str().unwrap().to_string();
        for b in a["timeInterval"].as_array().unwrap() {
            let statuses = b["status"]
                .as_array()
                .unwrap()
                .iter()
                .map(|st| {
                    (
                        st["metric"].as_str().unwrap().to_string(),
                        st["value"].as_str().unwrap().to_string(),
                        st["stats"]["sum"].to_string(),
                    )
                })
                .collect();
            out.insert(
                (user.clone(), b["startTime"].as_str().unwrap().to_string()),
                statuses,
            );
            let (s, e) = (
                utc(b["startTime"].as_str().unwrap()),
                utc(b["endTime"].as_str().unwrap()),
            );
            assert_eq!((e - s).num_minutes(), 30);
        }
    }
    out
}

fn expected(statuses: &[GeneratedStatus]) -> Vec<WireStatus> {
    statuses
        .iter()
        .map(|s| (s.metric.to_string(), s.value.to_string(), s.sum_json()))
        .collect()
}

async fn check_window(offset: i64, first: &str, last: &str) {
    let s = sim(SimulatorConfig {
        agents: 40,
        ..SimulatorConfig::default()
    })
    .await;
    let c = reqwest::Client::new();
    let body = us_body("2024-03-10", "2024-03-10", offset, "PT30M");
    let v = send(user_status(&c, &s, "?limit=100", &body)).await.json();
    let got = buckets(&v);
    let (first, last) = (utc(first), utc(last));
    let starts: BTreeSet<DateTime<Utc>> = got.keys().map(|(_, t)| utc(t)).collect();
    assert_eq!(starts.first(), Some(&first), "offset {offset}");
    assert_eq!(starts.last(), Some(&last), "offset {offset}");
    assert!(starts.iter().all(|t| (*t - first).num_minutes() % 30 == 0));
    // Every listed bucket holds the generator's data for that UTC bucket start.
    for (i, a) in v["data"].as_array().unwrap().iter().enumerate() {
        for b in a["timeInterval"].as_array().unwrap() {
            let start = b["startTime"].as_str().unwrap();
            let want = bucket_statuses(42, i, utc(start), Granularity::PT30M);
            assert_eq!(
                got[&(a["userId"].as_str().unwrap().to_string(), start.to_string())],
                expected(&want)
            );
        }
    }
    s.shutdown().await;
}

#[tokio::test]
async fn window_is_the_local_day_at_an_ist_offset() {
    check_window(-330, "2024-03-09T18:30:00Z", "2024-03-10T18:00:00Z").await;
}

#[tokio::test]
async fn window_is_the_local_day_at_a_us_dst_offset() {
    // New York's spring-forward day, sent with the offset at local midnight (EST, 300): the
    // simulator keeps that one offset for the whole day.
    check_window(300, "2024-03-10T05:00:00Z", "2024-03-11T04:30:00Z").await;
}

#[tokio::test]
async fn buckets_agree_between_offsets() {
    let s = sim(SimulatorConfig {
        agents: 30,
        ..SimulatorConfig::default()
    })
    .await;
    let c = reqwest::Client::new();
    let ist = buckets(
        &send(user_status(
            &c,
            &s,
            "?limit=100",
            &us_body("2024-03-10", "2024-03-10", -330, "PT30M"),
        ))
        .await
        .json(),
    );
    let gmt = buckets(
        &send(user_status(
            &c,
            &s,
            "?limit=100",
            &us_body("2024-03-10", "2024-03-10", 0, "PT30M"),
        ))
        .await
        .json(),
    );
    let overlap_end = utc("2024-03-10T18:30:00Z");
    let mut compared = 0;
    for ((user, start), statuses) in &gmt {
        if utc(start) >= overlap_end || statuses.is_empty() {
            continue;
        }
        assert_eq!(
            ist.get(&(user.clone(), start.clone())),
            Some(statuses),
            "{user} {start}"
        );
        compared += 1;
    }
    assert!(compared > 50, "only {compared} buckets compared");
    s.shutdown().await;
}

#[tokio::test]
async fn url_generations_and_double_slashes_route() {
    let s = sim(SimulatorConfig::default()).await;
    let c = reqwest::Client::new();
    let body = us_body("2024-03-10", "2024-03-10", 0, "PT1H").to_string();
    for path in [
        "/agentassist/api/public/analytics/account/demo-account/userstatus",
        "/agentassist/api/public/analytics/account/demo-account//userstatus",
        "/agentassist/api/public/analytics/1.1/account/demo-account/userstatus",
        "/agentassist/api/public/analytics/1.1/account/demo-account//userstatus",
    ] {
        let r = send(
            c.post(format!("{}{path}", s.base_url()))
                .header("auth", token())
                .header("IId", "st-demo-stream")
                .header("accountid", "demo-account")
                .body(body.clone()),
        )
        .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert!(r.json()["data"].is_array());
    }
    let r = send(c.post(format!("{}/agentassist/api/public/nothing", s.base_url()))).await;
    assert_eq!(r.status, 404);
    assert_eq!(s.stats().count(ENDPOINT, 200), 4);
    s.shutdown().await;
}

#[tokio::test]
async fn bad_headers_and_bodies_are_client_errors() {
    let s = sim(SimulatorConfig::default()).await;
    let c = reqwest::Client::new();
    let good = us_body("2024-03-10", "2024-03-10", 0, "PT1H");
    let url = format!("{}{US_PATH}", s.base_url());
    let missing_iid = c
        .post(&url)
        .header("auth", token())
        .header("accountId", "demo-account")
        .body(good.to_string());
    assert_eq!(send(missing_iid).await.status, 400);
    let wrong_iid = user_status_with(&c, &s, "", &good, &[("IId", "st-other")]);
    assert_eq!(send(wrong_iid).await.status, 403);
    let wrong_account = user_status_with(&c, &s, "", &good, &[("accountid", "other")]);
    assert_eq!(send(wrong_account).await.status, 403);
    let other_path = c
        .post(format!(
            "{}/agentassist/api/public/analytics/account/other/userstatus",
            s.base_url()
        ))
        .header("auth", token())
        .header("iid", "st-demo-stream")
        .header("accountId", "demo-account")
        .body(good.to_string());
    assert_eq!(send(other_path).await.status, 403);
    for bad in [
        us_body("2024-03-10", "2024-03-10", 0, "PT5M"),
        us_body("2024-03-11", "2024-03-10", 0, "PT1H"),
        us_body("2024-3-10", "2024-03-10", 0, "PT1H"),
        us_body("2024-03-10", "2024-03-10", 5000, "PT1H"),
        json!({"granularity": "PT1H"}),
    ] {
        let r = send(user_status(&c, &s, "", &bad)).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.json()["errors"][0]["msg"].is_string());
    }
    assert_eq!(
        send(user_status(&c, &s, "?limit=abc", &good)).await.status,
        400
    );
    s.shutdown().await;
}

#[tokio::test]
async fn agent_filter_restricts_the_page() {
    let s = sim(SimulatorConfig::default()).await;
    let c = reqwest::Client::new();
    let emails = [
        simulator::generator::agent(42, 7).email,
        simulator::generator::agent(42, 2).email,
    ];
    let body = json!({"filter": {"agents": [emails[0], emails[1], "nobody@example.com"],
        "dateFilter": {"startDate": "2024-03-10", "endDate": "2024-03-10"}},
        "granularity": "PT1H"});
    let v = send(user_status(&c, &s, "", &body)).await.json();
    let got: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![emails[1].as_str(), emails[0].as_str()]);
    s.shutdown().await;
}

#[tokio::test]
async fn legacy_shape_is_keyed_by_user_id() {
    let s = sim(SimulatorConfig {
        models: ModelSettings::default().with(UserStatusSim { legacy_shape: true }),
        agents: 7,
        ..SimulatorConfig::default()
    })
    .await;
    let c = reqwest::Client::new();
    // Gen A documented no IId/accountId headers.
    let r = send(
        c.post(format!(
            "{}/agentassist/api/public/analytics/account/demo-account//userstatus?limit=2",
            s.base_url()
        ))
        .header("auth", token())
        .body(us_body("2024-03-10", "2024-03-10", -330, "PT30M").to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 7);
    let a3 = simulator::generator::agent(42, 3);
    assert_eq!(obj[&a3.user_id]["emailId"], a3.email.as_str());
    assert_eq!(obj[&a3.user_id]["firstName"], a3.first_name.as_str());
    assert!(obj[&a3.user_id]["timeInterval"].is_array());
    s.shutdown().await;
}

#[tokio::test]
async fn malformed_sums_match_the_generator() {
    let s = sim(SimulatorConfig {
        agents: 10,
        malformed_every: Some(3),
        ..SimulatorConfig::default()
    })
    .await;
    let c = reqwest::Client::new();
    let v = send(user_status(
        &c,
        &s,
        "",
        &us_body("2024-03-10", "2024-03-10", 0, "PT1H"),
    ))
    .await
    .json();
    let mut wire_bad = 0;
    for a in v["data"].as_array().unwrap() {
        for b in a["timeInterval"].as_array().unwrap() {
            for st in b["status"].as_array().unwrap() {
                let sum = st["stats"]["sum"].as_str().unwrap();
                if !sum.starts_with(|c: char| c.is_ascii_digit()) {
                    wire_bad += 1;
                }
            }
        }
    }
    let window = request_window(
        chrono::NaiveDate::from_ymd_opt(2024, 3, 10).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2024, 3, 10).unwrap(),
        0,
    )
    .unwrap();
    let want: usize = (0..10)
        .flat_map(|i| agent_window(42, i, window, Granularity::PT1H, Some(3)))
        .flat_map(|b| b.statuses)
        .filter(|s| s.malformed)
        .count();
    assert!(want > 0);
    assert_eq!(wire_bad, want);
    s.shutdown().await;
}
