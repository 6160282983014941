//! HTTP-level test of the Queue Size model: the answer (a `//` comment, then one record whose
//! values are the generator's at the served second), the stream check, the filters and the
//! log of what was served.

use super::*;
use crate::simulator::tests::{send, sim, token, utc};
use crate::simulator::SimulatorConfig;

const PATH: &str = "/agentassist/api/v1/public/st-demo-stream/monitor/queueStatsById";

#[tokio::test]
async fn a_poll_answers_the_generated_state_of_the_second_after_a_line_comment() {
    let now = utc("2024-06-12T14:03:07.400Z");
    let cfg = SimulatorConfig {
        frozen_now: Some(now),
        ..SimulatorConfig::default()
    };
    let s = sim(cfg.clone()).await;
    let c = reqwest::Client::new();
    let filters = Filters::new(&["rtm".into(), "ivr".into()], &["en".into()]);
    let r = send(
        c.post(format!("{}{PATH}/qu-support/", s.base_url()))
            .header("auth", token())
            .header("accountId", "demo-account")
            .body(r#"{"Channels":["rtm","ivr"],"languages":["en"]}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.text.starts_with("[\n  // queue size of qu-support\n"),
        "{}",
        r.text
    );
    let g = queue_snapshot(&cfg, "qu-support", &filters, utc("2024-06-12T14:03:07Z"));
    assert_eq!(g.available + g.offline + g.busy + g.away, g.agents);
    assert!(g.engaged <= g.busy && g.avg_wait <= g.max_wait);
    let body = r.text.replace("// queue size of qu-support", "");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON without the comment");
    let q = &v[0];
    assert_eq!(q["queueId"], "qu-support");
    assert_eq!(q["queueName"], g.queue_name.as_str());
    assert_eq!(q["waiting"], g.waiting);
    assert_eq!(q["engaged"], g.engaged);
    assert_eq!(q["dropOff"], g.drop_off);
    assert_eq!(q["agentStatus"]["busy"], g.busy);
    assert_eq!(q["noOfAgents"], g.agents);
    assert_eq!(q["queueSummary"]["ASA"], g.asa);
    assert_eq!(q["queueSummary"]["avgWait"].as_f64(), Some(g.avg_wait));
    assert_eq!(
        served(&s),
        vec![Served {
            queue_id: "qu-support".into(),
            filters: filters.clone(),
            at: utc("2024-06-12T14:03:07Z"),
        }]
    );
    // Other filters, another view of the queue.
    let unfiltered = queue_snapshot(&cfg, "qu-support", &Filters::default(), now);
    assert_ne!(
        (unfiltered.waiting, unfiltered.busy, unfiltered.asa),
        (g.waiting, g.busy, g.asa)
    );
}

#[tokio::test]
async fn another_stream_is_not_found_and_the_account_header_is_required() {
    let s = sim(SimulatorConfig::default()).await;
    let c = reqwest::Client::new();
    let other = format!(
        "{}/agentassist/api/v1/public/st-other/monitor/queueStatsById/qu-1",
        s.base_url()
    );
    let r = send(
        c.post(other)
            .header("auth", token())
            .header("accountId", "demo-account"),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = send(
        c.post(format!("{}{PATH}/qu-1", s.base_url()))
            .header("auth", token()),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(served(&s).is_empty());
}

#[test]
fn about_one_answer_in_malformed_every_is_broken() {
    let cfg = SimulatorConfig {
        malformed_every: Some(5),
        ..SimulatorConfig::default()
    };
    let start = utc("2024-06-12T00:00:00Z");
    let broken = (0..1000)
        .filter(|i| {
            let at = start + chrono::TimeDelta::seconds(*i);
            queue_snapshot(&cfg, "qu-1", &Filters::default(), at).malformed
        })
        .count();
    assert!((120..280).contains(&broken), "{broken} of 1000");
    let g = (0..1000)
        .map(|i| start + chrono::TimeDelta::seconds(i))
        .map(|at| queue_snapshot(&cfg, "qu-1", &Filters::default(), at))
        .find(|g| g.malformed)
        .expect("a broken answer");
    assert!(render::answer(&g, false).contains(&format!("\"waiting\":\"{} waiting\"", g.waiting)));
}
