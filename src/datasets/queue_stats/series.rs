//! The metric families Queue Size adds to `/metrics`, one series per polled queue (`queue_id`
//! label), declared here and listed in [`super::INFO`] so that the core registers them at zero
//! for every configured queue.

use crate::metrics::{DatasetMetric, MetricKind};

/// Queue snapshots written (one per queue and poll).
pub static SNAPSHOTS: DatasetMetric = DatasetMetric {
    name: "smartassist_queue_snapshots_total",
    help: "Queue snapshots exported (one per queue and poll)",
    kind: MetricKind::Counter,
    label: "queue_id",
};

/// Conversations waiting in the queue at its latest exported poll.
pub static WAITING: DatasetMetric = DatasetMetric {
    name: "smartassist_queue_waiting",
    help: "Conversations waiting in the queue at its latest exported poll",
    kind: MetricKind::Gauge,
    label: "queue_id",
};

/// Every family of the dataset, in the order `/metrics` shows them.
pub static METRICS: &[&DatasetMetric] = &[&SNAPSHOTS, &WAITING];
