//! Closing days: once a partition's local day ended [`Policy::close_after`] ago, its files are
//! merged into one. The caller keeps the days it opened (wrote to, or found holding several
//! files) and hands them here on every poll; the days that now hold at most one file are
//! closed and can be forgotten.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::{compact, Merge, MergedRecord, Policy};
use crate::error::Error;
use crate::sink::{PartitionKey, Sink, StateStore, WriteStats};
use crate::sources::window::local_day_bounds;

/// Merges every partition of `open` (local days of `tz`, each partition named by `key_of`)
/// whose day ended more than `policy.close_after` before `now` into one file, adding what it
/// wrote to `written`; returns the days that now hold at most one file.
pub async fn close_days<R: MergedRecord>(
    io: (&Sink, &StateStore),
    open: &BTreeSet<NaiveDate>,
    tz: Tz,
    policy: &Policy,
    now: DateTime<Utc>,
    key_of: impl Fn(NaiveDate) -> PartitionKey,
    written: &mut WriteStats,
) -> Result<BTreeSet<NaiveDate>, Error> {
    let (sink, state_store) = io;
    let mut closed = BTreeSet::new();
    let close_after =
        chrono::TimeDelta::from_std(policy.close_after).unwrap_or(chrono::TimeDelta::MAX);
    for &day in open {
        let end = local_day_bounds(tz, day).end;
        if end
            .checked_add_signed(close_after)
            .is_none_or(|at| now < at)
        {
            continue;
        }
        let merged = compact::<R>(sink, state_store, &key_of(day), Merge::All).await?;
        written.files += merged.written.files;
        written.bytes += merged.written.bytes;
        if merged.files <= 1 {
            closed.insert(day);
        }
    }
    Ok(closed)
}
