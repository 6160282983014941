//! The request budget of one scope (today: the account's `requests_per_minute`), shared by
//! every request of the process, with a priority queue in front of it. Every attempt (retries
//! included) waits in [`Budget::acquire`] for a grant.
//!
//! **Never over the limit.** At most `requests_per_minute` grants fall in any window of
//! [`WINDOW`] (60 s plus [`WINDOW_MARGIN`]). The server counts arrivals in a sliding 60 s
//! window; our grant times reach it shifted by the network delay, so counting over 61 s keeps
//! any 60 s of arrivals within the limit as long as those delays differ by less than a second.
//! The budget starts as if the window before it had been used in full (evenly), so a process
//! started right after another one of the account (a restarted daemon, a backfill after a
//! daemon stopped) cannot add a burst to what the server still counts; idle time is never
//! banked either. Whoever knows when the account's previous requests ended (the budget lease
//! names its previous holder and when it stopped holding it) says so with
//! [`Budget::previous_use_ended`]: realtime requests then count the window as used in full only
//! up to that moment, or as empty when nobody used it within the last window, so the first
//! polls of a process that follows nobody go out at once instead of one per freed place.
//! When the holder also knows the previous holder's real grants (its released lease record
//! carries them, written from [`Budget::recent_grants`]), it says so with
//! [`Budget::previous_grants`]: every request then counts exactly those grants still in the
//! window, never an even spread, so a back-loaded last minute is counted as it was.
//! History keeps ramping up as if the window before the budget had been used evenly (and later,
//! if the previous use ended later): a first window filled by history in its first seconds
//! would free no place for the polls until it rolls over. A throttled
//! answer ([`Budget::throttled`]) pauses every grant for the server's `Retry-After` (or the
//! throttle back-off).
//!
//! **Realtime first.** Waiters are served strictly by [`Priority`]: realtime (snapshot polls,
//! whose data is lost if fetched late) before history. History grants are spaced evenly at
//! [`WINDOW`] / `requests_per_minute` and, while realtime requests were granted within the
//! last window, leave `realtime_reserve` places of the window free; so a poll is granted as
//! soon as it asks (up to `realtime_reserve` polls at once) however much history waits, and
//! history still uses everything else (no fixed split: with no polls active the reserve is
//! not kept). The reserve is one place per poll of a tick (configured entities at creation,
//! listed ones as their list is read, [`Budget::reserve_for_listed`]), at most a quarter of
//! the budget: the polls of a tick go out together up to that many, the rest as places free.
//! Among history, scheduled runs go first, but catch-up is never starved: while both wait,
//! every [`SCHEDULED_TURNS_PER_CATCH_UP`] + 1-th history grant goes to catch-up.
//!
//! One `Budget` is one scope and one window. A second kind is another `Budget` value with its
//! own limit and window, chosen by the caller per request: the XO runtime APIs' per-bot limits
//! (60 a minute and 1,800 an hour per bot) are [`BotBudgets`], a minute budget and an hour
//! budget per bot; nothing here is specific to the account. [`Budget::snapshot`] is a cheap view for metrics and status pages,
//! [`Budget::usage`] monotonic counters for progress reports. Uses tokio time, so tests drive
//! it with a paused clock.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

mod bot;
mod priority;
mod report;

pub use bot::{BotBudget, BotBudgets};
pub use priority::Priority;
pub use report::{BudgetSnapshot, LimiterUsage, PriorityLoad};

/// The server's window.
pub const MINUTE: Duration = Duration::from_secs(60);
/// Added to the server's window when we count grants: absorbs up to this much difference in
/// network delay between two requests (see the module docs).
pub const WINDOW_MARGIN: Duration = Duration::from_secs(1);
/// The window our grants are counted over.
pub const WINDOW: Duration = MINUTE.saturating_add(WINDOW_MARGIN);
/// The server's hourly window (the per-bot limits of the XO runtime APIs).
pub const HOUR: Duration = Duration::from_secs(3600);
/// The window the hourly per-bot grants are counted over: [`HOUR`] plus a minute. A request
/// holds its hour grant while it waits for its minute grant (at most about one minute window),
/// so the hour grant can be up to that much older than the request's arrival at the server.
pub const HOUR_WINDOW: Duration = HOUR.saturating_add(MINUTE);
/// While scheduled and catch-up requests both wait, scheduled ones get this many grants for
/// each catch-up grant.
pub const SCHEDULED_TURNS_PER_CATCH_UP: u32 = 2;

