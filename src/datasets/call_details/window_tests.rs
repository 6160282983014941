//! Window planner tests against a fake API that enforces the caps (page ≤ 10, a window inside
//! one segment at its offset, ≤ 7 days) and pages a known set of session start times in a
//! chosen order, with a chosen `endDate` semantics and `numResults` behaviour. Expected values
//! are the fake's own session list.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use super::tests::utc;
use super::*;
use crate::sources::window::{local_day_bounds, plan_day, DayWindow};

#[derive(Debug, Clone, Copy)]
enum Order {
    Ascending,
    Descending,
    Scrambled,
}

#[derive(Debug, Clone, Copy)]
enum Hint {
    Total,
    PageCount,
    Absent,
    Constant(u64),
}

struct FakeApi {
    /// `(start, session id)`.
    sessions: Vec<(DateTime<Utc>, String)>,
    segments: Vec<DayWindow>,
    inclusive_end: bool,
    order: Order,
    hint: Hint,
    page_size: u32,
    requests: RefCell<Vec<(CallWindow, u32)>>,
}

impl FakeApi {
    fn new(starts: &[DateTime<Utc>], segments: Vec<DayWindow>) -> Self {
        let mut sessions: Vec<_> = starts
            .iter()
            .enumerate()
            .map(|(i, t)| (*t, format!("s{i:06}")))
            .collect();
        sessions.sort();
        FakeApi {
            sessions,
            segments,
            inclusive_end: true,
            order: Order::Ascending,
            hint: Hint::Total,
            page_size: 100,
            requests: RefCell::new(Vec::new()),
        }
    }

    fn page(&self, w: &CallWindow, page: u32) -> Page {
        assert!(page <= MAX_PAGE_OFFSET, "page {page} of {w}");
        assert!(
            w.send_end - w.start <= MAX_RANGE,
            "{w} is longer than 7 days"
        );
        assert!(w.start < w.end && w.start <= w.send_end, "{w}");
        assert!(
            self.segments
                .iter()
                .any(|s| s.offset_minutes == w.offset_minutes
                    && s.claim.start <= w.start
                    && w.end <= s.claim.end),
            "{w} is not inside one segment at its offset"
        );
        self.requests.borrow_mut().push((w.clone(), page));
        let from = self.sessions.partition_point(|(t, _)| *t < w.start);
        let to = self.sessions.partition_point(|(t, _)| {
            if self.inclusive_end {
                *t <= w.send_end
            } else {
                *t < w.send_end
            }
        });
        let mut hits: Vec<&(DateTime<Utc>, String)> =
            self.sessions[from..to.max(from)].iter().collect();
        hits.sort_by(|a, b| match self.order {
            Order::Ascending => a.cmp(b),
            Order::Descending => b.cmp(a),
            Order::Scrambled => scramble(&a.1).cmp(&scramble(&b.1)),
        });
        let ps = self.page_size as usize;
        let on_page: Vec<_> = hits.iter().skip(page as usize * ps).take(ps).collect();
        let num_results = match self.hint {
            Hint::Total => Some(hits.len() as u64),
            Hint::PageCount => Some(on_page.len() as u64),
            Hint::Absent => None,
            Hint::Constant(n) => Some(n),
        };
        Page {
            num_results,
            records: on_page
                .iter()
                .map(|(t, id)| {
                    Ok(CallRecord {
                        session_id: id.clone().into(),
                        session_start_time: *t,
                        ..CallRecord::default()
                    })
                })
                .collect(),
        }
    }

    fn run(&self, expected: Option<&Density>) -> Result<DayFetch, WindowError<Infallible>> {
        let fetch = |w: &CallWindow, p: u32| {
            let page = self.page(w, p);
            async move { Ok::<Page, Infallible>(page) }
        };
        futures::executor::block_on(fetch_day(&self.segments, expected, self.page_size, fetch))
    }

    /// The ids of the sessions starting in the segments' claims, sorted.
    fn expected(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .sessions
            .iter()
            .filter(|(t, _)| self.segments.iter().any(|s| s.claim.contains(t)))
            .map(|(_, id)| id.clone())
            .collect();
        ids.sort();
        ids
    }
}

fn scramble(id: &str) -> u64 {
    id.bytes().fold(0x9E37_79B9_7F4A_7C15_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    })
}

fn ids(f: &DayFetch) -> Vec<String> {
    let mut v: Vec<String> = f.records.iter().map(|r| r.session_id.to_string()).collect();
    v.sort();
    v
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
}

