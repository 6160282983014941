//! What one IntentRealtimeData poll costs as the day grows: CPU time and bytes written per
//! poll when the day's partition already holds 100, 10,000 and 100,000 sessions, on local disk
//! (fsync on, like production). Each poll goes through `IntentRealtime::ingest`, everything a
//! poll does after the HTTP answer: the previous poll's sessions skipped, the others looked up,
//! the new ones written as one file, merges when the policy says so, rejects, poll state.
//!
//! Per size: a fresh directory; the day filled by real polls, each answering the latest 25
//! sessions of which 10 are new (the rest the previous poll returned), so the partition has the
//! files the merge policy produces; then 100 more polls are measured one by one. "Typical" is
//! their median (a poll that merges nothing), "mean" includes the merges that fell among them,
//! "day average" is every poll since the day's first. For comparison, "rewrite" is what a poll
//! cost before this layout: read the whole partition and write it back as one file with the
//! new sessions.
//!
//! `cargo bench --bench intent_poll` prints the table. CPU time is the process's
//! (`CLOCK_PROCESS_CPUTIME_ID`, all threads); bytes written are `wchar` of `/proc/self/io`
//! (every byte handed to write(2): data files, state objects). Linux only.

use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};
use smartassist_export::config::parse::{parse_schedule, Problems};
use smartassist_export::config::IntentConfig;
use smartassist_export::config::OutputLocation;
use smartassist_export::datasets::intent_realtime::decode::{sessions_to_batch, IntentSession};
use smartassist_export::datasets::intent_realtime::{IntentRealtime, Target, TABLE};
use smartassist_export::metrics::Metrics;
use smartassist_export::simulator::generator::{self, IntentFeed};
use smartassist_export::sink::{PartitionKey, Sink};

const SIZES: [u64; 3] = [100, 10_000, 100_000];
const MEASURED_POLLS: u64 = 100;
const NEW_PER_POLL: u64 = 10;
const BOT: &str = "st-bench";

fn feed() -> IntentFeed {
    IntentFeed {
        seed: 7,
        bot_id: BOT.into(),
        epoch: Utc
            .with_ymd_and_hms(2024, 5, 1, 0, 0, 1)
            .single()
            .expect("valid instant"),
        // 100,000 sessions + the measured ones end within the day.
        interval: Duration::from_millis(500),
        malformed_every: None,
    }
}

fn session(feed: &IntentFeed, k: u64) -> IntentSession {
    let g = generator::session(feed, k);
    IntentSession {
        session_id: g.session_id,
        user_id: Some(g.user_id),
        channel: Some(g.channel),
        ani: Some(g.ani),
        dni: Some(g.dni),
        intents: g.intents,
        start_time: Some(g.start_time),
        end_time: g.end_time,
        status: Some(g.status),
        time_handled: Some(g.time_handled_raw),
        time_handled_seconds: Some(g.time_handled_seconds),
        deflected_to: g.deflected_to,
    }
}

/// The answer of a poll whose newest session is `newest`: the latest 25, newest first.
fn answer(
    feed: &IntentFeed,
    newest: u64,
) -> Vec<Result<IntentSession, smartassist_export::sources::Reject>> {
    (newest.saturating_sub(24)..=newest)
        .rev()
        .map(|k| Ok(session(feed, k)))
        .collect()
}

fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn bytes_written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").expect("/proc/self/io (Linux)");
    io.lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("wchar")
}

fn dataset() -> IntentRealtime {
    let cfg = IntentConfig {
        enabled: true,
        bot_ids: vec![BOT.into()],
        schedule: parse_schedule(&mut Problems::default(), "schedule", &None, "0 */5 * * * *"),
        schedule_timezone: chrono_tz::UTC,
        timezone: chrono_tz::UTC,
        gap_poll_interval: None,
    };
    IntentRealtime::new(cfg, "/intent/{bot_id}".into())
}

struct Figures {
    cpu: Vec<Duration>,
    bytes: Vec<u64>,
    /// Every poll of the day: (polls, CPU, bytes).
    day: (u64, Duration, u64),
    files: usize,
    rewrite_cpu: Duration,
    rewrite_bytes: u64,
}

