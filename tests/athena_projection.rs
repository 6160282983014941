//! The Athena `dt` projection shows every day the exporter can have written, at every moment, in
//! every zone: the range is read from the generated DDL (and from the committed
//! `deploy/athena/tables.sql`) and evaluated the way Athena does, at each local midnight of a
//! year, just before it, every 15 minutes and at each UTC-offset change, in the shipped zones and
//! at the extremes (UTC+14, UTC-12, 30-minute DST, DST at midnight).
//!
//! The model of Athena is written from the AWS documentation, not from `ddl.rs`
//! (docs.aws.amazon.com/athena/latest/ug/partition-projection-supported-types.html, "Date type"):
//! 1. "Projected date columns are generated in Coordinated Universal Time (UTC) at query
//!    execution time."
//! 2. `projection.<col>.range` is "a two-element, comma-separated list which provides the minimum
//!    and maximum range values ... These values are inclusive", in the `.format` of the column or
//!    as relative dates matching
//!    `\s*NOW\s*(([\+\-])\s*([0-9]+)\s*(YEARS?|MONTHS?|WEEKS?|DAYS?|HOURS?|MINUTES?|SECONDS?)\s*)?`.
//! 3. With `interval` 1 and `interval.unit` DAYS the values are every day from the minimum on.
//!
//! Assumed (not stated there): a relative end is the instant `NOW ± n units` in UTC, and the
//! last projected `yyyy-MM-dd` value is that instant's UTC calendar date. This holds whether
//! Athena truncates the end to the format's precision or compares each day's 00:00 UTC with it.

