//! Query-engine DDL generated from the Arrow schemas in [`crate::schema`], so the tables analysts
//! create can never drift from the files we write: Athena `CREATE EXTERNAL TABLE` statements with
//! partition projection (no `MSCK REPAIR TABLE`, no Glue partitions) and DuckDB views over
//! `read_parquet(..., hive_partitioning = true)`. The same Athena DDL is kept in `deploy/athena/`
//! and a test fails when those files differ from what this module generates.
//!
//! A table whose partitions are several files that merges rewrite ([`Table::dedupe`]) is
//! declared twice: its files as `<name>_files`, and under its own name a view keeping one row
//! per key ([`dedupe_window`]), which is exact even while a merge has written its output and
//! not yet deleted its inputs.
//!
//! Every table's date partition (`dt`, or another date column) gets its projection from
//! [`date_projection`], the one place the projected range is decided (see [`projection_range`]
//! for why it ends at `NOW+1DAYS`). Callers choose the first projected day (`schema --athena-range-start`,
//! default [`DEFAULT_PROJECTION_START`]); `backfill` asks [`backfill_outside_projection`] whether
//! the days it is about to write would be visible.

use std::fmt::Write as _;

use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, Days, NaiveDate, Utc};

use crate::datasets;
use crate::schema::Table;

/// Location used when no S3 output is configured (the committed `deploy/athena/` files).
pub const PLACEHOLDER_LOCATION: &str = "s3://YOUR-BUCKET/prefix";
/// First day of the `dt` date projection unless `schema --athena-range-start` names another.
/// Days before it are invisible to Athena (queries return no rows for them, without an error).
pub const DEFAULT_PROJECTION_START: NaiveDate = match NaiveDate::from_ymd_opt(2020, 1, 1) {
    Some(day) => day,
    None => panic!("2020-01-01 is a valid date"),
};
/// Last day of the `dt` date projection, as an Athena relative date (see [`projection_range`]).
pub const PROJECTION_END: &str = "NOW+1DAYS";

/// How Athena learns the values of the id partition columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdProjection {
    /// `injected`: queries must filter on the column (`WHERE account_id = '...'`).
    Injected,
    /// `enum` with the configured ids: queries need no filter.
    Known {
        account_ids: Vec<String>,
        bot_ids: Vec<String>,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("column {column} has Arrow type {data_type}, which has no Athena mapping")]
pub struct UnsupportedType {
    pub column: String,
    pub data_type: String,
}

