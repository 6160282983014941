//! Export tests of the registered dataset against a simulator started here: 3-day backfills of
//! several bots in New York across both DST changes while sessions keep arriving (every
//! session the server listed exactly once, every field equal to the generator's, each broken
//! session one reject), and the capture of intent_realtime polls that came too slowly,
//! compared with what the generator says those polls returned. Expected values come from the
//! simulator's generators and its record of the "now" each request saw, never from the
//! exporter.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use chrono::TimeDelta;

use arrow::array::{
    Array, BooleanArray, Int64Array, ListArray, StringArray, TimestampMillisecondArray,
};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::app::App;
use crate::backfill::{backfill, BackfillRequest};
use crate::metrics::Metrics;
use crate::simulator::bot_sessions::{
    listed, BotSessionsClock, BotSessionsSim, GeneratedBotSession,
};
use crate::simulator::intent_realtime::{feed, latest_sessions};
use crate::simulator::truth::local_day;
use crate::simulator::{self, ModelSettings, RunningSimulator, SimulatorConfig, DEFAULT_SECRET};
use crate::sink::PartitionKey;

pub(super) const NY: chrono_tz::Tz = chrono_tz::America::New_York;
pub(super) const BOTS: [&str; 3] = ["st-bot-a", "st-bot-b", "st-bot-c"];

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("timestamp")
}

