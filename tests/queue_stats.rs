#![cfg(unix)]
//! Queue Size polled on cadence by the built daemon against the simulator: every poll the
//! simulator answered is exactly one row, and every field of that row equals what the
//! simulator's generator gives for that queue, those filters and the second it served
//! (`simulator::queue_stats::served` records each answer); `polled_at` is that second or the
//! one before (the request leaves before the simulator reads its clock). The answers carry the
//! documented `//` comment, and one in `malformed_every` is broken: each is one reject.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMillisecondType};
use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use smartassist_export::simulator::queue_stats::{self as model, Filters, GeneratedQueue};
use smartassist_export::simulator::queues::{self, QueuesSim};
use smartassist_export::simulator::{ModelSettings, SimulatorConfig};

const RUNS: &str = "smartassist_runs_total{dataset=\"queue_stats\",outcome=\"success\"}";
const QUEUES: [&str; 2] = ["qu-support", "qu-sales"];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// One exported row, by its columns.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    polled_at: DateTime<Utc>,
    queue_name: Option<String>,
    counts: [Option<i64>; 8],
    waits: [Option<f64>; 3],
    skills: Option<String>,
}

fn rows(out: &std::path::Path) -> BTreeMap<(String, DateTime<Utc>), Vec<Row>> {
    let mut all: BTreeMap<(String, DateTime<Utc>), Vec<Row>> = BTreeMap::new();
    for (_, batches) in read_dataset(out, "queue_stats") {
        for b in batches {
            let s = |c: &str| b.column_by_name(c).expect(c).as_string::<i32>().clone();
            let i = |c: &str| {
                b.column_by_name(c)
                    .expect(c)
                    .as_primitive::<Int64Type>()
                    .clone()
            };
            let f = |c: &str| {
                b.column_by_name(c)
                    .expect(c)
                    .as_primitive::<Float64Type>()
                    .clone()
            };
            let at = b
                .column_by_name("polled_at")
                .expect("polled_at")
                .as_primitive::<TimestampMillisecondType>()
                .clone();
            let (ids, names, skills) = (s("queue_id"), s("queue_name"), s("skills"));
            let ints: Vec<_> = [
                "waiting",
                "engaged",
                "drop_off",
                "agents_available",
                "agents_offline",
                "agents_busy",
                "agents_away",
                "agents",
            ]
            .iter()
            .map(|c| i(c))
            .collect();
            let floats: Vec<_> = ["avg_wait", "max_wait", "asa"]
                .iter()
                .map(|c| f(c))
                .collect();
            for r in 0..b.num_rows() {
                let opt_i = |a: &arrow::array::Int64Array| a.is_valid(r).then(|| a.value(r));
                let opt_f = |a: &arrow::array::Float64Array| a.is_valid(r).then(|| a.value(r));
                let polled_at = DateTime::from_timestamp_millis(at.value(r)).expect("ts");
                let row = Row {
                    polled_at,
                    queue_name: names.is_valid(r).then(|| names.value(r).to_string()),
                    counts: std::array::from_fn(|k| opt_i(&ints[k])),
                    waits: std::array::from_fn(|k| opt_f(&floats[k])),
                    skills: skills.is_valid(r).then(|| skills.value(r).to_string()),
                };
                all.entry((ids.value(r).to_string(), polled_at))
                    .or_default()
                    .push(row);
            }
        }
    }
    all
}

fn expected(g: &GeneratedQueue, polled_at: DateTime<Utc>) -> Row {
    Row {
        polled_at,
        queue_name: Some(g.queue_name.clone()),
        counts: [
            g.waiting,
            g.engaged,
            g.drop_off,
            g.available,
            g.offline,
            g.busy,
            g.away,
            g.agents,
        ]
        .map(Some),
        waits: [Some(g.avg_wait), Some(g.max_wait), Some(g.asa as f64)],
        skills: Some(g.skills.clone()),
    }
}

