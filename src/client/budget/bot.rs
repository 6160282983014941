//! The per-bot budgets of the XO runtime APIs: a minute [`Budget`] and an hour [`Budget`] per
//! bot, created on first use (see [`BotBudgets`]).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Budget, LimiterUsage, Priority, HOUR_WINDOW};

/// The per-bot limits of the XO runtime APIs (getSessions, getMessages; reference: 60 a minute
/// and 1,800 an hour per bot, on rolling windows, independent of the account's SmartAssist
/// budget): one [`BotBudget`] per bot, created on first use and shared by every request of the
/// process for that bot.
pub struct BotBudgets {
    per_minute: u32,
    per_hour: u32,
    bots: Mutex<std::collections::HashMap<String, Arc<BotBudget>>>,
}

impl fmt::Debug for BotBudgets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotBudgets")
            .field("per_minute", &self.per_minute)
            .field("per_hour", &self.per_hour)
            .finish_non_exhaustive()
    }
}

impl BotBudgets {
    /// `per_minute` grants in any [`WINDOW`] and `per_hour` in any [`HOUR_WINDOW`], per bot.
    pub fn new(per_minute: u32, per_hour: u32) -> BotBudgets {
        BotBudgets {
            per_minute,
            per_hour,
            bots: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The budget of `bot_id` (the same value for every caller).
    pub fn of(&self, bot_id: &str) -> Arc<BotBudget> {
        let mut bots = self.bots.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(bots.entry(bot_id.to_string()).or_insert_with(|| {
            Arc::new(BotBudget {
                bot_id: bot_id.to_string(),
                minute: Budget::new(&format!("bot {bot_id}"), self.per_minute, 0),
                hour: Budget::with_window(
                    &format!("bot {bot_id} (hour)"),
                    self.per_hour,
                    HOUR_WINDOW,
                    0,
                ),
            })
        }))
    }

    /// Counters of `priority` so far, summed over every bot's budget (see
    /// [`BotBudget::usage`]).
    pub fn usage(&self, priority: Priority) -> LimiterUsage {
        let mut total = LimiterUsage::default();
        for bot in self.all() {
            total.add(&bot.usage(priority));
        }
        total
    }

    /// `requests_per_minute` and `_per_hour` of every bot's budget.
    pub fn limits(&self) -> (u32, u32) {
        (self.per_minute, self.per_hour)
    }

    /// Every bot's budget created so far (the configured bots of the datasets that use them),
    /// sorted by bot id.
    pub fn all(&self) -> Vec<Arc<BotBudget>> {
        let bots = self.bots.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<Arc<BotBudget>> = bots.values().cloned().collect();
        all.sort_by(|a, b| a.bot_id.cmp(&b.bot_id));
        all
    }
}

/// One bot's two budgets: a request needs a grant of each (see [`BotBudget::acquire`]).
#[derive(Debug)]
pub struct BotBudget {
    pub bot_id: String,
    pub minute: Budget,
    pub hour: Budget,
}

impl BotBudget {
    /// Waits for an hour grant, then a minute grant (the minute budget is the faster one, so
    /// the request goes out soon after its hour grant; [`HOUR_WINDOW`] covers the difference).
    /// Returns the total wait.
    pub async fn acquire(&self, priority: Priority) -> Duration {
        let hour = self.hour.acquire(priority).await;
        hour + self.minute.acquire(priority).await
    }

    /// The server throttled a request to this bot: both budgets pause.
    pub fn throttled(&self, priority: Priority, pause: Duration) {
        self.hour.throttled(priority, pause);
        self.minute.throttled(priority, pause);
    }

    /// Counters of `priority` so far: one grant per request (a request takes a grant of each
    /// budget, so the minute budget's grants and throttled answers count them once), and the
    /// waits for either budget.
    pub fn usage(&self, priority: Priority) -> LimiterUsage {
        let (minute, hour) = (self.minute.usage(priority), self.hour.usage(priority));
        LimiterUsage {
            granted: minute.granted,
            waits: minute.waits + hour.waits,
            waited: minute.waited + hour.waited,
            throttled: minute.throttled,
        }
    }
}