/// A request budget with its priority queue (see the module docs).
pub struct Budget {
    scope: String,
    limit: u32,
    /// The window grants are counted over ([`WINDOW`] for a per-minute budget).
    window: Duration,
    spacing: Duration,
    /// The reserve asked for at creation (the configured polls of one tick), capped.
    reserve: u32,
    /// The largest reserve: a quarter of the budget (at least a twentieth, at most half).
    reserve_cap: u32,
    state: Mutex<State>,
    /// Woken whenever the head of the queue may have changed.
    changed: Notify,
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("scope", &self.scope)
            .field("requests_per_minute", &self.limit)
            .field("realtime_reserve", &self.realtime_reserve())
            .finish_non_exhaustive()
    }
}

struct State {
    /// When the budget was created: history ramps up from here as if the window before had
    /// been used evenly, one grant every `spacing` ending here, whatever came before (so the
    /// grants of its first window stay spread and places keep freeing for the polls).
    created: Instant,
    /// When the account's requests before this budget ended (its creation unless told
    /// otherwise, [`Budget::previous_use_ended`]): the window before it counts as used evenly,
    /// one grant every `spacing` ending here, for every request (see [`State::assumed`]);
    /// `None`: nothing before.
    assumed_until: Option<Instant>,
    /// Real grants within the window, oldest first.
    log: VecDeque<(Instant, Priority)>,
    /// The real grants of the account's requests before this budget still in the window,
    /// oldest first, when known ([`Budget::previous_grants`]); `None`: not known, the even
    /// assumption stands.
    prior: Option<VecDeque<Instant>>,
    in_window: [u32; 3],
    last_grant: Option<Instant>,
    last_realtime: Option<Instant>,
    paused_until: Option<Instant>,
    queues: [VecDeque<u64>; 3],
    next_id: u64,
    /// Scheduled grants since the last catch-up grant.
    scheduled_streak: u32,
    /// The polls of one tick of each dataset whose entities are listed (see
    /// [`Budget::reserve_for_listed`]).
    listed_reserve: Vec<(&'static str, u32)>,
    usage: [LimiterUsage; 3],
}

/// What one waiter may do now.
enum Step {
    Granted,
    /// It is next; the earliest time it may be granted.
    NextAt(Instant),
    /// Someone else is next.
    Behind,
}

impl Budget {
    /// A budget of `requests_per_minute` for `scope`, keeping `realtime_reserve` places of the
    /// window free for realtime requests while polls are active (capped at a quarter of the
    /// budget, at least a twentieth of it rounded up, at most half of it).
    pub fn new(scope: &str, requests_per_minute: u32, realtime_reserve: u32) -> Budget {
        Budget::with_window(scope, requests_per_minute, WINDOW, realtime_reserve)
    }

    /// The largest realtime reserve of a budget of `limit`: a quarter of it, at least a
    /// twentieth rounded up, at most half.
    pub fn reserve_cap(limit: u32) -> u32 {
        let limit = limit.max(1);
        (limit / 4).max(limit.div_ceil(20)).min(limit / 2)
    }

    /// A budget of `limit` grants in any `window` (e.g. an hourly limit over [`HOUR_WINDOW`]),
    /// otherwise as [`Budget::new`].
    pub fn with_window(scope: &str, limit: u32, window: Duration, realtime_reserve: u32) -> Budget {
        let window = window.max(Duration::from_millis(1));
        let limit = limit.max(1);
        let reserve_cap = Budget::reserve_cap(limit);
        let reserve = realtime_reserve.min(reserve_cap);
        let now = Instant::now();
        Budget {
            scope: scope.to_string(),
            limit,
            window,
            spacing: window / limit,
            reserve,
            reserve_cap,
            state: Mutex::new(State {
                created: now,
                assumed_until: Some(now),
                log: VecDeque::new(),
                prior: None,
                in_window: [0; 3],
                last_grant: None,
                last_realtime: None,
                paused_until: None,
                queues: Default::default(),
                next_id: 0,
                scheduled_streak: 0,
                listed_reserve: Vec::new(),
                usage: [LimiterUsage::default(); 3],
            }),
            changed: Notify::new(),
        }
    }

    /// The grants allowed in one window (per minute for a per-minute budget).
    pub fn requests_per_minute(&self) -> u32 {
        self.limit
    }

