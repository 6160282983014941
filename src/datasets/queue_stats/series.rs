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

/// Polls whose answer held no record of the polled queue (nothing written for that poll).
pub static MISSING: DatasetMetric = DatasetMetric {
    name: "smartassist_queue_stats_missing_total",
    help: "Polls whose answer held no record of the polled queue (nothing written)",
    kind: MetricKind::Counter,
    label: "queue_id",
};

/// Identical repeats of the polled queue's record in one answer, skipped.
pub static REPEATED: DatasetMetric = DatasetMetric {
    name: "smartassist_queue_stats_repeated_records_total",
    help: "Identical repeats of the polled queue's record within one answer (skipped)",
    kind: MetricKind::Counter,
    label: "queue_id",
};

/// Second records of the polled queue in one answer that differ from the first, rejected.
pub static CONFLICTING: DatasetMetric = DatasetMetric {
    name: "smartassist_queue_stats_conflicting_records_total",
    help: "Second records of the polled queue within one answer that differ from the first \
           (rejected)",
    kind: MetricKind::Counter,
    label: "queue_id",
};

/// Records of other queues in the answer to a poll of this queue, rejected.
pub static OTHER_QUEUE: DatasetMetric = DatasetMetric {
    name: "smartassist_queue_stats_other_queue_records_total",
    help: "Records of other queues in the answer to a poll of this queue (rejected)",
    kind: MetricKind::Counter,
    label: "queue_id",
};

/// Every family of the dataset, in the order `/metrics` shows them.
pub static METRICS: &[&DatasetMetric] = &[
    &SNAPSHOTS,
    &WAITING,
    &MISSING,
    &REPEATED,
    &CONFLICTING,
    &OTHER_QUEUE,
];
