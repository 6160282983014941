//! End to end for the WFM event and master-data datasets (`agent_activity`, `agents`,
//! `queues`, and how `contact_volume`/`agent_performance` join them): the built binary exports from the in-process simulator, the Parquet output is
//! read back with the parquet crate and compared field by field with the simulator's
//! generators (never with the exporter's decoder), across both New York DST changes, with the
//! API's variants: PascalCase and camelCase keys, an inclusive or exclusive `toTimeStamp`,
//! zone-less event times in UTC or New York, a list server that ignores `offset`/`limit`, and
//! `Description`/`description`. Agent Performance under either reading of `toTimeStamp`, and
//! every agent and queue id the WFM datasets name is in the same run's `agents`/`queues` lists.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::TimestampMillisecondType;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use common::*;
use smartassist_export::simulator::agent_activity::{agent_events, AgentActivitySim};
use smartassist_export::simulator::agent_performance::{performance, AgentPerformanceSim};
use smartassist_export::simulator::agents::{wfm_agent_id, AgentsSim};
use smartassist_export::simulator::generator::agent;
use smartassist_export::simulator::queues::{queue_id, queue_name, QueuesSim};
use smartassist_export::simulator::{ModelSettings, SimulatorConfig};

const NY: Tz = chrono_tz::America::New_York;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("instant")
}

/// `(dt, agent_id, event_time ms, activity, reason_code)` of every row.
type EventRow = (String, String, i64, String, Option<String>);

fn event_rows(out: &Path) -> Vec<EventRow> {
    let mut rows = Vec::new();
    for (path, batches) in read_dataset(out, "agent_activity") {
        let dt = path
            .split('/')
            .find_map(|s| s.strip_prefix("dt="))
            .expect("dt folder")
            .to_string();
        for b in batches {
            let s = |c: &str| b.column_by_name(c).expect(c).as_string::<i32>().clone();
            let (agent, activity, reason) = (s("agent_id"), s("activity"), s("reason_code"));
            let at = b
                .column_by_name("event_time")
                .expect("event_time")
                .as_primitive::<TimestampMillisecondType>()
                .clone();
            for i in 0..b.num_rows() {
                rows.push((
                    dt.clone(),
                    agent.value(i).to_string(),
                    at.value(i),
                    activity.value(i).to_string(),
                    (!reason.is_null(i)).then(|| reason.value(i).to_string()),
                ));
            }
        }
    }
    rows.sort();
    rows
}