    /// The window grants are counted over.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The even spacing of history grants.
    pub fn spacing(&self) -> Duration {
        self.spacing
    }

    /// Places of the window kept free for realtime requests while polls are active: one per
    /// poll of a tick (the configured ones, and those of listed entities as last told by
    /// [`Budget::reserve_for_listed`]), at most a quarter of the budget.
    pub fn realtime_reserve(&self) -> u32 {
        self.lock().reserve(self)
    }

    /// `dataset`, whose entities are listed (known only once the list is read), polls `polls`
    /// of them at each tick: the reserve keeps a place for each (within its cap), so the polls
    /// of a tick go out together even while history fills the rest of the window.
    pub fn reserve_for_listed(&self, dataset: &'static str, polls: u32) {
        {
            let mut st = self.lock();
            st.listed_reserve.retain(|(d, _)| *d != dataset);
            st.listed_reserve.push((dataset, polls));
        }
        self.changed.notify_waiters();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update keeps the state consistent statement by statement (counters move with
        // the log entries they count), so a panic elsewhere cannot leave it half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until a request of `priority` may be sent; returns how long it waited. Dropping
    /// the future gives the place in the queue up.
    pub async fn acquire(&self, priority: Priority) -> Duration {
        let asked = Instant::now();
        let id = self.lock().enqueue(priority);
        let mut place = Place {
            budget: self,
            id,
            priority,
            granted: false,
        };
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = Instant::now();
            let step = self.lock().step(self, id, priority, now, asked);
            match step {
                Step::Granted => {
                    place.granted = true;
                    self.changed.notify_waiters();
                    return now.saturating_duration_since(asked);
                }
                Step::NextAt(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = &mut changed => {}
                    }
                }
                Step::Behind => changed.await,
            }
        }
    }

    /// The server throttled a request of `priority`: no grant of any priority for `pause`
    /// (the server's `Retry-After`, or the throttle back-off), since every request sent
    /// meanwhile would be refused too.
    pub fn throttled(&self, priority: Priority, pause: Duration) {
        {
            let mut st = self.lock();
            st.usage[priority.index()].throttled += 1;
            let until = Instant::now() + pause;
            st.paused_until = Some(st.paused_until.map_or(until, |p| p.max(until)));
        }
        self.changed.notify_waiters();
    }

    /// The account's requests before this budget ended `ago` before now (`None`: none within
    /// the last window): the window before that moment counts as used in full, evenly, as it
    /// does before the budget's creation by default (see the module docs); for history, never
    /// less than its ramp from the budget's creation. Said once, before the first request, by
    /// whoever knows (the holder of the budget lease); an `ago` of a whole window or more is
    /// the same as `None`.
    pub fn previous_use_ended(&self, ago: Option<Duration>) {
        let now = Instant::now();
        // A moment before this host's monotonic clock began (a host booted less than `ago`
        // ago) counts as now: later than it was, so never fewer places in use than real.
        let until = ago
            .filter(|a| *a < self.window)
            .map(|a| now.checked_sub(a).unwrap_or(now));
        self.lock().assumed_until = until;
        self.changed.notify_waiters();
    }

    /// The account's requests before this budget were granted `ago` before now (the previous
    /// holder of the budget lease wrote them into its record): every request counts exactly
    /// those still in the window, instead of the even assumption of
    /// [`Budget::previous_use_ended`]; history also keeps its even ramp from the budget's
    /// creation (see the module docs). Said once, before the first request; only the newest
    /// `requests_per_minute` within the window are kept.
    pub fn previous_grants(&self, ago: &[Duration]) {
        let now = Instant::now();
        let mut prior: Vec<Instant> = ago
            .iter()
            .filter(|a| **a < self.window)
            // As in `previous_use_ended`: a grant older than this host's uptime counts as now.
            .map(|a| now.checked_sub(*a).unwrap_or(now))
            .collect();
        prior.sort_unstable();
        let skip = prior.len().saturating_sub(self.limit as usize);
        {
            let mut st = self.lock();
            st.assumed_until = None;
            st.prior = Some(prior.into_iter().skip(skip).collect());
        }
        self.changed.notify_waiters();
    }

