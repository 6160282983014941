//! The realtime capture as `status` (lines and JSON) and the daemon's status page show it, on a
//! lake built through the pipeline (polls that record coverage, a backfill of the bot
//! sessions) against the simulator: intent_realtime polled every 40 minutes over a DST day,
//! so about a third of the sessions are never returned. Expected values come from the
//! simulator's generators (the sessions getSessions lists, the latest 25 each poll saw), never
//! from the exporter; the per-bot budgets' figures from the simulator's request counter.

use std::collections::{BTreeMap, BTreeSet};

use chrono::TimeDelta;
use serde_json::Value;

use chrono::NaiveDate;

use super::capture::section;
use super::tests::{app, date, sim, BOTS, NY};
use super::INFO;
use crate::backfill::{backfill, BackfillRequest};
use crate::coverage::capture::MISSED_IDS_SHOWN;
use crate::coverage::status;
use crate::coverage::text;
use crate::datasets::{intent_realtime, Dataset};
use crate::pipeline::run_snapshot;
use crate::scheduler::Scheduler;
use crate::simulator::bot_sessions::{listed, BotSessionsSim};
use crate::simulator::intent_realtime::{feed, latest_sessions};
use crate::simulator::truth::local_day;
use crate::status_page::{html, StatusSource};

/// What the simulator says of one bot's day: every session getSessions lists, and the ones no
/// poll returned, sorted.
struct Truth {
    sessions: usize,
    missed: Vec<String>,
}