use chrono::{
    DateTime, Days, Duration, Months, NaiveDate, NaiveTime, Offset, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

use smartassist_export::ddl::{athena_ddl, IdProjection, DEFAULT_PROJECTION_START};

/// The first projected day when no `--athena-range-start` is given, as the README documents it.
const DOCUMENTED_DEFAULT_START: &str = "2020-01-01";

/// Zones beyond the shipped ones: where many tenants are, the extremes of UTC offsets, 30- and
/// 45-minute offsets, DST with a 30-minute shift, southern-hemisphere DST, DST at local midnight.
const OTHER_ZONES: &[&str] = &[
    "Asia/Kolkata",        // UTC+5:30, the zone of many SmartAssist tenants
    "Europe/Berlin",       // UTC+1 / +2, northern DST east of UTC
    "Pacific/Kiritimati",  // UTC+14, the largest lead over UTC
    "Etc/GMT-14",          // UTC+14 as a fixed zone
    "Etc/GMT+12",          // UTC-12, the largest lag
    "Pacific/Chatham",     // UTC+12:45 / +13:45 with DST
    "Pacific/Auckland",    // UTC+12 / +13, southern DST
    "Asia/Tokyo",          // UTC+9
    "Asia/Kathmandu",      // UTC+5:45
    "Australia/Lord_Howe", // UTC+10:30 / +11, a 30-minute DST shift
    "Asia/Beirut",         // DST starts at 00:00: that local midnight does not exist
    "America/Santiago",    // DST changes around local midnight, southern hemisphere
];

/// One date-projection range as Athena reads it.
#[derive(Debug, Clone, PartialEq)]
struct AthenaDateRange {
    start: Bound,
    end: Bound,
}

#[derive(Debug, Clone, PartialEq)]
enum Bound {
    Date(NaiveDate),
    /// `NOW` plus a signed amount of one unit.
    Now {
        sign: i8,
        amount: u32,
        unit: String,
    },
}

fn parse_bound(text: &str) -> Bound {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("NOW") else {
        return Bound::Date(
            NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .unwrap_or_else(|e| panic!("range bound {t:?} is not yyyy-MM-dd: {e}")),
        );
    };
    let rest = rest.trim();
    if rest.is_empty() {
        return Bound::Now {
            sign: 1,
            amount: 0,
            unit: "DAYS".into(),
        };
    }
    let (sign, rest) = match rest.split_at(1) {
        ("+", r) => (1, r.trim()),
        ("-", r) => (-1, r.trim()),
        _ => panic!("relative date {t:?} lacks + or -"),
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let unit = rest[digits.len()..].trim().to_string();
    let known = [
        "YEAR", "MONTH", "WEEK", "DAY", "HOUR", "MINUTE", "SECOND", "YEARS", "MONTHS", "WEEKS",
        "DAYS", "HOURS", "MINUTES", "SECONDS",
    ];
    assert!(known.contains(&unit.as_str()), "unknown unit in {t:?}");
    Bound::Now {
        sign,
        amount: digits.parse().expect("amount"),
        unit,
    }
}

impl AthenaDateRange {
    fn parse(range: &str) -> Self {
        let (start, end) = range.split_once(',').expect("two comma-separated values");
        Self {
            start: parse_bound(start),
            end: parse_bound(end),
        }
    }

    /// The UTC calendar date a bound stands for when a query runs at `now`.
    fn resolve(bound: &Bound, now: DateTime<Utc>) -> NaiveDate {
        match bound {
            Bound::Date(d) => *d,
            Bound::Now { sign, amount, unit } => {
                let n = i64::from(*amount) * i64::from(*sign);
                let shifted = match unit.trim_end_matches('S') {
                    "YEAR" => shift_months(now, n * 12),
                    "MONTH" => shift_months(now, n),
                    "WEEK" => now + Duration::weeks(n),
                    "DAY" => now + Duration::days(n),
                    "HOUR" => now + Duration::hours(n),
                    "MINUTE" => now + Duration::minutes(n),
                    _ => now + Duration::seconds(n),
                };
                shifted.date_naive()
            }
        }
    }

    /// Whether Athena, queried at `now`, projects the day `day`.
    fn projects(&self, day: NaiveDate, now: DateTime<Utc>) -> bool {
        Self::resolve(&self.start, now) <= day && day <= Self::resolve(&self.end, now)
    }
}

fn shift_months(t: DateTime<Utc>, months: i64) -> DateTime<Utc> {
    let m = Months::new(u32::try_from(months.unsigned_abs()).expect("small"));
    if months >= 0 {
        t.checked_add_months(m).expect("in range")
    } else {
        t.checked_sub_months(m).expect("in range")
    }
}

/// The `projection.dt.*` properties of every table that has a `dt` partition, by table name.
fn dt_ranges(ddl: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for table in ddl.split("CREATE EXTERNAL TABLE").skip(1) {
        let name = table
            .split('`')
            .nth(1)
            .expect("table name in backticks")
            .to_string();
        let partitioned = table
            .lines()
            .find(|l| l.starts_with("PARTITIONED BY"))
            .expect("PARTITIONED BY");
        if !partitioned.contains("`dt`") {
            continue;
        }
        let prop = |key: &str| -> String {
            let needle = format!("'{key}' = '");
            let line = table
                .lines()
                .find(|l| l.trim_start().starts_with(&needle))
                .unwrap_or_else(|| panic!("{name}: no {key}"));
            let value = &line.trim_start()[needle.len()..];
            value[..value.find('\'').expect("closing quote")].to_string()
        };
        // The model below holds for a daily yyyy-MM-dd date projection only.
        assert_eq!(prop("projection.dt.type"), "date", "{name}");
        assert_eq!(prop("projection.dt.format"), "yyyy-MM-dd", "{name}");
        assert_eq!(prop("projection.dt.interval"), "1", "{name}");
        assert_eq!(prop("projection.dt.interval.unit"), "DAYS", "{name}");
        let range = prop("projection.dt.range");
        out.push((name, range));
    }
    out
}

/// The zones the project ships or documents: every `timezone = "..."` in the shipped config,
/// the Kubernetes ConfigMap, the README and the demo config.
fn shipped_zones() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // The default of every timezone key, and the demo's zone.
    let mut zones = vec![
        "UTC".to_string(),
        smartassist_export::commands::DEMO_TIMEZONE.to_string(),
    ];
    for file in [
        "config.toml",
        "deploy/kubernetes/configmap.yaml",
        "README.md",
    ] {
        let text = std::fs::read_to_string(root.join(file)).expect(file);
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if !key
                .trim()
                .trim_start_matches('#')
                .trim()
                .ends_with("timezone")
            {
                continue;
            }
            if let Some(zone) = value
                .trim()
                .strip_prefix('"')
                .and_then(|v| v.split('"').next())
            {
                if !zones.iter().any(|z| z == zone) {
                    zones.push(zone.to_string());
                }
            }
        }
    }
    zones
}

