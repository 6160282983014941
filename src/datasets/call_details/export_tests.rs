//! Tests of the registered dataset's I/O against a simulator started here: request metrics,
//! both partitions left untouched by a failed day, the density state, and the corruption
//! policy. Expected figures come from the simulator's generator and its request counters.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::app::App;
use crate::datasets::DayUnit;
use crate::error_chain::error_chain;
use crate::metrics::Metrics;
use crate::simulator::call_details::{
    calls_in, segments, CallBurst, CallDetailsSim, NumResults, ENDPOINT,
};
use crate::simulator::{self, EveryNth, FaultKind, FaultPlan, ModelSettings, RunningSimulator};
use crate::simulator::{SimulatorConfig, DEFAULT_SECRET};
use crate::sources::window::local_day_bounds;
use crate::state;

const NY: chrono_tz::Tz = chrono_tz::America::New_York;

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 6, 5).expect("date")
}

async fn sim(call_details: CallDetailsSim) -> RunningSimulator {
    let cfg = SimulatorConfig {
        seed: 5,
        models: ModelSettings::default().with(call_details),
        ..SimulatorConfig::default()
    };
    simulator::start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator")
}

async fn app(
    sim: &RunningSimulator,
    out: &Path,
    max_retries: u32,
) -> (App, Arc<dyn HistoryDataset>) {
    let text = format!(
        r#"
[api]
base_url = "{base}"
account_id = "demo-account"
iid = "st-demo-stream"
client_id = "cs-demo-client"
requests_per_minute = 100000
max_retries = {max_retries}
retry_base_ms = 1
[output]
url = "{out}"
[user_status]
enabled = false
timezone = "America/New_York"
[call_details]
enabled = true
"#,
        base = sim.base_url(),
        out = out.display()
    );
    let config =
        crate::datasets::config_from_toml(&text, Path::new("cd.toml"), Some(DEFAULT_SECRET.into()))
            .expect("valid test config");
    let app = App::start(config, CancellationToken::new(), Metrics::new())
        .await
        .expect("app");
    let Some(Dataset::History(cd)) = app.datasets().first().cloned() else {
        panic!("call_details is the only enabled dataset");
    };
    (app, cd)
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("timestamp")
}

/// A quiet day is one window paged to its short page: the metrics count exactly the requests
/// the simulator answered, against the minimum `floor(n / 100) + 1` of the generator's `n`
/// records; rows written per table are the generator's sessions and legs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_reports_its_requests_and_the_minimum_in_the_metrics() {
    let s = sim(CallDetailsSim::default()).await;
    let dir = tempfile::tempdir().expect("tmp");
    let (app, cd) = app(&s, dir.path(), 0).await;
    let cx = &app.cx;
    let bounds = local_day_bounds(NY, day());
    let truth = calls_in(s.config(), bounds);
    let legs: usize = truth.iter().map(|c| segments(c).len()).sum();
    let report = cd
        .export_day(cx, &DayUnit::day(day()), at("2025-01-01T00:00:00Z"))
        .await
        .expect("day exported");
    let requests = s.stats().requests(ENDPOINT);
    let minimum = truth.len() as u64 / 100 + 1;
    assert_eq!(requests, minimum, "a quiet day wastes no request");
    assert_eq!(report.requests as u64, requests);
    let m = |name: &str, ds: &str| cx.metrics.value(name, &[("dataset", ds)]);
    assert_eq!(
        m(crate::metrics::API_REQUESTS, "call_details"),
        Some(requests as f64)
    );
    assert_eq!(
        m(crate::metrics::API_REQUESTS_MINIMUM, "call_details"),
        Some(minimum as f64)
    );
    let rows = "smartassist_rows_written_total";
    assert_eq!(m(rows, "call_details"), Some(truth.len() as f64));
    assert_eq!(m(rows, "call_segments"), Some(legs as f64));
    assert_eq!(report.rows, truth.len() + legs);
    assert!(cx.page_gate.is_idle(), "no permit kept");
    app.shutdown().await;
    s.shutdown().await;
}

