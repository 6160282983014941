//! When jobs run: DST-correct cron triggers, the per-job overlap guard, fast polling after an
//! intent gap, health evaluation and the graceful drain on shutdown.
//!
//! tokio-cron-scheduler freezes a named zone to one UTC offset when a job is created, so its
//! zoned schedules drift by an hour after a DST change. We therefore give it only UTC jobs that
//! tick every second ([`start_cron_ticker`]), and each tick asks the job's [`Trigger`] whether
//! an occurrence of the configured schedule has passed, computed with croner on a `chrono_tz`
//! date-time ([`next_occurrence`]): correct across DST by construction. A tick only says "sync
//! now"; what to fetch is computed from stored state by the job's work function, so a missed
//! or skipped tick loses nothing. A job never overlaps itself: a tick that finds it busy is
//! skipped and counted (`smartassist_skipped_ticks_total`). A snapshot poll is the exception to
//! "nothing is lost": what it did not fetch at its moment is gone, so its job is built
//! [`Job::catching_up`]: an occurrence that finds the job busy (typically the first one after
//! the daemon's startup run, which takes longer than later polls) is deferred and runs at the
//! first tick after the run in flight ends; only a second occurrence passing meanwhile is
//! skipped and counted.
//!
//! Callers build [`Job`]s, wrap them in a [`Scheduler`], drive it with [`start_cron_ticker`]
//! (or [`tick_loop`], a plain tokio interval driver used by the paused-time tests), and call
//! [`Scheduler::drain`] on shutdown.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Schedule;
use crate::metrics::Metrics;

/// `/healthz` never fails sooner than this after a job's last success, whatever its schedule:
/// one slow run of a per-second schedule must not flap the probe.
pub const MIN_UNHEALTHY_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("cannot start the cron scheduler")]
    Cron(#[from] tokio_cron_scheduler::JobSchedulerError),
}

/// The first occurrence of `cron`, evaluated in `tz`, strictly after the second of `after`: a
/// whole second (croner keeps the fraction of the moment it starts from, which would put a
/// job's occurrences at that fraction past each second, after the tick of the second itself).
pub fn next_occurrence(cron: &croner::Cron, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let after = DateTime::from_timestamp(after.timestamp(), 0).unwrap_or(after);
    cron.find_next_occurrence(&after.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The longest gap between the next few occurrences after `now` (the "interval" that health
/// is measured in). Falls back to one day for schedules croner cannot iterate.
pub fn schedule_period(cron: &croner::Cron, tz: Tz, now: DateTime<Utc>) -> Duration {
    let mut longest = TimeDelta::zero();
    let mut prev = next_occurrence(cron, tz, now);
    for _ in 0..6 {
        let Some(p) = prev else { break };
        let next = next_occurrence(cron, tz, p);
        if let Some(n) = next {
            longest = longest.max(n - p);
        }
        prev = next;
    }
    longest
        .to_std()
        .ok()
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(86_400))
}

/// Decides, tick by tick, whether an occurrence of a schedule has passed.
#[derive(Clone)]
pub struct Trigger {
    cron: croner::Cron,
    tz: Tz,
    next: Option<DateTime<Utc>>,
}

impl Trigger {
    /// A trigger whose first firing is the first occurrence after `now`, or `now` itself when
    /// `immediately` (the daemon syncs once at startup).
    pub fn new(cron: croner::Cron, tz: Tz, now: DateTime<Utc>, immediately: bool) -> Trigger {
        let next = if immediately {
            Some(now)
        } else {
            next_occurrence(&cron, tz, now)
        };
        Trigger { cron, tz, next }
    }

    pub fn next_fire(&self) -> Option<DateTime<Utc>> {
        self.next
    }

    /// True when an occurrence lies in the past; several missed occurrences collapse into one
    /// firing (the work is computed from state, so nothing is lost).
    pub fn poll(&mut self, now: DateTime<Utc>) -> bool {
        match self.next {
            Some(n) if n <= now => {
                self.next = next_occurrence(&self.cron, self.tz, now);
                true
            }
            _ => false,
        }
    }
}

/// What a job's work reports back to the scheduler.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSignal {
    /// An intent poll found a full page of unseen sessions: poll this job faster.
    pub gap_suspected: bool,
    /// Rows the run wrote (shown on the status page).
    pub rows: u64,
}

/// Errors a job remembers for the status page ([`JobRuns::recent_errors`]).
pub const RECENT_ERRORS_KEPT: usize = 5;

/// How a job's last run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    /// The tick it ran for.
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Wall time of the run.
    pub duration: Duration,
    /// Rows written, when it succeeded.
    pub rows: Option<u64>,
    /// The one-line reason, when it did not.
    pub error: Option<String>,
}

