//! Check 1: the metric series of a dataset, read from the Prometheus text `Metrics::render`
//! serves on `/metrics`. The series a dataset must have at zero from the start follow from its
//! registry entry (name, tables, endpoint, its own families) and the documented label values
//! (`metrics::RUN_OUTCOMES`, `metrics::STATUS_CLASSES`), except a measured gauge's, which has
//! none until measured; and whatever a whole export emits must already have been there at
//! start.

use std::collections::BTreeMap;

use smartassist_export::datasets::DatasetInfo;
use smartassist_export::metrics::{
    MetricKind, BYTES_WRITTEN, FILES_WRITTEN, HTTP_REQUESTS, REJECTS, ROWS_WRITTEN, RUNS,
    RUN_OUTCOMES, STATUS_CLASSES, WATERMARK_LAG,
};

/// Series (`name{label="value",...}`, labels sorted) and their values.
pub type Series = BTreeMap<String, f64>;

/// Every sample line of a Prometheus text body.
pub fn parse(text: &str) -> Series {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("sample line {l:?}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("sample value in {l:?}"));
            (normalize(series), value)
        })
        .collect()
}

/// `name{b="2",a="1"}` as `name{a="1",b="2"}`.
fn normalize(series: &str) -> String {
    let Some((name, labels)) = series.split_once('{') else {
        return series.to_string();
    };
    let labels = labels.strip_suffix('}').unwrap_or(labels);
    let mut pairs: Vec<&str> = labels
        .split("\",")
        .map(|p| p.trim_end_matches('"'))
        .collect();
    pairs.sort_unstable();
    let pairs: Vec<String> = pairs.iter().map(|p| format!("{p}\"")).collect();
    format!("{name}{{{}}}", pairs.join(","))
}

fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    pairs.sort_unstable();
    format!("{name}{{{}}}", pairs.join(","))
}

/// The value of one series (0 when absent).
pub fn value(all: &Series, name: &str, labels: &[(&str, &str)]) -> f64 {
    all.get(&series(name, labels)).copied().unwrap_or(0.0)
}

/// Every series `info` must have at zero once the app has started with it enabled and polling
/// (or exporting the days of) `entities`.
pub fn assert_registered_at_zero(info: &DatasetInfo, entities: &[String], at_start: &Series) {
    let mut want = Vec::new();
    for outcome in RUN_OUTCOMES {
        want.push(series(
            RUNS,
            &[("dataset", info.name), ("outcome", outcome)],
        ));
    }
    want.push(series(REJECTS, &[("dataset", info.name)]));
    for table in info.tables {
        for family in [ROWS_WRITTEN, BYTES_WRITTEN, FILES_WRITTEN] {
            want.push(series(family, &[("dataset", table.name)]));
        }
    }
    for class in STATUS_CLASSES {
        want.push(series(
            HTTP_REQUESTS,
            &[("endpoint", info.endpoint), ("status_class", class)],
        ));
    }
    // An account-wide dataset's own families have one series, labelled with its name.
    let own = [info.name.to_string()];
    let labels = if entities.is_empty() {
        &own[..]
    } else {
        entities
    };
    for family in info.metrics {
        for e in labels {
            let s = series(family.name, &[(family.label, e)]);
            if family.kind == MetricKind::MeasuredGauge {
                // Not measured yet: no series, never a 0.
                assert_eq!(
                    at_start.get(&s),
                    None,
                    "{}: {s} before a measure",
                    info.name
                );
                continue;
            }
            want.push(s);
        }
    }
    for s in want {
        assert_eq!(
            at_start.get(&s),
            Some(&0.0),
            "{}: {s} is not at zero from the start",
            info.name
        );
    }
}

/// No series appeared during the run that `/metrics` did not show at start. The watermark lag
/// is the exception: it is only known once a run has stored coverage.
pub fn assert_no_series_appeared(dataset: &str, at_start: &Series, after: &Series) {
    let appeared: Vec<&String> = after
        .keys()
        .filter(|s| !at_start.contains_key(*s) && !s.starts_with(WATERMARK_LAG))
        .collect();
    assert!(
        appeared.is_empty(),
        "{dataset}: series that were not at zero from the start: {appeared:?}"
    );
}
