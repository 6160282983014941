#![cfg(unix)]
//! The polls of one tick go out together: the built daemon polls eight queues against a fake
//! Queue Size server on loopback that holds every answer until it has received the requests of
//! all eight (a barrier; after a generous wait it answers anyway, and the test fails because
//! the requests were not sent together). What is asserted is the event, all eight received
//! before any answer, once for eight configured `queue_ids` (eight jobs due at the same
//! second) and once for the eight queues of the `queues` list (one job). The account's budget
//! is 12 requests a minute, so eight polls fit at once; a budget that spaced them (one per
//! freed place, 61 s / 12 apart) would open the barrier only after its wait. Every row's
//! `polled_at` is the second the fake received that queue's request, or the one before (the
//! request leaves before it arrives). Prints when each request arrived, after the first.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use chrono::{DateTime, Utc};
use common::loopback::{self, Barrier};
use common::*;

const RUNS: &str = "smartassist_runs_total{dataset=\"queue_stats\",outcome=\"success\"}";
const QUEUES: usize = 8;
/// How long the barrier waits for every request of the round: generous beside the
/// milliseconds eight requests sent together take, short beside the 36 s a budget of 12 a
/// minute needs to space eight out (61 s / 12 apart).
const GIVE_UP: Duration = Duration::from_secs(20);

fn queue_id(i: usize) -> String {
    format!("qu-at-once-{i}")
}

/// The fake's answer for queue `i`: its record after a `//` comment, as the sample has it;
/// `waiting` is `i`.
fn answer(i: usize) -> String {
    format!(
        "[\n  // queue size\n  {{\"queueId\":\"{}\",\"queueName\":\"Queue {i}\",\"waiting\":{i}}}\n]",
        queue_id(i)
    )
}

/// The `queues` list: every queue, in one page.
fn queue_list() -> String {
    let account = smartassist_export::simulator::SimulatorConfig::default().account_id;
    let records: Vec<String> = (0..QUEUES)
        .map(|i| {
            format!(
                "{{\"accountId\":\"{account}\",\"collectionPointId\":\"{}\",\"Description\":\"Queue {i}\"}}",
                queue_id(i)
            )
        })
        .collect();
    format!("[{}]", records.join(","))
}

/// Queue Size behind `barrier` (keyed by queue), and the `queues` list.
async fn fake_server(barrier: Barrier) -> std::net::SocketAddr {
    use axum::extract::Path as UrlPath;
    let app = axum::Router::new()
        .route(
            "/agentassist/api/v1/public/{stream}/monitor/queueStatsById/{queue}",
            axum::routing::post(move |UrlPath((_, queue)): UrlPath<(String, String)>| {
                let barrier = barrier.clone();
                async move {
                    barrier.arrive(&queue).await;
                    (0..QUEUES)
                        .find(|i| queue_id(*i) == queue)
                        .map_or_else(|| "[]".to_string(), answer)
                }
            }),
        )
        .route(
            "/agentassist/api/public/analytics/account/{account}/queues",
            axum::routing::get(|uri: axum::http::Uri| async move {
                let first_page = !uri.query().unwrap_or_default().contains("offset=")
                    || uri.query().unwrap_or_default().contains("offset=0");
                if first_page {
                    queue_list()
                } else {
                    "[]".to_string()
                }
            }),
        );
    loopback::serve(app).await
}

/// The test's config: the fake's account with a budget of 12 requests a minute and a request
/// timeout longer than the barrier's wait; `sections` as for [`write_config`].
fn config(
    dir: &Path,
    addr: std::net::SocketAddr,
    out: &Path,
    sections: &str,
) -> std::path::PathBuf {
    let path = write_config(dir, &format!("http://{addr}"), out, sections);
    let text = std::fs::read_to_string(&path).expect("config");
    let text = text
        .replace("requests_per_minute = 100000", "requests_per_minute = 12")
        .replace("timeout_seconds = 5", "timeout_seconds = 60");
    std::fs::write(&path, text).expect("config");
    path
}

/// (queue_id, polled_at, waiting) of every exported row.
fn rows(out: &Path) -> Vec<(String, DateTime<Utc>, Option<i64>)> {
    let mut rows = Vec::new();
    for (_, batches) in read_dataset(out, "queue_stats") {
        for b in batches {
            let ids = b
                .column_by_name("queue_id")
                .expect("queue_id")
                .as_string::<i32>();
            let at = b
                .column_by_name("polled_at")
                .expect("polled_at")
                .as_primitive::<TimestampMillisecondType>();
            let waiting = b
                .column_by_name("waiting")
                .expect("waiting")
                .as_primitive::<Int64Type>();
            for r in 0..b.num_rows() {
                rows.push((
                    ids.value(r).to_string(),
                    DateTime::from_timestamp_millis(at.value(r)).expect("ts"),
                    waiting.is_valid(r).then(|| waiting.value(r)),
                ));
            }
        }
    }
    rows
}

