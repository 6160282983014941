//! Temporary until the call sites take a handle: the old free emit functions, forwarding to one
//! process-wide [`Metrics`] created on first use (with every [`Dataset`] registered). Delete this
//! file once the pipeline, sync, scheduler, client and server hold a [`Metrics`] of their own.
//!
//! The old signatures carry no durations, so `http_request` and `run` count without observing
//! the duration histograms; `watermark_lag` stores a coverage time of `now - seconds` so the
//! lag keeps being computed at render time.

use std::sync::OnceLock;

use chrono::Utc;

use super::Metrics;
use crate::model::Dataset;

/// The process-wide handle (temporary until the call sites take a handle).
pub fn global() -> &'static Metrics {
    static GLOBAL: OnceLock<Metrics> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let metrics = Metrics::new();
        for dataset in Dataset::ALL {
            metrics.register_dataset(dataset.name());
        }
        metrics
    })
}

/// Temporary until the call sites take a handle: [`Metrics::http_request`] without a duration.
pub fn http_request(endpoint: &str, status: Option<u16>) {
    global().count_request(endpoint, status);
}

/// Temporary until the call sites take a handle: [`Metrics::http_retry`].
pub fn http_retry(endpoint: &str, reason: &str) {
    global().http_retry(endpoint, reason);
}

/// Temporary until the call sites take a handle: [`Metrics::http_throttled`].
pub fn http_throttled(endpoint: &str) {
    global().http_throttled(endpoint);
}

/// Temporary until the call sites take a handle: [`Metrics::rate_limit_wait`].
pub fn rate_limit_wait(seconds: f64) {
    global().rate_limit_wait(seconds);
}

/// Temporary until the call sites take a handle: [`Metrics::rejects`].
pub fn rejects(dataset: &str, n: usize) {
    global().rejects(dataset, n);
}

/// Temporary until the call sites take a handle: [`Metrics::written`].
pub fn written(dataset: &str, files: usize, rows: usize, bytes: u64) {
    global().written(dataset, files, rows, bytes);
}

/// Temporary until the call sites take a handle: [`Metrics::run`] without a duration.
pub fn run(dataset: &str, outcome: &str) {
    global().count_run(dataset, outcome);
}

/// Temporary until the call sites take a handle: [`Metrics::skipped_tick`].
pub fn skipped_tick(dataset: &str) {
    global().skipped_tick(dataset);
}

/// Temporary until the call sites take a handle: [`Metrics::intent_gap`].
pub fn intent_gap(bot_id: &str) {
    global().intent_gap(bot_id);
}

/// Temporary until the call sites take a handle: [`Metrics::intent_new_sessions`].
pub fn intent_new_sessions(bot_id: &str, n: usize) {
    global().intent_new_sessions(bot_id, n);
}

/// Temporary until the call sites take a handle: [`Metrics::last_success`].
pub fn last_success(dataset: &str, unix_seconds: f64) {
    global().last_success(dataset, unix_seconds);
}

/// Temporary until the call sites take a handle: the lag `seconds` measured now becomes the
/// coverage time `now - seconds` of one stand-in unit, see [`Metrics::set_covered`].
pub fn watermark_lag(dataset: &str, seconds: f64) {
    let millis = (seconds.max(0.0) * 1000.0) as i64;
    let until = Utc::now() - chrono::TimeDelta::milliseconds(millis);
    global().set_covered(dataset, "legacy", until);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{RUNS, SKIPPED_TICKS};

    #[test]
    fn free_functions_reach_the_process_wide_handle() {
        // The handle is shared with other tests: use a dataset name no other test uses.
        run("legacy_test", "success");
        run("legacy_test", "success");
        skipped_tick("legacy_test");
        let g = global();
        let runs = g.value(RUNS, &[("dataset", "legacy_test"), ("outcome", "success")]);
        assert_eq!(runs, Some(2.0));
        assert_eq!(
            g.value(SKIPPED_TICKS, &[("dataset", "legacy_test")]),
            Some(1.0)
        );
        let registered = g.value(RUNS, &[("dataset", "user_status"), ("outcome", "failure")]);
        assert!(registered.is_some());
    }
}