/// Matches every answer the simulator served with the row of its poll, every field equal to
/// the generator's at the served second; returns (rows matched, broken answers).
fn match_served(
    cfg: &SimulatorConfig,
    served: &[model::Served],
    got: &BTreeMap<(String, DateTime<Utc>), Vec<Row>>,
    filters: &Filters,
) -> (usize, usize) {
    let (mut rows_checked, mut broken) = (0, 0);
    let mut matched = std::collections::BTreeSet::new();
    for s in served {
        assert_eq!(&s.filters, filters, "the configured filters are sent");
        let g = model::queue_snapshot(cfg, &s.queue_id, filters, s.at);
        if g.malformed {
            broken += 1;
            continue;
        }
        // The request left in the served second or just before it; the row of that poll is
        // the one whose every field is the generator's at the served second.
        let hits: Vec<DateTime<Utc>> = [s.at, s.at - TimeDelta::seconds(1)]
            .into_iter()
            .filter(|t| !matched.contains(&(s.queue_id.clone(), *t)))
            .filter(|t| {
                got.get(&(s.queue_id.clone(), *t))
                    .is_some_and(|found| found.contains(&expected(&g, *t)))
            })
            .collect();
        let [polled_at] = hits.as_slice() else {
            let near: Vec<_> = got
                .range((s.queue_id.clone(), s.at - TimeDelta::seconds(2))..)
                .take(3)
                .collect();
            panic!(
                "{} served at {}: {} rows equal the generator; rows near: {near:?}",
                s.queue_id,
                s.at,
                hits.len()
            );
        };
        let key = (s.queue_id.clone(), *polled_at);
        matched.insert(key.clone());
        let found = &got[&key];
        assert_eq!(found.len(), 1, "{key:?} is exported {} times", found.len());
        rows_checked += 1;
    }
    (rows_checked, broken)
}

#[test]
fn polls_on_cadence_hold_exactly_what_the_simulator_served_at_each_moment() {
    let rt = runtime();
    let cfg = SimulatorConfig {
        seed: 23,
        malformed_every: Some(4),
        ..SimulatorConfig::default()
    };
    let sim = rt.block_on(start_sim(cfg.clone()));
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config_for = |addr: std::net::SocketAddr| {
        let section = format!(
            r#"
[user_status]
enabled = false

[queue_stats]
enabled = true
schedule = "* * * * * *"
timezone = "America/New_York"
queue_ids = {QUEUES:?}
channels = ["whatsapp", "rtm"]
languages = ["en"]

[server]
listen = "{addr}"
"#
        );
        write_config(tmp.path(), &sim.base_url(), &out, &section)
    };
    let (mut child, addr) = spawn_daemon_on_free_port(config_for, &tmp.path().join("run.log"));
    wait_for_metrics(addr, &mut child, Duration::from_secs(90), |m| {
        metric(m, RUNS) >= 12.0
    });
    let status = sigterm_and_wait(&mut child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));

    let served = model::served(&sim);
    let filters = Filters::new(&["whatsapp".into(), "rtm".into()], &["en".into()]);
    let got = rows(&out);
    let (rows_checked, broken) = match_served(&cfg, &served, &got, &filters);
    assert_eq!(
        got.len(),
        rows_checked,
        "every row is an answer the simulator served"
    );
    let per_queue = |q: &str| served.iter().filter(|s| s.queue_id == q).count();
    for q in QUEUES {
        assert!(per_queue(q) >= 5, "{q} polled {} times", per_queue(q));
    }
    let rejects: usize = read_dataset(&out, "_rejects/queue_stats")
        .iter()
        .flat_map(|(_, b)| b.iter().map(|b| b.num_rows()))
        .sum();
    assert_eq!(rejects, broken, "one reject per broken answer");
    println!(
        "queue_stats: {} answers served, {rows_checked} rows equal to the generator, {broken} broken answers rejected",
        served.len()
    );
    rt.block_on(sim.shutdown());
}

