//! Master-data lists (the WFM `agents` and `queues`): a GET of `…/analytics/account/{id}/<list>`
//! answered with a bare JSON array of flat records, no envelope, no documented paging. What
//! such a dataset declares is a [`ListApi`] (its table, the record keys each column reads);
//! this module owns the rest, the same for every list: the config section's validation
//! ([`validate_section`]), the requests, the paging, the decoding into rows and rejects, and the
//! export of today's snapshot day.
//!
//! **Snapshot day.** The API answers only the list as it is now, so the unit is today's
//! snapshot day ([`DayScope::TodayOnly`]): the partition `snapshot_date=D` of the run's local
//! date in the section's `timezone`, replaced whole (atomically, like a history day) by every
//! run of that day. A unit of another day is refused ([`ListError::PastSnapshotDay`]); "today"
//! is that of the `exported_at` the caller passes, which is the instant its run planned the
//! day from (the pipeline's `now`, a backfill's start), so a run crossing local midnight
//! exports the day it started in.
//!
//! **Paging.** `offset`/`limit` appear only in a sample URL: every request sends them
//! (`limit` = [`ListApi::page_size`]) and [`paging::ListPager`] stops at a short page, a page
//! with no new id or a page repeating the previous one, so a server that ignores them costs one
//! more request at most. A record repeating one kept already byte for byte is skipped; another
//! record of a kept id that differs is rejected with its raw JSON, and the first stays the row.
//!
//! **Records.** Keys are matched case-insensitively (`Description`/`description`); a column's
//! value must be a string or null (anything else rejects the record with its raw JSON); the id
//! column must be a non-empty string. When a record holds several keys of one column (aliases
//! such as `queueId` and `collectionPointId`, or two casings), the one first in
//! [`ListField::keys`] fills the column (two casings of one key: the first in the record) and
//! the others are kept in `extra`, so nothing sent is lost. `accountId` is read and must name the exported account
//! (another account's record is rejected: it does not belong in this account's partition).
//! Every other key is kept in `extra`.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringBuilder};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::value::RawValue;

use super::{
    history, paging, Context, DatasetInfo, DayScope, DayUnit, HistoryDataset, HistoryKeys, Table,
    UnitReport,
};
use crate::config::history::{self as shared, HistoryDefaults, RawHistoryKeys};
use crate::config::parse::account_path;
use crate::config::{Problems, SectionContext};
use crate::error::Error;
use crate::schema::{constant_timestamp, constant_utf8};
use crate::sources::extra::{ExtraColumn, PairsOf, Unmapped, UnmappedCounts};
use crate::sources::window::local_date;
use crate::sources::wire::Scalar;
use crate::sources::{DecodeError, Reject};

/// One string column of a list's table and the record keys it reads (any casing).
#[derive(Debug, Clone, Copy)]
pub struct ListField {
    pub column: &'static str,
    /// Record keys read into the column, in priority order (e.g. `queueId`, then
    /// `collectionPointId`): when a record holds several, the first of this list fills the
    /// column, whatever their order in the record, and the others are kept in `extra`.
    pub keys: &'static [&'static str],
}

/// What a list dataset declares: its registration, its table (columns `account_id`, then
/// [`ListApi::fields`] in order, `exported_at`, `extra`), and the `limit` it sends. The first
/// field is the record's id: required, non-empty, the table's key.
#[derive(Debug)]
pub struct ListApi {
    pub info: &'static DatasetInfo,
    pub table: &'static Table,
    pub fields: &'static [ListField],
    pub page_size: usize,
}

/// A list section's validated keys: `enabled`, `schedule`, `schedule_timezone`, `timezone`
/// (held as [`HistoryKeys`], without lookback or catch-up) and `path`.
#[derive(Debug, Clone)]
pub struct ListConfig {
    pub keys: HistoryKeys,
    /// Request path with `{account_id}` substituted.
    pub path: String,
}

/// A list section as written.
#[derive(Debug, Clone, Copy)]
pub struct RawListSection<'a> {
    pub section: &'static str,
    pub enabled: Option<bool>,
    pub schedule: &'a Option<String>,
    pub timezone: Option<&'a str>,
    pub schedule_timezone: Option<&'a str>,
    pub path: Option<&'a str>,
}

