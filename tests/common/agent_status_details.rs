//! Agent Status Details helpers: read exported span rows back with the parquet crate, and the
//! rows the export must produce computed from the simulator's generator
//! ([`agent_spans`], [`generator::agent`]) and chrono-tz, never from the exporter's code.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int32Type, Int64Type, TimestampMillisecondType};
use chrono::{DateTime, Duration, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use smartassist_export::simulator::agent_status_details::{agent_id, agent_spans};
use smartassist_export::simulator::{generator, SimulatorConfig};

use super::{day_bounds, read_dataset};

/// One exported span: every column but `account_id` and `exported_at`, with its `dt`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SpanRow {
    pub dt: String,
    pub user_id: String,
    pub agent_id: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub custom_id: Option<String>,
    pub primary: String,
    pub secondary: Option<String>,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub duration_seconds: Option<i64>,
    pub offset: i32,
}

/// Every row of the `agent_status_details` table under `root`, sorted.
pub fn span_rows(root: &Path) -> Vec<SpanRow> {
    let mut rows = Vec::new();
    for (file, batches) in read_dataset(root, "agent_status_details") {
        let dt = file
            .split('/')
            .find_map(|s| s.strip_prefix("dt="))
            .expect("dt= segment")
            .to_string();
        for b in batches {
            let col = |n: &str| b.column_by_name(n).unwrap_or_else(|| panic!("column {n}"));
            let s = |n: &str| -> Vec<Option<String>> {
                let a = col(n).as_string::<i32>();
                (0..a.len())
                    .map(|i| (!a.is_null(i)).then(|| a.value(i).to_string()))
                    .collect()
            };
            let t = |n: &str| -> Vec<Option<i64>> {
                let a = col(n).as_primitive::<TimestampMillisecondType>();
                (0..a.len())
                    .map(|i| (!a.is_null(i)).then(|| a.value(i)))
                    .collect()
            };
            let dur = col("duration_seconds").as_primitive::<Int64Type>().clone();
            let off = col("timezone_offset_minutes")
                .as_primitive::<Int32Type>()
                .clone();
            let (user, aid, email, first, last, custom) = (
                s("user_id"),
                s("agent_id"),
                s("email"),
                s("first_name"),
                s("last_name"),
                s("custom_id"),
            );
            let (primary, secondary) = (s("primary_status"), s("secondary_status"));
            let (start, end) = (t("start_time"), t("end_time"));
            for i in 0..b.num_rows() {
                rows.push(SpanRow {
                    dt: dt.clone(),
                    user_id: user[i].clone().expect("user_id is never null"),
                    agent_id: aid[i].clone(),
                    email: email[i].clone(),
                    first_name: first[i].clone(),
                    last_name: last[i].clone(),
                    custom_id: custom[i].clone(),
                    primary: primary[i].clone().expect("primary_status is never null"),
                    secondary: secondary[i].clone(),
                    start_ms: start[i].expect("start_time is never null"),
                    end_ms: end[i],
                    duration_seconds: (!dur.is_null(i)).then(|| dur.value(i)),
                    offset: off.value(i),
                });
            }
        }
    }
    rows.sort();
    rows
}

/// What the generator says an export of `days` must hold.
#[derive(Debug, Clone, Default)]
pub struct ExpectedSpans {
    pub rows: Vec<SpanRow>,
    /// Malformed spans (each must be one reject), by `dt`.
    pub malformed_by_day: BTreeMap<String, usize>,
}

impl ExpectedSpans {
    pub fn malformed(&self) -> usize {
        self.malformed_by_day.values().sum()
    }
}

/// JavaScript-convention offset (minutes west of UTC: New York 300 in winter) at `t`.
fn js_offset(tz: Tz, t: DateTime<Utc>) -> i32 {
    -tz.offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc()
        / 60
}

/// The `timeZoneOffSet` of the request that must claim a span starting at `start`: a day is
/// fetched as 24 h at the offset of its local midnight, and a 25 h day's last hour by a second
/// request at the offset then in force.
fn claiming_offset(tz: Tz, start: DateTime<Utc>) -> i32 {
    let local_day = start.with_timezone(&tz).date_naive();
    let (day_start, _) = day_bounds(tz, local_day);
    if start < day_start + Duration::hours(24) {
        js_offset(tz, day_start)
    } else {
        js_offset(tz, start)
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// The rows an export of the local `days` (contiguous, in order) of the agents `agents` must
/// produce from a simulator with `cfg` (whose `frozen_now` must be set), and its malformed
/// spans. `v3`: the path is the `/v3` generation, so `agent_id` is set.
pub fn expected_spans(
    cfg: &SimulatorConfig,
    tz: Tz,
    days: &[NaiveDate],
    agents: &[usize],
    v3: bool,
) -> ExpectedSpans {
    let first = day_bounds(tz, days[0]).0;
    let last = day_bounds(tz, days[days.len() - 1]).1;
    let now = cfg
        .frozen_now
        .expect("the test freezes the simulator's now");
    let mut out = ExpectedSpans::default();
    for &idx in agents {
        let a = generator::agent(cfg.seed, idx);
        for span in agent_spans(cfg.seed, idx, first..last, now, cfg.malformed_every) {
            if span.start < first {
                continue;
            }
            let dt = span.start.with_timezone(&tz).date_naive().to_string();
            if span.malformed.is_some() {
                *out.malformed_by_day.entry(dt).or_default() += 1;
                continue;
            }
            out.rows.push(SpanRow {
                dt,
                user_id: a.user_id.clone(),
                agent_id: v3.then(|| agent_id(cfg.seed, idx)),
                email: non_empty(&a.email),
                first_name: Some(a.first_name.clone()),
                last_name: Some(a.last_name.clone()),
                custom_id: non_empty(&a.custom_id),
                primary: span.primary.to_string(),
                secondary: Some(span.secondary.to_string()),
                // The API renders times truncated to the second.
                start_ms: span.start.timestamp() * 1000,
                end_ms: span.end.map(|e| e.timestamp() * 1000),
                duration_seconds: span.duration_ms().map(|d| d.div_euclid(1000)),
                offset: claiming_offset(tz, span.start),
            });
        }
    }
    out.rows.sort();
    out
}

/// Per-day (rows, sum of `duration_seconds`).
pub fn spans_per_day(rows: &[SpanRow]) -> BTreeMap<String, (usize, i64)> {
    let mut out: BTreeMap<String, (usize, i64)> = BTreeMap::new();
    for r in rows {
        let e = out.entry(r.dt.clone()).or_default();
        e.0 += 1;
        e.1 += r.duration_seconds.unwrap_or(0);
    }
    out
}
