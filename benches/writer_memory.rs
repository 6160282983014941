//! What the Parquet writer really holds on the heap against what it reports, per page, for a
//! dataset's day as the export writes it (pages sharing a row group until
//! `ArrowWriter::memory_size` passes the bound): a counting global allocator measures the heap
//! each table's writer keeps between pages (its growth across each `write` and `flush`, less the
//! growth of the file's own bytes) and the transient peak inside each call, beside
//! `memory_size()` and `in_progress_size()`. Each encoding choice is run in turn:
//! `dictionary` (every column with a dictionary, the writer's default) and `delta` (top-level
//! Int32, Int64 and timestamp columns in `DELTA_BINARY_PACKED`, no dictionary), plus the
//! production properties (`writer_options`).
//!
//! `cargo bench --bench writer_memory` (env: `BENCH_DATASET`, default `call_details`;
//! `BENCH_CALLS_PER_DAY`, default 4,000; `BENCH_VERBOSE=1` prints every page).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicIsize, Ordering};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::ArrowWriter;
use smartassist_export::datasets::{Table, REGISTRY};
use smartassist_export::simulator::truth::{pages, PageRequest};
use smartassist_export::sink::{
    page_row_group_bytes, table_properties, writer_properties_with, PendingPages,
    MAX_ROW_GROUP_ROWS, PAGE_ROW_GROUP_BYTES,
};

#[path = "shared/simulated_day.rs"]
mod simulated_day;

/// Live heap bytes and the highest value since the last reset.
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

struct Counting;

