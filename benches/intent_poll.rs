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
//! Out of order: after those, 100 more polls whose answers also hold sessions ending inside
//! older files' `end_time` ranges, as a poll does when sessions complete late or the API
//! returns again a session an earlier (not the previous) poll stored. Each answers 25
//! sessions: the latest 20 (10 new, 10 the previous poll returned), [`LATE`] late sessions
//! (new ids, end times anywhere in the day so far) and [`RESEEN`] stored sessions from
//! anywhere in the day. Such a poll looks them up in every file whose range covers one of
//! them, frozen files of 10,000+ sessions included, reading there only the `session_id` column
//! of the row groups whose `end_time` statistics cover one; "rows of those files" is their
//! size from the partition index before the poll, "ids read" what those row groups hold (read
//! again outside the measurement); bytes read is `rchar` of `/proc/self/io`.
//!
//! `cargo bench --bench intent_poll` prints both tables. CPU time is the process's
//! (`CLOCK_PROCESS_CPUTIME_ID`, all threads); bytes written are `wchar` of `/proc/self/io`
//! (every byte handed to write(2): data files, state objects). Linux only.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use smartassist_export::config::parse::{parse_schedule, Problems};
use smartassist_export::config::OutputLocation;
use smartassist_export::datasets::intent_realtime::decode::{sessions_to_batch, IntentSession};
use smartassist_export::datasets::intent_realtime::partition::{self, PartitionIndex};
use smartassist_export::datasets::intent_realtime::{IntentConfig, IntentRealtime, Target, TABLE};
use smartassist_export::metrics::Metrics;
use smartassist_export::simulator::intent_realtime::{self, IntentFeed};
use smartassist_export::sink::{Output, PartitionKey, RowGroupFilter, Sink};
use smartassist_export::state;

const SIZES: [u64; 3] = [100, 10_000, 100_000];
const MEASURED_POLLS: u64 = 100;
const NEW_PER_POLL: u64 = 10;
const BOT: &str = "st-bench";
/// Per out-of-order poll: late sessions (new) and stored sessions returned again, both with
/// end times anywhere in the day so far.
const LATE: u64 = 3;
const RESEEN: u64 = 2;

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
    let g = intent_realtime::session(feed, k);
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
        extra: None,
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

/// An out-of-order poll's answer (see the module docs): the latest 20 sessions up to
/// `newest`, [`LATE`] sessions never stored and [`RESEEN`] stored ones, the last two ending at
/// pseudo-random points of the day so far.
fn out_of_order_answer(
    feed: &IntentFeed,
    newest: u64,
    poll: u64,
) -> Vec<Result<IntentSession, smartassist_export::sources::Reject>> {
    let day_so_far = newest + 1 - NEW_PER_POLL;
    let mut draws = (0..LATE + RESEEN).map(|i| {
        // A fixed 64-bit mix (splitmix64) of the poll and draw numbers: the same positions on
        // every run and size.
        let mut z = (poll * 16 + i).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % day_so_far
    });
    let mut out: Vec<_> = (newest.saturating_sub(19)..=newest)
        .rev()
        .map(|k| Ok(session(feed, k)))
        .collect();
    for i in 0..LATE {
        let k = draws.next().expect("LATE + RESEEN draws");
        let mut late = session(feed, k);
        late.session_id = format!("late{poll:010}{i:010}");
        out.push(Ok(late));
    }
    out.extend(draws.map(|k| Ok(session(feed, k))));
    out
}

/// What a poll with candidates ending at `ends` looks up, from the partition index before the
/// poll: the files whose `end_time` range covers one of them, their rows, and the session ids
/// of the row groups of those files whose `end_time` statistics cover one (what the poll
/// decodes), read again here outside the measurement.
async fn covering(out: &Output, key: &PartitionKey, ends: &[DateTime<Utc>]) -> (usize, u64, u64) {
    let idx: PartitionIndex = state::load(&out.state, &partition::index_name(key))
        .await
        .expect("index")
        .expect("the day has an index");
    let covers = |f: &partition::FileEntry, t: &DateTime<Utc>| match (f.min_end, f.max_end) {
        (Some(a), Some(b)) => a <= *t && *t <= b,
        _ => false,
    };
    let (mut files, mut rows, mut ids) = (0, 0, 0);
    for f in &idx.files {
        let hits: Vec<i64> = ends
            .iter()
            .filter(|t| covers(f, t))
            .map(|t| t.timestamp_millis())
            .collect();
        if hits.is_empty() {
            continue;
        }
        let filter = RowGroupFilter {
            column: "end_time",
            any_of: &hits,
        };
        let read = out
            .sink
            .read_partition_file_pruned(key, &f.name, &["session_id"], filter)
            .await
            .expect("read")
            .expect("a listed file exists");
        files += 1;
        rows += f.rows;
        ids += read
            .batches
            .iter()
            .map(|b| b.num_rows() as u64)
            .sum::<u64>();
    }
    (files, rows, ids)
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
    proc_io("wchar:")
}

