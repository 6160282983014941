//! Paused-clock tests of the budget: the limit over any window (the window before the budget
//! counted as used), the serving order, a poll's wait beside a saturating catch-up, pauses and
//! waiters that give up.

use std::sync::{Arc, Mutex};

use chrono::NaiveDate;

use super::*;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// `d` rounded up to whole milliseconds: when tokio's timer wakes a sleeper.
fn ms_ceil(d: Duration) -> Duration {
    Duration::from_millis(d.as_nanos().div_ceil(1_000_000) as u64)
}

/// Grants recorded by tasks: (time since the test's start, priority).
type Log = Arc<Mutex<Vec<(Duration, Priority)>>>;

fn record(log: &Log, start: Instant, p: Priority) {
    log.lock().expect("log").push((start.elapsed(), p));
}

/// Spawns a task that requests `n` grants of `p` one after the other, pausing `between` after
/// each (the request itself).
fn worker(
    budget: &Arc<Budget>,
    log: &Log,
    start: Instant,
    p: Priority,
    n: usize,
    between: Duration,
) {
    let (b, l) = (budget.clone(), log.clone());
    tokio::spawn(async move {
        for _ in 0..n {
            b.acquire(p).await;
            record(&l, start, p);
            tokio::time::sleep(between).await;
        }
    });
}

/// Every instant (in nanoseconds) a request of a budget was (or, before it existed, is
/// assumed to have been) granted, relative to its creation: the window before it used evenly,
/// one grant every `WINDOW / limit` ending at its creation (computed here from that
/// definition, not read from the budget).
fn with_assumed_history(limit: u32, grants: &[Duration]) -> Vec<i128> {
    let step = (WINDOW / limit).as_nanos() as i128;
    let window = WINDOW.as_nanos() as i128;
    let mut all: Vec<i128> = (1..=i128::from(limit))
        .map(|k| k * step - window)
        .chain(grants.iter().map(|g| g.as_nanos() as i128))
        .collect();
    all.sort_unstable();
    all
}