/// Every `step_secs` from `from` (inclusive) to `to` (exclusive).
fn every(from: DateTime<Utc>, to: DateTime<Utc>, step_secs: i64) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        out.push(t);
        t += Duration::seconds(step_secs);
    }
    out
}

#[test]
fn a_sparse_day_costs_one_request() {
    let segs = plan_day(Tz::UTC, day(2026, 6, 1));
    let api = FakeApi::new(
        &every(
            utc("2026-06-01T00:00:00Z"),
            utc("2026-06-02T00:00:00Z"),
            1800,
        ),
        segs,
    );
    let f = api.run(None).expect("complete");
    assert_eq!(ids(&f), api.expected());
    assert_eq!((f.stats.requests, f.stats.windows), (1, 1));
    assert_eq!(f.stats.minimum_requests(), 1);
    assert_eq!(f.stats.lower_bound_requests(), 1);
    assert_eq!(f.density.hourly, vec![2; 24]);
}

#[test]
fn fall_back_day_uses_each_offset_and_returns_exactly_its_25_hours() {
    let d = day(2024, 11, 3);
    let segs = plan_day(Tz::America__New_York, d);
    assert_eq!(segs.len(), 2);
    // Sessions from two hours before to two hours after the day, every 7 minutes.
    let bounds = local_day_bounds(Tz::America__New_York, d);
    assert_eq!(
        bounds,
        utc("2024-11-03T04:00:00Z")..utc("2024-11-04T05:00:00Z")
    );
    let starts = every(
        bounds.start - Duration::hours(2),
        bounds.end + Duration::hours(2),
        420,
    );
    let api = FakeApi::new(&starts, segs);
    let f = api.run(None).expect("complete");
    assert_eq!(ids(&f), api.expected());
    let n_in_day = starts.iter().filter(|t| bounds.contains(t)).count();
    assert_eq!(f.records.len(), n_in_day);
    let windows: Vec<(i32, DateTime<Utc>, DateTime<Utc>)> = api
        .requests
        .borrow()
        .iter()
        .filter(|(_, page)| *page == 0)
        .map(|(w, _)| (w.offset_minutes, w.start, w.end))
        .collect();
    assert_eq!(
        windows,
        vec![
            (
                240,
                utc("2024-11-03T04:00:00Z"),
                utc("2024-11-04T04:00:00Z")
            ),
            (
                300,
                utc("2024-11-04T04:00:00Z"),
                utc("2024-11-04T05:00:00Z")
            ),
        ]
    );
    assert!(f
        .records
        .iter()
        .all(|r| bounds.contains(&r.session_start_time)));
}

#[test]
fn spring_forward_day_returns_exactly_its_23_hours() {
    let d = day(2024, 3, 10);
    let segs = plan_day(Tz::America__New_York, d);
    let bounds = local_day_bounds(Tz::America__New_York, d);
    assert_eq!(
        bounds,
        utc("2024-03-10T05:00:00Z")..utc("2024-03-11T04:00:00Z")
    );
    let starts = every(
        bounds.start - Duration::hours(3),
        bounds.end + Duration::hours(3),
        60,
    );
    let api = FakeApi::new(&starts, segs);
    let f = api.run(None).expect("complete");
    assert_eq!(ids(&f), api.expected());
    assert_eq!(f.records.len(), 23 * 60);
    assert!(api
        .requests
        .borrow()
        .iter()
        .all(|(w, _)| w.offset_minutes == 300));
}

/// A 3,000-session day: 125 per hour, plus a busy hour of 600 more.
fn busy_day() -> Vec<DateTime<Utc>> {
    let mut starts = every(utc("2026-06-01T00:00:00Z"), utc("2026-06-02T00:00:00Z"), 29);
    starts.extend(every(
        utc("2026-06-01T14:00:00Z"),
        utc("2026-06-01T15:00:00Z"),
        6,
    ));
    starts
}