fn bytes_read() -> u64 {
    proc_io("rchar:")
}

/// A field of `/proc/self/io`.
fn proc_io(field: &str) -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").expect("/proc/self/io (Linux)");
    io.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().parse().ok())
        .expect("an /proc/self/io field")
}

fn dataset() -> IntentRealtime {
    let cfg = IntentConfig {
        enabled: true,
        bot_ids: vec![BOT.into()],
        schedule: parse_schedule(&mut Problems::default(), "schedule", &None, "0 */5 * * * *"),
        schedule_timezone: chrono_tz::UTC,
        timezone: chrono_tz::UTC,
        gap_poll_interval: None,
        path: "/intent/{bot_id}".into(),
    };
    IntentRealtime::new(cfg)
}

/// One out-of-order poll's cost and the session ids it had to read.
struct OutOfOrder {
    cpu: Duration,
    bytes: u64,
    /// `rchar`: every byte read(2) returned (data files, index, state), counted before the
    /// `/proc/self/io` read that measures it.
    read: u64,
    files_read: usize,
    /// Rows of the covering files, and the session ids of their covering row groups.
    rows_covered: u64,
    ids_read: u64,
}

struct Figures {
    cpu: Vec<Duration>,
    bytes: Vec<u64>,
    ooo: Vec<OutOfOrder>,
    /// Mean session ids one late session would read, in the day before the out-of-order polls.
    one_late: u64,
    /// Files and sessions in the partition after the out-of-order polls.
    ooo_files: usize,
    ooo_sessions: u64,
    /// Every poll of the day: (polls, CPU, bytes).
    day: (u64, Duration, u64),
    files: usize,
    rewrite_cpu: Duration,
    rewrite_bytes: u64,
}