impl Counting {
    fn grew(by: isize) {
        let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters change.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            Self::grew(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            Self::grew(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            Self::grew(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Resets the peak to the live heap; returns the live heap.
fn reset_peak() -> isize {
    let now = live();
    PEAK.store(now, Ordering::Relaxed);
    now
}

/// Bytes glibc's malloc has handed out and not taken back (arenas and mmapped blocks): the Rust
/// heap above plus what C code (zstd) allocates itself, which the counter above never sees.
fn malloc_heap() -> isize {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let m = unsafe { libc::mallinfo2() };
    (m.uordblks + m.hblkhd) as isize
}

/// The options of one encoding choice for `schema`: `dictionary` (every column with a
/// dictionary) or `delta` (the export's choice, `sink::table_properties`).
fn options(encoding: &str, schema: &SchemaRef, label: &str) -> ArrowWriterOptions {
    let props = match encoding {
        "dictionary" => writer_properties_with(label, MAX_ROW_GROUP_ROWS),
        "delta" => table_properties(schema, label, MAX_ROW_GROUP_ROWS),
        other => panic!("unknown encoding {other}: dictionary or delta"),
    };
    ArrowWriterOptions::new().with_properties(props)
}

/// One table's writer and what was measured of it.
struct Probe {
    writer: ArrowWriter<Vec<u8>>,
    /// Heap the writer keeps (file bytes excluded), as measured.
    held: isize,
    /// The same at malloc's level (Rust and C allocations).
    held_malloc: isize,
    max_held_malloc: isize,
    /// Highest `held` seen after a write, and `memory_size()` then.
    max_held: (isize, usize),
    /// Highest transient heap above the call's start inside one write or flush.
    max_transient: isize,
    /// `held / memory_size()` at each row group's end (the bound's check that ended it).
    ratios: Vec<f64>,
    row_groups: usize,
}

impl Probe {
    fn new(mode: &str, table: &Table) -> Self {
        let schema = (table.schema)();
        let opts = options(mode, &schema, table.name);
        Self {
            writer: ArrowWriter::try_new_with_options(Vec::new(), schema, opts).expect("writer"),
            held: 0,
            held_malloc: 0,
            max_held_malloc: 0,
            max_held: (0, 0),
            max_transient: 0,
            ratios: Vec::new(),
            row_groups: 0,
        }
    }

    /// Runs `f` on the writer; adds the heap it kept (less the file's own growth) to `held`.
    fn measured(&mut self, f: impl FnOnce(&mut ArrowWriter<Vec<u8>>)) {
        let cap0 = self.writer.inner().capacity() as isize;
        let before_malloc = malloc_heap();
        let before = reset_peak();
        f(&mut self.writer);
        let after = live();
        let after_malloc = malloc_heap();
        let cap1 = self.writer.inner().capacity() as isize;
        self.max_transient = self
            .max_transient
            .max(PEAK.load(Ordering::Relaxed) - before);
        self.held += (after - before) - (cap1 - cap0);
        self.held_malloc += (after_malloc - before_malloc) - (cap1 - cap0);
        self.max_held_malloc = self.max_held_malloc.max(self.held_malloc);
    }
}

/// What an open row group costs before any data: a writer given one row, at the Rust heap's
/// and at malloc's level, per leaf column.
fn open_row_group_cost(mode: &str, encoding: &str, table: &Table, one_row: &RecordBatch) {
    let schema = (table.schema)();
    let opts = options(encoding, &schema, table.name);
    let mut w = ArrowWriter::try_new_with_options(Vec::new(), schema, opts).expect("writer");
    let (rust0, malloc0) = (live(), malloc_heap());
    w.write(one_row).expect("write");
    let (rust, malloc) = (live() - rust0, malloc_heap() - malloc0);
    let columns = w.flushed_row_groups().len(); // 0: nothing flushed yet
    let leaves = parquet::arrow::ArrowSchemaConverter::new()
        .convert(&one_row.schema())
        .expect("schema")
        .num_columns();
    eprintln!(
        "{mode:>10} {:<22} an open row group of one row: Rust heap {rust} B, malloc {malloc} B \
         ({} B a column, {} B of it outside the Rust heap; {leaves} leaf columns{})",
        table.name,
        malloc / leaves as isize,
        (malloc - rust) / leaves as isize,
        if columns == 0 { "" } else { "?" }
    );
}

/// One day of `dataset` written with `encoding`, pages sharing row groups by `strategy`:
/// `open` (each page encoded into the open row group, which ends once `memory_size()` passes
/// the bound: the export before) or `pending` (pages wait as Arrow rows in
/// `sink::PendingPages`, then are encoded and written out together: the export now).
fn run(strategy: &str, encoding: &str, dataset: &str, bodies: &[String], verbose: bool) {
    let info = REGISTRY
        .iter()
        .find(|i| i.name == dataset)
        .expect("a registered dataset");
    let (_, window) = simulated_day::day();
    let bound = page_row_group_bytes(PAGE_ROW_GROUP_BYTES);
    let mode = format!("{strategy}/{encoding}");
    let mut firsts: Vec<(&'static Table, RecordBatch)> = Vec::new();
    (info.decoder.rows)(bodies[0].as_bytes(), &window, &mut |t, b| {
        if b.num_rows() > 0 && !firsts.iter().any(|(o, _)| o.name == t.name) {
            firsts.push((t, b.slice(0, 1)));
        }
    })
    .expect("rows");
    for (t, b) in &firsts {
        open_row_group_cost(&mode, encoding, t, b);
    }
    drop(firsts);
    let mut probes: BTreeMap<&'static str, (Probe, PendingPages)> = info
        .tables
        .iter()
        .map(|t| (t.name, (Probe::new(encoding, t), PendingPages::new(bound))))
        .collect();
    let (mut max_total_held, mut max_total_malloc) = (0isize, 0isize);
    for (i, body) in bodies.iter().enumerate() {
        let mut write = |t: &'static Table, batch: RecordBatch| {
            let (p, pending) = probes.get_mut(t.name).expect("a table of the dataset");
            let rows = batch.num_rows();
            if strategy == "open" {
                p.measured(|w| w.write(&batch).expect("write"));
                drop(batch);
                let reported = p.writer.memory_size();
                if p.held > p.max_held.0 {
                    p.max_held = (p.held, reported);
                }
                if reported >= bound {
                    p.ratios.push(p.held as f64 / reported as f64);
                    p.row_groups += 1;
                    p.measured(|w| w.flush().expect("flush"));
                }
            } else if let Some(group) = pending.push(batch) {
                p.row_groups += 1;
                p.measured(|w| {
                    for b in &group {
                        w.write(b).expect("write");
                    }
                    w.flush().expect("flush");
                });
            }
            if verbose {
                eprintln!(
                    "{mode} page {i} {}: {rows} rows, memory_size {}, waiting rows {} B, \
                     writer heap {} B, at malloc's level {} B",
                    t.name,
                    p.writer.memory_size(),
                    pending.bytes(),
                    p.held,
                    p.held_malloc
                );
            }
        };
        (info.decoder.rows)(body.as_bytes(), &window, &mut write).expect("rows");
        // Between pages: what the writers keep plus the rows waiting for their row group.
        let waiting: isize = probes.values().map(|(_, q)| q.bytes() as isize).sum();
        max_total_held =
            max_total_held.max(probes.values().map(|(p, _)| p.held).sum::<isize>() + waiting);
        max_total_malloc = max_total_malloc
            .max(probes.values().map(|(p, _)| p.held_malloc).sum::<isize>() + waiting);
    }
    let mut file_bytes = 0;
    for (name, (p, pending)) in &mut probes {
        for b in pending.take() {
            p.writer.write(&b).expect("write");
        }
        p.writer.finish().expect("close");
        file_bytes += p.writer.inner().len();
        let ratios: Vec<String> = p.ratios.iter().map(|r| format!("{r:.2}")).collect();
        eprintln!(
            "{mode:>18} {name:<14} row groups {:>3} (+1 at close); writer heap between pages \
             at most {:>8} B (Rust) / {:>8} B (malloc); transient in one call {:>8} B (Rust \
             heap only){}",
            p.row_groups,
            p.max_held.0.max(p.held),
            p.max_held_malloc,
            p.max_transient,
            if ratios.is_empty() {
                String::new()
            } else {
                format!(
                    "; Rust heap / memory_size at each bound: [{}]",
                    ratios.join(" ")
                )
            }
        );
    }
    eprintln!(
        "{mode:>18} all tables: between pages at most {:.2} MB (Rust heap) / {:.2} MB (malloc: \
         with zstd's own allocations), waiting rows included; file bytes {file_bytes}",
        max_total_held as f64 / 1e6,
        max_total_malloc as f64 / 1e6
    );
}

fn main() {
    smartassist_export::memory::tune_allocator();
    let dataset = std::env::var("BENCH_DATASET").unwrap_or_else(|_| "call_details".into());
    let verbose = std::env::var("BENCH_VERBOSE").is_ok_and(|v| v == "1");
    let cfg = simulated_day::simulator(500);
    let (day, window) = simulated_day::day();
    let req = PageRequest {
        day,
        offset_minutes: window.offset_minutes,
        page_size: 100,
    };
    let bodies = pages(&cfg, &dataset, &req).expect("a simulator model serves the dataset");
    let modes = std::env::var("BENCH_MODES")
        .unwrap_or_else(|_| "open/dictionary open/delta pending/dictionary pending/delta".into());
    for mode in modes.split_whitespace() {
        let (strategy, encoding) = mode.split_once('/').expect("strategy/encoding");
        run(strategy, encoding, &dataset, &bodies, verbose);
    }
}
