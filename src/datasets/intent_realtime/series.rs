//! The metric families IntentRealtimeData adds to `/metrics`, one series per polled bot
//! (`bot_id` label), declared here and listed in [`super::INFO`] so that the core registers
//! them at zero for every configured bot. deploy/prometheus-rules.yml alerts on
//! [`GAPS`]; renaming either family breaks dashboards and alerts.

use crate::metrics::{DatasetMetric, MetricKind};

/// Polls whose every session was new although the poll was full: sessions between two polls
/// were probably missed (counted once per such poll).
pub static GAPS: DatasetMetric = DatasetMetric {
    name: "smartassist_intent_gaps_total",
    help: "Polls that returned a full page of unseen sessions: sessions were probably missed",
    kind: MetricKind::Counter,
    label: "bot_id",
};

/// Sessions written for the first time.
pub static NEW_SESSIONS: DatasetMetric = DatasetMetric {
    name: "smartassist_intent_new_sessions_total",
    help: "Sessions exported for the first time",
    kind: MetricKind::Counter,
    label: "bot_id",
};

/// Every family of the dataset, in the order `/metrics` shows them.
pub static METRICS: &[&DatasetMetric] = &[&GAPS, &NEW_SESSIONS];
