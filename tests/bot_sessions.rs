//! Sessions History through the exporter's own backfill against a fake getSessions server on
//! loopback whose answer holds what the simulator never serves: a session that starts outside
//! the requested day (rejected: in the rejects dataset, read with a Parquet reader, and counted
//! by `smartassist_bot_sessions_outside_range_total`) and a session whose `botId` echo names
//! another bot (kept under the bot asked for, counted by
//! `smartassist_bot_sessions_other_bot_total`). The expected ids are the fake's own. And the
//! simulator's per-bot XO limits (reference §13) end to end: a backfill over them is throttled
//! and waits, and still holds every session the simulator's generator lists, once.

mod common;

use std::collections::BTreeSet;

use arrow::array::AsArray;
use common::*;
use smartassist_export::backfill::{backfill, BackfillRequest};
use smartassist_export::datasets::{self, Dataset};
use smartassist_export::simulator::SimulatorConfig;

const BOT: &str = "st-asked";

fn session(id: &str, bot: &str, start: &str, end: &str) -> String {
    format!(
        r#"{{"sessionId":"{id}","botId":"{bot}","channel":"rtm","userId":"u-{id}",
"start_time":"{start}","end_time":"{end}","session_lang":["en"],"sessionType":"interactive",
"containmentType":"selfService","isDeveloper":false,"sessionStatus":"closed",
"tags":{{"userTags":[],"sessionTags":[]}},"noOfMessagesExchanged":4,"noOfTasksExecuted":1}}"#
    )
}

/// Answers the first page of every request with `sessions`, later pages empty.
async fn fake_sessions_server(sessions: Vec<String>) -> std::net::SocketAddr {
    let page = format!(
        r#"{{"total":{},"moreAvailable":false,"sessions":[{}]}}"#,
        sessions.len(),
        sessions.join(",")
    );
    let app = axum::Router::new().route(
        "/api/public/bot/{bot}/getSessions",
        axum::routing::post(move |body: String| {
            let page = page.clone();
            async move {
                let request: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let skip = request.get("skip").and_then(|s| s.as_u64()).unwrap_or(0);
                if skip == 0 {
                    page
                } else {
                    r#"{"total":0,"moreAvailable":false,"sessions":[]}"#.to_string()
                }
            }
        }),
    );
    loopback::serve(app).await
}