    /// How long ago each grant within the window was made, newest first, the account's
    /// requests before this budget included when known ([`Budget::previous_grants`]): what
    /// the holder of the budget lease writes into its record for the next holder. At most
    /// `requests_per_minute` entries.
    pub fn recent_grants(&self) -> Vec<Duration> {
        let now = Instant::now();
        let mut st = self.lock();
        st.expire(self, now);
        let mut all: Vec<Instant> = st.log.iter().map(|(at, _)| *at).collect();
        all.extend(st.prior.iter().flatten().copied());
        all.sort_unstable_by(|a, b| b.cmp(a));
        all.truncate(self.limit as usize);
        all.into_iter()
            .map(|at| now.saturating_duration_since(at))
            .collect()
    }

    /// Counters of `priority` so far.
    pub fn usage(&self, priority: Priority) -> LimiterUsage {
        self.lock().usage[priority.index()]
    }

    /// Counters of every priority together.
    pub fn usage_total(&self) -> LimiterUsage {
        let st = self.lock();
        let mut total = LimiterUsage::default();
        for u in &st.usage {
            total.add(u);
        }
        total
    }

    /// The state now: per priority, waiters, grants in the window and the share they use.
    pub fn snapshot(&self) -> BudgetSnapshot {
        let now = Instant::now();
        let mut st = self.lock();
        st.expire(self, now);
        let priorities = Priority::ALL
            .iter()
            .map(|&p| {
                let granted = st.in_window[p.index()];
                PriorityLoad {
                    priority: p,
                    queued: st.queues[p.index()].len(),
                    granted_in_window: granted,
                    share: f64::from(granted) / f64::from(self.limit),
                }
            })
            .collect();
        BudgetSnapshot {
            scope: self.scope.clone(),
            requests_per_minute: self.limit,
            realtime_reserve: st.reserve(self),
            priorities,
            paused_for: st
                .paused_until
                .map_or(Duration::ZERO, |p| p.saturating_duration_since(now)),
        }
    }
}

/// A waiter's place in the queue; leaving it (a dropped `acquire`) frees it for the next.
struct Place<'a> {
    budget: &'a Budget,
    id: u64,
    priority: Priority,
    granted: bool,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if self.granted {
            return;
        }
        self.budget.lock().queues[self.priority.index()].retain(|&w| w != self.id);
        self.budget.changed.notify_waiters();
    }
}