/// The first instant whose local date in `tz` is `day` (its midnight, or the end of a gap that
/// swallowed midnight).
fn start_of_local_day(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    let mut local = day.and_time(NaiveTime::MIN);
    loop {
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return t.with_timezone(&Utc);
        }
        local += Duration::minutes(1);
    }
}

fn offset_at(tz: Tz, t: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc()
}

/// Instants to check in `tz` over the year starting `first_day`: each local midnight and the
/// second before it, every 15 minutes, and the second of and before each UTC-offset change.
fn instants(tz: Tz, first_day: NaiveDate) -> Vec<DateTime<Utc>> {
    let last_day = first_day
        .checked_add_months(Months::new(12))
        .expect("in range");
    let mut out = Vec::new();
    for day in first_day.iter_days().take_while(|d| *d <= last_day) {
        let midnight = start_of_local_day(tz, day);
        out.push(midnight);
        out.push(midnight - Duration::seconds(1));
    }
    let begin = start_of_local_day(tz, first_day);
    let end = start_of_local_day(tz, last_day);
    let mut t = begin.with_second(0).expect("second 0");
    let mut prev = t;
    while t <= end {
        out.push(t);
        if offset_at(tz, prev) != offset_at(tz, t) {
            // Bisect to the first second with the new offset.
            let (mut lo, mut hi) = (prev, t);
            while hi - lo > Duration::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                if offset_at(tz, mid) == offset_at(tz, prev) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            out.extend([lo, hi]);
        }
        prev = t;
        t += Duration::minutes(15);
    }
    out
}

/// Days the exporter may already have written at `now` in `tz` but Athena would not project:
/// each day from a few days back through the local date of `now` (the newest day any dataset
/// can write; older days are written by backfills and late data), and the first projected day.
fn missed_days(
    range: &AthenaDateRange,
    first_written: NaiveDate,
    tz: Tz,
    now: DateTime<Utc>,
) -> Vec<NaiveDate> {
    let today = now.with_timezone(&tz).date_naive();
    let recent = (0..3).filter_map(|back| today.checked_sub_days(Days::new(back)));
    std::iter::once(first_written)
        .chain(recent)
        .filter(|day| *day >= first_written && !range.projects(*day, now))
        .collect()
}

/// `(zone, instant, missed day)` for every miss over a year, across `zones`.
fn misses(
    range: &str,
    zones: &[String],
    first_day: NaiveDate,
) -> Vec<(String, DateTime<Utc>, NaiveDate)> {
    let model = AthenaDateRange::parse(range);
    let first_written = match model.start {
        Bound::Date(d) => d,
        Bound::Now { .. } => panic!("a relative start would drop old partitions as time passes"),
    };
    let mut out = Vec::new();
    for zone in zones {
        let tz: Tz = zone.parse().unwrap_or_else(|e| panic!("{zone}: {e}"));
        for now in instants(tz, first_day) {
            for day in missed_days(&model, first_written, tz, now) {
                out.push((zone.clone(), now, day));
            }
        }
    }
    out
}

fn all_zones() -> Vec<String> {
    let mut zones = shipped_zones();
    for z in OTHER_ZONES {
        if !zones.iter().any(|s| s == z) {
            zones.push((*z).to_string());
        }
    }
    zones
}

fn year_2026() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")
}

#[test]
fn shipped_zones_are_found_in_the_shipped_files() {
    let zones = shipped_zones();
    for expected in ["UTC", "America/New_York"] {
        assert!(zones.iter().any(|z| z == expected), "{zones:?}");
    }
}

