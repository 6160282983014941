//! The daemon's status page: `GET /` and `GET /status` answer a small HTML page ([`html`]),
//! `GET /status.json` the same facts as one JSON document ([`StatusPage`], shape version
//! [`PAGE_VERSION`], documented in README "Is my lake complete?"). Per job: its schedule, last
//! run (outcome, duration, rows), the run in flight, next tick; per dataset: watermark, lag,
//! freshness and the coverage of the last [`PAGE_DAYS`] days (the `status` report of
//! [`crate::coverage::status`], read from the state store on each request: one or two small
//! objects per dataset); the realtime capture of the last [`PAGE_CAPTURE_DAYS`] days per
//! entity, when the datasets a registered reconciliation compares are enabled
//! ([`crate::datasets::reconcile`]: read from their Parquet files, and read again only for
//! the days whose coverage changed since: [`CaptureCache`]); the account's request budget in use and each bot's budget of the
//! XO runtime APIs; the jobs' recent errors.
//!
//! The daemon merges [`StatusSource::routes`] into its server next to `/healthz`. Nothing here
//! writes; a request that cannot read a coverage object shows it as a problem of its dataset.

pub mod html;

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::client::budget::{BotBudget, BudgetSnapshot};
use crate::coverage::capture::{CaptureCache, CaptureSection};
use crate::coverage::status::{self, DatasetStatus};
use crate::datasets::reconcile::{self, SectionRequest};
use crate::datasets::{Context, Dataset};
use crate::scheduler::{Job, Scheduler};

/// Version of the JSON shape of `/status.json`.
pub const PAGE_VERSION: u32 = 1;

/// Days of coverage the page shows per dataset, today included (`status`'s default range).
pub const PAGE_DAYS: u64 = status::DEFAULT_DAYS;

/// Days of realtime capture the page shows per bot, today included.
pub const PAGE_CAPTURE_DAYS: u64 = 7;

/// Errors the page lists, newest first, over every job.
pub const RECENT_ERRORS_SHOWN: usize = 20;

/// How the page's backfill commands name the program (the daemon does not know the path of
/// its config file; the operator adds `-c`).
const COMMAND: &str = "smartassist-export";

/// What the page is read from: the daemon's context, its datasets and its scheduler.
#[derive(Clone)]
pub struct StatusSource {
    cx: Context,
    datasets: Vec<Dataset>,
    scheduler: Arc<Scheduler>,
    capture: Arc<CaptureCache>,
}

/// Everything the page shows: the body of `/status.json`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusPage {
    pub version: u32,
    pub generated_at: DateTime<Utc>,
    pub account_id: String,
    pub jobs: Vec<JobView>,
    pub budget: BudgetView,
    /// Each configured bot's budget of the XO runtime APIs (empty when no enabled dataset uses
    /// them).
    pub bot_budgets: Vec<BotBudgetView>,
    pub recent_errors: Vec<ErrorView>,
    /// Per dataset, the last [`PAGE_DAYS`] days as `status --json` reports them.
    pub datasets: Vec<DatasetStatus>,
    /// The realtime capture of the last [`PAGE_CAPTURE_DAYS`] days (`status --json`'s
    /// `capture`); `null` unless both datasets it compares are enabled.
    pub capture: Option<CaptureSection>,
}

/// One job of the daemon (a history dataset, or a snapshot dataset's entity).
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    /// `user_status`, `intent_realtime/<bot>`.
    pub name: String,
    pub dataset: String,
    pub schedule: String,
    pub schedule_timezone: String,
    /// When the next run is due (the next occurrence of the schedule).
    pub next_tick: Option<DateTime<Utc>>,
    /// Set while a run is in flight: the tick it started for.
    pub running_since: Option<DateTime<Utc>>,
    /// Polling faster after a suspected gap.
    pub fast_mode: bool,
    pub last_success: Option<DateTime<Utc>>,
    pub last_run: Option<LastRunView>,
}

/// How a job's last run ended.
#[derive(Debug, Clone, Serialize)]
pub struct LastRunView {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_seconds: f64,
    /// `success` or `failure` (a partial or cancelled run counts as a failure; its error says
    /// which).
    pub outcome: &'static str,
    /// Rows written (a successful run).
    pub rows: Option<u64>,
    pub error: Option<String>,
}

/// The account's request budget now.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetView {
    pub scope: String,
    pub requests_per_minute: u32,
    pub realtime_reserve: u32,
    /// Share of the limit granted within the last window, every priority together.
    pub share_used: f64,
    /// Time left of a pause after a throttled answer.
    pub paused_seconds: f64,
    pub priorities: Vec<PriorityView>,
}

/// One bot's budget of the XO runtime APIs now: a minute window and an hour window.
#[derive(Debug, Clone, Serialize)]
pub struct BotBudgetView {
    pub bot_id: String,
    pub requests_per_minute: u32,
    pub requests_per_hour: u32,
    /// Requests granted within the last minute window (61 s) and hour window (61 min).
    pub granted_in_minute: u32,
    pub granted_in_hour: u32,
    /// Shares of the two limits granted within their windows.
    pub minute_share_used: f64,
    pub hour_share_used: f64,
    /// Requests waiting now (for either window).
    pub queued: usize,
    /// Time left of a pause after a throttled answer.
    pub paused_seconds: f64,
}

