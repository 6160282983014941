//! Backfill: export a range of local days with bounded concurrency through the shared rate
//! limiter, writing each day as soon as it is complete and carrying on when a day fails. Failed
//! days get one more try at the end; whatever still fails is reported (the command exits 1).
//! IntentRealtimeData has no history, so a backfill of it takes the current snapshot.
//!
//! The unit of work is a day, not a (day, page) request: the pages of one day are sequential
//! because only `hasMore` says whether another page exists (the API echoes no total count), and
//! `concurrency` days in flight already keep every rate-limit slot busy. Memory does not depend
//! on `concurrency` or the range length: response bodies are read one page at a time under the
//! exporter's memory gate ([`crate::pipeline::PAGES_IN_MEMORY`]), and a day waiting for its next
//! page holds only the compressed Parquet bytes written so far.
//! Backfill never reads or writes the live watermarks: re-exporting old days cannot move them.
//! Progress (bar on a terminal, log lines otherwise) is reported by [`crate::progress`].

use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use futures::stream::{self, StreamExt};
use tracing::{error, info, warn};

use crate::error::Error;
use crate::model::Dataset;
use crate::pipeline::{DayReport, Exporter, IntentReport};
use crate::progress::{BackfillProgress, ProgressMode};

/// What to backfill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillRequest {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub datasets: Vec<Dataset>,
    pub concurrency: usize,
    pub skip_existing: bool,
}

/// What a backfill did.
#[derive(Debug, Clone, Default)]
pub struct BackfillReport {
    pub days: Vec<DayReport>,
    pub skipped_days: Vec<NaiveDate>,
    pub failed_days: Vec<(NaiveDate, String)>,
    pub bots: Vec<(String, IntentReport)>,
    pub failed_bots: Vec<(String, String)>,
    pub elapsed: Duration,
}

impl BackfillReport {
    pub fn rows(&self) -> usize {
        self.days.iter().map(|d| d.rows).sum::<usize>()
            + self.bots.iter().map(|(_, b)| b.new_sessions).sum::<usize>()
    }
    pub fn requests(&self) -> usize {
        self.days.iter().map(|d| d.requests).sum::<usize>() + self.bots.len()
    }
    pub fn rejects(&self) -> usize {
        self.days.iter().map(|d| d.rejects).sum::<usize>()
            + self.bots.iter().map(|(_, b)| b.rejects).sum::<usize>()
    }

    /// `Err(Error::Partial)` when anything failed, listing the failed units.
    pub fn into_result(self) -> Result<BackfillReport, Error> {
        let total =
            self.days.len() + self.failed_days.len() + self.bots.len() + self.failed_bots.len();
        let units: Vec<String> = self
            .failed_days
            .iter()
            .map(|(d, _)| d.to_string())
            .chain(self.failed_bots.iter().map(|(b, _)| format!("bot {b}")))
            .collect();
        if units.is_empty() {
            Ok(self)
        } else {
            Err(Error::Partial {
                failed: units.len(),
                total,
                units,
            })
        }
    }
}

/// Inclusive list of days.
pub fn days_in_range(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    from.iter_days().take_while(|d| *d <= to).collect()
}

/// Run a backfill. Errors of individual days are collected in the report, not returned.
pub async fn backfill(exporter: &Exporter, req: &BackfillRequest) -> Result<BackfillReport, Error> {
    if req.from > req.to {
        return Err(Error::Usage(format!(
            "--from {} is after --to {}",
            req.from, req.to
        )));
    }
    let started = Instant::now();
    let mut report = BackfillReport::default();
    let config = exporter.config();
    let datasets: Vec<Dataset> = if req.datasets.is_empty() {
        Dataset::ALL
            .into_iter()
            .filter(|d| match d {
                Dataset::UserStatus => config.user_status.enabled,
                Dataset::IntentRealtime => config.intent.enabled,
            })
            .collect()
    } else {
        req.datasets.clone()
    };
    for dataset in &datasets {
        let removed = exporter.sink().cleanup_staging(*dataset).await?;
        if removed > 0 {
            info!(
                dataset = dataset.name(),
                removed, "Removed staging files left by an interrupted write."
            );
        }
    }

    if datasets.contains(&Dataset::UserStatus) {
        let mut days = Vec::new();
        for day in days_in_range(req.from, req.to) {
            if req.skip_existing
                && exporter
                    .sink()
                    .partition_exists(&exporter.user_status_key(day))
                    .await?
            {
                report.skipped_days.push(day);
            } else {
                days.push(day);
            }
        }
        let total = days.len();
        info!(dataset = "user_status", from = %req.from, to = %req.to, days = total, skipped = report.skipped_days.len(), concurrency = req.concurrency, "Backfill started.");
        let exported_at = Utc::now();
        let progress =
            BackfillProgress::start(total as u64, exporter.client(), ProgressMode::detect());
        let mut failed = Vec::new();
        let mut results = stream::iter(days)
            .map(
                |day| async move { (day, exporter.export_user_status_day(day, exported_at).await) },
            )
            .buffer_unordered(req.concurrency.max(1));
        while let Some((day, result)) = results.next().await {
            match result {
                Ok(r) => {
                    progress.day_done(r.rows);
                    report.days.push(r);
                }
                Err(e) => {
                    warn!(%day, error = %error_chain(&e), "Day failed; it will be retried at the end.");
                    progress.day_failed();
                    failed.push(day);
                }
            }
        }
        drop(results);
        for day in failed {
            progress.retrying();
            match exporter.export_user_status_day(day, exported_at).await {
                Ok(r) => {
                    progress.day_done(r.rows);
                    report.days.push(r);
                }
                Err(e) => {
                    let msg = error_chain(&e);
                    error!(%day, error = %msg, "Day failed again; not exported.");
                    progress.day_failed();
                    report.failed_days.push((day, msg));
                }
            }
        }
        progress.finish();
        report.days.sort_by_key(|d| d.day);
    }

    if datasets.contains(&Dataset::IntentRealtime) {
        for bot in &config.intent.bot_ids {
            match exporter.export_intent_bot(bot, Utc::now()).await {
                Ok(r) => report.bots.push((bot.clone(), r)),
                Err(e) => {
                    let msg = error_chain(&e);
                    error!(bot_id = %bot, error = %msg, "Bot snapshot failed.");
                    report.failed_bots.push((bot.clone(), msg));
                }
            }
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// An error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_inclusive() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        assert_eq!(
            days_in_range(d("2024-02-28"), d("2024-03-01")),
            vec![d("2024-02-28"), d("2024-02-29"), d("2024-03-01")]
        );
        assert_eq!(days_in_range(d("2024-03-01"), d("2024-03-01")).len(), 1);
        assert!(days_in_range(d("2024-03-02"), d("2024-03-01")).is_empty());
    }
}