pub(super) fn date(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

pub(super) async fn sim(
    now: DateTime<Utc>,
    sessions: BotSessionsSim,
    malformed: Option<u64>,
) -> RunningSimulator {
    let cfg = SimulatorConfig {
        seed: 11,
        bots: BOTS.iter().map(|b| b.to_string()).collect(),
        frozen_now: Some(now),
        intent_interval: Duration::from_secs(60),
        malformed_every: malformed,
        models: ModelSettings::default().with(sessions),
        ..SimulatorConfig::default()
    };
    simulator::start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator")
}

/// An app exporting `sections` (TOML) against `sim` into `out`.
pub(super) async fn app(sim: &RunningSimulator, out: &Path, sections: &str) -> App {
    app_with_metrics(sim, out, sections, Metrics::new()).await
}

/// [`app`] emitting into `metrics` (a handle that outlives it, as a daemon's does).
pub(super) async fn app_with_metrics(
    sim: &RunningSimulator,
    out: &Path,
    sections: &str,
    metrics: Metrics,
) -> App {
    let text = format!(
        "[api]\nbase_url = \"{base}\"\naccount_id = \"demo-account\"\niid = \"st-demo-stream\"\n\
         client_id = \"cs-demo-client\"\ntimezone = \"America/New_York\"\n\
         requests_per_minute = 100000\nbot_requests_per_minute = 100000\n\
         bot_requests_per_hour = 100000\nretry_base_ms = 1\n[output]\nurl = \"{out}\"\n\
         [user_status]\nenabled = false\n{sections}",
        base = sim.base_url(),
        out = out.display()
    );
    let config =
        crate::datasets::config_from_toml(&text, Path::new("bs.toml"), Some(DEFAULT_SECRET.into()))
            .expect("valid test config");
    App::start(config, CancellationToken::new(), metrics)
        .await
        .expect("app")
}

/// The rows of one partition, by session id: every column as text for comparison.
async fn rows(cx: &Context, bot: &str, day: NaiveDate) -> BTreeMap<String, Vec<String>> {
    let key = PartitionKey {
        table: &TABLE,
        account_id: cx.account_id.clone(),
        bot_id: Some(bot.to_string()),
        dt: day,
    };
    let mut out = BTreeMap::new();
    for b in cx.sink.read_partition(&key).await.expect("read") {
        let text = |name: &str, i: usize| -> String {
            let c = b.column_by_name(name).expect(name);
            if c.is_null(i) {
                return "null".into();
            }
            if let Some(a) = c.as_any().downcast_ref::<StringArray>() {
                return a.value(i).to_string();
            }
            if let Some(a) = c.as_any().downcast_ref::<TimestampMillisecondArray>() {
                return a.value(i).to_string();
            }
            if let Some(a) = c.as_any().downcast_ref::<Int64Array>() {
                return a.value(i).to_string();
            }
            if let Some(a) = c.as_any().downcast_ref::<BooleanArray>() {
                return a.value(i).to_string();
            }
            let list = c.as_any().downcast_ref::<ListArray>().expect("list");
            let v = list.value(i);
            let items = v.as_any().downcast_ref::<StringArray>().expect("strings");
            items.iter().flatten().collect::<Vec<_>>().join(",")
        };
        for i in 0..b.num_rows() {
            let cols = [
                "account_id",
                "bot_id",
                "user_id",
                "channel",
                "start_time",
                "end_time",
                "session_lang",
                "session_type",
                "containment_type",
                "is_developer",
                "session_status",
                "user_tags",
                "session_tags",
                "messages_exchanged",
                "tasks_executed",
                "extra",
            ];
            let values = cols.iter().map(|c| text(c, i)).collect();
            let id = text("session_id", i);
            assert!(
                out.insert(id.clone(), values).is_none(),
                "{bot} {day}: {id} twice"
            );
        }
    }
    out
}

/// What the row of a generated session must hold, column by column as [`rows`] writes them,
/// listed while still `active` (no end) or once ended.
fn expected(bot: &str, s: &GeneratedBotSession, active: bool) -> Vec<String> {
    let b = &s.base;
    vec![
        "demo-account".into(),
        bot.into(),
        b.user_id.clone(),
        b.channel.clone(),
        b.start_time.timestamp_millis().to_string(),
        if active {
            "null".into()
        } else {
            b.end_time.timestamp_millis().to_string()
        },
        s.session_lang.join(","),
        s.session_type.into(),
        s.containment_type.into(),
        s.is_developer.to_string(),
        if active { "active" } else { "closed" }.into(),
        s.user_tags.clone(),
        s.session_tags.clone(),
        s.messages.to_string(),
        s.tasks.to_string(),
        r#"{"tags":{"altText":[]}}"#.into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_day_backfills_across_dst_hold_every_session_listed_at_the_start_once_while_sessions_arrive(
) {
    // Each range's last day is in progress at the simulator's "now" (after the change), and
    // each of the first 30 requests for a bot and range moves that range's "now" on by 3
    // minutes: sessions arrive at the top of the list. Each walk holds what was listed at its
    // first request, once (the sessions arriving later are the next export's).
    let cases = [
        ("2024-03-08", "2024-03-10", at("2024-03-10T15:00:00Z")),
        ("2024-11-01", "2024-11-03", at("2024-11-03T14:00:00Z")),
    ];
    let settings = BotSessionsSim {
        max_limit: 40,
        advance_per_request: Duration::from_secs(180),
        advancing_requests: 30,
        ..BotSessionsSim::default()
    };
    for (from, to, now) in cases {
        let s = sim(now, settings.clone(), Some(9)).await;
        let dir = tempfile::tempdir().expect("tmp");
        let app = app(
            &s,
            dir.path(),
            &format!("[bot_sessions]\nenabled = true\npage_size = 40\nbot_ids = {BOTS:?}\n"),
        )
        .await;
        let req = BackfillRequest {
            from: date(from),
            to: date(to),
            datasets: app.datasets().to_vec(),
            concurrency: 4,
            skip_existing: false,
        };
        let report = backfill(&app.cx, &req).await.expect("backfill");
        report.into_result().expect("every unit exported");
        let clock = s.model_state::<BotSessionsClock>().expect("clock");
        let (mut sessions, mut arrived, mut broken, mut active) = (0, 0, 0, 0);
        for bot in BOTS {
            let f = feed(s.config(), bot);
            for day in date(from).iter_days().take_while(|d| *d <= date(to)) {
                let range = local_day(NY, day);
                // The first request of each day's walk is answered at `now`: what is listed
                // then is what the walk holds; what arrives later is the next export's.
                let first = clock
                    .served_until(bot, &range)
                    .unwrap_or_else(|| panic!("{bot} {day}: no request for the day's exact range"));
                let last = clock.latest_from(bot, range.start).expect("served");
                let listed_then = listed(&f, &range, first);
                arrived += listed(&f, &range, last).len() - listed_then.len();
                let got = rows(&app.cx, bot, day).await;
                let want: Vec<&GeneratedBotSession> =
                    listed_then.iter().filter(|g| !g.malformed).collect();
                broken += listed_then.iter().filter(|g| g.malformed).count();
                assert_eq!(got.len(), want.len(), "{bot} {day}: sessions");
                // Ended before the first request: closed; still running at the last: active;
                // ended in between: as the first page that listed it saw it.
                for g in want {
                    let (closed, open) = (expected(bot, g, false), expected(bot, g, true));
                    let row = got.get(g.id());
                    let id = g.id();
                    if g.base.end_time <= first {
                        assert_eq!(row, Some(&closed), "{bot} {day}: {id}");
                    } else if g.is_active_at(last) {
                        assert_eq!(row, Some(&open), "{bot} {day}: {id} is active");
                        active += 1;
                    } else {
                        assert!(
                            row == Some(&closed) || row == Some(&open),
                            "{bot} {day}: {id}"
                        );
                    }
                }
                sessions += got.len();
            }
        }
        assert!(sessions > 5000, "{sessions} sessions prove little");
        assert!(
            active > 3,
            "only {active} sessions still running were listed"
        );
        assert!(
            arrived > 50,
            "only {arrived} sessions arrived during the walks (the server listed them by its last answer)"
        );
        let rejects = app
            .cx
            .metrics
            .value("smartassist_rejects_total", &[("dataset", "bot_sessions")]);
        assert_eq!(rejects, Some(broken as f64), "each broken session once");
        app.shutdown().await;
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_arriving_faster_than_a_page_per_request_end_the_walk_after_one_pass() {
    // A session a minute, three minutes of the simulator's "now" per request, two sessions to
    // a page: the list grows faster than a walk reading from the top can reach its end.
    let now = at("2024-05-03T07:00:00Z");
    let settings = BotSessionsSim {
        advance_per_request: Duration::from_secs(180),
        ..BotSessionsSim::default()
    };
    let s = sim(now, settings, None).await;
    let dir = tempfile::tempdir().expect("tmp");
    let bot = BOTS[0];
    let app = app(
        &s,
        dir.path(),
        &format!("[bot_sessions]\nenabled = true\npage_size = 2\nbot_ids = [{bot:?}]\n"),
    )
    .await;
    let day = date("2024-05-03");
    let req = BackfillRequest {
        from: day,
        to: day,
        datasets: app.datasets().to_vec(),
        concurrency: 1,
        skip_existing: false,
    };
    backfill(&app.cx, &req)
        .await
        .expect("backfill")
        .into_result()
        .expect("the day exported");
    let range = local_day(NY, day);
    let f = feed(s.config(), bot);
    let at_start: BTreeSet<String> = listed(&f, &range, now)
        .iter()
        .map(|g| g.id().to_string())
        .collect();
    let clock = s.model_state::<BotSessionsClock>().expect("clock");
    let last = clock.latest_from(bot, range.start).expect("served");
    let arrived = listed(&f, &range, last).len() - at_start.len();
    let requests = s.stats().requests(crate::simulator::bot_sessions::ENDPOINT) as usize;
    let got = rows(&app.cx, bot, day).await;
    let ids: BTreeSet<String> = got.keys().cloned().collect();
    let missed: Vec<&String> = at_start.difference(&ids).take(3).collect();
    let extra: Vec<&String> = ids.difference(&at_start).take(3).collect();
    assert!(
        missed.is_empty() && extra.is_empty(),
        "every session listed at the start, no other: {} held of {}, missed e.g. {missed:?}, \
         arrived later e.g. {extra:?}",
        ids.len(),
        at_start.len()
    );
    let mut written = 0;
    let key = PartitionKey {
        table: &TABLE,
        account_id: app.cx.account_id.clone(),
        bot_id: Some(bot.to_string()),
        dt: day,
    };
    for b in app.cx.sink.read_partition(&key).await.expect("read") {
        written += b.num_rows();
    }
    assert_eq!(written, at_start.len(), "each once");
    // One pass over what was listed at the start; the total matches, so no page again.
    assert_eq!(requests, at_start.len().div_ceil(2), "requests");
    assert!(
        arrived > requests * 2,
        "{arrived} sessions arrived over {requests} requests: not faster than a page each"
    );
    app.shutdown().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_is_the_share_of_the_days_sessions_the_slow_polls_returned() {
    let day = date("2024-03-10");
    let dir = tempfile::tempdir().expect("tmp");
    // intent_realtime polls every 40 minutes of the day (and a little after): the latest 25
    // sessions span 25 minutes, so about a third of the sessions are never returned.
    let range = local_day(NY, day);
    let mut polls = Vec::new();
    let mut t = range.start;
    while t < range.end + TimeDelta::hours(3) {
        polls.push(t);
        t += TimeDelta::minutes(40);
    }
    let mut returned: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for &poll in &polls {
        let s = sim(poll, BotSessionsSim::default(), None).await;
        let app = app(
            &s,
            dir.path(),
            &format!("[intent_realtime]\nbot_ids = {:?}\n", &BOTS[..2]),
        )
        .await;
        let Some(Dataset::Snapshot(intent)) = app.datasets().first().cloned() else {
            panic!("intent_realtime is the only enabled dataset");
        };
        for bot in &BOTS[..2] {
            intent.poll(&app.cx, bot, poll).await.expect("poll");
            let seen = latest_sessions(&feed(s.config(), bot), poll);
            returned
                .entry(*bot)
                .or_default()
                .extend(seen.into_iter().map(|x| x.session_id));
        }
        app.shutdown().await;
        s.shutdown().await;
    }
    let later = range.end + TimeDelta::hours(12);
    let s = sim(later, BotSessionsSim::default(), None).await;
    let app = app(
        &s,
        dir.path(),
        &format!(
            "[intent_realtime]\nenabled = false\nbot_ids = {:?}\n[bot_sessions]\nenabled = true\n",
            &BOTS[..2]
        ),
    )
    .await;
    let Some(Dataset::History(sessions)) = app.datasets().first().cloned() else {
        panic!("bot_sessions is the only enabled dataset");
    };
    assert_eq!(
        sessions.entities(),
        &BOTS[..2],
        "the intent bots by default"
    );
    for bot in &BOTS[..2] {
        let unit = DayUnit {
            day,
            entity: Some(bot.to_string()),
        };
        sessions
            .export_day(&app.cx, &unit, later)
            .await
            .expect("day");
        let all: BTreeSet<String> = listed(&feed(s.config(), bot), &range, later)
            .into_iter()
            .map(|g| g.id().to_string())
            .collect();
        let missed: Vec<String> = all.difference(&returned[*bot]).cloned().collect();
        let got = capture::measure(&app.cx.sink, &app.cx.account_id, bot, day)
            .await
            .expect("measure")
            .expect("both datasets cover the day");
        assert_eq!(got.sessions, all.len(), "{bot}");
        assert_eq!(got.missed, missed, "{bot}");
        assert_eq!(got.captured, all.len() - missed.len(), "{bot}");
        let ratio = got.ratio().expect("sessions");
        assert!(
            ratio > 0.3 && ratio < 0.9,
            "{bot}: a slow poll misses some: {ratio}"
        );
    }
    assert_eq!(
        capture::measure(
            &app.cx.sink,
            &app.cx.account_id,
            BOTS[0],
            day.succ_opt().expect("day")
        )
        .await
        .expect("measure"),
        None,
        "a day bot_sessions does not hold is not covered"
    );
    app.shutdown().await;
    s.shutdown().await;
}

/// Whether `bot`'s partition of `day` was written.
async fn exported(cx: &Context, bot: &str, day: NaiveDate) -> bool {
    let key = PartitionKey {
        table: &TABLE,
        account_id: cx.account_id.clone(),
        bot_id: Some(bot.to_string()),
        dt: day,
    };
    cx.sink.partition_exists(&key).await.expect("exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_the_api_does_not_know_holds_back_no_other_bots_day() {
    let now = at("2024-05-10T15:00:00Z");
    let s = sim(now, BotSessionsSim::default(), None).await;
    let dir = tempfile::tempdir().expect("tmp");
    // The simulator serves no "st-bot-gone": each of its requests is a 404.
    let app = app(
        &s,
        dir.path(),
        "[bot_sessions]\nenabled = true\nlookback_days = 1\nbot_ids = [\"st-bot-gone\", \"st-bot-a\"]\n",
    )
    .await;
    let Some(Dataset::History(ds)) = app.datasets().first().cloned() else {
        panic!("bot_sessions is the one history dataset");
    };
    let run =
        crate::pipeline::run_history(ds.as_ref(), &app.cx, &CancellationToken::new(), now).await;
    assert_eq!(run.outcome, crate::pipeline::Outcome::Partial, "{run:?}");
    let error = run.error.clone().unwrap_or_default();
    assert!(error.contains("st-bot-gone"), "{error}");
    assert!(!error.contains("st-bot-a"), "{error}");
    for day in [date("2024-05-09"), date("2024-05-10")] {
        assert!(exported(&app.cx, "st-bot-a", day).await, "st-bot-a {day}");
        assert!(
            !exported(&app.cx, "st-bot-gone", day).await,
            "st-bot-gone {day}"
        );
    }
    assert_eq!(
        bot_mark(&app, "st-bot-a").await,
        Some(date("2024-05-10")),
        "the healthy bot's watermark advances"
    );
    assert_eq!(
        bot_mark(&app, "st-bot-gone").await,
        None,
        "the gone bot's first day is retried by the next run"
    );

    let other = tempfile::tempdir().expect("tmp");
    let app2 = self::app(
        &s,
        other.path(),
        "[bot_sessions]\nenabled = true\nbot_ids = [\"st-bot-gone\", \"st-bot-a\"]\n",
    )
    .await;
    let req = BackfillRequest {
        from: date("2024-05-08"),
        to: date("2024-05-09"),
        datasets: app2.datasets().to_vec(),
        concurrency: 2,
        skip_existing: false,
    };
    let report = backfill(&app2.cx, &req).await.expect("backfill");
    let failed = format!(
        "{:?}",
        report.into_result().expect_err("the gone bot fails")
    );
    assert!(failed.contains("st-bot-gone"), "{failed}");
    for day in [date("2024-05-08"), date("2024-05-09")] {
        assert!(
            exported(&app2.cx, "st-bot-a", day).await,
            "backfill st-bot-a {day}"
        );
    }
    app.shutdown().await;
    app2.shutdown().await;
    s.shutdown().await;
}

/// `bot`'s own watermark day.
async fn bot_mark(app: &App, bot: &str) -> Option<NaiveDate> {
    let name = crate::state::entity_watermark_name("bot_sessions", &app.cx.account_id, "bot", bot);
    let mark: Option<crate::state::Watermark> = crate::state::load(&app.cx.state, &name)
        .await
        .expect("load");
    mark.map(|m| m.through_day)
}

/// The run that last exported `bot`'s `day`, from the coverage record.
async fn exported_by(app: &App, bot: &str, day: NaiveDate) -> Option<String> {
    let months =
        crate::coverage::load(&app.cx.state, "bot_sessions", &app.cx.account_id, day, day).await;
    let (_, month) = months.into_iter().next()?;
    let month = month.expect("coverage month");
    let unit = month.get(day, Some(bot))?;
    unit.export.as_ref().map(|e| e.run_id.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_bot_keeps_its_days_and_the_healthy_bot_does_not_redo_its_own() {
    let now = at("2024-05-10T15:00:00Z");
    let s = sim(now, BotSessionsSim::default(), None).await;
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(
        &s,
        dir.path(),
        "[bot_sessions]\nenabled = true\nlookback_days = 1\nmax_days_per_run = 3\n\
         bot_ids = [\"st-bot-gone\", \"st-bot-a\"]\n",
    )
    .await;
    // The dataset-level watermark of a build before per-bot watermarks: both bots start there.
    let old = crate::state::Watermark {
        through_day: date("2024-05-01"),
        covered_until: at("2024-05-02T04:00:00Z"),
        updated_at: at("2024-05-02T04:00:00Z"),
    };
    let old_name = crate::state::watermark_name("bot_sessions", &app.cx.account_id);
    let stored = crate::state::store_if(&app.cx.state, &old_name, &old, None).await;
    assert!(stored.expect("store").is_ok());
    let Some(Dataset::History(ds)) = app.datasets().first().cloned() else {
        panic!("bot_sessions is the one history dataset");
    };
    let gone = |s: &RunningSimulator| {
        s.stats()
            .count(crate::simulator::bot_sessions::ENDPOINT, 404)
    };

    let first =
        crate::pipeline::run_history(ds.as_ref(), &app.cx, &CancellationToken::new(), now).await;
    assert_eq!(
        first.outcome,
        crate::pipeline::Outcome::Partial,
        "{first:?}"
    );
    // One 404 per planned day of the gone bot: 2024-04-30..2024-05-02.
    assert_eq!(gone(&s), 3);
    assert_eq!(bot_mark(&app, "st-bot-a").await, Some(date("2024-05-02")));
    assert_eq!(
        bot_mark(&app, "st-bot-gone").await,
        Some(date("2024-05-01"))
    );

    let second =
        crate::pipeline::run_history(ds.as_ref(), &app.cx, &CancellationToken::new(), now).await;
    assert_eq!(
        second.outcome,
        crate::pipeline::Outcome::Partial,
        "{second:?}"
    );
    // The gone bot tries its same three days again; the healthy one goes on from its own day.
    assert_eq!(gone(&s), 6);
    assert_eq!(bot_mark(&app, "st-bot-a").await, Some(date("2024-05-03")));
    let by_day = [
        ("2024-04-30", Some(&first.run_id)),
        ("2024-05-01", Some(&second.run_id)),
        ("2024-05-02", Some(&second.run_id)),
        ("2024-05-03", Some(&second.run_id)),
        ("2024-05-04", None),
    ];
    for (day, run) in by_day {
        assert_eq!(
            exported_by(&app, "st-bot-a", date(day)).await.as_ref(),
            run,
            "st-bot-a {day}"
        );
    }
    app.shutdown().await;
    s.shutdown().await;
}
