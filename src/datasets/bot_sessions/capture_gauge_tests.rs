//! The capture gauges as a scraper reads them, `GET /metrics` over HTTP from the metrics
//! server, and the capture of a day with sessions still running: against the simulator, with
//! expected figures from its generators (the sessions getSessions lists and which of them are
//! still running, the latest 25 each intent_realtime poll returned), never from the exporter.

use std::collections::BTreeSet;

use chrono::TimeDelta;
use tokio_util::sync::CancellationToken;

use super::tests::{app, app_with_metrics, date, sim, NY};
use super::*;
use crate::coverage::status::{self, UnitState};
use crate::datasets::reconcile::{status_section, SectionRequest};
use crate::metrics::Metrics;
use crate::pipeline::run_snapshot;
use crate::scheduler::Scheduler;
use crate::simulator::bot_sessions::{listed, BotSessionsSim};
use crate::simulator::intent_realtime::{feed, latest_sessions};
use crate::simulator::truth::local_day;

const POLLED: &str = "st-bot-a";
const UNPOLLED: &str = "st-bot-c";

/// Polls intent_realtime for [`POLLED`] at each of `polls` (a simulator frozen at each), into
/// `out`; the ids the simulator's generator says those polls returned.
async fn poll_intents(out: &std::path::Path, polls: &[DateTime<Utc>]) -> BTreeSet<String> {
    let mut returned = BTreeSet::new();
    for &poll in polls {
        let s = sim(poll, BotSessionsSim::default(), None).await;
        let app = app(
            &s,
            out,
            &format!("[intent_realtime]\nbot_ids = [{POLLED:?}]\n"),
        )
        .await;
        let Some(Dataset::Snapshot(intent)) = app.datasets().first().cloned() else {
            panic!("intent_realtime is the only enabled dataset");
        };
        let run = run_snapshot(intent.as_ref(), &app.cx, POLLED, poll).await;
        assert!(run.error.is_none(), "{poll}: {:?}", run.error);
        let seen = latest_sessions(&feed(s.config(), POLLED), poll);
        returned.extend(seen.into_iter().map(|x| x.session_id));
        app.shutdown().await;
        s.shutdown().await;
    }
    returned
}