/// Validates a list section (keys named `section.key`); `default_schedule` and `default_path`
/// are the section's own defaults. Lists are off by default.
pub fn validate_section(
    raw: RawListSection<'_>,
    default_schedule: &'static str,
    default_path: &str,
    cx: &SectionContext<'_>,
    p: &mut Problems,
) -> ListConfig {
    let keys = shared::validate(
        RawHistoryKeys {
            section: raw.section,
            enabled: raw.enabled,
            schedule: raw.schedule,
            timezone: raw.timezone,
            schedule_timezone: raw.schedule_timezone,
            // Only today's snapshot day is ever planned (DayScope::TodayOnly).
            lookback_days: Some(0),
            max_days_per_run: Some(1),
        },
        HistoryDefaults {
            enabled: false,
            schedule: default_schedule,
        },
        cx,
        p,
    );
    ListConfig {
        keys,
        path: account_path(
            p,
            &format!("{}.path", raw.section),
            raw.path,
            default_path,
            cx.account_id,
        ),
    }
}

/// A list's failures of its own.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(
        "snapshot day {day} cannot be fetched: the API serves the list only as it is now \
         (today is {today} in {zone})"
    )]
    PastSnapshotDay {
        day: NaiveDate,
        today: NaiveDate,
        zone: Tz,
    },
}

/// An enabled list dataset.
pub struct ListDataset {
    api: &'static ListApi,
    cfg: ListConfig,
}

impl ListDataset {
    pub fn new(api: &'static ListApi, cfg: ListConfig) -> ListDataset {
        ListDataset { api, cfg }
    }

    async fn export(
        &self,
        cx: &Context,
        unit: &DayUnit,
        exported_at: DateTime<Utc>,
    ) -> Result<UnitReport, Error> {
        let zone = self.cfg.keys.timezone;
        let today = local_date(zone, exported_at);
        if unit.day != today {
            return Err(Error::Dataset {
                dataset: self.api.info.name,
                retryable: false,
                source: Box::new(ListError::PastSnapshotDay {
                    day: unit.day,
                    today,
                    zone,
                }),
            });
        }
        let mut day = history::DayExport::begin(cx, self.api.info, unit).await?;
        let fetched = self.fetch(cx, exported_at, &mut day).await;
        day.finish(fetched, exported_at).await
    }

    async fn fetch(
        &self,
        cx: &Context,
        exported_at: DateTime<Utc>,
        day: &mut history::DayExport<'_>,
    ) -> Result<history::FetchedDay, Error> {
        let mut rows = ListRows::new(self.api, &cx.account_id, exported_at);
        let mut pager = paging::ListPager::new(self.api.info.name, self.api.page_size);
        while let Some((offset, limit)) = pager.next_page() {
            let query = [("offset", offset.to_string()), ("limit", limit.to_string())];
            let seen = pager.seen();
            let (page, permit) = cx
                .client
                .get_json_gated(
                    self.api.info.endpoint,
                    &self.cfg.path,
                    &query,
                    Some(cx.page_gate.as_ref()),
                    |body| rows.push_page(body, seen),
                )
                .await?;
            day.write_page(self.api.table, rows.take_batch()?, permit)
                .await?;
            pager.record(page);
        }
        let (last, rejects, unmapped) = rows.finish()?;
        Ok(history::FetchedDay {
            last: vec![(self.api.table, last)],
            rejects,
            requests: pager.requests(),
            unmapped,
            open: false,
        })
    }

    async fn probe_list(&self, cx: &Context) -> Result<String, Error> {
        let query = [("offset", "0".to_string()), ("limit", "1".to_string())];
        let mut rows = ListRows::new(self.api, &cx.account_id, Utc::now());
        let mut seen = paging::Seen::default();
        let (page, _) = cx
            .client
            .get_json_gated(self.api.info.endpoint, &self.cfg.path, &query, None, |b| {
                rows.push_page(b, &mut seen)
            })
            .await?;
        Ok(format!(
            "{} record(s) on a 1-record page ({} with a new id)",
            page.records, page.new_keys
        ))
    }
}

impl HistoryDataset for ListDataset {
    fn info(&self) -> &'static DatasetInfo {
        self.api.info
    }

    fn schedule(&self) -> &HistoryKeys {
        &self.cfg.keys
    }

    fn day_scope(&self) -> DayScope {
        DayScope::TodayOnly
    }

    fn export_day<'a>(
        &'a self,
        cx: &'a Context,
        unit: &'a DayUnit,
        exported_at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<UnitReport, Error>> {
        self.export(cx, unit, exported_at).boxed()
    }

    fn probe<'a>(
        &'a self,
        cx: &'a Context,
        _today: NaiveDate,
    ) -> BoxFuture<'a, Result<String, Error>> {
        self.probe_list(cx).boxed()
    }
}

