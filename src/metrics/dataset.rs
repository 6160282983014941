//! Metric families a dataset declares for itself, one series per entity (e.g. a snapshot
//! dataset's gap counter per bot), so the core exposes them without knowing the dataset. A
//! dataset writes each family as a `static` [`DatasetMetric`] in its own module and lists it in
//! its [`DatasetInfo::metrics`](crate::datasets::DatasetInfo::metrics); the composition root
//! declares every registered dataset's families ([`Metrics::declare`]) and creates each
//! series of an enabled dataset's entities at zero ([`Metrics::register_entity`]; a
//! [`MetricKind::MeasuredGauge`] has no series until the dataset sets one); the dataset
//! emits through [`Metrics::dataset_counter`] / [`Metrics::dataset_gauge`], and removes a
//! measured gauge's series with [`Metrics::remove_dataset_series`].
//!
//! Declared families render after the run families and before
//! `smartassist_last_success_timestamp_seconds`, with their `# HELP`/`# TYPE` lines even
//! without series, like every other family.

use std::collections::BTreeMap;
use std::sync::MutexGuard;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::{counter_name, F64Gauge, Listed, Metrics};

/// Whether a declared family counts up or holds a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A monotonic `u64` counter; its name ends in `_total`.
    Counter,
    /// An `f64` gauge.
    Gauge,
    /// An `f64` gauge whose series exists only while its value is known: none is created at
    /// zero ([`Metrics::register_entity`] skips it), the dataset sets one once it has measured
    /// and removes it ([`Metrics::remove_dataset_series`]) when the value can no longer be
    /// measured, so "not measured" is an absent series, never a 0 or a stale value.
    MeasuredGauge,
}

/// A metric family a dataset declares: one series per entity, labelled `{label="<entity>"}`.
#[derive(Debug, PartialEq, Eq)]
pub struct DatasetMetric {
    /// Exposition name (a counter's ends in `_total`).
    pub name: &'static str,
    /// `# HELP` text, without the final full stop (the exposition adds it).
    pub help: &'static str,
    pub kind: MetricKind,
    /// Name of the label that holds the entity, e.g. `bot_id`.
    pub label: &'static str,
}

