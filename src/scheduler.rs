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
//! skipped and counted (`smartassist_skipped_ticks_total`).
//!
//! Callers build [`Job`]s, wrap them in a [`Scheduler`], drive it with [`start_cron_ticker`]
//! (or [`tick_loop`], a plain tokio interval driver used by the paused-time tests), and call
//! [`Scheduler::drain`] on shutdown.

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

/// The first occurrence of `cron`, evaluated in `tz`, strictly after `after`.
pub fn next_occurrence(cron: &croner::Cron, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
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
    fast_mode: bool,
    last_start: Option<DateTime<Utc>>,
    started_at: DateTime<Utc>,
    last_success: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

/// One scheduled job with its overlap guard.
pub struct Job {
    spec: JobSpec,
    work: Work,
    busy: Arc<tokio::sync::Mutex<()>>,
    state: Arc<Mutex<JobState>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The state is a handful of plain fields, consistent after any single assignment.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Job {
    pub fn new(spec: JobSpec, work: Work, now: DateTime<Utc>, run_at_start: bool) -> Arc<Job> {
        let trigger = Trigger::new(spec.schedule.cron.clone(), spec.tz, now, run_at_start);
        Arc::new(Job {
            spec,
            work,
            busy: Arc::new(tokio::sync::Mutex::new(())),
            state: Arc::new(Mutex::new(JobState {
                trigger,
                fast_mode: false,
                last_start: None,
                started_at: now,
                last_success: None,
                last_error: None,
            })),
        })
    }

    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// Evaluate one tick at `now`: start the work in a new task when due and idle.
    pub fn on_tick(&self, now: DateTime<Utc>, stopping: &AtomicBool) -> TickOutcome {
        let due = {
            let mut st = lock(&self.state);
            let scheduled = st.trigger.poll(now);
            let fast = st.fast_mode
                && match (self.spec.fast_interval, st.last_start) {
                    (Some(every), Some(last)) => {
                        TimeDelta::from_std(every).is_ok_and(|every| last + every <= now)
                    }
                    _ => false,
                };
            scheduled || fast
        };
        if !due {
            return TickOutcome::NotDue;
        }
        // Take the guard before looking at `stopping` so a drain that set it and then locked
        // every job cannot miss a run started here.
        let Ok(guard) = self.busy.clone().try_lock_owned() else {
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
        lock(&self.state).last_start = Some(now);
        let work = self.work.clone();
        let state = self.state.clone();
        let name = self.spec.name.clone();
        let has_fast = self.spec.fast_interval.is_some();
        tokio::spawn(async move {
            let _guard = guard;
            let result = work(now).await;
            let mut st = lock(&state);
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

    /// Waits until the job is idle and keeps it from starting until the guard is dropped (its
    /// ticks meanwhile are skipped and counted): work handed to the daemon that does what the
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
mod tests {
    use super::*;
    use chrono_tz::America::New_York;
    use chrono_tz::Europe::Berlin;

    fn cron(expr: &str) -> croner::Cron {
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(expr)
            .expect("valid cron")
    }

    fn schedule(expr: &str) -> Schedule {
        Schedule {
            expression: expr.into(),
            cron: cron(expr),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("rfc3339")
    }

    #[test]
    fn daily_local_time_keeps_its_wall_clock_across_spring_forward() {
        // 03:00 New York: 08:00Z in EST (UTC-5), 07:00Z in EDT (UTC-4). DST began 2024-03-10.
        let c = cron("0 0 3 * * *");
        let a = next_occurrence(&c, New_York, utc("2024-03-09T12:00:00Z")).expect("next");
        assert_eq!(a, utc("2024-03-10T07:00:00Z"));
        let b = next_occurrence(&c, New_York, a).expect("next");
        assert_eq!(b, utc("2024-03-11T07:00:00Z"));
        let before = next_occurrence(&c, New_York, utc("2024-03-08T12:00:00Z")).expect("next");
        assert_eq!(before, utc("2024-03-09T08:00:00Z"));
    }

    #[test]
    fn fall_back_runs_once_and_keeps_local_time_after() {
        // Berlin falls back 2024-10-27 03:00 CEST -> 02:00 CET. 02:30 exists twice; croner runs
        // a fixed-time job once. 06:00 local is 04:00Z before, 05:00Z after.
        let c = cron("0 0 6 * * *");
        let a = next_occurrence(&c, Berlin, utc("2024-10-26T12:00:00Z")).expect("next");
        assert_eq!(a, utc("2024-10-27T05:00:00Z"));
        let prev = next_occurrence(&c, Berlin, utc("2024-10-25T12:00:00Z")).expect("next");
        assert_eq!(prev, utc("2024-10-26T04:00:00Z"));
        let c = cron("0 30 2 * * *");
        let first = next_occurrence(&c, Berlin, utc("2024-10-26T23:00:00Z")).expect("next");
        let second = next_occurrence(&c, Berlin, first).expect("next");
        assert_eq!(second - first, TimeDelta::hours(25));
    }

    #[test]
    fn utc_is_the_default_and_unaffected() {
        let c = cron("0 0 3 * * *");
        let a = next_occurrence(&c, Tz::UTC, utc("2024-03-09T12:00:00Z")).expect("next");
        assert_eq!(a, utc("2024-03-10T03:00:00Z"));
    }

    #[test]
    fn trigger_collapses_missed_occurrences_and_fires_once() {
        let mut t = Trigger::new(
            cron("0 * * * * *"),
            Tz::UTC,
            utc("2024-01-01T00:00:30Z"),
            false,
        );
        assert_eq!(t.next_fire(), Some(utc("2024-01-01T00:01:00Z")));
        assert!(!t.poll(utc("2024-01-01T00:00:59Z")));
        // Ten minutes of downtime: one firing, then the next future occurrence.
        assert!(t.poll(utc("2024-01-01T00:10:30Z")));
        assert_eq!(t.next_fire(), Some(utc("2024-01-01T00:11:00Z")));
        assert!(!t.poll(utc("2024-01-01T00:10:31Z")));
        let mut now = Trigger::new(
            cron("0 0 0 1 1 *"),
            Tz::UTC,
            utc("2024-05-01T00:00:00Z"),
            true,
        );
        assert!(now.poll(utc("2024-05-01T00:00:00Z")));
        assert!(!now.poll(utc("2024-05-01T00:00:01Z")));
    }

    #[test]
    fn period_is_the_longest_gap() {
        assert_eq!(
            schedule_period(
                &cron("0 */15 * * * *"),
                Tz::UTC,
                utc("2024-01-01T00:07:00Z")
            ),
            Duration::from_secs(900)
        );
        assert_eq!(
            schedule_period(
                &cron("0 0 9,17 * * *"),
                Tz::UTC,
                utc("2024-01-01T00:00:00Z")
            ),
            Duration::from_secs(16 * 3600)
        );
    }

    #[test]
    fn health_fails_after_n_intervals_with_a_floor() {
        let now = utc("2024-01-01T01:00:00Z");
        let job = |since: &str, period: u64, ok: bool| JobStatus {
            name: "user_status".into(),
            period: Duration::from_secs(period),
            since: utc(since),
            last_success: ok.then(|| utc(since)),
            last_error: Some("upstream 503".into()),
            fast_mode: false,
        };
        // 15-minute schedule, 3 intervals: 45 minutes.
        assert!(evaluate_health(&[job("2024-01-01T00:16:00Z", 900, true)], now, 3).is_ok());
        let err = evaluate_health(&[job("2024-01-01T00:14:00Z", 900, true)], now, 3)
            .expect_err("unhealthy");
        assert!(
            err.contains("job user_status has not succeeded for 2760s"),
            "{err}"
        );
        assert!(err.contains("last error: upstream 503"), "{err}");
        // A 1-second schedule is not unhealthy before the 60 s floor.
        assert!(evaluate_health(&[job("2024-01-01T00:59:10Z", 1, false)], now, 3).is_ok());
        let err = evaluate_health(&[job("2024-01-01T00:58:50Z", 1, false)], now, 3)
            .expect_err("unhealthy");
        assert!(err.contains("since startup"), "{err}");
    }

    /// A clock that starts at `anchor` and follows tokio's (paused) time.
    fn paused_clock(anchor: DateTime<Utc>) -> impl Fn() -> DateTime<Utc> + Clone {
        let start = tokio::time::Instant::now();
        move || anchor + TimeDelta::from_std(start.elapsed()).unwrap_or_default()
    }

    #[allow(clippy::too_many_arguments)]
    fn recording_job(
        name: &str,
        spec_schedule: &str,
        tz: Tz,
        now: DateTime<Utc>,
        busy_for: Duration,
        fired: Arc<Mutex<Vec<DateTime<Utc>>>>,
        gap_until_run: usize,
        fast: Option<Duration>,
    ) -> Arc<Job> {
        let spec = JobSpec {
            name: name.into(),
            dataset: "intent_realtime",
            schedule: schedule(spec_schedule),
            tz,
            fast_interval: fast,
            metrics: Metrics::new(),
        };
        let work: Work = Arc::new(move |at| {
            let fired = fired.clone();
            Box::pin(async move {
                let n = {
                    let mut f = lock(&fired);
                    f.push(at);
                    f.len()
                };
                tokio::time::sleep(busy_for).await;
                Ok(RunSignal {
                    gap_suspected: n < gap_until_run,
                })
            })
        });
        Job::new(spec, work, now, false)
    }

    #[tokio::test(start_paused = true)]
    async fn fires_at_local_three_am_across_a_dst_change_in_paused_time() {
        let anchor = utc("2024-03-09T00:00:00Z");
        let clock = paused_clock(anchor);
        let fired = Arc::new(Mutex::new(Vec::new()));
        let job = recording_job(
            "dst",
            "0 0 3 * * *",
            New_York,
            anchor,
            Duration::ZERO,
            fired.clone(),
            0,
            None,
        );
        let sched = Scheduler::new(vec![job]);
        let stop = CancellationToken::new();
        // 10 s ticks starting on a whole minute land exactly on each occurrence.
        let driver = tokio::spawn(tick_loop(
            sched.clone(),
            Duration::from_secs(10),
            clock.clone(),
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(3 * 86_400)).await;
        stop.cancel();
        driver.await.expect("driver");
        assert_eq!(
            *lock(&fired),
            vec![
                utc("2024-03-09T08:00:00Z"),
                utc("2024-03-10T07:00:00Z"),
                utc("2024-03-11T07:00:00Z"),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_job_is_never_overlapped_and_skipped_ticks_are_counted() {
        let anchor = utc("2024-01-01T00:00:00Z");
        let clock = paused_clock(anchor);
        let fired = Arc::new(Mutex::new(Vec::new()));
        // Every second, each run takes 2.5 s: runs start at 1, 4, 7 (ticks 2-3, 5-6, 8-9 skip).
        let job = recording_job(
            "slow",
            "* * * * * *",
            Tz::UTC,
            anchor,
            Duration::from_millis(2500),
            fired.clone(),
            0,
            None,
        );
        let sched = Scheduler::new(vec![job.clone()]);
        let mut outcomes = Vec::new();
        for _ in 0..9 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            outcomes.extend(sched.tick(clock()));
            tokio::task::yield_now().await;
        }
        use TickOutcome::*;
        assert_eq!(
            outcomes,
            vec![
                Started,
                SkippedBusy,
                SkippedBusy,
                Started,
                SkippedBusy,
                SkippedBusy,
                Started,
                SkippedBusy,
                SkippedBusy
            ]
        );
        assert_eq!(lock(&fired).len(), 3);
        // Drain waits for the run in flight and never needs to abandon it.
        let mut abandoned = false;
        assert!(
            sched
                .drain(Duration::from_secs(10), Duration::from_secs(8), || {
                    abandoned = true
                })
                .await
        );
        assert!(!abandoned);
        assert_eq!(sched.tick(clock() + TimeDelta::seconds(5))[0], Stopping);
        assert_eq!(sched.health(clock(), 3), Err("shutting down".into()));
    }

    #[tokio::test(start_paused = true)]
    async fn drain_abandons_after_the_grace_and_gives_up_at_the_deadline() {
        let anchor = utc("2024-01-01T00:00:00Z");
        let fired = Arc::new(Mutex::new(Vec::new()));
        let job = recording_job(
            "stuck",
            "* * * * * *",
            Tz::UTC,
            anchor,
            Duration::from_secs(3600),
            fired,
            0,
            None,
        );
        let sched = Scheduler::new(vec![job]);
        assert_eq!(
            sched.tick(anchor + TimeDelta::seconds(1)),
            vec![TickOutcome::Started]
        );
        tokio::task::yield_now().await;
        let started = tokio::time::Instant::now();
        let mut abandoned = false;
        let ended = sched
            .drain(Duration::from_secs(10), Duration::from_secs(7), || {
                abandoned = true
            })
            .await;
        assert!(!ended);
        assert!(abandoned);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_gap_switches_to_fast_polling_until_overlap_returns() {
        let anchor = utc("2024-01-01T00:00:00Z");
        let clock = paused_clock(anchor);
        let fired = Arc::new(Mutex::new(Vec::new()));
        // Scheduled every minute; the first two runs report a gap; fast interval 5 s.
        let job = recording_job(
            "bot",
            "0 * * * * *",
            Tz::UTC,
            anchor,
            Duration::ZERO,
            fired.clone(),
            3,
            Some(Duration::from_secs(5)),
        );
        let sched = Scheduler::new(vec![job.clone()]);
        let stop = CancellationToken::new();
        let driver = tokio::spawn(tick_loop(
            sched.clone(),
            Duration::from_secs(1),
            clock.clone(),
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(150)).await;
        stop.cancel();
        driver.await.expect("driver");
        let secs: Vec<i64> = lock(&fired)
            .iter()
            .map(|t| (*t - anchor).num_seconds())
            .collect();
        // 60: gap -> fast; 65: gap -> stays fast; 70: overlap -> back to the minute schedule.
        assert_eq!(secs, vec![60, 65, 70, 120]);
        assert!(!job.status(clock()).fast_mode);
    }
}