/// One priority of the budget.
#[derive(Debug, Clone, Serialize)]
pub struct PriorityView {
    /// `realtime`, `scheduled`, `catch_up`.
    pub priority: &'static str,
    pub queued: usize,
    pub granted_in_window: u32,
    pub share: f64,
}

/// One recent error of a job.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorView {
    pub at: DateTime<Utc>,
    pub job: String,
    pub error: String,
}

impl StatusSource {
    pub fn new(cx: Context, datasets: Vec<Dataset>, scheduler: Arc<Scheduler>) -> StatusSource {
        StatusSource {
            cx,
            datasets,
            scheduler,
            capture: Arc::default(),
        }
    }

    /// `GET /`, `GET /status` (HTML) and `GET /status.json`.
    pub fn routes(&self) -> Router {
        Router::new()
            .route("/", get(page_html))
            .route("/status", get(page_html))
            .route("/status.json", get(page_json))
            .with_state(self.clone())
    }

    /// The page's facts at `now`.
    pub async fn read(&self, now: DateTime<Utc>) -> StatusPage {
        // Each dataset's default range: the PAGE_DAYS days up to its own today.
        let report = status::report(
            &self.cx.state,
            &self.datasets,
            &self.cx.account_id,
            (None, None),
            now,
            COMMAND,
        )
        .await;
        let capture = reconcile::status_section(SectionRequest {
            sink: &self.cx.sink,
            report: &report,
            last_days: Some(PAGE_CAPTURE_DAYS),
            command: COMMAND,
            cache: Some(&self.capture),
        })
        .await;
        let jobs = self.scheduler.jobs();
        StatusPage {
            version: PAGE_VERSION,
            generated_at: now,
            account_id: self.cx.account_id.clone(),
            jobs: jobs.iter().map(|j| job_view(j, now)).collect(),
            budget: budget_view(&self.cx.client.budget().snapshot()),
            bot_budgets: self
                .cx
                .client
                .bot_budgets()
                .all()
                .iter()
                .map(|b| bot_budget_view(b))
                .collect(),
            recent_errors: recent_errors(jobs),
            datasets: report.datasets,
            capture,
        }
    }
}

fn job_view(job: &Job, now: DateTime<Utc>) -> JobView {
    let spec = job.spec();
    let health = job.status(now);
    let runs = job.runs();
    JobView {
        name: spec.name.clone(),
        dataset: spec.dataset.to_string(),
        schedule: spec.schedule.expression.clone(),
        schedule_timezone: spec.tz.name().to_string(),
        next_tick: job.next_fire(),
        running_since: runs.running_since,
        fast_mode: health.fast_mode,
        last_success: health.last_success,
        last_run: runs.last_run.map(|r| LastRunView {
            started_at: r.started_at,
            finished_at: r.finished_at,
            duration_seconds: r.duration.as_secs_f64(),
            outcome: if r.error.is_none() {
                "success"
            } else {
                "failure"
            },
            rows: r.rows,
            error: r.error,
        }),
    }
}

fn budget_view(b: &BudgetSnapshot) -> BudgetView {
    BudgetView {
        scope: b.scope.clone(),
        requests_per_minute: b.requests_per_minute,
        realtime_reserve: b.realtime_reserve,
        share_used: b.share_used(),
        paused_seconds: b.paused_for.as_secs_f64(),
        priorities: b
            .priorities
            .iter()
            .map(|p| PriorityView {
                priority: p.priority.label(),
                queued: p.queued,
                granted_in_window: p.granted_in_window,
                share: p.share,
            })
            .collect(),
    }
}

fn bot_budget_view(b: &BotBudget) -> BotBudgetView {
    let (minute, hour) = (b.minute.snapshot(), b.hour.snapshot());
    let granted = |s: &BudgetSnapshot| s.priorities.iter().map(|p| p.granted_in_window).sum();
    let queued = |s: &BudgetSnapshot| s.priorities.iter().map(|p| p.queued).sum::<usize>();
    BotBudgetView {
        bot_id: b.bot_id.clone(),
        requests_per_minute: minute.requests_per_minute,
        requests_per_hour: hour.requests_per_minute,
        granted_in_minute: granted(&minute),
        granted_in_hour: granted(&hour),
        minute_share_used: minute.share_used(),
        hour_share_used: hour.share_used(),
        queued: queued(&minute) + queued(&hour),
        paused_seconds: minute.paused_for.max(hour.paused_for).as_secs_f64(),
    }
}

/// Every job's recent errors, newest first, at most [`RECENT_ERRORS_SHOWN`].
fn recent_errors(jobs: &[Arc<Job>]) -> Vec<ErrorView> {
    let mut out: Vec<ErrorView> = jobs
        .iter()
        .flat_map(|j| {
            let name = j.spec().name.clone();
            j.runs()
                .recent_errors
                .into_iter()
                .map(move |(at, error)| ErrorView {
                    at,
                    job: name.clone(),
                    error,
                })
        })
        .collect();
    out.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.job.cmp(&b.job)));
    out.truncate(RECENT_ERRORS_SHOWN);
    out
}

async fn page_html(State(source): State<StatusSource>) -> Response {
    let page = source.read(Utc::now()).await;
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html::render(&page),
    )
        .into_response()
}

async fn page_json(State(source): State<StatusSource>) -> Response {
    let page = source.read(Utc::now()).await;
    match serde_json::to_string_pretty(&page) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        // Plain data (strings, numbers, maps with string keys): serializing cannot fail, but
        // an answer is owed either way.
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}
