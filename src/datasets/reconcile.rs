//! The reconciliation hook: a dataset that can check another dataset's completeness against
//! its own rows (a history of every session against a realtime capture of them) registers a
//! [`Reconciliation`] in [`super::RECONCILIATIONS`], and the core calls it without naming the
//! dataset: `status` and the status page for their capture section ([`status_section`]),
//! the `reconcile` command for its table ([`command`]). The section's shape and its cache
//! belong to the core ([`crate::coverage::capture`]); what is compared, and how, to the
//! dataset.

use chrono::NaiveDate;
use futures::future::BoxFuture;

use crate::config::Config;
use crate::coverage::capture::{CaptureCache, CaptureSection};
use crate::coverage::status::StatusReport;
use crate::error::Error;
use crate::sink::Sink;

/// What `reconcile` asks for: local days and entities (empty: the dataset's configured ones).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileRequest {
    /// First local day; `None`: the dataset's yesterday.
    pub from: Option<NaiveDate>,
    /// Last local day, inclusive; `None`: `from`.
    pub to: Option<NaiveDate>,
    pub entities: Vec<String>,
}

/// What a status section is measured over: the report's coverage, the last that many days
/// of its range, the program name for the commands it prints, and an optional cache of the
/// days measured before.
#[derive(Clone, Copy)]
pub struct SectionRequest<'a> {
    pub sink: &'a Sink,
    pub report: &'a StatusReport,
    pub last_days: Option<u64>,
    pub command: &'a str,
    pub cache: Option<&'a CaptureCache>,
}

/// A dataset's reconciliation capability.
pub struct Reconciliation {
    /// The dataset that registers it.
    pub dataset: &'static str,
    /// The capture section of a status report; `None` when the report lacks the datasets it
    /// compares.
    pub section: for<'a> fn(SectionRequest<'a>) -> BoxFuture<'a, Option<CaptureSection>>,
    /// The `reconcile` command: the lines it prints (a header, then one per entity and
    /// day), read from the output alone.
    pub command: ReconcileCommand,
}

/// [`Reconciliation::command`]: the config, the output and what was asked.
pub type ReconcileCommand = for<'a> fn(
    &'a Config,
    &'a Sink,
    &'a ReconcileRequest,
) -> BoxFuture<'a, Result<Vec<String>, Error>>;

impl std::fmt::Debug for Reconciliation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reconciliation({})", self.dataset)
    }
}

/// The capture section of `req.report`: that of the first registered reconciliation whose
/// datasets the report holds.
pub async fn status_section(req: SectionRequest<'_>) -> Option<CaptureSection> {
    for r in super::RECONCILIATIONS {
        if let Some(s) = (r.section)(req).await {
            return Some(s);
        }
    }
    None
}

/// The lines of `reconcile` (the registered reconciliation's; an error when none is).
pub async fn command(
    config: &Config,
    sink: &Sink,
    req: &ReconcileRequest,
) -> Result<Vec<String>, Error> {
    let r = super::RECONCILIATIONS
        .first()
        .ok_or_else(|| Error::Usage("no dataset can reconcile".into()))?;
    (r.command)(config, sink, req).await
}