async fn activity_variant(sim_settings: AgentActivitySim, event_time_zone: &str) {
    let now = utc("2024-11-06T12:00:00Z");
    let cfg = SimulatorConfig {
        seed: 21,
        agents: 4,
        frozen_now: Some(now),
        models: ModelSettings::default().with(sim_settings.clone()),
        ..SimulatorConfig::default()
    };
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = write_config(
        tmp.path(),
        &sim.base_url(),
        &out,
        &format!(
            "[user_status]\nenabled = false\n[agent_activity]\nenabled = true\n\
             timezone = \"America/New_York\"\nevent_time_zone = \"{event_time_zone}\"\n"
        ),
    );
    let ranges = [("2024-03-09", "2024-03-11"), ("2024-11-02", "2024-11-04")];
    for _ in 0..2 {
        for (from, to) in ranges {
            assert_success(&run_bin(
                &config,
                &[
                    "backfill",
                    "--from",
                    from,
                    "--to",
                    to,
                    "--dataset",
                    "agent_activity",
                ],
            ));
        }
    }
    let mut want = Vec::new();
    let mut at_edges = 0;
    for (from, to) in ranges {
        for day in date(from).iter_days().take_while(|d| *d <= date(to)) {
            let (start, end) = day_bounds(NY, day);
            for idx in 0..cfg.agents {
                for e in agent_events(
                    cfg.seed,
                    idx,
                    start..end,
                    now,
                    sim_settings.event_zone,
                    None,
                ) {
                    if e.at.timestamp() % 3600 == 0 {
                        at_edges += 1;
                    }
                    want.push((
                        day.to_string(),
                        wfm_agent_id(cfg.seed, idx),
                        e.at.timestamp_millis(),
                        e.activity.to_string(),
                        e.reason_code.clone(),
                    ));
                }
            }
        }
    }
    want.sort();
    assert!(at_edges > 10, "the data must hold events at window edges");
    let got = event_rows(&out);
    assert_eq!(got.len(), want.len(), "{sim_settings:?}: rows");
    assert_eq!(got, want, "{sim_settings:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_events_across_both_dst_changes_are_each_written_once_in_their_local_day() {
    // The sample's PascalCase, an inclusive toTimeStamp, event times in UTC.
    activity_variant(
        AgentActivitySim {
            event_zone: chrono_tz::UTC,
            ..AgentActivitySim::default()
        },
        "UTC",
    )
    .await;
    // The v2 table's camelCase, an exclusive toTimeStamp, event times local to New York.
    activity_variant(
        AgentActivitySim {
            camel_case: true,
            to_exclusive: true,
            event_zone: NY,
        },
        "America/New_York",
    )
    .await;
}

/// `key column -> other columns` of every row of a list table, with its snapshot_date.
fn list_rows(out: &Path, table: &str, columns: &[&str]) -> BTreeMap<String, (String, Vec<String>)> {
    let mut rows = BTreeMap::new();
    for (path, batches) in read_dataset(out, table) {
        let day = path
            .split('/')
            .find_map(|s| s.strip_prefix("snapshot_date="))
            .expect("snapshot_date folder")
            .to_string();
        for b in batches {
            let col = |c: &str| b.column_by_name(c).expect(c).as_string::<i32>().clone();
            let cols: Vec<_> = columns.iter().map(|c| col(c)).collect();
            for i in 0..b.num_rows() {
                let values: Vec<String> =
                    cols[1..].iter().map(|c| c.value(i).to_string()).collect();
                let old = rows.insert(cols[0].value(i).to_string(), (day.clone(), values));
                assert!(old.is_none(), "{table}: {} twice", cols[0].value(i));
            }
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lists_are_paged_or_read_whole_and_every_field_matches_the_generator() {
    for ignores_paging in [false, true] {
        let cfg = SimulatorConfig {
            seed: 5,
            agents: 230,
            models: ModelSettings::default()
                .with(AgentsSim { ignores_paging })
                .with(QueuesSim {
                    queues: 12,
                    lower_case_description: ignores_paging,
                    ignores_paging,
                }),
            ..SimulatorConfig::default()
        };
        let sim = start_sim(cfg.clone()).await;
        let tmp = tempfile::tempdir().expect("tmp");
        let out = tmp.path().join("out");
        let config = write_config(
            tmp.path(),
            &sim.base_url(),
            &out,
            "[user_status]\nenabled = false\n[agents]\nenabled = true\ntimezone = \"America/New_York\"\n\
             [queues]\nenabled = true\ntimezone = \"Asia/Kolkata\"\n",
        );
        let before = Utc::now();
        assert_success(&run_bin(&config, &["run", "--once"]));
        let after = Utc::now();
        let today = |tz: Tz| {
            let (a, b) = (
                before.with_timezone(&tz).date_naive(),
                after.with_timezone(&tz).date_naive(),
            );
            [a.to_string(), b.to_string()]
        };
        let agents = list_rows(&out, "agents", &["agent_id", "first_name", "last_name"]);
        assert_eq!(agents.len(), cfg.agents);
        for idx in 0..cfg.agents {
            let person = agent(cfg.seed, idx);
            let (day, values) = &agents[&wfm_agent_id(cfg.seed, idx)];
            assert!(today(NY).contains(day), "{day}");
            assert_eq!(values, &[person.first_name, person.last_name]);
        }
        let queues = list_rows(&out, "queues", &["queue_id", "description"]);
        assert_eq!(queues.len(), 12);
        for idx in 0..12 {
            let (day, values) = &queues[&queue_id(cfg.seed, idx)];
            assert!(today(chrono_tz::Asia::Kolkata).contains(day), "{day}");
            assert_eq!(values, &[queue_name(idx)]);
        }
        // 230 agents by 100: three pages when honoured; the whole list then one identical
        // page when ignored.
        let requests = sim.stats().by_endpoint.get("agents").copied().unwrap_or(0);
        assert_eq!(
            requests,
            if ignores_paging { 2 } else { 3 },
            "agents requests"
        );
        // A second run of the day replaces the snapshot: the same rows.
        assert_success(&run_bin(&config, &["run", "--once"]));
        assert_eq!(
            list_rows(&out, "agents", &["agent_id", "first_name", "last_name"]),
            agents
        );
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_of_past_snapshot_days_is_refused_and_a_dst_run_names_its_local_date() {
    let cfg = SimulatorConfig {
        seed: 9,
        agents: 3,
        ..SimulatorConfig::default()
    };
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = write_config(
        tmp.path(),
        &sim.base_url(),
        &out,
        "[user_status]\nenabled = false\n[agents]\nenabled = true\ntimezone = \"America/New_York\"\n",
    );
    let refused = run_bin(
        &config,
        &[
            "backfill",
            "--from",
            "2024-03-10",
            "--to",
            "2024-03-10",
            "--dataset",
            "agents",
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("agents") && stderr.contains("past snapshot days cannot be fetched"),
        "{stderr}"
    );
    assert!(read_dataset(&out, "agents").is_empty());

    // Runs at instants around New York's DST changes write the snapshot of their local date.
    let text = std::fs::read_to_string(&config).expect("config");
    let config = smartassist_export::datasets::config_from_toml(
        &text,
        &config,
        Some(SimulatorConfig::default().client_secret),
    )
    .expect("config");
    let app = smartassist_export::app::App::start(
        config,
        tokio_util::sync::CancellationToken::new(),
        smartassist_export::metrics::Metrics::new(),
    )
    .await
    .expect("app");
    let Some(smartassist_export::datasets::Dataset::History(d)) = app.datasets().first().cloned()
    else {
        panic!("agents is a history dataset");
    };
    let stop = tokio_util::sync::CancellationToken::new();
    for (at, day) in [
        ("2024-03-10T06:30:00Z", "2024-03-10"),
        ("2024-03-10T04:59:59Z", "2024-03-09"),
        ("2024-11-03T03:59:59Z", "2024-11-02"),
        ("2024-11-03T04:00:00Z", "2024-11-03"),
        ("2024-11-04T04:59:59Z", "2024-11-03"),
    ] {
        let run =
            smartassist_export::pipeline::run_history(d.as_ref(), &app.cx, &stop, utc(at)).await;
        assert_eq!(
            run.outcome,
            smartassist_export::pipeline::Outcome::Success,
            "{at}: {:?}",
            run.error
        );
        assert_eq!(run.window, format!("{day}..{day}"), "{at}");
    }
    let files = files_under(&out.join("agents"));
    for day in ["2024-03-09", "2024-03-10", "2024-11-02", "2024-11-03"] {
        assert!(
            files
                .iter()
                .any(|f| f.contains(&format!("snapshot_date={day}/"))),
            "{day}: {files:?}"
        );
    }
    app.shutdown().await;
    sim.shutdown().await;
}

/// A backfill of a list that starts a millisecond before New York's midnight and fetches after
/// it exports the day it started in: the run reads its clock once (the clock here answers
/// 23:59:59.999 the first time and 00:00:00.500 of the next day after that), so the day
/// planned and the `exported_at` of its rows agree and the unit is not refused as a past
/// snapshot day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_backfill_starting_before_midnight_exports_the_day_it_started() {
    use smartassist_export::backfill::{backfill_selected_at, BackfillRequest, Selection};
    use smartassist_export::progress::ProgressMode;

    let cfg = SimulatorConfig {
        seed: 11,
        agents: 3,
        ..SimulatorConfig::default()
    };
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = write_config(
        tmp.path(),
        &sim.base_url(),
        &out,
        "[user_status]\nenabled = false\n[agents]\nenabled = true\ntimezone = \"America/New_York\"\n",
    );
    let text = std::fs::read_to_string(&config).expect("config");
    let config = smartassist_export::datasets::config_from_toml(
        &text,
        &config,
        Some(SimulatorConfig::default().client_secret),
    )
    .expect("config");
    let app = smartassist_export::app::App::start(
        config,
        tokio_util::sync::CancellationToken::new(),
        smartassist_export::metrics::Metrics::new(),
    )
    .await
    .expect("app");
    let (before, after) = (
        utc("2024-11-05T04:59:59.999Z"),
        utc("2024-11-05T05:00:00.500Z"),
    );
    let reads = std::sync::atomic::AtomicUsize::new(0);
    let clock = move || {
        if reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            before
        } else {
            after
        }
    };
    let day = chrono::NaiveDate::from_ymd_opt(2024, 11, 4).expect("date");
    let req = BackfillRequest {
        from: day,
        to: day,
        datasets: app.datasets().to_vec(),
        concurrency: 1,
        skip_existing: false,
    };
    let report = backfill_selected_at(&app.cx, &req, ProgressMode::Off, Selection::All, &clock)
        .await
        .expect("backfill");
    let agents = &report.datasets[0];
    assert!(agents.failed_days.is_empty(), "{:?}", agents.failed_days);
    assert_eq!(agents.today_instead, None);
    assert_eq!(
        agents
            .days
            .iter()
            .map(|u| u.unit.as_str())
            .collect::<Vec<_>>(),
        vec!["2024-11-04"]
    );
    let written = read_dataset(&out, "agents");
    assert_eq!(written.len(), 1, "one snapshot file");
    let (path, batches) = &written[0];
    assert!(path.contains("snapshot_date=2024-11-04/"), "{path}");
    let mut rows = 0;
    for b in batches {
        let at = b
            .column_by_name("exported_at")
            .expect("exported_at")
            .as_primitive::<TimestampMillisecondType>();
        assert!(at.iter().all(|v| v == Some(before.timestamp_millis())));
        rows += b.num_rows();
    }
    assert_eq!(rows, cfg.agents);
    app.shutdown().await;
    sim.shutdown().await;
}

/// The distinct values of `column` in every file of `table`.
fn distinct(out: &Path, table: &str, column: &str) -> std::collections::BTreeSet<String> {
    let mut values = std::collections::BTreeSet::new();
    for (_, batches) in read_dataset(out, table) {
        for b in batches {
            let c = b
                .column_by_name(column)
                .expect(column)
                .as_string::<i32>()
                .clone();
            values.extend((0..b.num_rows()).map(|i| c.value(i).to_string()));
        }
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wfm_agent_and_queue_id_is_in_the_same_runs_agents_and_queues_lists() {
    let cfg = SimulatorConfig {
        seed: 33,
        agents: 12,
        ..SimulatorConfig::default()
    };
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let (events, lists) = (tmp.path().join("events"), tmp.path().join("lists"));
    std::fs::create_dir_all(&events).expect("mkdir");
    std::fs::create_dir_all(&lists).expect("mkdir");
    let events = write_config(
        &events,
        &sim.base_url(),
        &out,
        "[user_status]\nenabled = false\n\
         [contact_volume]\nenabled = true\norg_id = \"o-sim\"\ntimezone = \"UTC\"\n\
         [agent_performance]\nenabled = true\ntimezone = \"UTC\"\n\
         [agent_activity]\nenabled = true\ntimezone = \"America/New_York\"\n\
         event_time_zone = \"America/New_York\"\n",
    );
    let lists = write_config(
        &lists,
        &sim.base_url(),
        &out,
        "[user_status]\nenabled = false\n[agents]\nenabled = true\n[queues]\nenabled = true\n",
    );
    let day = (Utc::now() - chrono::Duration::days(2))
        .date_naive()
        .to_string();
    let mut args = vec!["backfill", "--from", &day, "--to", &day];
    for d in ["contact_volume", "agent_performance", "agent_activity"] {
        args.extend(["--dataset", d]);
    }
    assert_success(&run_bin(&events, &args));
    assert_success(&run_bin(&lists, &["run", "--once"]));

    let agents = list_rows(&out, "agents", &["agent_id", "first_name"]);
    let queues = list_rows(&out, "queues", &["queue_id", "description"]);
    assert_eq!((agents.len(), queues.len()), (cfg.agents, 8));
    for (table, column, list) in [
        ("agent_performance", "agent_id", &agents),
        ("agent_activity", "agent_id", &agents),
        ("agent_performance", "queue_id", &queues),
        ("contact_volume", "queue_id", &queues),
    ] {
        let ids = distinct(&out, table, column);
        assert!(ids.len() > 1, "{table}.{column}: {ids:?}");
        let missing: Vec<_> = ids.iter().filter(|id| !list.contains_key(*id)).collect();
        assert!(
            missing.is_empty(),
            "{table}.{column} not listed: {missing:?}"
        );
    }
    // A record's queue name is the list's description of its id.
    for table in ["contact_volume", "agent_performance"] {
        for (path, batches) in read_dataset(&out, table) {
            for b in batches {
                let col = |c: &str| b.column_by_name(c).expect(c).as_string::<i32>().clone();
                let (id, name) = (col("queue_id"), col("queue_name"));
                for i in 0..b.num_rows() {
                    assert_eq!(queues[id.value(i)].1, [name.value(i)], "{path}");
                }
            }
        }
    }
    sim.shutdown().await;
}

/// `(dt, agent_id, interval_start ms, queue_id)` of every agent_performance row.
fn performance_rows(out: &Path) -> Vec<(String, String, i64, String)> {
    let mut rows = Vec::new();
    for (path, batches) in read_dataset(out, "agent_performance") {
        let dt = path
            .split('/')
            .find_map(|s| s.strip_prefix("dt="))
            .expect("dt folder")
            .to_string();
        for b in batches {
            let s = |c: &str| b.column_by_name(c).expect(c).as_string::<i32>().clone();
            let (agent, queue) = (s("agent_id"), s("queue_id"));
            let start = b
                .column_by_name("interval_start")
                .expect("interval_start")
                .as_primitive::<TimestampMillisecondType>()
                .clone();
            for i in 0..b.num_rows() {
                let row = (agent.value(i), start.value(i), queue.value(i));
                rows.push((dt.clone(), row.0.to_string(), row.1, row.2.to_string()));
            }
        }
    }
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_performance_is_exact_whether_to_time_stamp_is_inclusive_or_exclusive() {
    let now = utc("2024-03-12T12:00:00Z");
    let (from, to) = ("2024-03-09", "2024-03-11");
    for to_exclusive in [false, true] {
        let cfg = SimulatorConfig {
            seed: 17,
            agents: 6,
            frozen_now: Some(now),
            models: ModelSettings::default().with(AgentPerformanceSim { to_exclusive }),
            ..SimulatorConfig::default()
        };
        let sim = start_sim(cfg.clone()).await;
        let tmp = tempfile::tempdir().expect("tmp");
        let out = tmp.path().join("out");
        let config = write_config(
            tmp.path(),
            &sim.base_url(),
            &out,
            "[user_status]\nenabled = false\n[agent_performance]\nenabled = true\n\
             timezone = \"America/New_York\"\n",
        );
        let args = ["backfill", "--from", from, "--to", to];
        assert_success(&run_bin(&config, &args));
        let mut want = Vec::new();
        let mut at_edges = 0;
        for day in date(from).iter_days().take_while(|d| *d <= date(to)) {
            let (start, end) = day_bounds(NY, day);
            for p in performance(cfg.seed, cfg.agents, start..end, now, None) {
                for i in &p.intervals {
                    at_edges += usize::from(i.start == start);
                    for q in &i.queues {
                        let row = (
                            p.agent_id.clone(),
                            i.start.timestamp_millis(),
                            q.queue.id.clone(),
                        );
                        want.push((day.to_string(), row.0, row.1, row.2));
                    }
                }
            }
        }
        want.sort();
        assert!(at_edges > 0, "an interval must start at a day's edge");
        assert_eq!(
            performance_rows(&out),
            want,
            "to_exclusive = {to_exclusive}"
        );
        sim.shutdown().await;
    }
}