/// Waits (checking every 100 ms, at most `limit`) until `done` holds, failing early when the
/// daemon exits.
fn wait_until(
    child: &mut std::process::Child,
    limit: Duration,
    what: &str,
    done: impl Fn() -> bool,
) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the daemon exited ({status}) before {what}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn without_queue_ids_every_queue_of_the_list_is_polled_and_list_changes_are_followed() {
    let rt = runtime();
    let cfg = SimulatorConfig {
        seed: 31,
        models: ModelSettings::default().with(QueuesSim {
            queues: 3,
            ..QueuesSim::default()
        }),
        ..SimulatorConfig::default()
    };
    let sim = rt.block_on(start_sim(cfg.clone()));
    let id = |i: usize| queues::queue_id(cfg.seed, i);
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config_for = |addr: std::net::SocketAddr| {
        let section = format!(
            r#"
[user_status]
enabled = false

[queues]
enabled = true
schedule = "* * * * * *"

[queue_stats]
enabled = true
schedule = "* * * * * *"

[server]
listen = "{addr}"
"#
        );
        write_config(tmp.path(), &sim.base_url(), &out, &section)
    };
    let (mut child, _addr) = spawn_daemon_on_free_port(config_for, &tmp.path().join("run.log"));
    let polls_of = |q: &str| {
        model::served(&sim)
            .iter()
            .filter(|s| s.queue_id == q)
            .count()
    };
    wait_until(
        &mut child,
        Duration::from_secs(90),
        "every listed queue is polled twice",
        || (0..3).all(|i| polls_of(&id(i)) >= 2),
    );
    // The account loses queue 0 and gains queue 3.
    let changed_at = model::served(&sim).len();
    queues::set_listed(&sim, [1, 2, 3]);
    assert_eq!(queues::listed_ids(&sim), [id(1), id(2), id(3)]);
    wait_until(
        &mut child,
        Duration::from_secs(90),
        "the added queue is polled twice",
        || polls_of(&id(3)) >= 2,
    );
    let status = sigterm_and_wait(&mut child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));

    let served = model::served(&sim);
    let before: BTreeSet<&str> = served[..changed_at]
        .iter()
        .map(|s| s.queue_id.as_str())
        .collect();
    assert_eq!(
        before,
        BTreeSet::from([id(0).as_str(), id(1).as_str(), id(2).as_str()])
    );
    // From the first poll that follows the new list on, the removed queue is never polled.
    let first_added = served
        .iter()
        .position(|s| s.queue_id == id(3))
        .expect("queue 3 polled");
    assert!(
        first_added >= changed_at,
        "queue 3 polled before it was listed"
    );
    let after: BTreeSet<&str> = served[first_added..]
        .iter()
        .map(|s| s.queue_id.as_str())
        .collect();
    assert_eq!(
        after,
        BTreeSet::from([id(1).as_str(), id(2).as_str(), id(3).as_str()])
    );
    // Every answer served is exactly one row with every field as served.
    let got = rows(&out);
    let (rows_checked, broken) = match_served(&cfg, &served, &got, &Filters::new(&[], &[]));
    assert_eq!(broken, 0);
    assert_eq!(
        got.len(),
        rows_checked,
        "every row is an answer the simulator served"
    );
    println!(
        "queue_stats from the list: {} answers served ({changed_at} before the change), {rows_checked} rows equal to the generator",
        served.len()
    );
    rt.block_on(sim.shutdown());
}

/// A fake Queue Size server on loopback: per queue, a fixed answer (unknown queues: `[]`).
async fn fake_queue_server(answers: BTreeMap<&'static str, String>) -> std::net::SocketAddr {
    use axum::extract::Path;
    let answers = std::sync::Arc::new(answers);
    let app = axum::Router::new().route(
        "/agentassist/api/v1/public/{stream}/monitor/queueStatsById/{queue}",
        axum::routing::post(move |Path((_, queue)): Path<(String, String)>| {
            let answers = answers.clone();
            async move {
                answers
                    .get(queue.as_str())
                    .cloned()
                    .unwrap_or_else(|| "[]".into())
            }
        }),
    );
    loopback::serve(app).await
}

