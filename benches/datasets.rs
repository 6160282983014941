//! Every registered dataset, from API response bytes to ZSTD Parquet, on one core: the pages its
//! simulator model serves for one UTC day (`simulator::truth::pages`, at the dataset's default
//! `page_size`), decoded alone and then decoded, normalized and encoded
//! (`DatasetInfo::decoder`) into in-memory Parquet files with the production writer properties,
//! pages sharing a row group up to the export's bound (`sink::page_row_group_bytes`, so
//! `SMARTASSIST_PAGE_ROW_GROUP_BYTES=0` measures one row group per page). A dataset is measured
//! by being registered.
//!
//! Every dataset's fixed cost per file is measured too: a file of one row of each of its tables
//! (what the writer pays before any data: schema, column writers with their ZSTD contexts,
//! footer). The poll datasets whose unit is one small poll (`intent_realtime`, `queue_stats`)
//! are also measured over a day of polls as production writes them: a poll every minute of the
//! day (the model's answer at that minute), each poll's records not seen before written as one
//! file, then the day's records merged into one file sorted as the day-close merge sorts them
//! (intermediate merges left out).
//!
//! `cargo bench --bench datasets` prints, per dataset, MB of API JSON and rows per CPU-second
//! of this thread (median of the repetitions), and a Markdown table for README "Performance".
//! Env: `BENCH_DATASET` (only that one), `BENCH_AGENTS` (default 500),
//! `BENCH_CALLS_PER_DAY` (Call Details sessions a day, default 4,000), `BENCH_SECONDS` (CPU
//! seconds per measurement, default 2), `BENCH_UNKNOWN_FIELDS=1` (the simulator adds unknown
//! fields to every level of every record, the cost of the `extra` column), `BENCH_PHASE`
//! (`decode`, `full`, `fixed` or `day`: measure only that phase, e.g. under a profiler).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use arrow::array::BooleanArray;
use arrow::compute::SortColumn;
use arrow::compute::{concat_batches, filter_record_batch, lexsort_to_indices, take_record_batch};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use smartassist_export::datasets::merged::ROW_GROUP_ROWS;
use smartassist_export::datasets::{DatasetInfo, Table, REGISTRY};
use smartassist_export::simulator::truth::{pages, PageRequest};
use smartassist_export::simulator::SimulatorConfig;
use smartassist_export::sink::{
    page_row_group_bytes, writer_options, PendingPages, MAX_ROW_GROUP_ROWS, PAGE_ROW_GROUP_BYTES,
};
use smartassist_export::sources::window::DayWindow;

#[path = "shared/simulated_day.rs"]
mod simulated_day;

use simulated_day::env_usize;

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        if rc == 0 {
            return Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        }
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// The median CPU time of `f` over repetitions filling about `budget` (at least 3).
fn measure(budget: Duration, mut f: impl FnMut()) -> Duration {
    f(); // warm-up: allocator, lazily built statics
    let mut times = Vec::new();
    let started = thread_cpu();
    while times.len() < 3 || thread_cpu() - started < budget {
        let t0 = thread_cpu();
        f();
        times.push(thread_cpu() - t0);
    }
    times.sort();
    times[times.len() / 2]
}

/// The dataset's default `page_size`, when its section has one.
fn default_page_size(info: &DatasetInfo) -> usize {
    info.config
        .defaults
        .iter()
        .find(|(k, _)| *k == "page_size")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(100)
}

struct Figures {
    dataset: &'static str,
    pages: usize,
    json_bytes: usize,
    records: usize,
    rows: usize,
    parquet_bytes: usize,
    row_groups: usize,
    decode: Duration,
    full: Duration,
    /// One file of one row of each table.
    fixed: Duration,
}

/// Decodes, normalizes and encodes every page; returns rows, Parquet bytes and row groups (of
/// every table).
fn export(info: &DatasetInfo, bodies: &[String], window: &DayWindow) -> (usize, usize, usize) {
    let mut writers: BTreeMap<&'static str, (ArrowWriter<Vec<u8>>, PendingPages)> = BTreeMap::new();
    let bound = page_row_group_bytes(PAGE_ROW_GROUP_BYTES);
    for t in info.tables {
        let schema = (t.schema)();
        let options = writer_options(&schema, t.name, MAX_ROW_GROUP_ROWS).expect("options");
        let w = ArrowWriter::try_new_with_options(Vec::new(), schema, options).expect("writer");
        writers.insert(t.name, (w, PendingPages::new(bound)));
    }
    let mut rows = 0;
    let write_row_group = |w: &mut ArrowWriter<Vec<u8>>, pages: Vec<RecordBatch>| {
        if !pages.is_empty() {
            for page in &pages {
                w.write(page).expect("write");
            }
            w.flush().expect("flush");
        }
    };
    for body in bodies {
        let mut write = |t: &'static Table, batch| {
            let (w, pending) = writers.get_mut(t.name).expect("a table of the dataset");
            // Row groups bounded as the export bounds them between pages.
            if let Some(pages) = pending.push(batch) {
                write_row_group(w, pages);
            }
        };
        rows += (info.decoder.rows)(body.as_bytes(), window, &mut write).expect("rows");
    }
    let (mut bytes, mut row_groups) = (0, 0);
    for (mut w, mut pending) in writers.into_values() {
        write_row_group(&mut w, pending.take());
        row_groups += w.finish().expect("close").num_row_groups();
        bytes += w.inner().len();
    }
    (rows, bytes, row_groups)
}

