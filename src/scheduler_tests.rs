//! Tests of the scheduler: triggers across DST, the overlap guard, fast polling, health, the
//! drain and the record of runs, with paused time.

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
    let err =
        evaluate_health(&[job("2024-01-01T00:14:00Z", 900, true)], now, 3).expect_err("unhealthy");
    assert!(
        err.contains("job user_status has not succeeded for 2760s"),
        "{err}"
    );
    assert!(err.contains("last error: upstream 503"), "{err}");
    // A 1-second schedule is not unhealthy before the 60 s floor.
    assert!(evaluate_health(&[job("2024-01-01T00:59:10Z", 1, false)], now, 3).is_ok());
    let err =
        evaluate_health(&[job("2024-01-01T00:58:50Z", 1, false)], now, 3).expect_err("unhealthy");
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
                ..RunSignal::default()
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

#[tokio::test(start_paused = true)]
async fn runs_record_the_last_run_and_the_newest_errors_first() {
    let anchor = utc("2024-01-01T00:00:00Z");
    let calls = Arc::new(Mutex::new(0u32));
    let spec = JobSpec {
        name: "flaky".into(),
        dataset: "user_status",
        schedule: schedule("* * * * * *"),
        tz: Tz::UTC,
        fast_interval: None,
        metrics: Metrics::new(),
    };
    let counter = calls.clone();
    let work: Work = Arc::new(move |_| {
        let counter = counter.clone();
        Box::pin(async move {
            let n = {
                let mut c = lock(&counter);
                *c += 1;
                *c
            };
            tokio::time::sleep(Duration::from_millis(300)).await;
            match n {
                1..=6 => Err(format!("failure <{n}>")),
                _ => Ok(RunSignal {
                    rows: 42,
                    ..RunSignal::default()
                }),
            }
        })
    });
    let job = Job::new(spec, work, anchor, false);
    assert_eq!(job.runs(), JobRuns::default());
    let mut at = anchor;
    for _ in 0..6 {
        at += TimeDelta::seconds(1);
        assert_eq!(
            job.on_tick(at, &AtomicBool::new(false)),
            TickOutcome::Started
        );
        tokio::task::yield_now().await;
        assert_eq!(job.runs().running_since, Some(at));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let runs = job.runs();
    assert_eq!(runs.running_since, None);
    let last = runs.last_run.expect("a last run");
    assert_eq!(
        (
            last.started_at,
            last.duration,
            last.rows,
            last.error.as_deref()
        ),
        (at, Duration::from_millis(300), None, Some("failure <6>"))
    );
    let errors: Vec<&str> = runs.recent_errors.iter().map(|(_, e)| e.as_str()).collect();
    assert_eq!(
        errors,
        [
            "failure <6>",
            "failure <5>",
            "failure <4>",
            "failure <3>",
            "failure <2>"
        ]
    );
    at += TimeDelta::seconds(1);
    job.on_tick(at, &AtomicBool::new(false));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let last = job.runs().last_run.expect("a last run");
    assert_eq!((last.rows, last.error), (Some(42), None));
    assert_eq!(job.runs().recent_errors.len(), RECENT_ERRORS_KEPT);
}

/// A snapshot poll every minute whose startup run is still busy when the first minute comes:
/// that occurrence runs as soon as the startup run ends (nothing skipped); a second occurrence
/// passing during one run is the only one lost, and it is counted.
#[tokio::test]
async fn a_catching_up_job_runs_an_occurrence_that_found_it_busy_when_the_run_ends() {
    let start = utc("2024-01-01T12:00:59.500Z");
    let fired = Arc::new(Mutex::new(Vec::new()));
    // Each run waits for one permit: the test decides when a run ends.
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let metrics = Metrics::new();
    let spec = JobSpec {
        name: "queue_stats/qu-1".into(),
        dataset: "queue_stats",
        schedule: schedule("0 * * * * *"),
        tz: Tz::UTC,
        fast_interval: None,
        metrics: metrics.clone(),
    };
    let (f, r) = (fired.clone(), release.clone());
    let work: Work = Arc::new(move |at| {
        let (fired, release) = (f.clone(), r.clone());
        Box::pin(async move {
            lock(&fired).push(at);
            release.acquire().await.map_err(|e| e.to_string())?.forget();
            Ok(RunSignal::default())
        })
    });
    let job = Job::catching_up(spec, work, start, true);
    let stopping = AtomicBool::new(false);
    let tick = |at: &str| job.on_tick(utc(at), &stopping);
    let end_run = || async {
        release.add_permits(1);
        drop(job.hold().await);
    };
    use TickOutcome::*;
    // The startup run, then the first minute while it is still busy.
    assert_eq!(job.on_tick(start, &stopping), Started);
    assert_eq!(tick("2024-01-01T12:01:00Z"), Deferred);
    assert_eq!(tick("2024-01-01T12:01:01Z"), Deferred);
    end_run().await;
    // The first tick after the run ended runs the deferred minute.
    assert_eq!(tick("2024-01-01T12:01:02Z"), Started);
    // Two more minutes pass during that run: one is deferred, the other lost and counted.
    assert_eq!(tick("2024-01-01T12:02:00Z"), Deferred);
    assert_eq!(tick("2024-01-01T12:03:00Z"), SkippedBusy);
    end_run().await;
    assert_eq!(tick("2024-01-01T12:03:01Z"), Started);
    end_run().await;
    assert_eq!(tick("2024-01-01T12:03:02Z"), NotDue);
    assert_eq!(tick("2024-01-01T12:04:00Z"), Started);
    end_run().await;
    let at = |s: &str| utc(s);
    assert_eq!(
        *lock(&fired),
        vec![
            start,
            at("2024-01-01T12:01:02Z"),
            at("2024-01-01T12:03:01Z"),
            at("2024-01-01T12:04:00Z")
        ]
    );
    let text = metrics.render();
    assert!(
        text.contains("smartassist_skipped_ticks_total{dataset=\"queue_stats\"} 1"),
        "{text}"
    );
}

/// The same busy minute for a job that does not catch up (a history job, whose next run
/// computes its work from state): skipped and counted, not deferred.
#[tokio::test]
async fn a_history_job_skips_an_occurrence_that_found_it_busy() {
    let start = utc("2024-01-01T12:00:59.500Z");
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let spec = JobSpec {
        name: "user_status".into(),
        dataset: "user_status",
        schedule: schedule("0 * * * * *"),
        tz: Tz::UTC,
        fast_interval: None,
        metrics: Metrics::new(),
    };
    let r = release.clone();
    let work: Work = Arc::new(move |_| {
        let release = r.clone();
        Box::pin(async move {
            release.acquire().await.map_err(|e| e.to_string())?.forget();
            Ok(RunSignal::default())
        })
    });
    let job = Job::new(spec, work, start, true);
    let stopping = AtomicBool::new(false);
    assert_eq!(job.on_tick(start, &stopping), TickOutcome::Started);
    assert_eq!(
        job.on_tick(utc("2024-01-01T12:01:00Z"), &stopping),
        TickOutcome::SkippedBusy
    );
    release.add_permits(1);
    drop(job.hold().await);
    assert_eq!(
        job.on_tick(utc("2024-01-01T12:01:01Z"), &stopping),
        TickOutcome::NotDue
    );
}

/// A schedule's occurrences are whole seconds, whatever the fraction of the moment they are
/// computed from (croner keeps it, which put every tick of a job started at 12:00:30.700 at
/// .700 past its second, so the tick of the second itself found it not due yet).
#[test]
fn occurrences_are_whole_seconds_after_a_moment_with_a_fraction() {
    let c = cron("0 * * * * *");
    let at = |s: &str| next_occurrence(&c, Tz::UTC, utc(s)).expect("next");
    assert_eq!(at("2024-01-01T12:00:59.500Z"), utc("2024-01-01T12:01:00Z"));
    assert_eq!(at("2024-01-01T12:01:00.002Z"), utc("2024-01-01T12:02:00Z"));
    assert_eq!(at("2024-01-01T12:01:00Z"), utc("2024-01-01T12:02:00Z"));
    let every_second = cron("* * * * * *");
    assert_eq!(
        next_occurrence(&every_second, Tz::UTC, utc("2024-01-01T12:00:00.999Z")),
        Some(utc("2024-01-01T12:00:01Z"))
    );
}