/// Runs the daemon with `sections` until it has exported a poll of every queue, then asserts
/// the barrier's event and every row's `polled_at`.
fn polls_of_a_tick_arrive_together(what: &str, sections: &str, prepare: impl Fn(&Path, &Path)) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let barrier = Barrier::new(QUEUES, GIVE_UP);
    let addr = rt.block_on(fake_server(barrier.clone()));
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    prepare(&config(tmp.path(), addr, &out, sections), &out);
    let config_for = |listen: std::net::SocketAddr| {
        let sections = format!("{sections}\n[server]\nlisten = \"{listen}\"\n");
        config(tmp.path(), addr, &out, &sections)
    };
    let (mut child, listen) = spawn_daemon_on_free_port(config_for, &tmp.path().join("run.log"));
    wait_for_metrics(listen, &mut child, Duration::from_secs(120), |m| {
        metric(m, RUNS) >= QUEUES as f64
    });
    let status = sigterm_and_wait(&mut child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));

    let arrivals = barrier.arrivals();
    let first = arrivals.first().expect("a request").at;
    let offsets: Vec<String> = arrivals
        .iter()
        .map(|a| {
            let o = a.at.duration_since(first).unwrap_or_default();
            format!("{} +{:.3}s", a.key, o.as_secs_f64())
        })
        .collect();
    println!(
        "{what}: requests received after the first: {}",
        offsets.join(", ")
    );
    let answered = barrier.first_answer().expect("answered");
    assert!(
        answered.all_arrived,
        "{what}: the first answer left after {} of the {QUEUES} queues' requests had arrived \
         (the barrier gave up waiting): the polls of the tick were not sent together; {offsets:?}",
        answered.keys
    );
    // Every row: a poll of a queue the fake received in the second of its `polled_at` or the
    // next, holding what the fake answered for that queue.
    let received: BTreeMap<String, Vec<SystemTime>> =
        arrivals.iter().fold(BTreeMap::new(), |mut m, a| {
            m.entry(a.key.clone()).or_default().push(a.at);
            m
        });
    let got = rows(&out);
    for i in 0..QUEUES {
        assert!(
            got.iter().any(|(q, _, _)| *q == queue_id(i)),
            "{what}: no row of {}",
            queue_id(i)
        );
    }
    for (queue, polled_at, waiting) in &got {
        let i = (0..QUEUES)
            .find(|i| queue_id(*i) == *queue)
            .expect("a known queue");
        assert_eq!(*waiting, Some(i as i64), "{what}: {queue}");
        let seconds: Vec<i64> = received[queue]
            .iter()
            .map(|t| DateTime::<Utc>::from(*t).timestamp() - polled_at.timestamp())
            .collect();
        assert!(
            seconds.iter().any(|s| (0..=1).contains(s)),
            "{what}: {queue} polled_at {polled_at}, requests received {seconds:?} s after it"
        );
    }
}

#[test]
fn the_polls_of_configured_queues_due_together_arrive_together() {
    let ids: Vec<String> = (0..QUEUES).map(queue_id).collect();
    let sections = format!(
        "[user_status]\nenabled = false\n[queue_stats]\nenabled = true\nqueue_ids = {ids:?}\n"
    );
    polls_of_a_tick_arrive_together("configured queue_ids", &sections, |_, _| {});
}

#[test]
fn the_polls_of_the_listed_queues_arrive_together() {
    let sections = "[user_status]\nenabled = false\n[queues]\nenabled = true\n\
                    [queue_stats]\nenabled = true\n";
    // The list is in the output before the daemon starts (exported into another output,
    // whose budget lease stays there), so its first tick polls every queue.
    polls_of_a_tick_arrive_together("the queues list", sections, |config, out| {
        let scratch = out.with_file_name("list-out");
        let text = std::fs::read_to_string(config).expect("config");
        let list_config = config.with_file_name("list.toml");
        let text = text
            .replace(&out.display().to_string(), &scratch.display().to_string())
            .replace(
                "[queue_stats]\nenabled = true",
                "[queue_stats]\nenabled = false",
            );
        std::fs::write(&list_config, text).expect("list config");
        let once = run_bin(&list_config, &["run", "--once"]);
        assert_success(&once);
        copy_dir(&scratch.join("queues"), &out.join("queues"));
    });
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
