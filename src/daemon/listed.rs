//! The polls of a snapshot dataset whose entities are listed rather than configured
//! ([`EntitySource::List`]: `queue_stats` with `queue_ids` empty polls every queue of the
//! latest `queues` snapshot). The set changes while the daemon runs, so such a dataset has
//! one job instead of one per entity: at every tick it reads the current list (cheaply: the
//! list is re-read only when its snapshot file changed), then polls each entity as a unit of
//! its own ([`pipeline::run_snapshot`]: realtime priority, coverage record, poll state and
//! metrics per entity, exactly as a configured entity's job), up to [`POLLS_AT_ONCE`] at
//! once; before it polls, it tells the request budget how many polls the tick holds, for its
//! realtime reserve ([`crate::client::Budget::reserve_for_listed`]). A queue added to the list is polled from the first tick that reads the new
//! snapshot, a removed one is no longer polled from then on. Without a list recent enough
//! (first start, before the `queues` job has written one) nothing is polled: the tick fails
//! with a reason that says so, shown on the status page and, if it lasts, by `/healthz`.
//!
//! The trade-off of one job: a tick ends when its slowest poll ends, and a tick that finds
//! the previous one still busy is skipped for every entity (counted as a skipped tick).

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tracing::{error, info, warn};

use super::poll_budget::listed_demand;
use crate::datasets::{Context, EntitySource, SnapshotDataset};
use crate::error_chain::error_chain;
use crate::pipeline::{self, Outcome, RunSummary};
use crate::scheduler::RunSignal;

/// Polls of one tick in flight at once (futures of the job's one task): bounds the requests
/// and answers held at once for a long list (a Queue Size answer is a few hundred bytes).
pub const POLLS_AT_ONCE: usize = 16;

/// Failed entities named in a tick's error, at most (the rest are counted).
const FAILURES_NAMED: usize = 3;

/// Why nothing could be polled: the list is missing or could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoList(pub String);

/// Reads the current list and polls each of its entities once, for the tick `at`: each
/// entity's job name (`queue_stats/<id>`) with its run summary, in list order.
pub async fn poll_listed(
    dataset: &dyn SnapshotDataset,
    cx: &Context,
    at: DateTime<Utc>,
) -> Result<Vec<(String, RunSummary)>, NoList> {
    let name = dataset.info().name;
    let entities = match dataset.current_entities(cx, at).await {
        Ok(Some(entities)) => entities,
        Ok(None) => {
            let reason = waiting_reason(dataset);
            warn!(
                dataset = name,
                %reason,
                "Polled nothing: no list recent enough to take the entities from."
            );
            return Err(NoList(reason));
        }
        Err(e) => {
            let reason = format!(
                "could not read the {} list: {}",
                dataset.entity_kind(),
                error_chain(&e)
            );
            warn!(dataset = name, %reason, "Polled nothing: the list could not be read.");
            return Err(NoList(reason));
        }
    };
    // A place of the budget's realtime reserve for each poll of the tick, so they go out
    // together even while history fills the rest of the window.
    cx.client
        .budget()
        .reserve_for_listed(name, u32::try_from(entities.len()).unwrap_or(u32::MAX));
    let polls: Vec<BoxFuture<'_, (usize, String, RunSummary)>> = entities
        .into_iter()
        .enumerate()
        .map(|(i, entity)| {
            async move {
                let summary = pipeline::run_snapshot(dataset, cx, &entity, at).await;
                (i, format!("{name}/{entity}"), summary)
            }
            .boxed()
        })
        .collect();
    let mut summaries: Vec<(usize, String, RunSummary)> = futures::stream::iter(polls)
        .buffer_unordered(POLLS_AT_ONCE)
        .collect()
        .await;
    summaries.sort_by_key(|(i, _, _)| *i);
    Ok(summaries.into_iter().map(|(_, n, s)| (n, s)).collect())
}