#[test]
fn a_busy_day_is_complete_and_near_the_minimum_of_requests() {
    let segs = plan_day(Tz::UTC, day(2026, 6, 1));
    for hint in [
        Hint::Total,
        Hint::PageCount,
        Hint::Absent,
        Hint::Constant(5000),
    ] {
        for order in [Order::Ascending, Order::Descending, Order::Scrambled] {
            let mut api = FakeApi::new(&busy_day(), segs.clone());
            api.hint = hint;
            api.order = order;
            // First run: nothing known about the day.
            let first = api.run(None).expect("complete");
            assert_eq!(ids(&first), api.expected(), "{hint:?} {order:?}");
            assert_eq!(first.stats.sessions, 2980 + 600);
            // Next run: planned from the first run's hourly profile.
            api.requests.borrow_mut().clear();
            let next = api.run(Some(&first.density)).expect("complete");
            assert_eq!(ids(&next), api.expected());
            let (f, s) = (&first.stats, &next.stats);
            println!(
                "{hint:?} {order:?}: first run {} requests (lower bound {}, {} windows, {} \
                 overflows, {} early splits); next run {} (lower bound {}, {} windows, {} \
                 overflows)",
                f.requests,
                f.lower_bound_requests(),
                f.windows,
                f.overflows,
                f.early_splits,
                s.requests,
                s.lower_bound_requests(),
                s.windows,
                s.overflows
            );
            assert!(s.ratio() <= 1.15, "{hint:?} {order:?}: {s:?}");
            assert_eq!(s.overflows, 0, "{hint:?} {order:?}");
            if matches!(hint, Hint::Total) {
                // Discovering the day costs at most one window's worth of pages more.
                let limit = f.lower_bound_requests() as f64 * 1.15 + 11.0;
                assert!(f.requests as f64 <= limit, "{hint:?} {order:?}: {f:?}");
            }
        }
    }
}

#[test]
fn a_profile_from_a_quieter_day_is_scaled_by_what_today_shows() {
    let segs = plan_day(Tz::UTC, day(2026, 6, 1));
    let api = FakeApi::new(&busy_day(), segs);
    // Yesterday had a third of today's sessions, with the same shape.
    let mut hourly = vec![41; 24];
    hourly[14] = 241;
    let f = api.run(Some(&Density { hourly })).expect("complete");
    assert_eq!(ids(&f), api.expected());
    assert!(f.stats.ratio() <= 1.15 + 11.0 / 36.0, "{:?}", f.stats);
}

#[test]
fn a_burst_in_one_minute_is_split_until_complete() {
    let segs = plan_day(Tz::UTC, day(2026, 6, 1));
    let mut starts = every(
        utc("2026-06-01T00:00:00Z"),
        utc("2026-06-02T00:00:00Z"),
        300,
    );
    // 2,400 sessions in one minute: 40 per second.
    for k in 0..2400 {
        starts.push(utc("2026-06-01T09:30:00Z") + Duration::seconds(k % 60));
    }
    for order in [Order::Ascending, Order::Scrambled] {
        let mut api = FakeApi::new(&starts, segs.clone());
        api.order = order;
        api.hint = Hint::Absent;
        let f = api.run(None).expect("complete");
        assert_eq!(ids(&f), api.expected(), "{order:?}");
        assert!(f.stats.overflows >= 1);
    }
}

#[test]
fn over_1100_sessions_in_one_second_fail_naming_the_window() {
    let segs = plan_day(Tz::Asia__Kolkata, day(2026, 6, 1));
    let second = utc("2026-06-01T04:00:07Z");
    let mut starts = vec![second; 1101];
    starts.extend(every(
        utc("2026-06-01T00:00:00Z"),
        utc("2026-06-01T12:00:00Z"),
        60,
    ));
    for inclusive_end in [true, false] {
        let mut api = FakeApi::new(&starts, segs.clone());
        api.inclusive_end = inclusive_end;
        match api.run(None) {
            Err(WindowError::Saturated { window, cap }) => {
                assert_eq!(
                    (window.start, window.end),
                    (second, second + Duration::seconds(1))
                );
                assert_eq!((window.offset_minutes, cap), (-330, 1100));
                let msg = WindowError::<Infallible>::Saturated { window, cap }.to_string();
                assert!(
                    msg.contains("[2026-06-01T04:00:07Z, 2026-06-01T04:00:08Z)"),
                    "{msg}"
                );
            }
            other => panic!("expected Saturated, got {:?}", other.map(|f| f.stats)),
        }
    }
}

#[test]
fn two_busy_adjacent_seconds_are_resolved_by_the_probe() {
    let segs = plan_day(Tz::UTC, day(2026, 6, 1));
    let s0 = utc("2026-06-01T10:00:00Z");
    let mut starts = vec![s0; 700];
    starts.extend(vec![s0 + Duration::seconds(1); 700]);
    for inclusive_end in [true, false] {
        let mut api = FakeApi::new(&starts, segs.clone());
        api.inclusive_end = inclusive_end;
        api.hint = Hint::Absent;
        let f = api.run(None).expect("complete");
        assert_eq!(ids(&f), api.expected());
        if inclusive_end {
            assert!(f.stats.probes >= 1, "{:?}", f.stats);
        }
    }
}