/// What a job has done, for the status page: its last run, the run in flight, its last
/// [`RECENT_ERRORS_KEPT`] errors (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobRuns {
    pub last_run: Option<LastRun>,
    pub running_since: Option<DateTime<Utc>>,
    pub recent_errors: Vec<(DateTime<Utc>, String)>,
}

/// The work of one job: called with the tick time; `Err` carries a one-line reason for health.
pub type Work =
    Arc<dyn Fn(DateTime<Utc>) -> BoxFuture<'static, Result<RunSignal, String>> + Send + Sync>;

/// What a job is.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// `user_status` or `intent_realtime/<bot>`.
    pub name: String,
    /// The dataset's name (metric label of skipped ticks).
    pub dataset: &'static str,
    pub schedule: Schedule,
    pub tz: Tz,
    /// After a suspected gap, run again this long after the previous start until it clears.
    pub fast_interval: Option<Duration>,
    pub metrics: Metrics,
}

/// What happened on one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickOutcome {
    NotDue,
    Started,
    SkippedBusy,
    /// Due while the job was busy; it runs at the first tick after the run in flight ends
    /// ([`Job::catching_up`]).
    Deferred,
    Stopping,
}

/// Health-relevant facts about a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    pub name: String,
    pub period: Duration,
    /// Last success, or when the scheduler started if there was none.
    pub since: DateTime<Utc>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub fast_mode: bool,
}

struct JobState {
    trigger: Trigger,
    /// An occurrence that found the job busy, to run when it is idle ([`Job::catching_up`]).
    deferred: bool,
    fast_mode: bool,
    last_start: Option<DateTime<Utc>>,
    started_at: DateTime<Utc>,
    last_success: Option<DateTime<Utc>>,
    last_error: Option<String>,
    last_run: Option<LastRun>,
    recent_errors: VecDeque<(DateTime<Utc>, String)>,
}

impl JobState {
    /// Records the end of the run started for the tick `now`, `began` on the monotonic clock.
    fn finish(
        &mut self,
        now: DateTime<Utc>,
        began: tokio::time::Instant,
        result: &Result<RunSignal, String>,
    ) {
        let finished_at = Utc::now().max(now);
        let (rows, error) = match result {
            Ok(signal) => (Some(signal.rows), None),
            Err(reason) => (None, Some(reason.clone())),
        };
        if let Some(reason) = &error {
            self.recent_errors.push_front((finished_at, reason.clone()));
            self.recent_errors.truncate(RECENT_ERRORS_KEPT);
        }
        self.last_run = Some(LastRun {
            started_at: now,
            finished_at,
            duration: began.elapsed(),
            rows,
            error,
        });
    }
}