/// The one-line reason of a tick without a list.
fn waiting_reason(dataset: &dyn SnapshotDataset) -> String {
    match dataset.entity_source() {
        EntitySource::List {
            dataset: list,
            max_age_days,
        } => format!(
            "waiting for the {kind} list: no `{list}` snapshot of the last {max_age_days} days in \
             the output, so no {kind} was polled; the `{list}` export writes one (it runs at \
             start and on its schedule)",
            kind = dataset.entity_kind()
        ),
        EntitySource::Config => format!("no {} to poll", dataset.entity_kind()),
    }
}

/// The job's work: one tick of [`poll_listed`], as the scheduler's signal (rows of every
/// poll; `Err` naming the failed polls, or why nothing was polled).
/// `polled` is the number of entities the previous tick polled (kept by the job): when it
/// changes, the new demand on the request budget is logged (an error when the polls alone
/// exceed `api.requests_per_minute`: they will fall behind).
pub async fn listed_tick(
    dataset: &dyn SnapshotDataset,
    cx: &Context,
    at: DateTime<Utc>,
    polled: &AtomicUsize,
) -> Result<RunSignal, String> {
    let summaries = poll_listed(dataset, cx, at).await.map_err(|NoList(r)| r)?;
    if polled.swap(summaries.len(), Ordering::Relaxed) != summaries.len() {
        let (line, fits) = listed_demand(
            dataset.info().name,
            dataset.entity_kind(),
            summaries.len(),
            dataset.schedule(),
            cx.client.budget().snapshot().requests_per_minute,
            at,
        );
        if fits {
            info!("Request budget: {line}.");
        } else {
            error!("Request budget: {line}: the polls alone exceed it and will fall behind; poll less often or raise api.requests_per_minute if the account allows it.");
        }
    }
    tick_signal(dataset.entity_kind(), &summaries)
}

/// The signal of a tick: `Ok` with the rows written when every poll succeeded.
fn tick_signal(kind: &str, summaries: &[(String, RunSummary)]) -> Result<RunSignal, String> {
    let failed: Vec<&(String, RunSummary)> = summaries
        .iter()
        .filter(|(_, s)| s.outcome != Outcome::Success)
        .collect();
    if failed.is_empty() {
        return Ok(RunSignal {
            gap_suspected: false,
            rows: summaries.iter().map(|(_, s)| s.rows as u64).sum(),
        });
    }
    let mut named: Vec<String> = failed
        .iter()
        .take(FAILURES_NAMED)
        .map(|(n, s)| format!("{n}: {}", s.error.as_deref().unwrap_or(s.outcome.label())))
        .collect();
    if failed.len() > FAILURES_NAMED {
        named.push(format!("{} more", failed.len() - FAILURES_NAMED));
    }
    Err(format!(
        "{} of {} {kind} polls failed: {}",
        failed.len(),
        summaries.len(),
        named.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(rows: usize, error: Option<&str>) -> RunSummary {
        let mut s = RunSummary::failed("queue_stats", "queue_id=q".into(), String::new());
        s.rows = rows;
        match error {
            Some(e) => s.error = Some(e.to_string()),
            None => (s.outcome, s.error) = (Outcome::Success, None),
        }
        s
    }

    #[test]
    fn a_tick_succeeds_with_the_rows_of_every_poll_or_fails_naming_the_failed_ones() {
        let ok = [
            ("queue_stats/qu-a".to_string(), summary(1, None)),
            ("queue_stats/qu-b".to_string(), summary(2, None)),
        ];
        assert_eq!(
            tick_signal("queue", &ok),
            Ok(RunSignal {
                gap_suspected: false,
                rows: 3
            })
        );
        assert_eq!(tick_signal("queue", &[]), Ok(RunSignal::default()));
        let mut polls = ok.to_vec();
        for (i, q) in ["qu-c", "qu-d", "qu-e", "qu-f"].iter().enumerate() {
            polls.push((
                format!("queue_stats/{q}"),
                summary(0, Some(&format!("HTTP 50{i}"))),
            ));
        }
        assert_eq!(
            tick_signal("queue", &polls),
            Err(
                "4 of 6 queue polls failed: queue_stats/qu-c: HTTP 500; queue_stats/qu-d: \
                 HTTP 501; queue_stats/qu-e: HTTP 502; 1 more"
                    .to_string()
            )
        );
    }
}