#[test]
fn a_constant_num_results_cannot_cause_endless_splitting() {
    let segs = plan_day(Tz::UTC, day(2026, 6, 1));
    let mut api = FakeApi::new(
        &every(
            utc("2026-06-01T00:00:00Z"),
            utc("2026-06-02T00:00:00Z"),
            300,
        ),
        segs,
    );
    api.hint = Hint::Constant(1_000_000);
    let f = api.run(None).expect("complete");
    assert_eq!(ids(&f), api.expected());
    assert!(f.stats.requests <= 1 + 16 * 2, "{:?}", f.stats);
}

#[test]
fn page_size_outside_the_cap_is_refused() {
    let segs = plan_day(Tz::UTC, day(2026, 6, 1));
    for ps in [0, 101] {
        let mut api = FakeApi::new(&[], segs.clone());
        api.page_size = ps;
        assert!(matches!(api.run(None), Err(WindowError::PageSize(p)) if p == ps));
    }
}

fn order_strategy() -> impl Strategy<Value = Order> {
    prop_oneof![
        Just(Order::Ascending),
        Just(Order::Descending),
        Just(Order::Scrambled)
    ]
}

fn hint_strategy() -> impl Strategy<Value = Hint> {
    prop_oneof![
        Just(Hint::Total),
        Just(Hint::PageCount),
        Just(Hint::Absent),
        (0u64..5000).prop_map(Hint::Constant)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any mix of uniform sessions and bursts (some of them within one second): every session
    /// of the day is returned exactly once and no request breaks a cap, or the day fails as
    /// saturated exactly when some second holds at least the capacity.
    #[test]
    fn every_session_exactly_once_or_a_clear_saturation_error(
        uniform in 0usize..2500,
        bursts in prop::collection::vec((0i64..90_000, 1i64..600, 1usize..1500), 0..4),
        seed in any::<u64>(),
        page_size in prop_oneof![Just(100u32), 20u32..100, 1u32..20],
        order in order_strategy(),
        hint in hint_strategy(),
        inclusive_end in any::<bool>(),
        density in prop::option::of(prop::collection::vec(0u32..3000, 0..26)),
        zone in prop_oneof![Just(Tz::UTC), Just(Tz::America__New_York), Just(Tz::Asia__Kolkata)],
        fall_back in any::<bool>(),
    ) {
        let d = if fall_back { day(2024, 11, 3) } else { day(2024, 6, 3) };
        let segs = plan_day(zone, d);
        let bounds = local_day_bounds(zone, d);
        let span = (bounds.end - bounds.start).num_seconds() + 7200;
        let base = bounds.start - Duration::hours(1);
        let mut x = seed;
        let mut next = || { x = crate::simulator::generator::mix(x); x };
        let mut starts: Vec<DateTime<Utc>> = (0..uniform)
            .map(|_| base + Duration::seconds((next() % span as u64) as i64))
            .collect();
        for (at, len, n) in &bursts {
            let at = base + Duration::seconds(at % span);
            for _ in 0..*n {
                starts.push(at + Duration::seconds((next() % *len as u64) as i64));
            }
        }
        let mut per_second: HashMap<DateTime<Utc>, u64> = HashMap::new();
        for t in starts.iter().filter(|t| bounds.contains(t)) {
            *per_second.entry(*t).or_default() += 1;
        }
        let cap = u64::from(page_size) * 11;
        let saturated = per_second.values().any(|&n| n >= cap);
        let mut api = FakeApi::new(&starts, segs);
        api.page_size = page_size;
        api.order = order;
        api.hint = hint;
        api.inclusive_end = inclusive_end;
        let density = density.map(|hourly| Density { hourly });
        match api.run(density.as_ref()) {
            Ok(f) => {
                prop_assert!(!saturated, "a saturated second went unnoticed");
                prop_assert_eq!(ids(&f), api.expected());
                prop_assert_eq!(f.stats.requests, api.requests.borrow().len() as u64);
            }
            Err(WindowError::Saturated { window, .. }) => {
                prop_assert!(saturated, "spurious saturation at {}", window);
                prop_assert!(per_second.get(&window.start).copied().unwrap_or(0) >= cap);
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}