/// One scheduled job with its overlap guard.
pub struct Job {
    spec: JobSpec,
    work: Work,
    busy: Arc<tokio::sync::Mutex<()>>,
    state: Arc<Mutex<JobState>>,
    /// Defer an occurrence that finds the job busy instead of skipping it.
    catch_up: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The state is a handful of plain fields, consistent after any single assignment.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Job {
    pub fn new(spec: JobSpec, work: Work, now: DateTime<Utc>, run_at_start: bool) -> Arc<Job> {
        Job::build(spec, work, now, run_at_start, false)
    }

    fn build(
        spec: JobSpec,
        work: Work,
        now: DateTime<Utc>,
        run_at_start: bool,
        catch_up: bool,
    ) -> Arc<Job> {
        let trigger = Trigger::new(spec.schedule.cron.clone(), spec.tz, now, run_at_start);
        Arc::new(Job {
            spec,
            work,
            busy: Arc::new(tokio::sync::Mutex::new(())),
            catch_up,
            state: Arc::new(Mutex::new(JobState {
                trigger,
                deferred: false,
                fast_mode: false,
                last_start: None,
                started_at: now,
                last_success: None,
                last_error: None,
                last_run: None,
                recent_errors: VecDeque::new(),
            })),
        })
    }

    /// A job whose occurrences are never lost to the overlap guard: one that finds the job
    /// busy runs at the first tick after the run in flight ends (a snapshot poll: what it does
    /// not fetch at its moment is gone). Several occurrences passing during one run collapse
    /// into that one deferred run; the others are skipped and counted.
    pub fn catching_up(
        spec: JobSpec,
        work: Work,
        now: DateTime<Utc>,
        run_at_start: bool,
    ) -> Arc<Job> {
        Job::build(spec, work, now, run_at_start, true)
    }

    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// Evaluate one tick at `now`: start the work in a new task when due and idle.
    pub fn on_tick(&self, now: DateTime<Utc>, stopping: &AtomicBool) -> TickOutcome {
        let (due, deferred) = {
            let mut st = lock(&self.state);
            let scheduled = st.trigger.poll(now);
            let fast = st.fast_mode
                && match (self.spec.fast_interval, st.last_start) {
                    (Some(every), Some(last)) => {
                        TimeDelta::from_std(every).is_ok_and(|every| last + every <= now)
                    }
                    _ => false,
                };
            (scheduled || fast, st.deferred)
        };
        if !due && !deferred {
            return TickOutcome::NotDue;
        }
        // Take the guard before looking at `stopping` so a drain that set it and then locked
        // every job cannot miss a run started here.
        let Ok(guard) = self.busy.clone().try_lock_owned() else {
            if self.catch_up && !(due && deferred) {
                lock(&self.state).deferred = true;
                if due {
                    info!(
                        job = %self.spec.name,
                        "Tick deferred: the previous run of this job is still busy; it runs when that run ends."
                    );
                }
                return TickOutcome::Deferred;
            }
            self.spec.metrics.skipped_tick(self.spec.dataset);
            info!(
                job = %self.spec.name,
                "Tick skipped: the previous run of this job is still busy."
            );
            return TickOutcome::SkippedBusy;
        };
        if stopping.load(Ordering::SeqCst) {
            return TickOutcome::Stopping;
        }
        {
            let mut st = lock(&self.state);
            st.last_start = Some(now);
            st.deferred = false;
        }
        let work = self.work.clone();
        let state = self.state.clone();
        let name = self.spec.name.clone();
        let has_fast = self.spec.fast_interval.is_some();
        tokio::spawn(async move {
            let _guard = guard;
            let began = tokio::time::Instant::now();
            let result = work(now).await;
            let mut st = lock(&state);
            st.finish(now, began, &result);
            match result {
                Ok(signal) => {
                    st.last_success = Some(Utc::now().max(now));
                    st.last_error = None;
                    if has_fast && signal.gap_suspected != st.fast_mode {
                        st.fast_mode = signal.gap_suspected;
                        if signal.gap_suspected {
                            warn!(job = %name, "Polling this bot faster until polls overlap again.");
                        } else {
                            info!(job = %name, "Polls overlap again; back to the configured schedule.");
                        }
                    }
                }
                Err(reason) => st.last_error = Some(reason),
            }
        });
        TickOutcome::Started
    }

    /// Health facts at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> JobStatus {
        let st = lock(&self.state);
        JobStatus {
            name: self.spec.name.clone(),
            period: schedule_period(&self.spec.schedule.cron, self.spec.tz, now),
            since: st.last_success.unwrap_or(st.started_at),
            last_success: st.last_success,
            last_error: st.last_error.clone(),
            fast_mode: st.fast_mode,
        }
    }

    pub fn next_fire(&self) -> Option<DateTime<Utc>> {
        lock(&self.state).trigger.next_fire()
    }

    /// Its last run, the run in flight and its recent errors.
    pub fn runs(&self) -> JobRuns {
        let busy = self.busy.try_lock().is_err();
        let st = lock(&self.state);
        JobRuns {
            last_run: st.last_run.clone(),
            running_since: st.last_start.filter(|_| busy),
            recent_errors: st.recent_errors.iter().cloned().collect(),
        }
    }

    /// Waits until the job is idle and keeps it from starting until the guard is dropped (its
    /// ticks meanwhile are skipped and counted, or one deferred for a catching-up job): work handed to the daemon that does what the
    /// job does (`run --once`) never overlaps it.
    pub async fn hold(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.busy.clone().lock_owned().await
    }

    async fn wait_idle(&self) {
        let _ = self.busy.lock().await;
    }
}