/// A day that fails after some pages leaves both tables' previous files in place (rows and
/// `exported_at` of the earlier export), and stores no density.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_day_leaves_both_previous_partitions_in_place() {
    let s = sim(CallDetailsSim {
        sessions_per_hour: 60,
        ..CallDetailsSim::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let (app, cd) = app(&s, dir.path(), 0).await;
    let cx = &app.cx;
    let first = at("2025-01-01T00:00:00Z");
    cd.export_day(cx, &DayUnit::day(day()), first)
        .await
        .expect("first export");
    let keys = [
        CallDetails::key(&DETAILS, &cx.account_id, day()),
        CallDetails::key(&SEGMENTS, &cx.account_id, day()),
    ];
    let mut before = Vec::new();
    for k in &keys {
        before.push(cx.sink.read_partition(k).await.expect("read"));
    }
    let density = state::object_name::<DensityState>(INFO.name, &cx.account_id, &());
    let stored = cx.state.get(&density).await.expect("get");
    assert!(stored.is_some(), "a complete day stores its density");

    s.set_faults(FaultPlan {
        next: Vec::new(),
        every_nth: Some(EveryNth {
            n: 3,
            kind: FaultKind::Status5xx(503),
        }),
    });
    let err = cd
        .export_day(cx, &DayUnit::day(day()), at("2025-02-01T00:00:00Z"))
        .await
        .expect_err("the third page fails without retries");
    assert!(
        error_chain(&err).contains("call-details window"),
        "{}",
        error_chain(&err)
    );
    for (k, old) in keys.iter().zip(&before) {
        assert_eq!(
            &cx.sink.read_partition(k).await.expect("read"),
            old,
            "{}",
            k.table
        );
        assert_eq!(
            cx.sink.list_partition_files(k).await.expect("list").len(),
            1
        );
    }
    assert_eq!(cx.state.get(&density).await.expect("get"), stored);
    app.shutdown().await;
    s.shutdown().await;
}

/// The density of a complete day is stored and plans the next export: a busy day without
/// `numResults` costs overflows while nothing is known and close to the minimum after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_density_plans_the_next_export_of_a_busy_day() {
    let s = sim(CallDetailsSim {
        sessions_per_hour: 60,
        bursts: vec![CallBurst {
            start: at("2024-06-05T15:00:00Z"),
            seconds: 3600,
            sessions: 900,
        }],
        num_results: NumResults::Absent,
        ..CallDetailsSim::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let (app, cd) = app(&s, dir.path(), 0).await;
    let cx = &app.cx;
    let n = calls_in(s.config(), local_day_bounds(NY, day())).len();
    let exported_at = at("2025-01-01T00:00:00Z");
    cd.export_day(cx, &DayUnit::day(day()), exported_at)
        .await
        .expect("first");
    let first = s.stats().requests(ENDPOINT);
    let name = state::object_name::<DensityState>(INFO.name, &cx.account_id, &());
    let stored: DensityState = state::load(&cx.state, &name)
        .await
        .expect("load")
        .expect("stored");
    assert_eq!(
        (stored.day, stored.timezone.as_str()),
        (day(), "America/New_York")
    );
    assert_eq!(stored.hourly.iter().map(|&h| h as usize).sum::<usize>(), n);
    cd.export_day(cx, &DayUnit::day(day()), exported_at)
        .await
        .expect("second");
    let second = s.stats().requests(ENDPOINT) - first;
    let lower_bound = (n as u64 + n.div_ceil(1099) as u64).div_ceil(100);
    println!(
        "busy day of {n} sessions: {first} requests, then {second}; lower bound {lower_bound}"
    );
    assert!(second < first, "{second} vs {first}");
    assert!(
        second as f64 <= 1.15 * lower_bound as f64,
        "{second} vs {lower_bound}"
    );
    app.shutdown().await;
    s.shutdown().await;
}

/// A corrupt density object fails the day before any request, naming the object and the
/// recovery, like every other state object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_density_fails_the_day_and_names_the_object() {
    let s = sim(CallDetailsSim::default()).await;
    let dir = tempfile::tempdir().expect("tmp");
    let (app, cd) = app(&s, dir.path(), 0).await;
    let cx = &app.cx;
    let name = state::object_name::<DensityState>(INFO.name, &cx.account_id, &());
    assert_eq!(name, "call_details/account_id=demo-account/density.json");
    cx.state
        .put(&name, bytes::Bytes::from("{nope"))
        .await
        .expect("put");
    let err = cd
        .export_day(cx, &DayUnit::day(day()), at("2025-01-01T00:00:00Z"))
        .await
        .expect_err("corrupt state");
    let text = error_chain(&err);
    assert!(
        text.contains("_state/call_details/account_id=demo-account/density.json"),
        "{text}"
    );
    assert!(text.contains("delete it"), "{text}");
    assert_eq!(s.stats().requests(ENDPOINT), 0);
    app.shutdown().await;
    s.shutdown().await;
}
