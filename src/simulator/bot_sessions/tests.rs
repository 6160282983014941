//! HTTP-level tests of the Sessions History model: newest-first pages of the intent sessions
//! that shift as sessions arrive, the containmentType filter, the 7-day check and the per-bot
//! limits. Expected values come from the pure generators.

use serde_json::json;

use super::*;
use crate::simulator::intent_realtime::session;
use crate::simulator::tests::{send, sim, token, utc, Resp};
use crate::simulator::ModelSettings;

fn cfg(sessions: BotSessionsSim) -> SimulatorConfig {
    let sessions = BotSessionsSim {
        max_limit: 100,
        ..sessions
    };
    SimulatorConfig {
        bots: vec!["st-a".into(), "st-b".into()],
        frozen_now: Some(utc("2024-01-03T12:00:00Z")),
        models: ModelSettings::default().with(sessions),
        ..SimulatorConfig::default()
    }
}

async fn post(base: &str, bot: &str, query: &str, body: serde_json::Value) -> Resp {
    let c = reqwest::Client::new();
    send(
        c.post(format!("{base}/api/public/bot/{bot}/getSessions{query}"))
            .header("auth", token())
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

fn ids(v: &serde_json::Value) -> Vec<String> {
    v["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["sessionId"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn pages_are_the_intent_sessions_newest_first_and_shift_when_sessions_arrive() {
    let s = sim(cfg(BotSessionsSim {
        advance_per_request: Duration::from_secs(600),
        ..BotSessionsSim::default()
    }))
    .await;
    let base = s.base_url();
    let body = |skip: usize| {
        json!({"dateFrom": "2024-01-03T00:00:00.000Z", "dateTo": "2024-01-04T00:00:00.000Z",
               "skip": skip, "limit": 100})
    };
    let first = post(&base, "st-a", "", body(0)).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let first = first.json();
    let f = feed(s.config(), "st-a");
    let range = utc("2024-01-03T00:00:00Z")..utc("2024-01-04T00:00:00Z");
    let want: Vec<String> = listed(&f, &range, utc("2024-01-03T12:00:00Z"))
        .iter()
        .map(|g| g.id().to_string())
        .collect();
    assert_eq!(first["total"], want.len());
    assert_eq!(first["moreAvailable"], true);
    assert_eq!(ids(&first), want[..100]);
    // Each session echoes the bot the request named.
    let echoed = first["sessions"].as_array().expect("sessions");
    assert!(
        echoed.iter().all(|x| x["botId"] == "st-a"),
        "{:?}",
        echoed[0]["botId"]
    );
    // The same ids as IntentRealtimeData's sessions.
    assert!((0..5000).any(|k| session(&f, k).session_id == want[0]));
    // Ten minutes later (the second request): the page at skip 100 starts with sessions
    // already served, pushed down by the new ones.
    let second = post(&base, "st-a", "", body(100)).await.json();
    let total = second["total"].as_u64().expect("total") as usize;
    assert!(total > want.len(), "sessions arrived");
    let again = ids(&second);
    assert!(want[..100].contains(&again[0]), "the page shifted");
    s.shutdown().await;
}

#[tokio::test]
async fn containment_type_filters_by_kind_and_without_it_every_kind_comes() {
    let s = sim(cfg(BotSessionsSim::default())).await;
    let base = s.base_url();
    let body = json!({"dateFrom": "2024-01-03", "dateTo": "2024-01-03T12:00:00Z", "limit": 100000});
    let all = post(&base, "st-b", "", body.clone()).await.json();
    let mut sum = 0;
    for kind in ["dropOff", "selfService", "agent"] {
        let one = post(
            &base,
            "st-b",
            &format!("?containmentType={kind}"),
            body.clone(),
        )
        .await
        .json();
        let sessions = one["sessions"].as_array().expect("sessions");
        assert!(sessions.iter().all(|x| x["containmentType"] == kind));
        assert!(!sessions.is_empty(), "{kind}");
        sum += one["total"].as_u64().expect("total");
    }
    // The limit is clamped to max_limit, the total is not.
    assert_eq!(all["sessions"].as_array().expect("sessions").len(), 100);
    assert_eq!(all["total"].as_u64(), Some(sum));
    let bad = post(&base, "st-b", "?containmentType=all", body).await;
    assert_eq!(bad.status, 400);
    s.shutdown().await;
}

#[tokio::test]
async fn ranges_of_seven_days_or_more_unknown_bots_and_bad_dates_are_refused() {
    let s = sim(cfg(BotSessionsSim::default())).await;
    let base = s.base_url();
    let week = post(
        &base,
        "st-a",
        "",
        json!({"dateFrom": "2024-01-01T00:00:00Z", "dateTo": "2024-01-08T00:00:00Z"}),
    )
    .await;
    assert_eq!(week.status, 400);
    assert!(week.text.contains("7 days"), "{}", week.text);
    let under = post(
        &base,
        "st-a",
        "",
        json!({"dateFrom": "2024-01-01T00:00:00Z", "dateTo": "2024-01-07T23:59:59.999Z"}),
    )
    .await;
    assert_eq!(under.status, 200);
    let unknown = post(&base, "st-nope", "", json!({})).await;
    assert_eq!(unknown.status, 404);
    let bad = post(&base, "st-a", "", json!({"dateFrom": "yesterday"})).await;
    assert_eq!(bad.status, 400);
    s.shutdown().await;
}

#[tokio::test]
async fn each_bot_has_its_own_per_minute_limit() {
    let s = sim(cfg(BotSessionsSim {
        per_bot_per_minute: Some(2),
        per_bot_per_hour: Some(1800),
        ..BotSessionsSim::default()
    }))
    .await;
    let base = s.base_url();
    let body = json!({"dateFrom": "2024-01-03", "dateTo": "2024-01-04", "limit": 1});
    assert_eq!(post(&base, "st-a", "", body.clone()).await.status, 200);
    assert_eq!(post(&base, "st-a", "", body.clone()).await.status, 200);
    let third = post(&base, "st-a", "", body.clone()).await;
    assert_eq!(third.status, 429);
    assert!(third.text.contains("Rate limit"), "{}", third.text);
    assert_eq!(
        post(&base, "st-b", "", body).await.status,
        200,
        "another bot"
    );
    s.shutdown().await;
}
