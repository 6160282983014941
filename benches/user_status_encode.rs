//! JSON → Parquet throughput of the UserStatus hot path on one core: `decode_page` →
//! `UserStatusNormalizer` → Parquet (ZSTD, the production writer properties) into memory, on
//! the exact pages the simulator serves for 500 agents × 1 day at PT15M (100 agents a page).
//!
//! `cargo bench --bench user_status_encode` prints rows/s per stage. It also writes the input
//! pages and our Parquet file to `target/bench-data/user_status/` so `benches/duckdb_compare.py`
//! can convert the same JSON with DuckDB and compare speed and size.
//! Env: `BENCH_AGENTS` (default 500), `BENCH_PAGE_SIZE` (default 100).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use parquet::arrow::ArrowWriter;
use smartassist_export::datasets::user_status::decode::{decode_page, UserStatusNormalizer};
use smartassist_export::datasets::user_status::schema::user_status_schema;
use smartassist_export::model::Granularity;
use smartassist_export::simulator::user_status::pages::user_status_pages;
use smartassist_export::simulator::SimulatorConfig;
use smartassist_export::sink::writer_properties;
use smartassist_export::sources::window::plan_day;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Input {
    pages: Vec<String>,
    claim: std::ops::Range<DateTime<Utc>>,
    exported_at: DateTime<Utc>,
}

fn input() -> Input {
    let cfg = SimulatorConfig {
        agents: env_usize("BENCH_AGENTS", 500),
        ..SimulatorConfig::default()
    };
    let day = NaiveDate::from_ymd_opt(2024, 5, 1).expect("valid date");
    let window = plan_day(chrono_tz::UTC, day).remove(0);
    let pages = user_status_pages(
        &cfg,
        day,
        i64::from(window.offset_minutes),
        Granularity::PT15M,
        env_usize("BENCH_PAGE_SIZE", 100),
    );
    Input {
        pages,
        claim: window.claim,
        exported_at: "2024-05-02T00:00:00Z".parse().expect("valid instant"),
    }
}

fn normalize(input: &Input) -> RecordBatch {
    let mut n = UserStatusNormalizer::new("demo-account", Granularity::PT15M, input.exported_at);
    for page in &input.pages {
        let page = decode_page(page.as_bytes()).expect("simulator pages decode");
        for agent in page.agents {
            match agent {
                Ok(a) => n.push_agent(&a, &input.claim),
                Err(r) => n.push_reject(r),
            }
        }
    }
    n.finish().0
}

fn encode(batch: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 << 20);
    let mut w = ArrowWriter::try_new(
        &mut out,
        user_status_schema(),
        Some(writer_properties("user_status")),
    )
    .expect("writer");
    w.write(batch).expect("write");
    w.close().expect("close");
    out
}

fn dump(input: &Input, parquet: &[u8], rows: usize) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/user_status");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("pages")).expect("create bench-data dir");
    for (i, p) in input.pages.iter().enumerate() {
        std::fs::write(dir.join(format!("pages/page-{i:04}.json")), p).expect("write page");
    }
    std::fs::write(dir.join("ours.parquet"), parquet).expect("write parquet");
    std::fs::write(dir.join("rows.txt"), rows.to_string()).expect("write rows");
}

fn bench(c: &mut Criterion) {
    let input = input();
    let batch = normalize(&input);
    let rows = batch.num_rows();
    let bytes: usize = input.pages.iter().map(String::len).sum();
    let parquet = encode(&batch);
    eprintln!(
        "input: {} page(s), {:.1} MiB JSON, {rows} rows; Parquet {:.2} MiB",
        input.pages.len(),
        bytes as f64 / 1048576.0,
        parquet.len() as f64 / 1048576.0
    );
    dump(&input, &parquet, rows);

    let mut g = c.benchmark_group("user_status");
    g.throughput(Throughput::Elements(rows as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("json_to_parquet", |b| {
        b.iter(|| black_box(encode(&normalize(black_box(&input)))).len())
    });
    g.bench_function("decode_normalize", |b| {
        b.iter(|| black_box(normalize(black_box(&input))).num_rows())
    });
    g.bench_function("parquet_encode", |b| {
        b.iter(|| black_box(encode(black_box(&batch))).len())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