#[test]
fn a_session_outside_the_day_is_rejected_and_another_bots_echo_counted() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let inside = session(
        "s-inside",
        BOT,
        "2024-05-02T10:00:00.000Z",
        "2024-05-02T10:05:00.000Z",
    );
    let outside = session(
        "s-outside",
        BOT,
        "2024-05-01T10:00:00.000Z",
        "2024-05-01T10:05:00.000Z",
    );
    let echo = session(
        "s-echo",
        "st-another",
        "2024-05-02T11:00:00.000Z",
        "2024-05-02T11:05:00.000Z",
    );
    let addr = rt.block_on(fake_sessions_server(vec![
        inside.clone(),
        outside.clone(),
        echo.clone(),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = write_config(
        tmp.path(),
        &format!("http://{addr}"),
        &out,
        &format!(
            "[user_status]\nenabled = false\n[bot_sessions]\nenabled = true\n\
             timezone = \"UTC\"\nbot_ids = [\"{BOT}\"]\n"
        ),
    );
    let metrics_text = rt.block_on(async {
        let (app, metrics) = loopback::start_app(&config).await;
        let chosen: Vec<Dataset> = app
            .datasets()
            .iter()
            .filter(|d| d.name() == "bot_sessions")
            .cloned()
            .collect();
        let day = date("2024-05-02");
        let req = BackfillRequest {
            from: day,
            to: day,
            datasets: chosen,
            concurrency: 1,
            skip_existing: false,
        };
        let report = backfill(&app.cx, &req).await.expect("backfill");
        report.into_result().expect("the day is exported");
        let text = metrics.render();
        app.shutdown().await;
        text
    });
    // Rows: the session of the day and the echo of another bot, under the bot asked for.
    let mut rows = BTreeSet::new();
    for (path, batches) in read_dataset(&out, "bot_sessions") {
        assert!(
            path.contains(&format!("bot_id={BOT}/dt=2024-05-02")),
            "{path}"
        );
        for b in batches {
            let ids = b
                .column_by_name("session_id")
                .expect("session_id")
                .as_string::<i32>();
            let bots = b
                .column_by_name("bot_id")
                .expect("bot_id")
                .as_string::<i32>();
            for i in 0..b.num_rows() {
                rows.insert((ids.value(i).to_string(), bots.value(i).to_string()));
            }
        }
    }
    assert_eq!(
        rows,
        BTreeSet::from([
            ("s-echo".to_string(), BOT.to_string()),
            ("s-inside".to_string(), BOT.to_string())
        ])
    );
    // The session outside the day, as sent, in the rejects.
    let mut rejects = Vec::new();
    for (_, batches) in read_dataset(&out, "_rejects/bot_sessions") {
        for b in batches {
            let raw = b
                .column_by_name("raw_json")
                .expect("raw_json")
                .as_string::<i32>();
            let reason = b
                .column_by_name("reason")
                .expect("reason")
                .as_string::<i32>();
            for i in 0..b.num_rows() {
                rejects.push((raw.value(i).to_string(), reason.value(i).to_string()));
            }
        }
    }
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    let sent: serde_json::Value = serde_json::from_str(&outside).expect("json");
    let stored: serde_json::Value = serde_json::from_str(&rejects[0].0).expect("json");
    assert_eq!(stored, sent, "the rejected session as sent");
    // Counted per bot, under a `bot_id` label (the entity the series are registered for).
    for family in [
        "smartassist_bot_sessions_outside_range_total",
        "smartassist_bot_sessions_other_bot_total",
    ] {
        let series = format!("{family}{{bot_id=\"{BOT}\"}}");
        assert_eq!(
            metric(&metrics_text, &series),
            1.0,
            "{series}\n{metrics_text}"
        );
        assert!(
            !metrics_text.contains(&format!("{family}{{dataset=")),
            "{family} labelled by dataset:\n{metrics_text}"
        );
    }
}

/// The XO per-bot limit enforced by the simulator (6 requests per bot in any minute) below the
/// exporter's own per-bot budget (8 a minute): a backfill of a day that takes more requests
/// than either gets 429s from the simulator and waits in its per-bot budget
/// (`smartassist_bot_budget_wait_seconds`), and still exports every session the simulator
/// lists for the day exactly once. Takes a little over a minute: the limit's window.
#[test]
fn a_backfill_over_the_per_bot_limit_waits_and_exports_every_session_once() {
    use smartassist_export::simulator::bot_sessions::{listed, BotSessionsSim};
    use smartassist_export::simulator::intent_realtime::feed;
    use smartassist_export::simulator::ModelSettings;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let bot = "st-demo-bot";
    let cfg = SimulatorConfig {
        frozen_now: Some("2024-05-03T12:00:00Z".parse().expect("t")),
        intent_interval: std::time::Duration::from_secs(300),
        models: ModelSettings::default().with(BotSessionsSim {
            per_bot_per_minute: Some(6),
            ..BotSessionsSim::default()
        }),
        ..SimulatorConfig::default()
    };
    let day = date("2024-05-02");
    let (from, to) = day_bounds(chrono_tz::UTC, day);
    let now = cfg.frozen_now.expect("frozen");
    let expected: BTreeSet<String> = listed(&feed(&cfg, bot), &(from..to), now)
        .into_iter()
        .map(|s| s.base.session_id)
        .collect();
    // A session every 5 minutes, in pages of 25: more pages than either limit allows a minute.
    assert!(expected.len() > 8 * 25, "{}", expected.len());
    let sim = rt.block_on(start_sim(cfg.clone()));
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = write_config(
        tmp.path(),
        &sim.base_url(),
        &out,
        &format!(
            "[user_status]\nenabled = false\n[bot_sessions]\nenabled = true\n\
             timezone = \"UTC\"\nbot_ids = [\"{bot}\"]\npage_size = 25\n"
        ),
    );
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text
        .replace(
            "throttle_backoff_seconds = 0.05",
            "throttle_backoff_seconds = 4\nmax_retries = 20\nbot_requests_per_minute = 8",
        )
        .replace(
            "retry_max_backoff_seconds = 1",
            "retry_max_backoff_seconds = 8",
        );
    std::fs::write(&config, text).expect("config");
    let secret = SimulatorConfig::default().client_secret;
    let metrics_text = rt.block_on(async {
        let config = datasets::load_config(&config, Some(secret)).expect("config");
        let metrics = smartassist_export::metrics::Metrics::new();
        let app = smartassist_export::app::App::start(
            config,
            tokio_util::sync::CancellationToken::new(),
            metrics.clone(),
        )
        .await
        .expect("app");
        let req = BackfillRequest {
            from: day,
            to: day,
            datasets: app
                .datasets()
                .iter()
                .filter(|d| d.name() == "bot_sessions")
                .cloned()
                .collect(),
            concurrency: 1,
            skip_existing: false,
        };
        let report = backfill(&app.cx, &req).await.expect("backfill");
        report.into_result().expect("the day is exported");
        let text = metrics.render();
        app.shutdown().await;
        text
    });
    let mut ids = Vec::new();
    for (_, batches) in read_dataset(&out, "bot_sessions") {
        for b in batches {
            let col = b
                .column_by_name("session_id")
                .expect("session_id")
                .as_string::<i32>();
            ids.extend((0..b.num_rows()).map(|i| col.value(i).to_string()));
        }
    }
    let held: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), held.len(), "a session exported twice");
    assert_eq!(
        held, expected,
        "every session the simulator lists for the day"
    );
    let stats = sim.stats();
    let limited = stats
        .by_endpoint_status
        .get("getSessions")
        .and_then(|s| s.get(&429))
        .copied()
        .unwrap_or(0);
    assert!(limited > 0, "no 429 from the per-bot limit: {stats:?}");
    let waited = metric(
        &metrics_text,
        &format!("smartassist_bot_budget_wait_seconds_sum{{bot_id=\"{bot}\"}}"),
    );
    assert!(
        waited > 0.0,
        "no wait in the per-bot budget:\n{metrics_text}"
    );
    println!(
        "bot_sessions per-bot limit: {} sessions exported once, {limited} 429s, {waited:.1} s waited in the bot budget",
        held.len()
    );
    rt.block_on(sim.shutdown());
}
