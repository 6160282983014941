//! smartassist-export: exports Kore.ai SmartAssist report data (UserStatus and
//! IntentRealtimeData) into Hive-partitioned, ZSTD-compressed Parquet on local disk or any
//! S3-compatible object store.
//!
//! # Layout
//! - [`config`]: TOML file → validated [`config::Config`]; the [`config::Secret`] type.
//! - [`auth`]: JWT minting (HS256, `appId`, optional per-request `jti`).
//! - [`client`]: HTTP to the report APIs: retries, backoff, `Retry-After`, the shared rate limiter.
//! - [`sources`]: one module per API: request bodies, DST-correct day windows, wire decoding and
//!   normalization into Arrow record batches.
//! - [`schema`]: the Arrow schema of each dataset.
//! - [`sink`]: partition paths, Parquet encoding and atomic partition replacement on object_store.
//! - [`pipeline`]: fetch → normalize → write, the one place the ordering lives.
//! - [`state`]: watermarks of the scheduled export; [`sync`]: one scheduled run of a job
//!   (state → plan → pipeline → state, metrics, summary log).
//! - [`scheduler`]: DST-correct triggers, overlap guard, health, graceful drain; [`server`]:
//!   `/healthz` and `/metrics`.
//! - [`backfill`]: day ranges with bounded concurrency; [`progress`]: its bar / log lines.
//! - [`simulator`]: a faithful fake of both APIs, used by `demo`, the tests and the benchmarks.
//! - [`ddl`]: Athena and DuckDB DDL generated from the schemas; [`rejects`]: the rejects rows;
//!   [`metrics`]: metric names and the Prometheus registry; [`telemetry`]: logging setup;
//!   [`memory`]: allocator settings that keep the resident set as flat as the heap.
//! - [`cli`]: clap definitions; [`commands`]: one function per command; [`daemon`]: `run`.
//!
//! # Data flow
//! A CLI command builds a [`pipeline::Exporter`] from the config. For each UserStatus local day
//! it plans the request windows ([`sources::window`]), fetches every page through
//! [`client::ApiClient`] (token per request, rate limit, retries), normalizes each page into a
//! `RecordBatch` streamed to the Parquet encoder (malformed records become rejects; one page is
//! in memory at a time across all days in flight, see [`pipeline::PAGES_IN_MEMORY`]), and on
//! success replaces that day's partition with the one new file. IntentRealtimeData snapshots are merged by `session_id` into the
//! partition of each session's local end date.

pub mod app;
pub mod auth;
pub mod backfill;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod datasets;
pub mod ddl;
pub mod error;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod progress;
pub mod rejects;
pub mod scheduler;
pub mod schema;
pub mod server;
pub mod simulator;
pub mod sink;
pub mod sources;
pub mod state;
pub mod telemetry;

pub use error::Error;