/// `/healthz`: `Err(reason)` when a job has not succeeded within `intervals` of its schedule
/// period (at least [`MIN_UNHEALTHY_AFTER`]) since its last success or the daemon's start.
pub fn evaluate_health(
    jobs: &[JobStatus],
    now: DateTime<Utc>,
    intervals: u32,
) -> Result<(), String> {
    let mut problems = Vec::new();
    for j in jobs {
        let limit = (j.period * intervals.max(1)).max(MIN_UNHEALTHY_AFTER);
        let quiet = (now - j.since).to_std().unwrap_or(Duration::ZERO);
        if quiet > limit {
            let what = if j.last_success.is_some() {
                "has not succeeded"
            } else {
                "has not succeeded since startup"
            };
            let mut msg = format!(
                "job {} {what} for {}s (limit {}s = {} x {}s schedule interval, at least {}s)",
                j.name,
                quiet.as_secs(),
                limit.as_secs(),
                intervals,
                j.period.as_secs(),
                MIN_UNHEALTHY_AFTER.as_secs()
            );
            if let Some(e) = &j.last_error {
                msg.push_str(&format!("; last error: {e}"));
            }
            problems.push(msg);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// The set of jobs of one daemon.
pub struct Scheduler {
    jobs: Vec<Arc<Job>>,
    stopping: Arc<AtomicBool>,
}

impl Scheduler {
    pub fn new(jobs: Vec<Arc<Job>>) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            jobs,
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn jobs(&self) -> &[Arc<Job>] {
        &self.jobs
    }

    /// The job called `name` (`user_status`, `intent_realtime/<bot>`).
    pub fn job(&self, name: &str) -> Option<&Arc<Job>> {
        self.jobs.iter().find(|j| j.spec.name == name)
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Tick every job.
    pub fn tick(&self, now: DateTime<Utc>) -> Vec<TickOutcome> {
        self.jobs
            .iter()
            .map(|j| j.on_tick(now, &self.stopping))
            .collect()
    }

    /// `Ok` or the reason `/healthz` fails.
    pub fn health(&self, now: DateTime<Utc>, intervals: u32) -> Result<(), String> {
        if self.is_stopping() {
            return Err("shutting down".into());
        }
        let statuses: Vec<JobStatus> = self.jobs.iter().map(|j| j.status(now)).collect();
        evaluate_health(&statuses, now, intervals)
    }

    /// Stop starting runs and wait for in-flight runs. After `grace`, `abandon` is called (it
    /// cancels outstanding HTTP requests so runs end at their next step) and we wait up to
    /// `timeout - grace` more. Returns whether every run ended. Runs are never cancelled in the
    /// middle of a write: they check for shutdown between steps, and sink writes are atomic.
    pub async fn drain(&self, timeout: Duration, grace: Duration, abandon: impl FnOnce()) -> bool {
        self.stopping.store(true, Ordering::SeqCst);
        let all_idle = || async {
            for j in &self.jobs {
                j.wait_idle().await;
            }
        };
        let grace = grace.min(timeout);
        if tokio::time::timeout(grace, all_idle()).await.is_ok() {
            return true;
        }
        info!(
            waited_ms = grace.as_millis() as u64,
            "Runs still in flight; abandoning their outstanding requests."
        );
        abandon();
        tokio::time::timeout(timeout - grace, all_idle())
            .await
            .is_ok()
    }
}

/// Drive `scheduler` from tokio-cron-scheduler: one UTC job per [`Job`], ticking every second.
/// The caller must call `shutdown()` on the returned scheduler.
pub async fn start_cron_ticker(
    scheduler: Arc<Scheduler>,
) -> Result<tokio_cron_scheduler::JobScheduler, SchedulerError> {
    let cron = tokio_cron_scheduler::JobScheduler::new().await?;
    for job in scheduler.jobs() {
        let job = job.clone();
        let stopping = scheduler.stopping.clone();
        let tick = tokio_cron_scheduler::Job::new_async("* * * * * *", move |_id, _lock| {
            let job = job.clone();
            let stopping = stopping.clone();
            Box::pin(async move {
                job.on_tick(Utc::now(), &stopping);
            })
        })?;
        cron.add(tick).await?;
    }
    cron.start().await?;
    Ok(cron)
}

/// Drive `scheduler` with a tokio interval of `every`, reading the time from `clock`, until
/// `stop` is cancelled. Same semantics as [`start_cron_ticker`]; usable with paused time.
pub async fn tick_loop(
    scheduler: Arc<Scheduler>,
    every: Duration,
    clock: impl Fn() -> DateTime<Utc>,
    stop: CancellationToken,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = interval.tick() => {
                scheduler.tick(clock());
            }
        }
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