async fn measure(size: u64) -> Figures {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = Output::open(&OutputLocation::Local(tmp.path().to_path_buf())).expect("output");
    let sink = &out.sink;
    let metrics = Metrics::new();
    let target = Target {
        sink,
        state: &out.state,
        metrics: &metrics,
        account_id: "acct",
        bot_id: BOT,
    };
    let feed = feed();
    let ds = dataset();
    let at =
        |k: u64| intent_realtime::session_end(feed.epoch, feed.interval, k) + TimeDelta::seconds(1);
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
        rewrite(sink, &key(BOT), &key("st-rewrite"), &feed, next).await;
    // What one late session costs in the day the in-order polls built: the rows of the files
    // covering its end time, averaged over 100 instants spread evenly over the day so far.
    let mut one_late = 0;
    for i in 0..100 {
        let end = intent_realtime::session_end(feed.epoch, feed.interval, next * i / 100);
        one_late += covering(&out, &key(BOT), &[end]).await.2;
    }
    let one_late = one_late / 100;
    let mut ooo = Vec::new();
    let mut stored = next;
    for j in 0..MEASURED_POLLS {
        let newest = next + NEW_PER_POLL - 1;
        let records = out_of_order_answer(&feed, newest, j);
        let candidates: Vec<_> = records.iter().flatten().map(|s| s.end_time).collect();
        let (files_read, rows_covered, ids_read) = covering(&out, &key(BOT), &candidates).await;
        let r0 = bytes_read();
        let (c0, b0) = (cpu_time(), bytes_written());
        let report = ds.ingest(target, records, at(newest)).await.expect("poll");
        let (c, b) = (cpu_time() - c0, bytes_written() - b0);
        let r = bytes_read() - r0;
        assert_eq!(
            report.rows as u64,
            NEW_PER_POLL + LATE,
            "new sessions per poll"
        );
        stored += NEW_PER_POLL + LATE;
        ooo.push(OutOfOrder {
            cpu: c,
            bytes: b,
            read: r,
            files_read,
            rows_covered,
            ids_read,
        });
        next += NEW_PER_POLL;
    }
    let ooo_files = sink
        .partition_file_names(&key(BOT))
        .await
        .expect("ls")
        .len();
    Figures {
        cpu,
        bytes,
        ooo,
        one_late,
        ooo_files,
        ooo_sessions: stored,
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
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it
    // (and unoptimized): then only the smallest day, as a check that the bench still works.
    let sizes: &[u64] = if std::env::args().any(|a| a == "--bench") {
        &SIZES
    } else {
        println!("(not run by `cargo bench`: the smallest size only, as a smoke test)\n");
        &SIZES[..1]
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("Per IntentRealtimeData poll (25 sessions returned, {NEW_PER_POLL} new), local disk, fsync on:\n");
    println!("| sessions already in the day | files | CPU ms: typical / mean / max | bytes written: typical / mean | day average: CPU ms, bytes | before (rewrite the day): CPU ms, bytes |");
    println!("|---:|---:|---|---|---|---|");
    let mut medians = Vec::new();
    let mut all = Vec::new();
    for &size in sizes {
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
        all.push((size, f));
    }
    let (first, last) = (medians[0], medians[medians.len() - 1]);
    if medians.len() < 2 {
        return print_out_of_order(&all);
    }
    println!(
        "\n100,000 vs 100: CPU median {:.2}x, mean {:.2}x; bytes median {:.2}x, mean {:.2}x (target: within 2x)",
        last.0.as_secs_f64() / first.0.as_secs_f64(),
        last.1.as_secs_f64() / first.1.as_secs_f64(),
        last.2 as f64 / first.2 as f64,
        last.3 as f64 / first.3 as f64,
    );
    print_out_of_order(&all);
}

fn print_out_of_order(all: &[(u64, Figures)]) {
    println!("\nOut of order: the same days, then {MEASURED_POLLS} polls of 25 sessions: the latest 20 ({NEW_PER_POLL} new), {LATE} late sessions and {RESEEN} stored ones ending anywhere in the day so far:\n");
    println!("| sessions already in the day | one late session before: ids read | files after | files read per poll: mean / max | rows of those files per poll: median / max | session ids read per poll: median / mean / max | CPU ms: typical / mean / max | bytes read: typical / mean | bytes written: typical / mean | typical CPU vs in-order typical |");
    println!("|---:|---:|---:|---|---|---|---|---|---|---:|");
    let mut typical = Vec::new();
    for (size, f) in all {
        let o = &f.ooo;
        let n = o.len() as u64;
        let cpu: Vec<Duration> = o.iter().map(|p| p.cpu).collect();
        let bytes: Vec<u64> = o.iter().map(|p| p.bytes).collect();
        let read: Vec<u64> = o.iter().map(|p| p.read).collect();
        let ids: Vec<u64> = o.iter().map(|p| p.ids_read).collect();
        let rows: Vec<u64> = o.iter().map(|p| p.rows_covered).collect();
        let files_read: u64 = o.iter().map(|p| p.files_read as u64).sum();
        let max_files = o.iter().map(|p| p.files_read).max().unwrap_or_default();
        let in_order = median(&f.cpu);
        println!(
            "| {size} | {} | {} ({} sessions) | {:.1} / {} | {} / {} | {} / {} / {} | {} / {} / {} | {} / {} | {} / {} | {:.2}x |",
            f.one_late,
            f.ooo_files,
            f.ooo_sessions,
            files_read as f64 / n as f64,
            max_files,
            median(&rows),
            rows.iter().max().copied().unwrap_or_default(),
            median(&ids),
            ids.iter().sum::<u64>() / n,
            ids.iter().max().copied().unwrap_or_default(),
            ms(median(&cpu)),
            ms(cpu.iter().sum::<Duration>() / n as u32),
            ms(cpu.iter().max().copied().unwrap_or_default()),
            median(&read),
            read.iter().sum::<u64>() / n,
            median(&bytes),
            bytes.iter().sum::<u64>() / n,
            median(&cpu).as_secs_f64() / in_order.as_secs_f64(),
        );
        typical.push((median(&cpu), median(&read), median(&bytes)));
    }
    let (first, last) = (typical[0], typical[typical.len() - 1]);
    if typical.len() < 2 {
        return;
    }
    println!(
        "\nOut of order, 100,000 vs 100: CPU median {:.2}x, bytes read median {:.2}x, bytes written median {:.2}x (target: within 2x). A poll looks up its candidates in the files whose end-time range covers one, and in those only in the row groups whose end_time statistics cover one (ranged reads of the footer and the session_id column chunks).",
        last.0.as_secs_f64() / first.0.as_secs_f64(),
        last.1 as f64 / first.1 as f64,
        last.2 as f64 / first.2 as f64,
    );
}