/// The value of `name{bot_id="bot"}` in a Prometheus text exposition.
fn series(body: &str, name: &str, bot: &str) -> Option<f64> {
    let prefix = format!("{name}{{bot_id=\"{bot}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().expect("a number"))
}

/// `GET /metrics` from the server at `addr`.
async fn scrape(addr: std::net::SocketAddr) -> String {
    let (code, body) =
        tokio::task::spawn_blocking(move || crate::server::http_get(addr, "/metrics"))
            .await
            .expect("join")
            .expect("GET /metrics");
    assert_eq!(code, 200);
    body
}

const GAUGES: [&str; 3] = [
    "smartassist_intent_capture_ratio",
    "smartassist_intent_capture_sessions",
    "smartassist_intent_capture_day_timestamp_seconds",
];

/// The day's unit of `bot`, exported at `at` by the app's bot_sessions.
async fn export(app: &crate::app::App, bot: &str, day: NaiveDate, at: DateTime<Utc>) {
    let Some(Dataset::History(ds)) = app
        .datasets()
        .iter()
        .find(|d| d.name() == INFO.name)
        .cloned()
    else {
        panic!("bot_sessions enabled");
    };
    let unit = DayUnit {
        day,
        entity: Some(bot.to_string()),
    };
    ds.export_day(&app.cx, &unit, at).await.expect("day");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_gauges_appear_once_measured_with_the_simulators_figures_and_go_when_stale() {
    let day = date("2024-03-12");
    let range = local_day(NY, day);
    let dir = tempfile::tempdir().expect("tmp");
    // Hourly polls over the day: the latest 25 sessions span 25 minutes, so most are missed.
    let polls: Vec<DateTime<Utc>> = (0..24)
        .map(|h| range.start + TimeDelta::minutes(30 + 60 * h))
        .collect();
    let returned = poll_intents(dir.path(), &polls).await;

    let metrics = Metrics::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let router = crate::server::router(Scheduler::new(Vec::new()), 3, metrics.clone());
    let server = crate::server::serve(listener, router, stop.clone());
    let sections = format!(
        "[intent_realtime]\nenabled = false\n[bot_sessions]\nenabled = true\nbot_ids = [{POLLED:?}, {UNPOLLED:?}]\n"
    );

    // Next day, noon: today's export measures nothing; yesterday's sets the polled bot's.
    let later = range.end + TimeDelta::hours(12);
    let s = sim(later, BotSessionsSim::default(), None).await;
    let app = app_with_metrics(&s, dir.path(), &sections, metrics.clone()).await;
    let body = scrape(addr).await;
    for g in GAUGES {
        assert!(body.contains(&format!("# TYPE {g} gauge")), "{g} declared");
        for bot in [POLLED, UNPOLLED] {
            assert_eq!(
                series(&body, g, bot),
                None,
                "{g}{{{bot}}} before any measure"
            );
        }
    }
    let today = day.succ_opt().expect("day");
    export(&app, POLLED, today, later).await;
    assert_eq!(
        series(&scrape(addr).await, GAUGES[0], POLLED),
        None,
        "today is not complete"
    );
    for bot in [POLLED, UNPOLLED] {
        export(&app, bot, day, later).await;
    }
    let all: BTreeSet<String> = listed(&feed(s.config(), POLLED), &range, later)
        .iter()
        .map(|g| g.id().to_string())
        .collect();
    let captured = all.intersection(&returned).count();
    assert!(
        captured > 0 && captured < all.len(),
        "{captured} of {}",
        all.len()
    );
    let body = scrape(addr).await;
    let ratio = series(&body, GAUGES[0], POLLED).expect("measured");
    assert!(
        (ratio - captured as f64 / all.len() as f64).abs() < 1e-9,
        "{ratio}"
    );
    assert_eq!(series(&body, GAUGES[1], POLLED), Some(all.len() as f64));
    assert_eq!(
        series(&body, GAUGES[2], POLLED),
        Some(range.start.timestamp() as f64)
    );
    for g in GAUGES {
        assert_eq!(
            series(&body, g, UNPOLLED),
            None,
            "{g}: no intent_realtime partition"
        );
    }
    app.shutdown().await;
    s.shutdown().await;

    // Two days on, the same daemon's metrics: today's export finds the gauges holding a day
    // before yesterday, and yesterday has no intent_realtime partition: no series.
    let after = later + TimeDelta::days(1);
    let s = sim(after, BotSessionsSim::default(), None).await;
    let app = app_with_metrics(&s, dir.path(), &sections, metrics.clone()).await;
    export(&app, POLLED, today.succ_opt().expect("day"), after).await;
    let body = scrape(addr).await;
    for g in GAUGES {
        assert_eq!(
            series(&body, g, POLLED),
            None,
            "{g}: stale once yesterday changed"
        );
    }
    export(&app, POLLED, today, after).await;
    let body = scrape(addr).await;
    for g in GAUGES {
        assert_eq!(
            series(&body, g, POLLED),
            None,
            "{g}: yesterday cannot be measured"
        );
    }
    app.shutdown().await;
    s.shutdown().await;
    stop.cancel();
    server.await.expect("join").expect("server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_over_with_sessions_still_running_is_provisional_and_they_are_not_missed() {
    let day = date("2024-03-12");
    let range = local_day(NY, day);
    let dir = tempfile::tempdir().expect("tmp");
    // Polls over the evening and just after midnight, when the day's export runs.
    let exported_at = range.end + TimeDelta::minutes(30);
    let polls: Vec<DateTime<Utc>> = (0..8)
        .map(|i| range.end - TimeDelta::hours(3) + TimeDelta::minutes(30 * i))
        .collect();
    let returned = poll_intents(dir.path(), &polls).await;
    let s = sim(exported_at, BotSessionsSim::default(), None).await;
    let app = app(
        &s,
        dir.path(),
        &format!("[intent_realtime]\nbot_ids = [{POLLED:?}]\n[bot_sessions]\nenabled = true\n"),
    )
    .await;
    // Through backfill, which records the day's coverage (export_day alone does not).
    let req = crate::backfill::BackfillRequest {
        from: day,
        to: day,
        datasets: app
            .datasets()
            .iter()
            .filter(|d| d.name() == INFO.name)
            .cloned()
            .collect(),
        concurrency: 1,
        skip_existing: false,
    };
    crate::backfill::backfill(&app.cx, &req)
        .await
        .expect("backfill")
        .into_result()
        .expect("the bot's day");

    let listed_then = listed(&feed(s.config(), POLLED), &range, exported_at);
    let running: BTreeSet<&str> = listed_then
        .iter()
        .filter(|g| g.is_active_at(exported_at))
        .map(|g| g.id())
        .collect();
    assert!(
        running.len() > 3,
        "sessions of up to 2.5 h run past midnight: {running:?}"
    );
    let completed: BTreeSet<String> = listed_then
        .iter()
        .filter(|g| !g.is_active_at(exported_at))
        .map(|g| g.id().to_string())
        .collect();
    let missed: Vec<String> = completed.difference(&returned).cloned().collect();

    let mut report = status::report(
        &app.cx.state,
        app.datasets(),
        "demo-account",
        (Some(day), Some(day)),
        exported_at,
        "x",
    )
    .await;
    let unit = report
        .datasets
        .iter()
        .find(|d| d.dataset == INFO.name)
        .and_then(|d| d.units.iter().find(|u| u.entity.as_deref() == Some(POLLED)))
        .expect("the bot's day");
    assert_eq!(
        (unit.status, unit.provisional),
        (UnitState::Provisional, Some(status::Provisional::Open)),
        "the day is over but holds running sessions"
    );
    report.capture = status_section(SectionRequest {
        sink: &app.cx.sink,
        report: &report,
        last_days: None,
        command: "x",
        cache: None,
    })
    .await;
    let c = report.capture.expect("both datasets in the report");
    let d = c
        .days
        .iter()
        .find(|d| d.day == day)
        .expect("the day measured");
    assert_eq!((d.sessions, d.missed), (completed.len(), missed.len()));
    assert!(d.provisional, "the history of the day will still change");
    let got = capture::measure(&app.cx.sink, &app.cx.account_id, POLLED, day)
        .await
        .expect("measure")
        .expect("covered");
    assert_eq!(got.missed, missed, "completed sessions no poll returned");
    assert!(
        got.missed.iter().all(|id| !running.contains(id.as_str())),
        "a running session is not missed"
    );
    app.shutdown().await;
    s.shutdown().await;
}