/// The labels of one series of a declared family: its entity.
type EntityLabel = [(&'static str, String); 1];

#[derive(Debug, Clone)]
enum DeclaredFamily {
    Counter(Family<EntityLabel, Counter>),
    Gauge(Family<EntityLabel, F64Gauge>),
}

/// The declared families, by name, and the registry that renders them in declaration order.
#[derive(Debug, Default)]
pub(super) struct DeclaredFamilies {
    pub(super) registry: Registry,
    by_name: BTreeMap<&'static str, DeclaredFamily>,
}

impl DeclaredFamilies {
    /// The family of `metric`, registered on first use.
    fn family(&mut self, metric: &'static DatasetMetric) -> &DeclaredFamily {
        let registry = &mut self.registry;
        self.by_name.entry(metric.name).or_insert_with(|| {
            let family = match metric.kind {
                MetricKind::Counter => DeclaredFamily::Counter(Family::default()),
                MetricKind::Gauge | MetricKind::MeasuredGauge => {
                    DeclaredFamily::Gauge(Family::default())
                }
            };
            match &family {
                DeclaredFamily::Counter(f) => {
                    registry.register(counter_name(metric.name), metric.help, Listed(f.clone()))
                }
                DeclaredFamily::Gauge(f) => {
                    registry.register(metric.name, metric.help, Listed(f.clone()))
                }
            }
            family
        })
    }
}

fn entity_label(metric: &DatasetMetric, entity: &str) -> EntityLabel {
    [(metric.label, entity.to_string())]
}

/// One counter series of a declared family (see [`Metrics::dataset_counter`]).
#[derive(Debug, Clone, Default)]
pub struct DatasetCounter(Counter);

impl DatasetCounter {
    pub fn inc(&self) {
        self.0.inc();
    }

    pub fn inc_by(&self, n: u64) {
        self.0.inc_by(n);
    }
}

/// One gauge series of a declared family (see [`Metrics::dataset_gauge`]).
#[derive(Debug, Clone, Default)]
pub struct DatasetGauge(F64Gauge);

impl DatasetGauge {
    pub fn set(&self, value: f64) {
        self.0.set(value);
    }
}

impl Metrics {
    pub(super) fn lock_declared(&self) -> MutexGuard<'_, DeclaredFamilies> {
        // A poisoned lock still holds consistent families (every change is one insert).
        self.inner
            .declared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Declares a dataset's family: it renders (`# HELP`/`# TYPE`) from now on, before any
    /// series exists. Idempotent; the first declaration of a name wins.
    pub fn declare(&self, metric: &'static DatasetMetric) {
        self.lock_declared().family(metric);
    }

    /// Creates the series of `entity` in `metric`'s family at zero (declaring the family if
    /// needed). Idempotent: an existing value is kept. A [`MetricKind::MeasuredGauge`] gets
    /// no series (only its family is declared).
    pub fn register_entity(&self, metric: &'static DatasetMetric, entity: &str) {
        if metric.kind == MetricKind::MeasuredGauge {
            self.declare(metric);
            return;
        }
        let label = entity_label(metric, entity);
        match self.lock_declared().family(metric) {
            DeclaredFamily::Counter(f) => drop(f.get_or_create(&label)),
            DeclaredFamily::Gauge(f) => drop(f.get_or_create(&label)),
        }
    }

    /// The series of `entity` in the counter family `metric` (declared if needed). A family
    /// declared as a gauge under that name has no counter: the handle returned then counts
    /// nowhere, and the mistake is logged.
    pub fn dataset_counter(&self, metric: &'static DatasetMetric, entity: &str) -> DatasetCounter {
        let label = entity_label(metric, entity);
        match self.lock_declared().family(metric) {
            DeclaredFamily::Counter(f) => DatasetCounter(f.get_or_create(&label).clone()),
            DeclaredFamily::Gauge(_) => {
                tracing::error!(
                    metric = metric.name,
                    "A gauge was used as a counter; the value is not exported."
                );
                DatasetCounter::default()
            }
        }
    }

    /// The value of the series of `entity` in the gauge family `metric`, when it exists.
    pub fn dataset_gauge_value(&self, metric: &'static DatasetMetric, entity: &str) -> Option<f64> {
        let label = entity_label(metric, entity);
        match self.lock_declared().family(metric) {
            DeclaredFamily::Gauge(f) => f.get(&label).map(|g| g.get()),
            DeclaredFamily::Counter(_) => None,
        }
    }

    /// Removes the series of `entity` from `metric`'s family (a value no longer known); true
    /// when there was one.
    pub fn remove_dataset_series(&self, metric: &'static DatasetMetric, entity: &str) -> bool {
        let label = entity_label(metric, entity);
        match self.lock_declared().family(metric) {
            DeclaredFamily::Counter(f) => f.remove(&label),
            DeclaredFamily::Gauge(f) => f.remove(&label),
        }
    }

    /// The series of `entity` in the gauge family `metric` (declared if needed). A family
    /// declared as a counter under that name has no gauge: the handle returned then sets
    /// nothing that is exported, and the mistake is logged.
    pub fn dataset_gauge(&self, metric: &'static DatasetMetric, entity: &str) -> DatasetGauge {
        let label = entity_label(metric, entity);
        match self.lock_declared().family(metric) {
            DeclaredFamily::Gauge(f) => DatasetGauge(f.get_or_create(&label).clone()),
            DeclaredFamily::Counter(_) => {
                tracing::error!(
                    metric = metric.name,
                    "A counter was used as a gauge; the value is not exported."
                );
                DatasetGauge::default()
            }
        }
    }
}