/// The most grants in any window `(t - width, t]`, as the server counts them.
fn busiest(times: &[i128], width: Duration) -> usize {
    let width = width.as_nanos() as i128;
    (0..times.len())
        .map(|i| {
            times[..=i]
                .iter()
                .rev()
                .take_while(|&&t| t > times[i] - width)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn nanos(grants: &[Duration]) -> Vec<i128> {
    grants.iter().map(|g| g.as_nanos() as i128).collect()
}

#[tokio::test(start_paused = true)]
async fn never_more_than_the_limit_in_any_window_even_right_after_another_process() {
    let budget = Arc::new(Budget::new("account", 60, 2));
    let start = Instant::now();
    let log: Log = Arc::default();
    // History of both kinds saturating, polls of three bots in bursts every 5 s, for 5 minutes.
    for _ in 0..6 {
        worker(&budget, &log, start, Priority::CatchUp, 100, secs(0.05));
    }
    for _ in 0..3 {
        worker(&budget, &log, start, Priority::Scheduled, 100, secs(0.2));
    }
    for _ in 0..3 {
        let (b, l) = (budget.clone(), log.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(secs(5.0));
            for _ in 0..60 {
                tick.tick().await;
                b.acquire(Priority::Realtime).await;
                record(&l, start, Priority::Realtime);
            }
        });
    }
    tokio::time::sleep(secs(300.0)).await;
    let grants: Vec<Duration> = log.lock().expect("log").iter().map(|g| g.0).collect();
    assert!(grants.len() > 250, "only {} grants", grants.len());
    let all = with_assumed_history(60, &grants);
    // Over our own 61 s window, and over the server's 60 s window however the delays of two
    // requests to it differ by less than the margin.
    assert_eq!(busiest(&all, WINDOW), 60);
    assert!(busiest(&all, MINUTE + secs(0.999)) <= 60);
}

#[tokio::test(start_paused = true)]
async fn realtime_first_then_two_scheduled_for_each_catch_up() {
    let budget = Arc::new(Budget::new("account", 60, 0));
    let start = Instant::now();
    let log: Log = Arc::default();
    let queue = [
        (Priority::CatchUp, 3),
        (Priority::Scheduled, 4),
        (Priority::Realtime, 2),
    ];
    for (p, n) in queue {
        for _ in 0..n {
            worker(&budget, &log, start, p, 1, Duration::ZERO);
            tokio::task::yield_now().await;
        }
    }
    tokio::time::sleep(secs(30.0)).await;
    let order: Vec<&str> = log
        .lock()
        .expect("log")
        .iter()
        .map(|(_, p)| p.label())
        .collect();
    use Priority::*;
    let expected: Vec<&str> = [
        Realtime, Realtime, Scheduled, Scheduled, CatchUp, Scheduled, Scheduled, CatchUp, CatchUp,
    ]
    .iter()
    .map(|p| p.label())
    .collect();
    assert_eq!(order, expected);
}

#[tokio::test(start_paused = true)]
async fn a_poll_never_waits_beside_a_saturating_catch_up_and_history_gets_the_rest() {
    let budget = Arc::new(Budget::new("account", 60, 2));
    let start = Instant::now();
    let log: Log = Arc::default();
    for _ in 0..8 {
        worker(&budget, &log, start, Priority::CatchUp, 1000, secs(0.05));
    }
    // Two bots polled together every 5 s: 24 of the 60 requests a minute.
    let waits = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..2 {
        let (b, l, w) = (budget.clone(), log.clone(), waits.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(secs(5.0));
            for _ in 0..(12 * 10) {
                let due = tick.tick().await;
                let waited = b.acquire(Priority::Realtime).await;
                record(&l, start, Priority::Realtime);
                w.lock().expect("waits").push((due - start, waited));
            }
        });
    }
    tokio::time::sleep(secs(600.0)).await;
    let waits = waits.lock().expect("waits").clone();
    assert_eq!(waits.len(), 240);
    // Right after the start the window still counts as used: the two polls wait for its
    // first two places. From then on no poll waits at all.
    for (due, waited) in &waits {
        if *due < WINDOW {
            assert!(
                *waited <= ms_ceil(2 * budget.spacing()),
                "{due:?}: {waited:?}"
            );
        } else {
            assert_eq!(*waited, Duration::ZERO, "poll due at {due:?} waited");
        }
    }
    // History uses everything but the reserve: over the last 8 windows, at least 58 grants
    // per window in all, never more than 60.
    let log = log.lock().expect("log").clone();
    let from = secs(600.0) - 8 * WINDOW;
    let late: Vec<Duration> = log.iter().map(|g| g.0).filter(|t| *t >= from).collect();
    assert!(late.len() >= 8 * 58, "{} grants in 8 windows", late.len());
    assert!(busiest(&nanos(&late), WINDOW) <= 60);
    let history = log
        .iter()
        .filter(|g| g.1 == Priority::CatchUp && g.0 >= from)
        .count();
    assert!(history >= 8 * (58 - 25), "catch-up got {history}");
}

#[tokio::test(start_paused = true)]
async fn history_is_spaced_evenly_and_idle_time_is_not_banked() {
    let budget = Arc::new(Budget::new("account", 60, 2));
    let start = Instant::now();
    let log: Log = Arc::default();
    worker(&budget, &log, start, Priority::Scheduled, 5, Duration::ZERO);
    tokio::time::sleep(secs(100.0)).await;
    // Ten waiters at once after a long idle time: still one every spacing, never a burst.
    for _ in 0..10 {
        worker(&budget, &log, start, Priority::CatchUp, 1, Duration::ZERO);
    }
    tokio::time::sleep(secs(30.0)).await;
    let times: Vec<Duration> = log.lock().expect("log").iter().map(|g| g.0).collect();
    assert_eq!(times.len(), 15);
    // The first grant waits for the first place of the window assumed used (tokio's timer
    // wakes on the next whole millisecond).
    assert_eq!(times[0], ms_ceil(budget.spacing()));
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= budget.spacing(),
            "{:?} then {:?}",
            w[0],
            w[1]
        );
        assert!(w[1] - w[0] <= ms_ceil(budget.spacing()) || w[1] >= secs(100.0));
    }
    assert_eq!(times[5], secs(100.0));
}