/// Encodes `batches` of `table` as one in-memory file (row groups of `row_group_rows`); its bytes.
fn encode_file(table: &Table, batches: &[RecordBatch], row_group_rows: usize) -> usize {
    let schema = (table.schema)();
    let options = writer_options(&schema, table.name, row_group_rows).expect("options");
    let mut w = ArrowWriter::try_new_with_options(Vec::new(), schema, options).expect("writer");
    for b in batches {
        w.write(b).expect("write");
    }
    w.finish().expect("close");
    w.inner().len()
}

/// The first row of the first batch of each table the page gives.
fn one_row_per_table(
    info: &DatasetInfo,
    body: &str,
    window: &DayWindow,
) -> Vec<(&'static Table, RecordBatch)> {
    let mut out: Vec<(&'static Table, RecordBatch)> = Vec::new();
    (info.decoder.rows)(body.as_bytes(), window, &mut |t, b| {
        if b.num_rows() > 0 && !out.iter().any(|(o, _)| o.name == t.name) {
            out.push((t, b.slice(0, 1)));
        }
    })
    .expect("rows");
    out
}

/// How a poll dataset's rows are named and ordered within their day (its merged record's key
/// and instant column, as `datasets::merged` reads them).
struct PollDay {
    keys: fn(&RecordBatch) -> Vec<String>,
    time_column: &'static str,
}

fn poll_day(dataset: &str) -> Option<PollDay> {
    use smartassist_export::datasets::{intent_realtime, queue_stats};
    match dataset {
        "intent_realtime" => Some(PollDay {
            keys: intent_realtime::decode::session_ids,
            time_column: "end_time",
        }),
        "queue_stats" => Some(PollDay {
            keys: queue_stats::decode::row_keys,
            time_column: "polled_at",
        }),
        _ => None,
    }
}

/// A day of polls as production writes it: every poll decoded, its new records written as one
/// file, then the day's records merged into one file (sorted by instant, then key). Rows, files
/// and bytes written.
fn export_poll_day(
    info: &DatasetInfo,
    day: &PollDay,
    polls: &[(String, DayWindow)],
) -> (usize, usize, usize) {
    let table = info.primary();
    let mut seen: HashSet<String> = HashSet::new();
    let mut kept = Vec::new();
    let (mut files, mut bytes) = (0, 0);
    for (body, window) in polls {
        let mut batches = Vec::new();
        (info.decoder.rows)(body.as_bytes(), window, &mut |t, b| {
            if t.name == table.name {
                batches.push(b);
            }
        })
        .expect("rows");
        for b in batches {
            let keys = (day.keys)(&b);
            assert_eq!(keys.len(), b.num_rows(), "every simulated row has its key");
            let new: BooleanArray = keys.into_iter().map(|k| Some(seen.insert(k))).collect();
            let b = filter_record_batch(&b, &new).expect("filter");
            if b.num_rows() > 0 {
                bytes += encode_file(table, std::slice::from_ref(&b), ROW_GROUP_ROWS);
                files += 1;
                kept.push(b);
            }
        }
    }
    let all = concat_batches(&(table.schema)(), &kept).expect("concat");
    let by: Vec<SortColumn> = std::iter::once(day.time_column)
        .chain(table.key.iter().copied())
        .map(|name| SortColumn {
            values: all
                .column_by_name(name)
                .expect("a column of the table")
                .clone(),
            options: None,
        })
        .collect();
    let order = lexsort_to_indices(&by, None).expect("sort");
    let merged = take_record_batch(&all, &order).expect("take");
    bytes += encode_file(table, &[merged], ROW_GROUP_ROWS);
    (all.num_rows(), files + 1, bytes)
}

fn main() {
    let only = std::env::var("BENCH_DATASET").ok();
    let budget = Duration::from_secs_f64(
        std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2.0),
    );
    let phase = std::env::var("BENCH_PHASE").ok();
    let runs = |p: &str| phase.as_deref().is_none_or(|only| only == p);
    let cfg = SimulatorConfig {
        unknown_fields: std::env::var("BENCH_UNKNOWN_FIELDS").is_ok_and(|v| v == "1"),
        ..simulated_day::simulator(env_usize("BENCH_AGENTS", 500))
    };
    let (day, window) = simulated_day::day();
    let mut all = Vec::new();
    for info in REGISTRY {
        if only.as_deref().is_some_and(|o| o != info.name) {
            continue;
        }
        let req = PageRequest {
            day,
            offset_minutes: window.offset_minutes,
            page_size: default_page_size(info),
        };
        let Some(bodies) = pages(&cfg, info.name, &req) else {
            eprintln!("{}: no simulator model serves it; skipped", info.name);
            continue;
        };
        let json_bytes = bodies.iter().map(String::len).sum();
        let mut records = 0;
        let mut decode = Duration::ZERO;
        let measured_decode = runs("decode").then(|| {
            measure(budget, || {
                records = bodies
                    .iter()
                    .map(|b| (info.decoder.decode)(b.as_bytes(), &window).expect("decodes"))
                    .sum();
            })
        });
        if let Some(d) = measured_decode {
            decode = d;
        }
        let (mut rows, mut parquet_bytes, mut row_groups) = (0, 0, 0);
        let full = if runs("full") {
            measure(budget, || {
                (rows, parquet_bytes, row_groups) = export(info, &bodies, &window);
            })
        } else {
            Duration::ZERO
        };
        let one_rows = one_row_per_table(info, &bodies[0], &window);
        let fixed = if runs("fixed") {
            measure(budget, || {
                for (t, b) in &one_rows {
                    encode_file(t, std::slice::from_ref(b), ROW_GROUP_ROWS);
                }
            })
        } else {
            Duration::ZERO
        };
        if let Some(day_spec) = poll_day(info.name).filter(|_| runs("day")) {
            // The model answers a poll at the end of the requested range; the poll's window
            // claims from that instant (a poll dataset reads its poll time there).
            let polls: Vec<(String, DayWindow)> = (0..24 * 60)
                .rev()
                .flat_map(|m| {
                    let req = PageRequest {
                        offset_minutes: window.offset_minutes - m,
                        ..req
                    };
                    let at = req.utc_range().end;
                    let poll_window = DayWindow {
                        claim: at..at,
                        ..window.clone()
                    };
                    pages(&cfg, info.name, &req)
                        .unwrap_or_default()
                        .into_iter()
                        .map(move |body| (body, poll_window.clone()))
                })
                .collect();
            let json: usize = polls.iter().map(|(b, _)| b.len()).sum();
            let (mut rows, mut files, mut bytes) = (0, 0, 0);
            let t = measure(budget, || {
                (rows, files, bytes) = export_poll_day(info, &day_spec, &polls);
            });
            eprintln!(
                "{} day of polls: {} polls, {:.2} MB JSON, {} rows in {} files ({} bytes, the \
                 last the merged day); {:.1} ms CPU = {:.1} MB/s, {:.0} µs a poll",
                info.name,
                polls.len(),
                json as f64 / 1e6,
                rows,
                files,
                bytes,
                t.as_secs_f64() * 1e3,
                json as f64 / 1e6 / t.as_secs_f64(),
                t.as_secs_f64() * 1e6 / polls.len() as f64
            );
        }
        let f = Figures {
            dataset: info.name,
            pages: bodies.len(),
            json_bytes,
            records,
            rows,
            parquet_bytes,
            row_groups,
            decode,
            full,
            fixed,
        };
        eprintln!(
            "{}: {} pages, {:.2} MB JSON, {} records, {} rows, {} Parquet bytes in {} row groups; \
             decode {:.1} ms, decode+encode {:.1} ms, fixed cost per file {:.0} µs (CPU, \
             median)",
            f.dataset,
            f.pages,
            f.json_bytes as f64 / 1e6,
            f.records,
            f.rows,
            f.parquet_bytes,
            f.row_groups,
            f.decode.as_secs_f64() * 1e3,
            f.full.as_secs_f64() * 1e3,
            f.fixed.as_secs_f64() * 1e6
        );
        all.push(f);
    }
    println!(
        "| Dataset | JSON per run | Rows | Decode: MB/s | Decode + encode: MB/s | Row groups | \
         Rows/s | Fixed cost per file |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for f in &all {
        let mb = f.json_bytes as f64 / 1e6;
        println!(
            "| {} | {:.1} MB ({} pages) | {} | {:.0} | {:.0} | {} | {:.0} | {:.0} µs |",
            f.dataset,
            mb,
            f.pages,
            f.rows,
            mb / f.decode.as_secs_f64(),
            mb / f.full.as_secs_f64(),
            f.row_groups,
            f.rows as f64 / f.full.as_secs_f64(),
            f.fixed.as_secs_f64() * 1e6
        );
    }
}
