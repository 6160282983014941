//! The request budget's metrics (see [`crate::client::budget`]): requests granted per dataset
//! and priority, the time requests waited for the budget per priority, and, read from the
//! budget at each scrape, the share of `requests_per_minute` each priority used within the
//! budget's window and how many requests wait now. The composition root hands the budget to
//! [`Metrics::watch_budget`] as a reader closure, so this module knows no client types.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::reading::{encode_metric, ReaderSlot, ReadingCollector};
use super::{counter_name, create, F64Gauge, HistogramFamily, Listed, Metrics};

pub const BUDGET_REQUESTS: &str = "smartassist_budget_requests_total";
pub const BUDGET_WAIT: &str = "smartassist_budget_wait_seconds";
pub const BUDGET_USED: &str = "smartassist_budget_used_ratio";
pub const BUDGET_QUEUED: &str = "smartassist_budget_queued_requests";

/// Upper bounds of `smartassist_budget_wait_seconds`: 10 ms to 5 min.
pub(super) const WAIT_BUCKETS: [f64; 13] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// One priority as the budget reports it at a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetReading {
    /// The priority's label (`realtime`, `scheduled`, `catch_up`).
    pub priority: &'static str,
    /// Requests waiting now.
    pub queued: u64,
    /// Share of `requests_per_minute` granted within the budget's window.
    pub share: f64,
}

/// Reads the budget at a scrape.
pub type BudgetReader = Arc<dyn Fn() -> Vec<BudgetReading> + Send + Sync>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    dataset: String,
    priority: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PriorityLabel {
    priority: String,
}

fn priority_label(priority: &str) -> PriorityLabel {
    PriorityLabel {
        priority: priority.to_string(),
    }
}

fn wait_histogram() -> Histogram {
    Histogram::new(WAIT_BUCKETS)
}

/// The budget families of one [`Metrics`] handle.
pub(super) struct BudgetFamilies {
    requests: Family<RequestLabels, Counter>,
    wait: HistogramFamily<PriorityLabel>,
    reader: ReaderSlot<Vec<BudgetReading>>,
    /// The per-bot budgets' families (`bot_budget.rs`).
    pub(super) bots: super::bot_budget::BotBudgetFamilies,
}

impl std::fmt::Debug for BudgetFamilies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetFamilies").finish_non_exhaustive()
    }
}

impl BudgetFamilies {
    pub(super) fn new() -> BudgetFamilies {
        BudgetFamilies {
            requests: Family::default(),
            wait: Family::new_with_constructor(wait_histogram),
            reader: ReaderSlot::default(),
            bots: super::bot_budget::BotBudgetFamilies::new(),
        }
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            counter_name(BUDGET_REQUESTS),
            "Requests granted by the account's request budget by dataset and priority \
             (realtime, scheduled, catch_up), retries included",
            Listed(self.requests.clone()),
        );
        r.register(
            BUDGET_WAIT,
            "Time requests waited for the request budget by priority",
            Listed(self.wait.clone()),
        );
        r.register_collector(Box::new(ReadingCollector::new(
            self.reader.clone(),
            encode_reading,
        )));
        self.bots.register(r);
    }
}

/// The budget's gauges from its reading at a scrape (nothing before [`Metrics::watch_budget`]).
fn encode_reading(
    reading: Option<Vec<BudgetReading>>,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let Some(reading) = reading else {
        return Ok(());
    };
    let used = Family::<PriorityLabel, F64Gauge>::default();
    let queued = Family::<PriorityLabel, F64Gauge>::default();
    for r in reading {
        used.get_or_create(&priority_label(r.priority)).set(r.share);
        queued
            .get_or_create(&priority_label(r.priority))
            .set(r.queued as f64);
    }
    encode_metric(
        encoder,
        BUDGET_USED,
        "Share of requests_per_minute granted within the budget's window (61 s) by priority.",
        &used,
    )?;
    encode_metric(
        encoder,
        BUDGET_QUEUED,
        "Requests waiting for the request budget now by priority.",
        &queued,
    )
}

impl Metrics {
    /// Create the zero-valued budget series of `dataset` for each of `priorities`, and the
    /// wait histogram of each. Idempotent.
    pub fn register_budget(&self, dataset: &str, priorities: &[&str]) {
        let f = &self.inner.budget;
        for p in priorities {
            create(
                &f.requests,
                &RequestLabels {
                    dataset: dataset.to_string(),
                    priority: p.to_string(),
                },
            );
            create(&f.wait, &priority_label(p));
        }
    }

    /// The budget granted a request of `dataset` at `priority` after `waited`.
    pub fn budget_grant(&self, dataset: &str, priority: &str, waited: Duration) {
        let f = &self.inner.budget;
        f.requests
            .get_or_create(&RequestLabels {
                dataset: dataset.to_string(),
                priority: priority.to_string(),
            })
            .inc();
        f.wait
            .get_or_create(&priority_label(priority))
            .observe(waited.as_secs_f64());
    }

    /// Report `smartassist_budget_used_ratio` and `smartassist_budget_queued_requests` from
    /// `read` at every scrape (replaces a reader given before).
    pub fn watch_budget(&self, read: BudgetReader) {
        self.inner.budget.reader.set(read);
    }
}
