//! What is the dataset's own: rows merged by `queue_id` and `polled_at` through the merged
//! partitions (each row once across repeated, concurrent and compacted polls, days closed into
//! one file), the stamping of `polled_at`, and its polls in the request budget's arithmetic.
//! Snapshots are hand-built from a number `k` (queue `qu-<k % 3>`, polled `k` seconds into the
//! day), so the expected keys of every scenario are plain ranges of `k`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone};

use super::*;
use crate::config::OutputLocation;
use crate::sink::Output;

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 6, 12).expect("date")
}

fn key() -> PartitionKey {
    PartitionKey {
        table: &TABLE,
        account_id: "acct".into(),
        bot_id: None,
        dt: day(),
    }
}

fn snapshot(k: u32) -> QueueSnapshot {
    let midnight = Utc
        .with_ymd_and_hms(2024, 6, 12, 0, 0, 0)
        .single()
        .expect("t");
    QueueSnapshot {
        polled_at: midnight + TimeDelta::seconds(i64::from(k / 3) * 60),
        queue_id: format!("qu-{}", k % 3),
        queue_name: Some(format!("Queue {}", k % 3)),
        waiting: Some(i64::from(k % 11)),
        engaged: Some(1),
        drop_off: Some(i64::from(k)),
        agents_available: Some(2),
        agents_offline: None,
        agents_busy: Some(1),
        agents_away: Some(0),
        agents: Some(3),
        avg_wait: Some(f64::from(k) / 4.0),
        max_wait: Some(f64::from(k)),
        asa: Some(7.0),
        skills: Some("[]".into()),
        extra: None,
    }
}

fn snapshots(ks: impl IntoIterator<Item = u32>) -> Vec<QueueSnapshot> {
    ks.into_iter().map(snapshot).collect()
}

fn expected(ks: impl IntoIterator<Item = u32>) -> Vec<String> {
    let set: BTreeSet<String> = ks.into_iter().map(|k| snapshot(k).key()).collect();
    set.into_iter().collect()
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 13, 9, 0, 0)
        .single()
        .expect("t")
}