#[tokio::test(start_paused = true)]
async fn a_throttled_answer_pauses_every_priority() {
    let budget = Budget::new("account", 60, 2);
    tokio::time::sleep(WINDOW).await;
    assert_eq!(budget.acquire(Priority::Realtime).await, Duration::ZERO);
    budget.throttled(Priority::Realtime, secs(10.0));
    assert_eq!(budget.snapshot().paused_for, secs(10.0));
    assert_eq!(budget.acquire(Priority::Realtime).await, secs(10.0));
    assert_eq!(
        budget.acquire(Priority::CatchUp).await,
        ms_ceil(budget.spacing())
    );
    assert_eq!(budget.usage(Priority::Realtime).throttled, 1);
    assert_eq!(budget.usage_total().granted, 3);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_that_gives_up_leaves_the_queue() {
    let budget = Arc::new(Budget::new("account", 60, 0));
    // Right after the start the first place is one spacing away: a realtime waiter that gives
    // up after 0.5 s must not hold back the catch-up request behind it.
    let gave_up = tokio::time::timeout(secs(0.5), budget.acquire(Priority::Realtime)).await;
    assert!(gave_up.is_err());
    assert_eq!(budget.snapshot().priorities[0].queued, 0);
    let waited = budget.acquire(Priority::CatchUp).await;
    assert_eq!(waited, ms_ceil(budget.spacing()) - secs(0.5));
    assert_eq!(budget.usage(Priority::Realtime).granted, 0);
}

#[tokio::test(start_paused = true)]
async fn the_snapshot_counts_waiters_grants_and_shares() {
    let budget = Arc::new(Budget::new("account", 60, 2));
    tokio::time::sleep(WINDOW).await;
    for p in [Priority::Realtime, Priority::Realtime, Priority::Scheduled] {
        budget.acquire(p).await;
    }
    let log: Log = Arc::default();
    for _ in 0..3 {
        worker(
            &budget,
            &log,
            Instant::now(),
            Priority::CatchUp,
            1,
            Duration::ZERO,
        );
        tokio::task::yield_now().await;
    }
    let s = budget.snapshot();
    assert_eq!(s.scope, "account");
    assert_eq!((s.requests_per_minute, s.realtime_reserve), (60, 2));
    let view: Vec<(&str, usize, u32)> = s
        .priorities
        .iter()
        .map(|p| (p.priority.label(), p.queued, p.granted_in_window))
        .collect();
    assert_eq!(
        view,
        vec![("realtime", 0, 2), ("scheduled", 0, 1), ("catch_up", 3, 0)]
    );
    assert!((s.share_used() - 3.0 / 60.0).abs() < 1e-9);
    // A window later every grant has left it (the catch-up ones included).
    tokio::time::sleep(WINDOW + secs(10.0)).await;
    assert_eq!(budget.snapshot().share_used(), 0.0);
    assert_eq!(budget.usage(Priority::CatchUp).granted, 3);
}

#[test]
fn history_days_in_the_steady_window_are_scheduled_older_ones_catch_up() {
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
    let today = d("2024-03-31");
    assert_eq!(
        Priority::of_history_day(today, today, 0),
        Priority::Scheduled
    );
    assert_eq!(
        Priority::of_history_day(d("2024-03-30"), today, 0),
        Priority::CatchUp
    );
    assert_eq!(
        Priority::of_history_day(d("2024-03-01"), today, 30),
        Priority::Scheduled
    );
    assert_eq!(
        Priority::of_history_day(d("2024-02-29"), today, 30),
        Priority::CatchUp
    );
    assert_eq!(
        Priority::ALL.map(Priority::label),
        ["realtime", "scheduled", "catch_up"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_bot_budget_keeps_both_the_minute_and_the_hour_limit_and_bots_are_independent() {
    let bots = Arc::new(BotBudgets::new(60, 1800));
    let start = Instant::now();
    let grants: Arc<Mutex<Vec<(String, Duration)>>> = Arc::default();
    for bot in ["st-a", "st-b"] {
        for _ in 0..3 {
            let (budget, g) = (bots.of(bot), grants.clone());
            tokio::spawn(async move {
                loop {
                    budget.acquire(Priority::CatchUp).await;
                    g.lock()
                        .expect("log")
                        .push((bot.to_string(), start.elapsed()));
                }
            });
        }
    }
    tokio::time::sleep(secs(2.5 * 3600.0)).await;
    let grants = grants.lock().expect("log").clone();
    for bot in ["st-a", "st-b"] {
        let mine: Vec<Duration> = grants
            .iter()
            .filter(|(b, _)| b == bot)
            .map(|(_, t)| *t)
            .collect();
        let times = nanos(&mine);
        // The hour limit binds (0.5 a second): any server hour holds at most 1,800, any
        // minute at most 60, and the budget is used (not starved by the other bot).
        assert!(
            busiest(&times, HOUR) <= 1800,
            "{bot}: {}",
            busiest(&times, HOUR)
        );
        assert!(busiest(&times, MINUTE) <= 60, "{bot}");
        assert!(mine.len() > 4000, "{bot}: only {} grants", mine.len());
    }
    // The same bot is the same budget.
    assert!(Arc::ptr_eq(&bots.of("st-a"), &bots.of("st-a")));
}

/// What each of `n` realtime requests asked for at once waited.
async fn tick_waits(budget: &Arc<Budget>, n: usize) -> Vec<Duration> {
    let asks = (0..n).map(|_| {
        let b = budget.clone();
        async move { b.acquire(Priority::Realtime).await }
    });
    let mut waits = futures::future::join_all(asks).await;
    waits.sort();
    waits
}

#[tokio::test(start_paused = true)]
async fn a_tick_of_polls_goes_out_at_once_unless_the_last_minute_was_used_before() {
    // Told nothing: the window before the budget counts as used in full, so eight polls at its
    // start take one freed place each, a spacing apart.
    let budget = Arc::new(Budget::new("account", 60, 0));
    let waits = tick_waits(&budget, 8).await;
    for (k, w) in waits.iter().enumerate() {
        assert!(
            *w >= budget.spacing() * (k as u32 + 1),
            "poll {k} waited {w:?}"
        );
    }
    // Nobody used it (no previous holder of the budget lease), or the previous one stopped a
    // window ago or more: all at once.
    for ago in [None, Some(WINDOW), Some(WINDOW * 3)] {
        let budget = Arc::new(Budget::new("account", 60, 0));
        budget.previous_use_ended(ago);
        assert_eq!(
            tick_waits(&budget, 8).await,
            vec![Duration::ZERO; 8],
            "{ago:?}"
        );
    }
    // Another process stopped 40 s ago: the window before then counts as used evenly, so 39
    // of its 60 places have left it; stopped 5 s ago: 4 have, and the rest wait their turn.
    let budget = Arc::new(Budget::new("account", 60, 0));
    budget.previous_use_ended(Some(secs(40.0)));
    assert_eq!(tick_waits(&budget, 8).await, vec![Duration::ZERO; 8]);
    let budget = Arc::new(Budget::new("account", 60, 0));
    budget.previous_use_ended(Some(secs(5.0)));
    let waits = tick_waits(&budget, 8).await;
    assert_eq!(waits[..4], [Duration::ZERO; 4]);
    for w in &waits[4..] {
        assert!(!w.is_zero(), "{waits:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn never_over_the_limit_when_the_previous_process_stopped_seconds_ago() {
    let budget = Arc::new(Budget::new("account", 60, 2));
    budget.previous_use_ended(Some(secs(5.0)));
    let start = Instant::now();
    let log: Log = Arc::default();
    for _ in 0..4 {
        worker(&budget, &log, start, Priority::CatchUp, 100, secs(0.05));
    }
    for _ in 0..8 {
        worker(&budget, &log, start, Priority::Realtime, 10, secs(10.0));
    }
    tokio::time::sleep(secs(200.0)).await;
    let grants: Vec<Duration> = log.lock().expect("log").iter().map(|g| g.0).collect();
    // The previous process's window, assumed used evenly up to 5 s before the start.
    let step = (WINDOW / 60).as_nanos() as i128;
    let (window, shift) = (WINDOW.as_nanos() as i128, secs(5.0).as_nanos() as i128);
    let mut all: Vec<i128> = (1..=60i128)
        .map(|k| k * step - window - shift)
        .chain(nanos(&grants))
        .collect();
    all.sort_unstable();
    assert!(grants.len() > 150, "only {} grants", grants.len());
    assert_eq!(busiest(&all, WINDOW), 60);
}

#[tokio::test(start_paused = true)]
async fn a_listed_tick_goes_out_at_once_beside_saturating_history() {
    // One configured bot, and eight queues of a list, polled every minute, while catch-up
    // history would take every place of the window.
    let budget = Arc::new(Budget::new("account", 60, 1));
    budget.previous_use_ended(None);
    budget.reserve_for_listed("queue_stats", 8);
    assert_eq!(budget.realtime_reserve(), 9);
    let start = Instant::now();
    let log: Log = Arc::default();
    for _ in 0..8 {
        worker(&budget, &log, start, Priority::CatchUp, 1000, secs(0.05));
    }
    let mut ticks = Vec::new();
    for _ in 0..5 {
        ticks.push(tick_waits(&budget, 9).await);
        for _ in 0..9 {
            record(&log, start, Priority::Realtime);
        }
        tokio::time::sleep_until(start + MINUTE * ticks.len() as u32).await;
    }
    for (i, waits) in ticks.iter().enumerate() {
        assert_eq!(waits, &vec![Duration::ZERO; 9], "tick {i}");
    }
    let log = log.lock().expect("log").clone();
    assert!(busiest(&nanos(&log.iter().map(|g| g.0).collect::<Vec<_>>()), WINDOW) <= 60);
    let history = log.iter().filter(|g| g.1 == Priority::CatchUp).count();
    assert!(history > 4 * 40, "history got {history} in 5 minutes");
    // The reserve is at most a quarter of the budget.
    budget.reserve_for_listed("queue_stats", 100);
    assert_eq!(budget.realtime_reserve(), 15);
    budget.reserve_for_listed("queue_stats", 2);
    assert_eq!(budget.realtime_reserve(), 3);
}

#[tokio::test(start_paused = true)]
async fn after_nobody_polls_never_wait_and_history_still_ramps_up_evenly() {
    // A first start: nobody used the window before. Two bots polled every 5 s beside
    // saturating catch-up history: history ramps up as if the window had been used (one place
    // per spacing), so it never fills the first window early and starves the polls until it
    // rolls over; the polls, which need no ramp, never wait at all.
    let budget = Arc::new(Budget::new("account", 60, 2));
    budget.previous_use_ended(None);
    let start = Instant::now();
    let log: Log = Arc::default();
    for _ in 0..8 {
        worker(&budget, &log, start, Priority::CatchUp, 1000, secs(0.05));
    }
    let waits = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..2 {
        let (b, l, w) = (budget.clone(), log.clone(), waits.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(secs(5.0));
            for _ in 0..(12 * 5) {
                let due = tick.tick().await;
                let waited = b.acquire(Priority::Realtime).await;
                record(&l, start, Priority::Realtime);
                w.lock().expect("waits").push((due - start, waited));
            }
        });
    }
    tokio::time::sleep(secs(300.0)).await;
    let waits = waits.lock().expect("waits").clone();
    assert_eq!(waits.len(), 120);
    for (due, waited) in &waits {
        assert_eq!(*waited, Duration::ZERO, "poll due at {due:?} waited");
    }
    let grants: Vec<Duration> = log.lock().expect("log").iter().map(|g| g.0).collect();
    assert!(busiest(&nanos(&grants), WINDOW) <= 60);
    // History in the first window: no more than the ramp's places.
    let first: Vec<Duration> = log
        .lock()
        .expect("log")
        .iter()
        .filter(|g| g.1 == Priority::CatchUp && g.0 < WINDOW)
        .map(|g| g.0)
        .collect();
    assert!(first.len() <= 60, "{} history grants", first.len());
    for w in first.windows(2) {
        assert!(
            w[1] - w[0] >= budget.spacing(),
            "{:?} then {:?}",
            w[0],
            w[1]
        );
    }
}

/// Tells `budget` what the previous holder of the budget lease left: it stopped `stopped_ago`
/// before now, and granted requests these long ago (its record's grants of the last window).
fn tell_previous(budget: &Budget, stopped_ago: Duration, grants_ago: &[Duration]) {
    budget.previous_use_ended(Some(stopped_ago));
    budget.previous_grants(grants_ago);
}

#[tokio::test(start_paused = true)]
async fn never_over_the_limit_after_a_previous_process_that_used_its_last_second_in_full() {
    let budget = Arc::new(Budget::new("account", 60, 15));
    // The previous process stopped 1 s ago and granted all 60 in its last second (a tick's
    // polls together): 1 + k/60 s ago for k in 0..60.
    let previous: Vec<Duration> = (0..60).map(|k| secs(1.0 + f64::from(k) / 60.0)).collect();
    tell_previous(&budget, secs(1.0), &previous);
    let start = Instant::now();
    let log: Log = Arc::default();
    for _ in 0..4 {
        worker(&budget, &log, start, Priority::CatchUp, 100, secs(0.05));
    }
    for _ in 0..8 {
        worker(&budget, &log, start, Priority::Realtime, 20, secs(5.0));
    }
    tokio::time::sleep(secs(200.0)).await;
    let grants: Vec<Duration> = log.lock().expect("log").iter().map(|g| g.0).collect();
    assert!(grants.len() > 150, "only {} grants", grants.len());
    let mut all: Vec<i128> = previous
        .iter()
        .map(|p| -(p.as_nanos() as i128))
        .chain(nanos(&grants))
        .collect();
    all.sort_unstable();
    assert!(
        busiest(&all, WINDOW) <= 60,
        "{} in one window",
        busiest(&all, WINDOW)
    );
}