/// `text` with every run of whitespace made one space.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_the_page_show_the_share_of_sessions_the_slow_polls_returned() {
    let day = date("2024-03-10");
    let bots = &BOTS[..2];
    let dir = tempfile::tempdir().expect("tmp");
    let range = local_day(NY, day);
    let mut returned: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut poll = range.start;
    while poll < range.end + TimeDelta::hours(3) {
        let s = sim(poll, BotSessionsSim::default(), None).await;
        let app = app(
            &s,
            dir.path(),
            &format!("[intent_realtime]\nbot_ids = {bots:?}\n"),
        )
        .await;
        let Some(Dataset::Snapshot(intent)) = app.datasets().first().cloned() else {
            panic!("intent_realtime is the only enabled dataset");
        };
        for bot in bots {
            let run = run_snapshot(intent.as_ref(), &app.cx, bot, poll).await;
            assert!(run.error.is_none(), "{bot} {poll}: {:?}", run.error);
            let seen = latest_sessions(&feed(s.config(), bot), poll);
            returned
                .entry(*bot)
                .or_default()
                .extend(seen.into_iter().map(|x| x.session_id));
        }
        app.shutdown().await;
        s.shutdown().await;
        poll += TimeDelta::minutes(40);
    }

    let later = range.end + TimeDelta::hours(12);
    let s = sim(later, BotSessionsSim::default(), None).await;
    let app = app(
        &s,
        dir.path(),
        &format!("[intent_realtime]\nbot_ids = {bots:?}\n[bot_sessions]\nenabled = true\n"),
    )
    .await;
    let sessions = app
        .datasets()
        .iter()
        .find(|d| d.name() == INFO.name)
        .cloned()
        .expect("bot_sessions enabled");
    let req = BackfillRequest {
        from: day,
        to: day,
        datasets: vec![sessions],
        concurrency: 2,
        skip_existing: false,
    };
    backfill(&app.cx, &req)
        .await
        .expect("backfill")
        .into_result()
        .expect("every bot's day");
    let truth: BTreeMap<&str, Truth> = bots
        .iter()
        .map(|bot| {
            let all: BTreeSet<String> = listed(&feed(s.config(), bot), &range, later)
                .into_iter()
                .map(|g| g.id().to_string())
                .collect();
            let missed = all.difference(&returned[bot]).cloned().collect();
            let t = Truth {
                sessions: all.len(),
                missed,
            };
            (*bot, t)
        })
        .collect();
    for (bot, t) in &truth {
        assert!(
            t.missed.len() > MISSED_IDS_SHOWN,
            "{bot}: the slow polls miss more than the list shows ({})",
            t.missed.len()
        );
    }

    // `status`: the report, its lines, its JSON.
    let mut report = status::report(
        &app.cx.state,
        app.datasets(),
        "demo-account",
        (None, None),
        later,
        "x",
    )
    .await;
    report.capture = section(&app.cx.sink, &report, Some(status::CAPTURE_DAYS), "x", None).await;
    let c = report
        .capture
        .clone()
        .expect("both datasets are in the report");
    assert_eq!(c.timezone, "America/New_York");
    let got: Vec<(&str, NaiveDate)> = c.days.iter().map(|d| (d.bot_id.as_str(), d.day)).collect();
    assert_eq!(
        got,
        bots.iter().map(|b| (*b, day)).collect::<Vec<_>>(),
        "the one day both hold (intent_realtime also holds the next, bot_sessions does not)"
    );
    for d in &c.days {
        let t = &truth[d.bot_id.as_str()];
        assert_eq!(
            (d.sessions, d.missed, d.captured),
            (t.sessions, t.missed.len(), t.sessions - t.missed.len()),
            "{}",
            d.bot_id
        );
        assert_eq!(d.missed_ids, t.missed[..MISSED_IDS_SHOWN], "{}", d.bot_id);
        assert!(!d.provisional, "a past day exported after it ended");
    }
    let lines = text::lines(&report, "x");
    for (bot, t) in &truth {
        let captured = t.sessions - t.missed.len();
        let want = format!(
            "{day} {bot} {:.2}% captured {captured} of {} sessions, {} missed: {}, ... all: x reconcile --bot {bot} --from {day} --to {day}",
            100.0 * captured as f64 / t.sessions as f64,
            t.sessions,
            t.missed.len(),
            t.missed[..MISSED_IDS_SHOWN].join(", "),
        );
        assert!(
            lines.iter().any(|l| words(l) == want),
            "{bot}: no line {want:?} in {lines:#?}"
        );
    }
    let json: Value = serde_json::to_value(&report).expect("json");
    let days = json["capture"]["days"].as_array().expect("capture days");
    for d in days {
        let t = &truth[d["bot_id"].as_str().expect("bot")];
        assert_eq!(d["day"], day.to_string());
        assert_eq!(d["sessions"], t.sessions);
        assert_eq!(d["missed"], t.missed.len());
        let want = (t.sessions - t.missed.len()) as f64 / t.sessions as f64;
        let ratio = d["ratio"].as_f64().expect("ratio");
        assert!((ratio - want).abs() < 1e-9, "{ratio} != {want}");
        assert_eq!(
            d["missed_ids"].as_array().expect("ids").len(),
            MISSED_IDS_SHOWN
        );
    }

    // The page: the same capture (its last days), the bots' budgets, the HTML.
    let source = StatusSource::new(
        app.cx.clone(),
        app.datasets().to_vec(),
        Scheduler::new(vec![]),
    );
    let page = source.read(later).await;
    // The same days; the page names the program without `-c` in its commands.
    let mut want = c.days.clone();
    for d in &mut want {
        d.reconcile = d
            .reconcile
            .take()
            .map(|r| r.replacen("x ", "smartassist-export ", 1));
    }
    assert_eq!(page.capture.as_ref().map(|p| &p.days), Some(&want));
    let budgets: Vec<(&str, u32)> = page
        .bot_budgets
        .iter()
        .map(|b| (b.bot_id.as_str(), b.granted_in_hour))
        .collect();
    assert_eq!(budgets.iter().map(|b| b.0).collect::<Vec<_>>(), bots);
    let served = s.stats().requests(crate::simulator::bot_sessions::ENDPOINT);
    assert!(served >= 2, "a request per bot at least: {served}");
    assert_eq!(
        budgets.iter().map(|b| u64::from(b.1)).sum::<u64>(),
        served,
        "every getSessions request took a grant of its bot's hour budget"
    );
    let counted: f64 = bots
        .iter()
        .map(|b| {
            app.cx
                .metrics
                .value("smartassist_bot_budget_requests_total", &[("bot_id", b)])
                .expect("registered")
        })
        .sum();
    assert_eq!(
        counted, served as f64,
        "smartassist_bot_budget_requests_total"
    );
    let doc = html::render(&page);
    for bot in bots {
        let row = format!("<tr class=\"capture\" data-bot=\"{bot}\" data-day=\"{day}\">");
        assert!(doc.contains(&row), "{row} in the page");
        assert!(doc.contains(&format!("<tr class=\"bot-budget\" data-bot=\"{bot}\">")));
    }

    // A reload reads only what changed: with the day's realtime files gone but its coverage
    // unchanged, the page still shows what it measured.
    for bot in bots {
        let key = crate::sink::PartitionKey {
            table: &intent_realtime::TABLE,
            account_id: "demo-account".into(),
            bot_id: Some(bot.to_string()),
            dt: day,
        };
        for name in app.cx.sink.partition_file_names(&key).await.expect("list") {
            app.cx
                .sink
                .delete_partition_file(&key, &name)
                .await
                .expect("delete");
        }
    }
    let again = source.read(later).await;
    assert_eq!(again.capture.map(|p| p.days), Some(want));
    let fresh = section(&app.cx.sink, &report, Some(status::CAPTURE_DAYS), "x", None).await;
    for (fresh, cached) in fresh.expect("section").days.iter().zip(&c.days) {
        assert!(
            fresh.captured < cached.captured,
            "{}: without the cache the files are read again",
            fresh.bot_id
        );
    }
    app.shutdown().await;
    s.shutdown().await;
}