async fn measure(size: u64) -> Figures {
    let tmp = tempfile::tempdir().expect("tmp");
    let sink = Sink::open(&OutputLocation::Local(tmp.path().to_path_buf())).expect("sink");
    let metrics = Metrics::new();
    let target = Target {
        sink: &sink,
        metrics: &metrics,
        account_id: "acct",
        bot_id: BOT,
    };
    let feed = feed();
    let ds = dataset();
    let at = |k: u64| generator::session_end(feed.epoch, feed.interval, k) + TimeDelta::seconds(1);
    let mut next = 0;
    let mut cpu = Vec::new();
    let mut bytes = Vec::new();
    let mut day = (0, Duration::ZERO, 0);
    while next < size + MEASURED_POLLS * NEW_PER_POLL {
        let newest = next + NEW_PER_POLL - 1;
        let records = answer(&feed, newest);
        let (c0, b0) = (cpu_time(), bytes_written());
        let report = ds.ingest(target, records, at(newest)).await.expect("poll");
        let (c, b) = (cpu_time() - c0, bytes_written() - b0);
        assert_eq!(report.rows as u64, NEW_PER_POLL, "new sessions per poll");
        day = (day.0 + 1, day.1 + c, day.2 + b);
        if next >= size {
            cpu.push(c);
            bytes.push(b);
        }
        next += NEW_PER_POLL;
    }
    let key = |bot: &str| PartitionKey {
        table: &TABLE,
        account_id: "acct".into(),
        bot_id: Some(bot.into()),
        dt: feed.epoch.date_naive(),
    };
    let files = sink
        .partition_file_names(&key(BOT))
        .await
        .expect("ls")
        .len();
    let (rewrite_cpu, rewrite_bytes) =
        rewrite(&sink, &key(BOT), &key("st-rewrite"), &feed, next).await;
    Figures {
        cpu,
        bytes,
        day,
        files,
        rewrite_cpu,
        rewrite_bytes,
    }
}

/// The former poll: read the whole partition, append the new sessions, write one file.
async fn rewrite(
    sink: &Sink,
    from: &PartitionKey,
    to: &PartitionKey,
    feed: &IntentFeed,
    next: u64,
) -> (Duration, u64) {
    let (c0, b0) = (cpu_time(), bytes_written());
    let mut batches = sink.read_partition(from).await.expect("read");
    let fresh: Vec<IntentSession> = (next..next + NEW_PER_POLL)
        .map(|k| session(feed, k))
        .collect();
    batches.push(sessions_to_batch("acct", BOT, &fresh, Utc::now()));
    let merged = arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat");
    sink.write_partition(to, vec![merged]).await.expect("write");
    (cpu_time() - c0, bytes_written() - b0)
}

fn median<T: Copy + Ord>(v: &[T]) -> T {
    let mut s = v.to_vec();
    s.sort_unstable();
    s[s.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("Per IntentRealtimeData poll (25 sessions returned, {NEW_PER_POLL} new), local disk, fsync on:\n");
    println!("| sessions already in the day | files | CPU ms: typical / mean / max | bytes written: typical / mean | day average: CPU ms, bytes | before (rewrite the day): CPU ms, bytes |");
    println!("|---:|---:|---|---|---|---|");
    let mut medians = Vec::new();
    for size in SIZES {
        let f = rt.block_on(measure(size));
        let mean_cpu = f.cpu.iter().sum::<Duration>() / f.cpu.len() as u32;
        let mean_bytes = f.bytes.iter().sum::<u64>() / f.bytes.len() as u64;
        let max_cpu = f.cpu.iter().max().copied().unwrap_or_default();
        let (polls, day_cpu, day_bytes) = f.day;
        println!(
            "| {size} | {} | {} / {} / {} | {} / {} | {}, {} | {}, {} |",
            f.files,
            ms(median(&f.cpu)),
            ms(mean_cpu),
            ms(max_cpu),
            median(&f.bytes),
            mean_bytes,
            ms(day_cpu / polls as u32),
            day_bytes / polls,
            ms(f.rewrite_cpu),
            f.rewrite_bytes
        );
        medians.push((median(&f.cpu), mean_cpu, median(&f.bytes), mean_bytes));
    }
    let (first, last) = (medians[0], medians[medians.len() - 1]);
    println!(
        "\n100,000 vs 100: CPU median {:.2}x, mean {:.2}x; bytes median {:.2}x, mean {:.2}x (target: within 2x)",
        last.0.as_secs_f64() / first.0.as_secs_f64(),
        last.1.as_secs_f64() / first.1.as_secs_f64(),
        last.2 as f64 / first.2 as f64,
        last.3 as f64 / first.3 as f64,
    );
}