/// Athena (Hive DDL) type of an Arrow type, matching the Parquet physical/logical type we write.
pub fn athena_type(dt: &DataType) -> Option<String> {
    Some(match dt {
        DataType::Utf8 | DataType::LargeUtf8 => "string".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Int32 => "int".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Float64 => "double".into(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => "timestamp".into(),
        DataType::List(item) => format!("array<{}>", athena_type(item.data_type())?),
        _ => return None,
    })
}

/// The `projection.dt.range` of every table with a `dt` partition: `start` through
/// [`PROJECTION_END`].
///
/// `dt` is a local day in the configured IANA zone, but Athena generates projected dates in UTC
/// when the query runs, inclusive of both ends. A range ending at `NOW` therefore leaves out the
/// day the exporter is already writing from local midnight until 00:00 UTC in every zone east of
/// UTC (5.5 h a day in Asia/Kolkata, 14 h in Pacific/Kiritimati). No zone leads UTC by more than
/// 14 h, so the newest local day is at most the UTC day after today: `NOW+1DAYS` covers every
/// zone at every moment, and costs at most one empty projected day.
pub fn projection_range(start: NaiveDate) -> String {
    format!("{},{PROJECTION_END}", start.format("%Y-%m-%d"))
}

/// Table properties of the `dt` date projection (a daily `yyyy-MM-dd` date from `start`).
pub fn dt_projection(start: NaiveDate) -> Vec<(String, String)> {
    date_projection("dt", start)
}

/// [`dt_projection`] for a date partition column of another name (e.g. `snapshot_date`).
pub fn date_projection(column: &str, start: NaiveDate) -> Vec<(String, String)> {
    [
        ("type", "date".to_string()),
        ("format", "yyyy-MM-dd".to_string()),
        ("range", projection_range(start)),
        ("interval", "1".to_string()),
        ("interval.unit", "DAYS".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("projection.{column}.{k}"), v))
    .collect()
}

/// What a backfill of the local days `from..=to` would write that Athena tables projecting from
/// `start` would not show at `now`: days before `start`, and days after the last day Athena
/// projects at `now` (the UTC date of `now` plus one). `None` when every day would be visible.
///
/// The tables may have been generated with another `--athena-range-start` than the `start`
/// given here; the message says which start it assumed.
pub fn backfill_outside_projection(
    from: NaiveDate,
    to: NaiveDate,
    start: NaiveDate,
    now: DateTime<Utc>,
) -> Option<String> {
    let mut problems = Vec::new();
    if from < start {
        problems.push(format!(
            "days before {start} (--from {from}) are outside the Athena `dt` projection, which \
             starts on {start} by default: Athena returns no rows for them. Create the tables with \
             `schema --format athena --athena-range-start {from}`, or run ALTER TABLE ... SET \
             TBLPROPERTIES ('projection.dt.range' = '{range}') on existing ones",
            range = projection_range(from),
        ));
    }
    let last_projected = now.date_naive().checked_add_days(Days::new(1));
    if let Some(last) = last_projected.filter(|last| to > *last) {
        problems.push(format!(
            "days after {last} (--to {to}) have not begun in any time zone yet, and Athena \
             shows a day only from 00:00 UTC of the day before it"
        ));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// The name of the relation that reads a table's files: the table's own name, or
/// `<name>_files` when readers go through a deduplicating view of that name.
pub fn files_relation(table: &Table) -> String {
    match table.dedupe {
        Some(_) => format!("{}_files", table.name),
        None => table.name.to_string(),
    }
}

/// `row_number() OVER (...)` numbering the copies of one row of a [`Table::dedupe`] table
/// (partition columns and key, first by the keep column); `None` for other tables. Copies
/// share their partition, so engines still prune partitions through the window.
pub fn dedupe_window(table: &Table) -> Option<String> {
    let d = table.dedupe?;
    let by: Vec<&str> = table
        .partition_columns()
        .iter()
        .chain(table.key)
        .copied()
        .collect();
    Some(format!(
        "row_number() OVER (PARTITION BY {} ORDER BY {})",
        by.join(", "),
        d.keep_first_by
    ))
}

/// The columns of a table in Athena's order: file columns, then partition columns.
fn athena_column_order(table: &Table) -> Vec<String> {
    let partitions = table.partition_columns();
    let schema = (table.schema)();
    let mut columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| !partitions.contains(&n.as_str()))
        .collect();
    columns.extend(partitions.iter().map(|p| p.to_string()));
    columns
}

fn table_location(root: &str, table: &Table) -> String {
    format!("{}/{}/", root.trim_end_matches('/'), table.name)
}

/// One `CREATE EXTERNAL TABLE` for a dataset stored under `root` (`s3://bucket/prefix`), its
/// `dt` projected from `dt_start` (see [`dt_projection`]).
pub fn athena_table(
    table: &Table,
    root: &str,
    ids: &IdProjection,
    dt_start: NaiveDate,
) -> Result<String, UnsupportedType> {
    let partitions = table.partition_columns();
    let schema = (table.schema)();
    let mut columns = Vec::new();
    for f in schema.fields() {
        if partitions.contains(&f.name().as_str()) {
            continue;
        }
        let ty = athena_type(f.data_type()).ok_or_else(|| UnsupportedType {
            column: f.name().clone(),
            data_type: f.data_type().to_string(),
        })?;
        columns.push(format!("  `{}` {}", f.name(), ty));
    }
    let location = table_location(root, table);
    let mut template = location.trim_end_matches('/').to_string();
    for p in partitions {
        let _ = write!(template, "/{p}=${{{p}}}");
    }
    template.push('/');

    let mut props: Vec<(String, String)> = vec![("projection.enabled".into(), "true".into())];
    let date = table.layout.date_column();
    for p in partitions {
        match *p {
            c if c == date => props.extend(date_projection(c, dt_start)),
            id => {
                let values = match (ids, id) {
                    (IdProjection::Known { account_ids, .. }, "account_id") => Some(account_ids),
                    (IdProjection::Known { bot_ids, .. }, "bot_id") => Some(bot_ids),
                    _ => None,
                };
                match values.filter(|v| !v.is_empty()) {
                    Some(v) => {
                        props.push((format!("projection.{id}.type"), "enum".into()));
                        props.push((format!("projection.{id}.values"), v.join(",")));
                    }
                    None => props.push((format!("projection.{id}.type"), "injected".into())),
                }
            }
        }
    }
    props.push(("storage.location.template".into(), template));
    props.push(("parquet.compression".into(), "ZSTD".into()));

    let mut sql = String::new();
    let _ = writeln!(
        sql,
        "CREATE EXTERNAL TABLE IF NOT EXISTS `{}` (",
        files_relation(table)
    );
    let _ = writeln!(sql, "{}", columns.join(",\n"));
    let _ = writeln!(sql, ")");
    let parts: Vec<String> = partitions.iter().map(|p| format!("`{p}` string")).collect();
    let _ = writeln!(sql, "PARTITIONED BY ({})", parts.join(", "));
    let _ = writeln!(sql, "STORED AS PARQUET");
    let _ = writeln!(sql, "LOCATION '{location}'");
    let _ = writeln!(sql, "TBLPROPERTIES (");
    let props: Vec<String> = props
        .iter()
        .map(|(k, v)| format!("  '{k}' = '{v}'"))
        .collect();
    let _ = writeln!(sql, "{}", props.join(",\n"));
    let _ = writeln!(sql, ");");
    Ok(sql)
}

/// Athena DDL for every dataset, with a header comment; `dt` is projected from `dt_start`.
pub fn athena_ddl(
    root: &str,
    ids: &IdProjection,
    dt_start: NaiveDate,
) -> Result<String, UnsupportedType> {
    let mut out = String::from(
        "-- Athena tables for smartassist-export output (generated by `smartassist-export schema --format athena`).\n\
         -- Partition projection: no MSCK REPAIR TABLE or Glue partitions needed.\n\
         -- dt is a local day; Athena projects dates in UTC, so the range ends at NOW+1DAYS to include\n\
         -- the newest local day in every zone. Days before the range's start return no rows.\n",
    );
    if *ids == IdProjection::Injected {
        out.push_str(
            "-- Id partitions are `injected`: filter on them, e.g. WHERE account_id = 'your-account'.\n",
        );
    }
    for table in datasets::tables() {
        out.push('\n');
        out.push_str(&athena_table(table, root, ids, dt_start)?);
    }
    Ok(out)
}

/// Athena views (Trino SQL) for the tables read through one ([`Table::dedupe`]), with a header
/// comment; run after [`athena_ddl`]'s tables.
pub fn athena_views() -> String {
    let mut out = String::from(
        "-- Athena views for smartassist-export output (generated by `smartassist-export schema --format athena`).\n\
         -- Query the views below, not the `_files` tables they read: while a merge rewrites a\n\
         -- partition's files, a row is briefly in two files, and the views keep one copy.\n",
    );
    for table in datasets::tables() {
        let Some(window) = dedupe_window(table) else {
            continue;
        };
        let _ = write!(
            out,
            "\nCREATE OR REPLACE VIEW {name} AS\nSELECT {columns}\nFROM (\n  SELECT *, {window} AS copy_number\n  FROM {files}\n)\nWHERE copy_number = 1;\n",
            name = table.name,
            columns = athena_column_order(table).join(", "),
            files = files_relation(table),
        );
    }
    out
}

/// The glob matching every data file of a dataset under `root`.
pub fn parquet_glob(root: &str, table: &Table) -> String {
    let depth = table.partition_columns().len();
    let mut glob = format!("{}/{}", root.trim_end_matches('/'), table.name);
    for _ in 0..depth {
        glob.push_str("/*");
    }
    glob.push_str("/*.parquet");
    glob
}

/// DuckDB `hive_types` entries for a dataset's partition columns: ids stay `VARCHAR` (without
/// this DuckDB auto-casts an id such as `7` to BIGINT, and the path value overrides the
/// file's string column), `dt` is a `DATE`.
pub fn duckdb_hive_types(table: &Table) -> String {
    table
        .partition_columns()
        .iter()
        .map(|c| {
            let ty = if *c == table.layout.date_column() {
                "DATE"
            } else {
                "VARCHAR"
            };
            format!("'{c}': {ty}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An S3-compatible endpoint (`[output] endpoint`), for DuckDB's S3 secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Endpoint {
    /// `http://host:port` or `https://host:port`, as configured.
    pub url: String,
    pub region: Option<String>,
}

fn sql_quote(s: &str) -> String {
    s.replace('\'', "''")
}

/// DuckDB views over a local directory or an `s3://` root (AWS S3 endpoints).
pub fn duckdb_views(root: &str) -> String {
    duckdb_views_with_endpoint(root, None)
}

/// DuckDB views over a local directory or an `s3://` root; for an `s3://` root with an
/// S3-compatible `endpoint` the secret names it (path-style, TLS as in its scheme).
pub fn duckdb_views_with_endpoint(root: &str, endpoint: Option<&S3Endpoint>) -> String {
    let mut out = String::from(
        "-- DuckDB views for smartassist-export output (generated by `smartassist-export schema --format duckdb`).\n",
    );
    if root.starts_with("s3://") {
        out.push_str("INSTALL httpfs;\nLOAD httpfs;\n");
        match endpoint {
            None => out.push_str(
                "-- Credentials from the standard AWS chain; for MinIO/moto add ENDPOINT, URL_STYLE 'path', USE_SSL false.\n\
                 CREATE OR REPLACE SECRET smartassist (TYPE s3, PROVIDER credential_chain);\n",
            ),
            Some(ep) => {
                let (use_ssl, host) = match ep.url.split_once("://") {
                    Some((scheme, rest)) => (!scheme.eq_ignore_ascii_case("http"), rest),
                    None => (true, ep.url.as_str()),
                };
                let host = host.trim_end_matches('/');
                let region = ep
                    .region
                    .as_deref()
                    .map(|r| format!(", REGION '{}'", sql_quote(r)))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "-- Credentials from the standard AWS chain (e.g. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).\n\
                     CREATE OR REPLACE SECRET smartassist (TYPE s3, PROVIDER credential_chain, \
                     ENDPOINT '{host}', URL_STYLE 'path', USE_SSL {use_ssl}{region});",
                    host = sql_quote(host),
                );
            }
        }
    }
    for table in datasets::tables() {
        out.push_str(&duckdb_table_views(root, table));
    }
    out
}

/// The DuckDB view(s) of one table under `root`: its files, plus the deduplicating view for a
/// [`Table::dedupe`] table.
pub fn duckdb_table_views(root: &str, table: &Table) -> String {
    let mut out = format!(
        "CREATE OR REPLACE VIEW {name} AS\n  SELECT * FROM read_parquet('{glob}', hive_partitioning = true,\n    union_by_name = true, hive_types = {{{types}}});\n",
        name = files_relation(table),
        glob = parquet_glob(root, table).replace('\'', "''"),
        types = duckdb_hive_types(table),
    );
    if let Some(window) = dedupe_window(table) {
        let _ = write!(
            out,
            "CREATE OR REPLACE VIEW {name} AS\n  SELECT * FROM {files}\n  QUALIFY {window} = 1;\n",
            name = table.name,
            files = files_relation(table),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn athena_types_match_the_parquet_types_we_write() {
        assert_eq!(athena_type(&DataType::Utf8).as_deref(), Some("string"));
        assert_eq!(athena_type(&DataType::Int64).as_deref(), Some("bigint"));
        assert_eq!(
            athena_type(&crate::schema::timestamp_type()).as_deref(),
            Some("timestamp")
        );
        let intents = crate::datasets::intent_realtime::schema::intent_realtime_schema();
        let list = intents.field_with_name("intents").expect("intents");
        assert_eq!(
            athena_type(list.data_type()).as_deref(),
            Some("array<string>")
        );
        assert_eq!(athena_type(&DataType::Float16), None);
    }

    #[test]
    fn user_status_table_with_injected_ids() {
        let start = NaiveDate::from_ymd_opt(2020, 1, 1).expect("date");
        let sql = athena_table(
            &datasets::user_status::TABLE,
            "s3://b/p/",
            &IdProjection::Injected,
            start,
        )
        .expect("ddl");
        let expected = "CREATE EXTERNAL TABLE IF NOT EXISTS `user_status` (
  `user_id` string,
  `email` string,
  `first_name` string,
  `last_name` string,
  `custom_id` string,
  `bucket_start` timestamp,
  `bucket_end` timestamp,
  `granularity` string,
  `metric` string,
  `value` string,
  `duration_seconds` bigint,
  `exported_at` timestamp,
  `extra` string
)
PARTITIONED BY (`account_id` string, `dt` string)
STORED AS PARQUET
LOCATION 's3://b/p/user_status/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.account_id.type' = 'injected',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2020-01-01,NOW+1DAYS',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://b/p/user_status/account_id=${account_id}/dt=${dt}/',
  'parquet.compression' = 'ZSTD'
);
";
        assert_eq!(sql, expected);
    }

    #[test]
    fn intent_table_with_known_ids_uses_enum_projection() {
        let ids = IdProjection::Known {
            account_ids: vec!["a1".into()],
            bot_ids: vec!["st-1".into(), "st-2".into()],
        };
        let start = NaiveDate::from_ymd_opt(2023, 4, 13).expect("date");
        let sql =
            athena_table(&datasets::intent_realtime::TABLE, "s3://b/p", &ids, start).expect("ddl");
        assert!(sql.contains("'projection.dt.range' = '2023-04-13,NOW+1DAYS'"));
        assert!(sql.contains("  `intents` array<string>,\n"));
        assert!(sql.contains("  `time_handled_seconds` bigint,\n"));
        assert!(
            !sql.contains("`bot_id` string,\n"),
            "partition column repeated:\n{sql}"
        );
        assert!(sql.contains("PARTITIONED BY (`account_id` string, `bot_id` string, `dt` string)"));
        assert!(sql.contains(
            "'projection.account_id.type' = 'enum',\n  'projection.account_id.values' = 'a1'"
        ));
        assert!(sql.contains("'projection.bot_id.values' = 'st-1,st-2'"));
        assert!(sql.contains(
            "'storage.location.template' = 's3://b/p/intent_realtime/account_id=${account_id}/bot_id=${bot_id}/dt=${dt}/'"
        ));
    }

    #[test]
    fn backfill_before_the_projection_start_names_the_flag() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let now = d("2026-05-10")
            .and_hms_opt(12, 0, 0)
            .expect("time")
            .and_utc();
        let msg =
            backfill_outside_projection(d("2019-12-30"), d("2020-01-05"), d("2020-01-01"), now)
                .expect("2019-12-30 is before the start");
        assert!(msg.contains("--athena-range-start 2019-12-30"), "{msg}");
        assert!(
            msg.contains("'projection.dt.range' = '2019-12-30,NOW+1DAYS'"),
            "{msg}"
        );
        assert_eq!(
            backfill_outside_projection(d("2020-01-01"), d("2026-05-11"), d("2020-01-01"), now),
            None,
            "the first projected day and the UTC day after today are visible"
        );
    }

    #[test]
    fn backfill_past_the_utc_day_after_today_is_flagged() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        // 23:59:59 UTC: Athena projects through 2026-05-11; 2026-05-12 starts nowhere yet.
        let now = d("2026-05-10")
            .and_hms_opt(23, 59, 59)
            .expect("time")
            .and_utc();
        let msg =
            backfill_outside_projection(d("2026-05-01"), d("2026-05-12"), d("2020-01-01"), now)
                .expect("2026-05-12 is not projected yet");
        assert!(msg.contains("days after 2026-05-11"), "{msg}");
        assert!(!msg.contains("--athena-range-start"), "{msg}");
    }

    #[test]
    fn duckdb_views_glob_one_level_per_partition_column() {
        let local = duckdb_views("/data/lake");
        assert!(local.contains(
            "CREATE OR REPLACE VIEW user_status AS\n  SELECT * FROM read_parquet('/data/lake/user_status/*/*/*.parquet', hive_partitioning = true,\n    union_by_name = true, hive_types = {'account_id': VARCHAR, 'dt': DATE});"
        ));
        assert!(local.contains("read_parquet('/data/lake/intent_realtime/*/*/*/*.parquet'"));
        assert!(!local.contains("httpfs"));
        let s3 = duckdb_views("s3://b/p");
        assert!(s3.starts_with("-- DuckDB") && s3.contains("LOAD httpfs;"));
        assert!(s3.contains("read_parquet('s3://b/p/user_status/*/*/*.parquet'"));
    }

    #[test]
    fn duckdb_secret_names_an_s3_compatible_endpoint() {
        let ep = S3Endpoint {
            url: "http://127.0.0.1:9000/".into(),
            region: Some("us-east-1".into()),
        };
        let sql = duckdb_views_with_endpoint("s3://lake/p", Some(&ep));
        let expected = "-- DuckDB views for smartassist-export output (generated by `smartassist-export schema --format duckdb`).
INSTALL httpfs;
LOAD httpfs;
-- Credentials from the standard AWS chain (e.g. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
CREATE OR REPLACE SECRET smartassist (TYPE s3, PROVIDER credential_chain, ENDPOINT '127.0.0.1:9000', URL_STYLE 'path', USE_SSL false, REGION 'us-east-1');
CREATE OR REPLACE VIEW user_status AS
  SELECT * FROM read_parquet('s3://lake/p/user_status/*/*/*.parquet', hive_partitioning = true,
    union_by_name = true, hive_types = {'account_id': VARCHAR, 'dt': DATE});
CREATE OR REPLACE VIEW intent_realtime_files AS
  SELECT * FROM read_parquet('s3://lake/p/intent_realtime/*/*/*/*.parquet', hive_partitioning = true,
    union_by_name = true, hive_types = {'account_id': VARCHAR, 'bot_id': VARCHAR, 'dt': DATE});
CREATE OR REPLACE VIEW intent_realtime AS
  SELECT * FROM intent_realtime_files
  QUALIFY row_number() OVER (PARTITION BY account_id, bot_id, dt, session_id ORDER BY exported_at) = 1;
CREATE OR REPLACE VIEW agent_status_details AS
  SELECT * FROM read_parquet('s3://lake/p/agent_status_details/*/*/*.parquet', hive_partitioning = true,
    union_by_name = true, hive_types = {'account_id': VARCHAR, 'dt': DATE});
";
        // The views of the tables registered after these follow the same pattern.
        assert!(sql.starts_with(expected), "{sql}");
        let tls = S3Endpoint {
            url: "https://minio.example:9000".into(),
            region: None,
        };
        let sql = duckdb_views_with_endpoint("s3://lake", Some(&tls));
        assert!(sql.contains("ENDPOINT 'minio.example:9000', URL_STYLE 'path', USE_SSL true);"));
        // A local root never gets S3 statements, endpoint or not.
        assert!(!duckdb_views_with_endpoint("/data", Some(&tls)).contains("SECRET"));
    }

    #[test]
    fn only_a_table_of_several_files_per_partition_is_read_through_a_deduplicating_view() {
        let athena = athena_views();
        for table in datasets::tables() {
            let duck = duckdb_table_views("/d", table);
            let name = table.name;
            match table.dedupe {
                Some(_) => {
                    assert!(
                        duck.contains(&format!(
                            "VIEW {name}_files AS\n  SELECT * FROM read_parquet("
                        )),
                        "{duck}"
                    );
                    assert!(duck.contains(&format!("VIEW {name} AS\n  SELECT * FROM {name}_files\n  QUALIFY row_number() OVER (PARTITION BY ")), "{duck}");
                    assert!(athena.contains(&format!("VIEW {name} AS\n")), "{athena}");
                    assert!(
                        athena.contains(&format!("  FROM {name}_files\n)\nWHERE copy_number = 1;")),
                        "{athena}"
                    );
                }
                None => {
                    assert_eq!(dedupe_window(table), None);
                    assert!(
                        !duck.contains("_files") && !duck.contains("QUALIFY"),
                        "{duck}"
                    );
                    assert!(!athena.contains(&format!("VIEW {name} AS")), "{athena}");
                }
            }
        }
        // A session's copies share its partition (its end time decides the day).
        assert_eq!(
            dedupe_window(&crate::datasets::intent_realtime::TABLE).as_deref(),
            Some("row_number() OVER (PARTITION BY account_id, bot_id, dt, session_id ORDER BY exported_at)")
        );
    }

    /// Whether `markdown` holds a ```` ```sql duckdb-check ```` block that is exactly `views`.
    fn has_views_block(markdown: &str, views: &str) -> bool {
        markdown.contains(&format!("```sql duckdb-check\n{views}```"))
    }

    #[test]
    fn documented_duckdb_views_match_the_code() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md exists");
        let example = duckdb_table_views("out", &crate::datasets::user_status::TABLE);
        assert!(
            has_views_block(&readme, &example),
            "README's DuckDB example drifted from the code; it must read:\n{example}"
        );
        // Each dataset's page shows the views of its tables, as `schema --format duckdb`
        // prints them.
        for d in crate::datasets::REGISTRY {
            let path = root.join(format!("docs/datasets/{}.md", d.name));
            let page = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let views: String = d
                .tables
                .iter()
                .map(|t| duckdb_table_views("out", t))
                .collect();
            assert!(
                has_views_block(&page, &views),
                "{}'s DuckDB views drifted from the code; it must read:\n{views}",
                path.display()
            );
        }
    }

    #[test]
    fn committed_athena_ddl_matches_the_code() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/athena/tables.sql");
        let committed = std::fs::read_to_string(&path).expect("deploy/athena/tables.sql exists");
        let tables = athena_ddl(
            PLACEHOLDER_LOCATION,
            &IdProjection::Injected,
            DEFAULT_PROJECTION_START,
        )
        .expect("ddl");
        let generated = format!("{tables}\n{}", athena_views());
        assert_eq!(
            committed, generated,
            "deploy/athena/tables.sql drifted from the schemas: regenerate it with \
             `smartassist-export schema --format athena --injected-ids --location {PLACEHOLDER_LOCATION} > deploy/athena/tables.sql`"
        );
    }
}
