//! smartassist-export: exports Kore.ai SmartAssist report data (every dataset of
//! [`datasets::REGISTRY`]) into Hive-partitioned, ZSTD-compressed Parquet on local disk or any
//! S3-compatible object store.
//!
//! # Layout
//! - [`cli`]: clap definitions; [`commands`]: one function per command, a module per family of
//!   commands; [`daemon`]: `run`.
//! - [`app`]: the composition root: simulator, secret, client, output (sink and state store),
//!   metrics handle, and the [`datasets::Context`] handed to the core.
//! - [`config`]: TOML file → validated [`config::Config`]: the shared sections and their
//!   defaults, and every dataset's own section through [`config::DatasetSection`]; the
//!   [`config::Secret`] type.
//! - [`datasets`]: the registry of datasets, the building blocks they share, and one folder per
//!   dataset (its config section, tables and schemas, requests, paging, decoding and partition
//!   writes).
//! - [`pipeline`]: one scheduled run of any dataset (state → plan → units → state, metrics,
//!   summary log), the one place the ordering lives; [`backfill`]: day ranges with bounded
//!   concurrency; [`progress`]: its bar / log lines.
//! - [`state`]: every `_state/` object, in one versioned format with one corruption policy,
//!   written by compare-and-swap through a [`sink::StateStore`]; [`lease`]: one scheduled
//!   writer per dataset and account, and one owner of the account's request budget.
//! - [`scheduler`]: DST-correct triggers, overlap guard, health, graceful drain; [`server`]:
//!   `/healthz`, `/metrics` and the hand-over endpoint; [`handover`]: a `backfill` or
//!   `run --once` beside a daemon runs inside it, on its request budget.
//! - [`auth`]: JWT minting (HS256, `appId`, optional per-request `jti`, JWE).
//! - [`client`]: HTTP to the report APIs: retries, backoff, `Retry-After`, the account's
//!   request budget with its priorities ([`client::budget`]), the page gate.
//! - [`sources`]: shared decoding pieces (wire scalars, durations, DST-correct day windows).
//! - [`schema`]: what every table's schema shares (column helpers, the rejects table) and the
//!   [`schema::Table`] descriptor; [`sink`]: the output location on
//!   object_store, opened once ([`sink::Output`]) for its two stores: [`sink::Sink`] (partition
//!   paths, Parquet encoding, the publishing strategies: staged rename, direct put; rejects) and
//!   [`sink::StateStore`] (the small `_state/` objects, by compare-and-swap).
//! - [`simulator`]: a faithful fake of the APIs, used by `demo`, the tests and the benchmarks.
//! - [`ddl`]: Athena and DuckDB DDL generated from the registered tables; [`rejects`]: the
//!   rejects rows; [`metrics`]: the per-instance Prometheus registry; [`telemetry`]: logging
//!   setup; [`memory`]: allocator settings that keep the resident set as flat as the heap.
//!
//! # Data flow
//! A command builds an [`app::App`] from the config. A scheduled run
//! ([`pipeline::run_history`]) plans local days from the dataset's watermark; for each day the
//! dataset plans its request windows ([`sources::window`]), fetches every page through
//! [`client::ApiClient`] (token per request, request budget, retries), normalizes each page into a
//! `RecordBatch` streamed to the Parquet encoder (malformed records become rejects; the pages in
//! memory across all days in flight are bounded in bytes by [`client::MemoryGate`]), and on
//! success replaces that day's partition with the one new file; the watermark moves only after.
//! Snapshot polls ([`pipeline::run_snapshot`]) merge records by key into the partition of each
//! record's local date. ARCHITECTURE.md has the full picture and how to add a dataset.

pub mod app;
pub mod auth;
pub mod backfill;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod coverage;
pub mod daemon;
pub mod datasets;
pub mod ddl;
pub mod error;
pub mod error_chain;
pub mod handover;
pub mod lease;
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
pub mod status_page;
pub mod telemetry;

pub use error::Error;
