//! What a budget reports about itself: monotonic counters per priority ([`LimiterUsage`]) for
//! progress reports, and a view of one instant ([`BudgetSnapshot`]) for metrics and status
//! pages.

use std::time::Duration;

use super::Priority;

/// What a budget has done so far for one priority (monotonic counters; subtract two
/// snapshots for a span).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimiterUsage {
    /// Grants: one per request attempt sent, retries included.
    pub granted: u64,
    /// Grants that had to wait.
    pub waits: u64,
    /// Total time spent waiting.
    pub waited: Duration,
    /// Answers the server throttled (429 or a "rate limit" body).
    pub throttled: u64,
}

impl LimiterUsage {
    /// Counters accumulated since `earlier`.
    pub fn since(&self, earlier: &LimiterUsage) -> LimiterUsage {
        LimiterUsage {
            granted: self.granted.saturating_sub(earlier.granted),
            waits: self.waits.saturating_sub(earlier.waits),
            waited: self.waited.saturating_sub(earlier.waited),
            throttled: self.throttled.saturating_sub(earlier.throttled),
        }
    }

    /// Adds `other`'s counters to these.
    pub fn add(&mut self, other: &LimiterUsage) {
        self.granted += other.granted;
        self.waits += other.waits;
        self.waited += other.waited;
        self.throttled += other.throttled;
    }
}

/// One priority in a [`BudgetSnapshot`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriorityLoad {
    pub priority: Priority,
    /// Requests waiting now.
    pub queued: usize,
    /// Grants within the last [`WINDOW`](super::WINDOW).
    pub granted_in_window: u32,
    /// `granted_in_window / requests_per_minute`.
    pub share: f64,
}

/// The state of a budget at one instant (cheap: one lock, no allocation beyond the list).
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetSnapshot {
    /// What the budget is for (`account`).
    pub scope: String,
    pub requests_per_minute: u32,
    /// Places of the window kept free for realtime requests while polls are active.
    pub realtime_reserve: u32,
    /// One entry per priority, in serving order.
    pub priorities: Vec<PriorityLoad>,
    /// Time left of a pause after a throttled answer.
    pub paused_for: Duration,
}

impl BudgetSnapshot {
    /// Share of the budget granted within the last window, every priority together.
    pub fn share_used(&self) -> f64 {
        self.priorities.iter().map(|p| p.share).sum()
    }
}
