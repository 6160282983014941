//! `smartassist_watermark_lag_seconds{dataset}`, computed at each render from what the
//! pipeline reports as exported ([`Metrics::set_covered`]): now minus the oldest point up to
//! which any unit of the dataset is exported, so it keeps growing while nothing succeeds.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::{dataset_label, DatasetLabel, F64Gauge, Listed, Metrics, WATERMARK_LAG};

/// Per dataset, per unit (a day, a bot), the time up to which the data is exported.
pub(super) type Coverage = BTreeMap<String, BTreeMap<String, DateTime<Utc>>>;

impl Metrics {
    /// Record that `unit` (a day, a bot) of `dataset` is exported up to `until`. At each render
    /// `smartassist_watermark_lag_seconds{dataset}` is `now - (oldest until over the dataset's
    /// units)`, at least 0, so it keeps growing while nothing succeeds. A dataset without any
    /// covered unit has no lag series.
    pub fn set_covered(&self, dataset: &str, unit: &str, until: DateTime<Utc>) {
        self.lock_coverage()
            .entry(dataset.to_string())
            .or_default()
            .insert(unit.to_string(), until);
    }

    pub(super) fn lock_coverage(&self) -> std::sync::MutexGuard<'_, Coverage> {
        // A poisoned lock still holds a consistent map (every update is one insert).
        self.inner
            .coverage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The lag family as of `now`, in a registry of its own (rendered last).
    pub(super) fn lag_registry(&self, now: DateTime<Utc>) -> Registry {
        let lags: Vec<(String, f64)> = self
            .lock_coverage()
            .iter()
            .filter_map(|(dataset, units)| {
                let oldest = units.values().min()?;
                let lag = (now - *oldest).num_milliseconds().max(0) as f64 / 1000.0;
                Some((dataset.clone(), lag))
            })
            .collect();
        let lag = Family::<DatasetLabel, F64Gauge>::default();
        for (dataset, seconds) in lags {
            lag.get_or_create(&dataset_label(&dataset)).set(seconds);
        }
        let mut at_render = Registry::default();
        at_render.register(
            WATERMARK_LAG,
            "Seconds between now and the oldest point up to which the dataset is exported \
             (a history dataset: its watermark; a snapshot dataset: its least recent successful poll)",
            Listed(lag),
        );
        at_render
    }
}
