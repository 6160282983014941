//! The per-bot budgets' metrics (the XO runtime APIs' limits, see
//! [`crate::client::BotBudgets`]), next to the account budget's in `budget.rs` and shaped like
//! them: requests granted and the time they waited, per bot; and, read from the budgets at
//! each scrape, the share of each window's limit granted within it (`window` = `minute` or
//! `hour`) and the requests waiting now. The `bot_id` label takes only the bots the composition
//! root registers (the configured bots of the datasets whose requests use these budgets), so
//! the series are bounded by the config. The root hands the budgets over as a reader closure
//! ([`Metrics::watch_bot_budgets`]), so this module knows no client types.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::reading::{encode_metric, ReaderSlot, ReadingCollector};
use super::{counter_name, create, F64Gauge, HistogramFamily, Listed, Metrics};

pub const BOT_BUDGET_REQUESTS: &str = "smartassist_bot_budget_requests_total";
pub const BOT_BUDGET_WAIT: &str = "smartassist_bot_budget_wait_seconds";
pub const BOT_BUDGET_USED: &str = "smartassist_bot_budget_used_ratio";
pub const BOT_BUDGET_QUEUED: &str = "smartassist_bot_budget_queued_requests";

/// One bot's budgets as they are at a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct BotBudgetReading {
    pub bot_id: String,
    /// Share of `bot_requests_per_minute` granted within the minute window.
    pub minute_share: f64,
    /// Share of `bot_requests_per_hour` granted within the hour window.
    pub hour_share: f64,
    /// Requests waiting now (for either window).
    pub queued: u64,
}

/// Reads the bots' budgets at a scrape.
pub type BotBudgetReader = Arc<dyn Fn() -> Vec<BotBudgetReading> + Send + Sync>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BotLabel {
    bot_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BotWindowLabels {
    bot_id: String,
    window: String,
}

fn bot_label(bot_id: &str) -> BotLabel {
    BotLabel {
        bot_id: bot_id.to_string(),
    }
}

fn wait_histogram() -> Histogram {
    Histogram::new(super::budget::WAIT_BUCKETS)
}

/// The per-bot budget families of one [`Metrics`] handle.
pub(super) struct BotBudgetFamilies {
    requests: Family<BotLabel, Counter>,
    wait: HistogramFamily<BotLabel>,
    reader: ReaderSlot<Vec<BotBudgetReading>>,
}

impl std::fmt::Debug for BotBudgetFamilies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotBudgetFamilies").finish_non_exhaustive()
    }
}

impl BotBudgetFamilies {
    pub(super) fn new() -> BotBudgetFamilies {
        BotBudgetFamilies {
            requests: Family::default(),
            wait: Family::new_with_constructor(wait_histogram),
            reader: ReaderSlot::default(),
        }
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            counter_name(BOT_BUDGET_REQUESTS),
            "Requests granted by a bot's budget of the XO runtime APIs (bot_requests_per_minute \
             and _per_hour) by bot, retries included",
            Listed(self.requests.clone()),
        );
        r.register(
            BOT_BUDGET_WAIT,
            "Time requests waited for their bot's budget by bot",
            Listed(self.wait.clone()),
        );
        r.register_collector(Box::new(ReadingCollector::new(
            self.reader.clone(),
            encode_reading,
        )));
    }
}

/// The bots' gauges from their reading at a scrape (the families without series before
/// [`Metrics::watch_bot_budgets`]).
fn encode_reading(
    reading: Option<Vec<BotBudgetReading>>,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let used = Family::<BotWindowLabels, F64Gauge>::default();
    let queued = Family::<BotLabel, F64Gauge>::default();
    for r in reading.unwrap_or_default() {
        for (window, share) in [("minute", r.minute_share), ("hour", r.hour_share)] {
            used.get_or_create(&BotWindowLabels {
                bot_id: r.bot_id.clone(),
                window: window.to_string(),
            })
            .set(share);
        }
        queued
            .get_or_create(&bot_label(&r.bot_id))
            .set(r.queued as f64);
    }
    encode_metric(
        encoder,
        BOT_BUDGET_USED,
        "Share of a bot's limit granted within the window by bot and window (minute: \
         bot_requests_per_minute over 61 s; hour: bot_requests_per_hour over 61 min).",
        &used,
    )?;
    encode_metric(
        encoder,
        BOT_BUDGET_QUEUED,
        "Requests waiting for their bot's budget now by bot.",
        &queued,
    )
}

impl Metrics {
    /// Create the zero-valued per-bot budget series of `bot_id` (requests and the wait
    /// histogram). Idempotent.
    pub fn register_bot_budget(&self, bot_id: &str) {
        let f = &self.inner.budget.bots;
        create(&f.requests, &bot_label(bot_id));
        create(&f.wait, &bot_label(bot_id));
    }

    /// `bot_id`'s budget granted a request after `waited`.
    pub fn bot_budget_grant(&self, bot_id: &str, waited: Duration) {
        let f = &self.inner.budget.bots;
        f.requests.get_or_create(&bot_label(bot_id)).inc();
        f.wait
            .get_or_create(&bot_label(bot_id))
            .observe(waited.as_secs_f64());
    }

    /// Report `smartassist_bot_budget_used_ratio` and `smartassist_bot_budget_queued_requests`
    /// from `read` at every scrape (replaces a reader given before).
    pub fn watch_bot_budgets(&self, read: BotBudgetReader) {
        self.inner.budget.bots.reader.set(read);
    }
}