#[test]
fn every_dt_table_projects_every_written_day_at_every_moment_of_a_year_in_every_zone() {
    let generated = athena_ddl(
        "s3://bucket/prefix",
        &IdProjection::Injected,
        DEFAULT_PROJECTION_START,
    )
    .expect("ddl");
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/athena/tables.sql"),
    )
    .expect("deploy/athena/tables.sql");
    // Tables that share a range share the verdict: evaluate each distinct range once.
    let mut by_range: Vec<(String, Vec<String>)> = Vec::new();
    for (source, ddl) in [("generated", &generated), ("committed", &committed)] {
        let ranges = dt_ranges(ddl);
        assert!(
            ranges.len() >= 2,
            "{source}: expected user_status and intent_realtime, got {ranges:?}"
        );
        for (table, range) in ranges {
            let start = range.split(',').next().expect("start").trim();
            assert_eq!(start, DOCUMENTED_DEFAULT_START, "{source} {table}");
            let label = format!("{source} {table}");
            match by_range.iter_mut().find(|(r, _)| *r == range) {
                Some((_, tables)) => tables.push(label),
                None => by_range.push((range, vec![label])),
            }
        }
    }
    let zones = all_zones();
    for (range, tables) in by_range {
        let missed = misses(&range, &zones, year_2026());
        assert!(
            missed.is_empty(),
            "{tables:?}: range '{range}' leaves {} written day(s) unprojected, e.g. {:?}",
            missed.len(),
            &missed[..missed.len().min(5)]
        );
    }
}

#[test]
fn a_range_ending_at_now_misses_the_newest_day_east_of_utc_only() {
    let old = "2020-01-01,NOW";
    let east = ["Asia/Kolkata".to_string()];
    let missed = misses(old, &east, year_2026());
    // From 00:00 to 05:30 Kolkata, the local day is still tomorrow in UTC terms.
    let kolkata: Tz = "Asia/Kolkata".parse().expect("zone");
    let midnight = start_of_local_day(kolkata, NaiveDate::from_ymd_opt(2026, 3, 8).expect("d"));
    assert!(
        missed.iter().any(|(_, at, day)| *at == midnight
            && *day == NaiveDate::from_ymd_opt(2026, 3, 8).expect("d")),
        "00:00 Kolkata on 2026-03-08 must be reported: {:?}",
        &missed[..missed.len().min(3)]
    );
    let west = ["America/New_York".to_string(), "Etc/GMT+12".to_string()];
    assert_eq!(misses(old, &west, year_2026()), vec![]);
}

#[test]
fn the_athena_model_reads_relative_and_literal_bounds() {
    let now = Utc
        .with_ymd_and_hms(2026, 3, 7, 18, 30, 0)
        .single()
        .expect("t");
    let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).expect("date");
    let r = AthenaDateRange::parse("2020-01-01,NOW+1DAYS");
    assert!(r.projects(d(2026, 3, 8), now) && !r.projects(d(2026, 3, 9), now));
    assert!(r.projects(d(2020, 1, 1), now) && !r.projects(d(2019, 12, 31), now));
    let r = AthenaDateRange::parse("NOW-3YEARS,NOW");
    assert!(r.projects(d(2023, 3, 7), now) && !r.projects(d(2023, 3, 6), now));
    assert!(r.projects(d(2026, 3, 7), now) && !r.projects(d(2026, 3, 8), now));
    let r = AthenaDateRange::parse("2026-01-01 , NOW + 6 HOURS");
    assert!(r.projects(d(2026, 3, 8), now) && !r.projects(d(2026, 3, 9), now));
}

#[test]
fn schema_athena_range_start_moves_the_first_projected_day_of_every_dt_table() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smartassist-export"))
        .args([
            "-c",
            "/nonexistent/config.toml",
            "schema",
            "--format",
            "athena",
            "--athena-range-start",
            "2019-06-01",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ranges = dt_ranges(&String::from_utf8_lossy(&out.stdout));
    assert!(ranges.len() >= 2, "{ranges:?}");
    for (table, range) in ranges {
        assert_eq!(range, "2019-06-01,NOW+1DAYS", "{table}");
    }
}