/// Nothing an answer holds is dropped silently: a poll keeps the first record of the queue it
/// asked for; an identical repeat is counted, a differing one and another queue's record are
/// rejected as sent (read back with a Parquet reader) and counted; an answer without the queue
/// writes nothing, is counted, and `status` shows the poll as an empty answer.
#[test]
fn an_answer_keeps_only_the_asked_queue_and_counts_or_rejects_the_rest() {
    let rt = runtime();
    let first = r#"{"queueId":"qu-dup","queueName":"Dup","waiting":3,"engaged":1}"#;
    let repeat = r#"{"engaged":1,"waiting":3,"queueName":"Dup","queueId":"qu-dup"}"#;
    let differing = r#"{"queueId":"qu-dup","queueName":"Dup","waiting":4,"engaged":1}"#;
    let other = r#"{"queueId":"qu-other","queueName":"Other","waiting":9}"#;
    // The rejects of a partition hold each raw JSON once: the other answer's differs.
    let other_for_none = r#"{"queueId":"qu-other","queueName":"Other","waiting":8}"#;
    let answers = BTreeMap::from([
        (
            "qu-dup",
            format!("[{first},\n// a comment\n{repeat},{differing},{other}]"),
        ),
        ("qu-none", format!("[{other_for_none}]")),
    ]);
    let addr = rt.block_on(fake_queue_server(answers));
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = write_config(
        tmp.path(),
        &format!("http://{addr}"),
        &out,
        "[user_status]\nenabled = false\n[queue_stats]\nenabled = true\n\
         queue_ids = [\"qu-dup\", \"qu-none\"]\n",
    );
    let polled_from = Utc::now().date_naive().to_string();
    let metrics_text = rt.block_on(async {
        use smartassist_export::datasets::Dataset;
        let (app, metrics) = loopback::start_app(&config).await;
        let Some(Dataset::Snapshot(d)) = app.datasets().iter().find(|d| d.name() == "queue_stats")
        else {
            panic!("queue_stats is enabled");
        };
        for queue in ["qu-dup", "qu-none"] {
            let summary =
                smartassist_export::pipeline::run_snapshot(d.as_ref(), &app.cx, queue, Utc::now())
                    .await;
            assert!(summary.error.is_none(), "{queue}: {summary:?}");
        }
        let text = metrics.render();
        app.shutdown().await;
        text
    });
    // One row: the first record of the asked queue, written after it was polled.
    let got = rows(&out);
    let keys: Vec<&(String, DateTime<Utc>)> = got.keys().collect();
    assert_eq!(keys.len(), 1, "{got:?}");
    assert_eq!(keys[0].0, "qu-dup");
    let row = &got[keys[0]][0];
    assert_eq!(row.counts[0], Some(3), "waiting of the first record");
    for (_, batches) in read_dataset(&out, "queue_stats") {
        for b in batches {
            let col = |c: &str| {
                b.column_by_name(c)
                    .expect(c)
                    .as_primitive::<TimestampMillisecondType>()
                    .value(0)
            };
            assert!(
                col("exported_at") >= col("polled_at"),
                "exported before polled"
            );
        }
    }
    // The differing record and the other queue's records, as sent.
    let mut rejects: Vec<(String, String)> = Vec::new();
    for (_, batches) in read_dataset(&out, "_rejects/queue_stats") {
        for b in batches {
            let s = |c: &str| b.column_by_name(c).expect(c).as_string::<i32>().clone();
            let (reason, raw) = (s("reason"), s("raw_json"));
            for i in 0..b.num_rows() {
                rejects.push((raw.value(i).to_string(), reason.value(i).to_string()));
            }
        }
    }
    rejects.sort();
    let raws: Vec<&str> = rejects.iter().map(|(r, _)| r.as_str()).collect();
    assert!(raws.contains(&differing), "{rejects:?}");
    assert!(raws.contains(&other), "{rejects:?}");
    assert!(raws.contains(&other_for_none), "{rejects:?}");
    assert_eq!(rejects.len(), 3, "{rejects:?}");
    let reason_of = |raw: &str| {
        rejects
            .iter()
            .filter(|(r, _)| r == raw)
            .map(|(_, why)| why.clone())
            .collect::<Vec<_>>()
    };
    assert!(
        reason_of(differing)[0].contains("a second record of queue \"qu-dup\""),
        "{rejects:?}"
    );
    assert!(
        reason_of(other_for_none)[0].contains("in the answer for queue \"qu-none\""),
        "{rejects:?}"
    );
    // The counters, on the /metrics text.
    for (series, want) in [
        (
            "smartassist_queue_stats_repeated_records_total{queue_id=\"qu-dup\"}",
            1.0,
        ),
        (
            "smartassist_queue_stats_conflicting_records_total{queue_id=\"qu-dup\"}",
            1.0,
        ),
        (
            "smartassist_queue_stats_other_queue_records_total{queue_id=\"qu-dup\"}",
            1.0,
        ),
        (
            "smartassist_queue_stats_other_queue_records_total{queue_id=\"qu-none\"}",
            1.0,
        ),
        (
            "smartassist_queue_stats_missing_total{queue_id=\"qu-none\"}",
            1.0,
        ),
        (
            "smartassist_queue_stats_missing_total{queue_id=\"qu-dup\"}",
            0.0,
        ),
        (
            "smartassist_queue_snapshots_total{queue_id=\"qu-dup\"}",
            1.0,
        ),
        (
            "smartassist_queue_snapshots_total{queue_id=\"qu-none\"}",
            0.0,
        ),
    ] {
        assert_eq!(
            metric(&metrics_text, series),
            want,
            "{series}\n{metrics_text}"
        );
    }
    // `status` shows the empty poll of qu-none.
    let today = Utc::now().date_naive().to_string();
    let status = run_bin(
        &config,
        &[
            "status",
            "--dataset",
            "queue_stats",
            "--from",
            &polled_from,
            "--to",
            &today,
        ],
    );
    assert_success(&status);
    let text = String::from_utf8_lossy(&status.stdout);
    let line = |queue: &str| {
        text.lines()
            .find(|l| l.contains(queue) && l.contains("poll(s)"))
            .unwrap_or_else(|| panic!("no line of {queue} in:\n{text}"))
            .to_string()
    };
    assert!(line("qu-none").contains("1 empty answer(s)"), "{text}");
    assert!(!line("qu-dup").contains("empty"), "{text}");
}