/// Every key in the partition's visible files, duplicates kept, sorted.
async fn stored_keys(out: &Output) -> Vec<String> {
    let batches = out.sink.read_partition(&key()).await.expect("read");
    let mut keys = merged::keys_of::<QueueSnapshot>(&batches);
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_concurrent_and_compacted_polls_keep_each_row_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let location = OutputLocation::Local(tmp.path().to_path_buf());
    let policy = Policy {
        max_files: 4,
        fan_in: 3,
        ..Policy::default()
    };
    let mut tasks = Vec::new();
    for w in 0..3u32 {
        let out = Output::open(&location).expect("open");
        tasks.push(tokio::spawn(async move {
            for round in 0..10u32 {
                // Writers of overlapping polls (a repeated poll, a retried one).
                let lo = round * 3 + w;
                merged::add_records(&out.sink, &out.state, &key(), snapshots(lo..lo + 4), at())
                    .await
                    .expect("add");
                if round % 3 == 2 {
                    merged::compact::<QueueSnapshot>(
                        &out.sink,
                        &out.state,
                        &key(),
                        Merge::Bounded(policy),
                    )
                    .await
                    .expect("compact");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let out = Output::open(&location).expect("open");
    assert_eq!(stored_keys(&out).await, expected(0..(9 * 3 + 2 + 4)));
    // Closing the day merges everything into one file, rows sorted by polled_at then queue.
    let mut written = WriteStats::default();
    let open = BTreeSet::from([day()]);
    let closed = merged::close_days::<QueueSnapshot>(
        (&out.sink, &out.state),
        &open,
        chrono_tz::UTC,
        &policy,
        at(),
        |_| key(),
        &mut written,
    )
    .await
    .expect("close");
    assert_eq!(closed, open);
    let names = out.sink.partition_file_names(&key()).await.expect("ls");
    assert_eq!(names.len(), 1, "{names:?}");
    let batches = out.sink.read_partition(&key()).await.expect("read");
    let keys = merged::keys_of::<QueueSnapshot>(&batches);
    let mut sorted = keys.clone();
    sorted.sort_by_key(|k| {
        let (queue, at) = k.split_once('|').expect("queue|at");
        (at.to_string(), queue.to_string())
    });
    assert_eq!(keys, sorted, "merged rows in polled_at, queue_id order");
    assert_eq!(keys.len(), expected(0..33).len());
    // The index has no bot segment: `_state/queue_stats/account_id=acct/dt=2024-06-12.json`.
    assert_eq!(
        merged::index_name(&key()),
        "queue_stats/account_id=acct/dt=2024-06-12.json"
    );
}

#[test]
fn polled_at_is_the_second_the_answered_request_was_sent() {
    let start = Utc
        .with_ymd_and_hms(2024, 6, 12, 14, 3, 0)
        .single()
        .expect("t")
        + TimeDelta::milliseconds(20);
    // No retry: the poll's own second.
    assert_eq!(
        polled_at(start, Duration::from_millis(300)).to_rfc3339(),
        "2024-06-12T14:03:00+00:00"
    );
    // Retries for 12.9 s: the second of the attempt that was answered.
    assert_eq!(
        polled_at(start, Duration::from_millis(12_900)).to_rfc3339(),
        "2024-06-12T14:03:12+00:00"
    );
}

#[test]
fn the_request_body_sends_only_the_configured_filters() {
    let cfg = |channels: &[&str], languages: &[&str]| {
        let text = format!(
            "{MINIMAL}\n[queue_stats]\nenabled = true\nqueue_ids = [\"qu-1\"]\n\
             channels = {channels:?}\nlanguages = {languages:?}\n"
        );
        let c = crate::datasets::config_from_toml(
            &text,
            Path::new("/x/config.toml"),
            Some("s3cr3t".into()),
        )
        .expect("valid");
        QueueStats::new(c.section::<QueueStatsConfig>().expect("section").clone())
    };
    assert_eq!(cfg(&[], &[]).request_body(), serde_json::json!({}));
    assert_eq!(
        cfg(&["rtm", "whatsapp"], &["en"]).request_body(),
        serde_json::json!({"channels": ["rtm", "whatsapp"], "languages": ["en"]})
    );
    assert_eq!(
        cfg(&[], &["de"]).request_body(),
        serde_json::json!({"languages": ["de"]})
    );
}

const MINIMAL: &str = r#"
[api]
base_url = "https://platform.kore.ai"
account_id = "acct-1"
iid = "st-1"
client_id = "cs-1"
[output]
url = "file:///tmp/out"
[user_status]
enabled = false
"#;

#[test]
fn queue_polls_count_in_the_request_budget_and_too_many_are_refused() {
    let config = |queues: usize, rpm: u32| {
        let ids: Vec<String> = (0..queues).map(|i| format!("qu-{i}")).collect();
        let text = format!(
            "{}\n[queue_stats]\nenabled = true\nqueue_ids = {ids:?}\n\
             [intent_realtime]\nbot_ids = [\"st-bot\"]\nschedule = \"*/30 * * * * *\"\n",
            MINIMAL.replace(
                "[output]",
                &format!("requests_per_minute = {rpm}\n[output]")
            )
        );
        crate::datasets::config_from_toml(&text, Path::new("/x/config.toml"), Some("s3cr3t".into()))
            .expect("valid")
    };
    let now = Utc::now();
    let c = config(10, 60);
    let budget = crate::daemon::PollBudget::of(&crate::datasets::enabled(&c), 60, now);
    let demand = budget
        .demands
        .iter()
        .find(|d| d.dataset == "queue_stats")
        .expect("queue_stats polls are counted");
    assert_eq!(
        (demand.entity_kind, demand.entities, demand.polls_per_minute),
        ("queue", 10, 1)
    );
    // 10 queues once a minute and a bot twice a minute: 12 of 59 admitted.
    assert_eq!(budget.polls_per_minute(), 12);
    budget.check().expect("within the budget");
    let c = config(58, 60);
    let over = crate::daemon::PollBudget::of(&crate::datasets::enabled(&c), 60, now);
    let err = over
        .check()
        .expect_err("60 polls a minute exceed 60 per 61 s");
    assert_eq!(err.exit_code(), 2, "{err}");
}

#[test]
fn the_entities_are_the_configured_queues_in_order() {
    let text =
        format!("{MINIMAL}\n[queue_stats]\nenabled = true\nqueue_ids = [\"qu-b\", \"qu-a\"]\n");
    let c = crate::datasets::config_from_toml(
        &text,
        Path::new("/x/config.toml"),
        Some("s3cr3t".into()),
    )
    .expect("valid");
    let Some(Dataset::Snapshot(d)) = crate::datasets::enabled(&c)
        .into_iter()
        .find(|d| d.name() == "queue_stats")
    else {
        panic!("queue_stats is a snapshot dataset");
    };
    assert_eq!(d.entities(), ["qu-b", "qu-a"]);
    assert_eq!(d.entity_kind(), "queue");
}

#[test]
fn an_empty_queue_ids_needs_the_queue_list_exported_and_then_polls_the_list() {
    let load = |sections: &str| {
        crate::datasets::config_from_toml(
            &format!("{MINIMAL}\n{sections}"),
            Path::new("/x/config.toml"),
            Some("s3cr3t".into()),
        )
    };
    for section in [
        "[queue_stats]\nenabled = true\n",
        "[queue_stats]\nenabled = true\nqueue_ids = []\n",
        "[queue_stats]\nenabled = true\n[queues]\nenabled = false\n",
    ] {
        let err = load(section).expect_err("no queues to poll");
        let text = err.to_string();
        assert!(
            text.contains("queue_stats.queue_ids") && text.contains("[queues]"),
            "{section}: {text}"
        );
        assert_eq!(crate::error::Error::from(err).exit_code(), 2, "{section}");
    }
    // Disabled, an empty list is no problem.
    load("[queue_stats]\nqueue_ids = []\n").expect("valid");

    let c = load("[queue_stats]\nenabled = true\n[queues]\nenabled = true\n").expect("valid");
    let Some(Dataset::Snapshot(d)) = crate::datasets::enabled(&c)
        .into_iter()
        .find(|d| d.name() == "queue_stats")
    else {
        panic!("queue_stats is a snapshot dataset");
    };
    assert_eq!(
        d.entity_source(),
        EntitySource::List {
            dataset: "queues",
            max_age_days: QUEUE_LIST_MAX_AGE_DAYS
        }
    );
    assert!(d.entities().is_empty());
    // The budget cannot count the listed queues ahead, and says so.
    let budget = crate::daemon::PollBudget::of(&crate::datasets::enabled(&c), 60, Utc::now());
    assert_eq!(budget.polls_per_minute(), 0);
    budget.check().expect("nothing counted to refuse");
    assert_eq!(
        budget.summary().as_deref(),
        Some(
            "polls need 0 of the 60 requests/minute of api.requests_per_minute (every queue \
             of the `queues` list × 1 polls/minute (queue_stats; not counted: the number is \
             known only when the list is read)); history gets the rest, about 59 a minute"
        )
    );
}