/// The rows and rejects of a list's pages: decodes each page, keeps each id once.
pub struct ListRows<'a> {
    api: &'static ListApi,
    account_id: &'a str,
    exported_at: DateTime<Utc>,
    columns: Vec<StringBuilder>,
    extra: ExtraColumn,
    rows: usize,
    rejects: Vec<Reject>,
    unmapped: UnmappedCounts,
}

/// A decoded record: each field's value, and its unmapped keys.
struct ListRecord<'a> {
    values: Vec<Option<Cow<'a, str>>>,
    extra: Unmapped<'a>,
}

impl<'a> ListRows<'a> {
    pub fn new(
        api: &'static ListApi,
        account_id: &'a str,
        exported_at: DateTime<Utc>,
    ) -> ListRows<'a> {
        ListRows {
            api,
            account_id,
            exported_at,
            columns: api.fields.iter().map(|_| StringBuilder::new()).collect(),
            extra: ExtraColumn::default(),
            rows: 0,
            rejects: Vec::new(),
            unmapped: UnmappedCounts::default(),
        }
    }

    /// Decodes one response body (a bare array), adding the records whose id `seen` has not
    /// kept yet; what the page held, for the pager. A body that is not a JSON array is a
    /// [`DecodeError`] (the request is retried).
    pub fn push_page(
        &mut self,
        body: &[u8],
        seen: &mut paging::Seen,
    ) -> Result<paging::ListPage, DecodeError> {
        let err = |reason: String| DecodeError {
            api: self.api.info.endpoint,
            reason,
        };
        let text = std::str::from_utf8(body).map_err(|e| err(format!("not UTF-8: {e}")))?;
        if !text.trim_start().starts_with('[') {
            return Err(err("the body is not a JSON array".into()));
        }
        let records: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut new_keys = 0;
        for raw in &records {
            match self.decode(raw) {
                Ok(record) => {
                    let id = record.values[0].as_deref().unwrap_or_default();
                    // Debug-quoted: no id can make two different keys equal.
                    match (seen.first(id), seen.first(&format!("{id:?} {}", raw.get()))) {
                        (true, _) => {
                            new_keys += 1;
                            self.push_record(&record);
                        }
                        (false, false) => {}
                        (false, true) => {
                            new_keys += 1;
                            self.rejects.push(Reject {
                                reason: format!(
                                    "an earlier record of the list has {} {id:?} and other \
                                     content (a row is one {}); the first is kept",
                                    self.api.fields[0].column, self.api.fields[0].column
                                ),
                                raw_json: raw.get().to_string(),
                            });
                        }
                    }
                }
                Err(reason) => {
                    self.rejects.push(Reject {
                        reason,
                        raw_json: raw.get().to_string(),
                    });
                    // A broken record counts as new content: the page is not a repeat of it.
                    if seen.first(raw.get()) {
                        new_keys += 1;
                    }
                }
            }
        }
        Ok(paging::ListPage {
            records: records.len(),
            new_keys,
            body_hash: paging::body_hash(body),
        })
    }

    fn decode<'r>(&self, raw: &'r RawValue) -> Result<ListRecord<'r>, String> {
        let pairs: PairsOf<'r> = serde_json::from_str(raw.get())
            .map_err(|_| "the record is not a JSON object".to_string())?;
        let mut record = ListRecord {
            values: vec![None; self.api.fields.len()],
            extra: Unmapped::default(),
        };
        // Per column, the key that filled it: its priority in `ListField::keys`, name, value.
        let mut winners: Vec<Option<(usize, Cow<'r, str>, &'r RawValue)>> =
            vec![None; self.api.fields.len()];
        for (key, value) in pairs.0 {
            let column = self.api.fields.iter().enumerate().find_map(|(i, f)| {
                let rank = f.keys.iter().position(|k| k.eq_ignore_ascii_case(&key))?;
                Some((i, rank))
            });
            if let Some((i, rank)) = column {
                let text = Scalar(value)
                    .as_opt_str()
                    .map_err(|kind| format!("{key} is {kind}, expected a string"))?;
                match &winners[i] {
                    // A key of higher (or equal, earlier) priority filled it: this one is extra.
                    Some((best, _, _)) if *best <= rank => record.extra.push(key, value),
                    _ => {
                        if let Some((_, lost, lost_value)) = winners[i].take() {
                            record.extra.push(lost, lost_value);
                        }
                        record.values[i] = text;
                        winners[i] = Some((rank, key, value));
                    }
                }
            } else if key.eq_ignore_ascii_case("accountId") {
                match Scalar(value).as_opt_str() {
                    Ok(Some(a)) if a != self.account_id => {
                        return Err(format!(
                            "accountId {a:?} is not the exported account {:?}",
                            self.account_id
                        ))
                    }
                    Ok(_) => {}
                    Err(kind) => return Err(format!("accountId is {kind}, expected a string")),
                }
            } else {
                record.extra.push(key, value);
            }
        }
        match record.values[0].as_deref() {
            Some(id) if !id.is_empty() => Ok(record),
            _ => Err(format!(
                "{} is missing or empty",
                self.api.fields[0].keys[0]
            )),
        }
    }

    fn push_record(&mut self, record: &ListRecord<'_>) {
        for (builder, value) in self.columns.iter_mut().zip(&record.values) {
            builder.append_option(value.as_deref());
        }
        self.extra.append(&[("record", &record.extra)]);
        self.unmapped.add(&record.extra);
        self.rows += 1;
    }

    /// The rows pushed since the last call, as a batch of the table's schema.
    pub fn take_batch(&mut self) -> Result<RecordBatch, Error> {
        let n = self.rows;
        self.rows = 0;
        let mut columns: Vec<ArrayRef> = vec![constant_utf8(self.account_id, n)];
        for builder in &mut self.columns {
            columns.push(Arc::new(builder.finish()));
        }
        columns.push(constant_timestamp(self.exported_at.timestamp_millis(), n));
        columns.push(self.extra.finish());
        RecordBatch::try_new((self.api.table.schema)(), columns).map_err(|source| Error::Arrow {
            context: format!(
                "{}: the list's columns do not match its schema",
                self.api.table
            ),
            source,
        })
    }

    /// The last rows, the rejects and the unmapped-field counts.
    pub fn finish(mut self) -> Result<(RecordBatch, Vec<Reject>, UnmappedCounts), Error> {
        let last = self.take_batch()?;
        Ok((last, self.rejects, self.unmapped))
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};

    use super::*;

    fn rows_of(body: &str) -> (RecordBatch, Vec<Reject>) {
        let mut rows = ListRows::new(&crate::datasets::queues::API, "acct", Utc::now());
        let mut seen = paging::Seen::default();
        rows.push_page(body.as_bytes(), &mut seen).expect("page");
        let (batch, rejects, _) = rows.finish().expect("batch");
        (batch, rejects)
    }

    fn column(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
        let c = batch
            .column_by_name(name)
            .expect("column")
            .as_string::<i32>();
        (0..c.len())
            .map(|i| c.is_valid(i).then(|| c.value(i).to_string()))
            .collect()
    }

    /// `collectionPointId` comes before `queueId` in the queues' keys: it is the id whatever
    /// the record's key order, and the other alias (like a second casing of `description`) is
    /// kept in `extra`.
    #[test]
    fn the_key_first_in_priority_fills_the_column_and_the_others_stay_in_extra() {
        let (batch, rejects) = rows_of(
            r#"[{"queueId":"qu-x","collectionPointId":"qu-1","description":"a","Description":"b"}]"#,
        );
        assert!(rejects.is_empty());
        assert_eq!(column(&batch, "queue_id"), [Some("qu-1".to_string())]);
        assert_eq!(column(&batch, "description"), [Some("a".to_string())]);
        assert_eq!(
            column(&batch, "extra"),
            [Some(r#"{"queueId":"qu-x","Description":"b"}"#.to_string())]
        );
    }

    /// An id listed again byte for byte is skipped; listed again with other content, it is
    /// rejected with its raw JSON and the first stays the row.
    #[test]
    fn a_repeated_id_is_skipped_when_identical_and_rejected_when_it_differs() {
        let first = r#"{"collectionPointId":"qu-1","description":"Sales"}"#;
        let other = r#"{"collectionPointId":"qu-1","description":"Billing"}"#;
        let (batch, rejects) = rows_of(&format!("[{first},{first},{other},{other}]"));
        assert_eq!(column(&batch, "description"), [Some("Sales".to_string())]);
        assert_eq!(rejects.len(), 1);
        assert_eq!(rejects[0].raw_json, other);
        assert!(
            rejects[0].reason.contains("\"qu-1\""),
            "{}",
            rejects[0].reason
        );
    }
}