impl State {
    fn enqueue(&mut self, priority: Priority) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.queues[priority.index()].push_back(id);
        id
    }

    /// The reserve now: the configured one plus the listed entities', capped.
    fn reserve(&self, b: &Budget) -> u32 {
        self.listed_reserve
            .iter()
            .fold(b.reserve, |sum, (_, n)| sum.saturating_add(*n))
            .min(b.reserve_cap)
    }

    /// Drops grants that left the window.
    fn expire(&mut self, b: &Budget, now: Instant) {
        while let Some(&(at, p)) = self.log.front() {
            if at + b.window > now {
                break;
            }
            self.log.pop_front();
            self.in_window[p.index()] -= 1;
        }
        if let Some(prior) = self.prior.as_mut() {
            while prior.front().is_some_and(|at| *at + b.window <= now) {
                prior.pop_front();
            }
        }
    }

    /// When the assumed grants a request of `class` counts end: the previous use for
    /// realtime; for history the later of that and the budget's creation (its ramp).
    fn assumed_until(&self, class: Priority) -> Option<Instant> {
        match class {
            Priority::Realtime => self.assumed_until,
            _ => Some(
                self.assumed_until
                    .map_or(self.created, |u| u.max(self.created)),
            ),
        }
    }

    /// Assumed grants (from before the budget existed, ending at `until`) still in the window
    /// at `now`, and how many of them have left it. The k-th of them (1-based) leaves at
    /// `until + k * spacing`.
    fn assumed(&self, b: &Budget, now: Instant, until: Option<Instant>) -> (u32, u32) {
        let Some(until) = until else {
            return (0, b.limit);
        };
        let elapsed = now.saturating_duration_since(until).as_nanos();
        let left = elapsed / b.spacing.as_nanos().max(1);
        let left = u32::try_from(left).unwrap_or(u32::MAX).min(b.limit);
        (b.limit - left, left)
    }

    /// The earliest time the window holds fewer than `limit` grants (assumed as for a
    /// request of `class`, or real), assuming no grant meanwhile.
    fn room_at(&self, b: &Budget, now: Instant, limit: u32, class: Priority) -> Instant {
        let Some(prior) = &self.prior else {
            return self.room_at_assumed(b, now, limit, class);
        };
        let real = self.room_at_real(b, prior, now, limit);
        match class {
            Priority::Realtime => real,
            _ => real.max(self.room_at_assumed(b, now, limit, class)),
        }
    }

    /// As [`State::room_at`], counting the known grants before the budget (`prior`) and
    /// ours: the (count - limit + 1)-th oldest of them must leave first.
    fn room_at_real(
        &self,
        b: &Budget,
        prior: &VecDeque<Instant>,
        now: Instant,
        limit: u32,
    ) -> Instant {
        let count = prior.len() + self.log.len();
        let Some(k) = (count + 1).checked_sub(limit as usize).filter(|k| *k > 0) else {
            return now;
        };
        let mut ours = self.log.iter().map(|(at, _)| *at).peekable();
        let mut theirs = prior.iter().copied().peekable();
        let mut kth = now;
        for _ in 0..k {
            kth = match (theirs.peek(), ours.peek()) {
                (Some(t), Some(o)) if t <= o => theirs.next(),
                (Some(_), None) => theirs.next(),
                _ => ours.next(),
            }
            .unwrap_or(now);
        }
        kth + b.window
    }

    /// As [`State::room_at`], counting the assumed grants before the budget and ours.
    fn room_at_assumed(&self, b: &Budget, now: Instant, limit: u32, class: Priority) -> Instant {
        let until = self.assumed_until(class);
        let (assumed, left) = self.assumed(b, now, until);
        let count = assumed + self.log.len() as u32;
        if count < limit {
            return now;
        }
        // The (count - limit + 1)-th oldest grant must leave first.
        let k = count - limit + 1;
        if k <= assumed {
            until.unwrap_or(now) + b.spacing * (left + k)
        } else {
            let (at, _) = self.log[(k - assumed - 1) as usize];
            at + b.window
        }
    }

    /// The priority served next, if anyone waits.
    fn next_class(&self) -> Option<Priority> {
        let waiting = |p: Priority| !self.queues[p.index()].is_empty();
        if waiting(Priority::Realtime) {
            return Some(Priority::Realtime);
        }
        match (waiting(Priority::Scheduled), waiting(Priority::CatchUp)) {
            (true, true) if self.scheduled_streak >= SCHEDULED_TURNS_PER_CATCH_UP => {
                Some(Priority::CatchUp)
            }
            (true, _) => Some(Priority::Scheduled),
            (false, true) => Some(Priority::CatchUp),
            (false, false) => None,
        }
    }

    /// The earliest time a request of `class` may be granted, the window as it is at `now`.
    fn ready_at(&self, b: &Budget, class: Priority, now: Instant) -> Instant {
        let mut at = now.max(self.paused_until.unwrap_or(now));
        if class == Priority::Realtime {
            return at.max(self.room_at(b, now, b.limit, class));
        }
        let polls_active = self.last_realtime.is_some_and(|t| t + b.window > now);
        let limit = if polls_active {
            b.limit - self.reserve(b)
        } else {
            b.limit
        };
        at = at.max(self.room_at(b, now, limit, class));
        if let Some(last) = self.last_grant {
            at = at.max(last + b.spacing);
        }
        at
    }

    fn step(
        &mut self,
        b: &Budget,
        id: u64,
        priority: Priority,
        now: Instant,
        asked: Instant,
    ) -> Step {
        self.expire(b, now);
        let is_next = self.next_class() == Some(priority)
            && self.queues[priority.index()].front() == Some(&id);
        if !is_next {
            return Step::Behind;
        }
        let at = self.ready_at(b, priority, now);
        if at > now {
            return Step::NextAt(at);
        }
        self.queues[priority.index()].pop_front();
        self.log.push_back((now, priority));
        self.in_window[priority.index()] += 1;
        self.last_grant = Some(now);
        match priority {
            Priority::Realtime => self.last_realtime = Some(now),
            Priority::Scheduled => self.scheduled_streak = self.scheduled_streak.saturating_add(1),
            Priority::CatchUp => self.scheduled_streak = 0,
        }
        let waited = now.saturating_duration_since(asked);
        let usage = &mut self.usage[priority.index()];
        usage.granted += 1;
        if !waited.is_zero() {
            usage.waits += 1;
            usage.waited += waited;
        }
        Step::Granted
    }
}

#[cfg(test)]
mod tests;
