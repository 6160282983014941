//! The Grafana dashboard (`deploy/grafana/smartassist-export.json`) against the `/metrics` the
//! built daemon serves with every registered dataset enabled: every metric name a panel's
//! PromQL or a template variable's query uses must be a series name that scrape declares (a
//! gauge's own name, a counter's `_total`, a histogram's `_bucket`/`_sum`/`_count`), so a
//! renamed metric or a misspelling in the JSON fails here instead of showing an empty panel.
//! The names are read from the expressions with a small PromQL tokenizer written for this test
//! (strings, label matchers, ranges and Grafana variables skipped; functions, aggregations and
//! keywords are not names). Whether each expression parses as PromQL is checked by
//! `deploy/validate.sh` (promtool).
#![cfg(unix)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::registry::{config_text, section, OutputAt};
use common::*;
use smartassist_export::datasets;
use smartassist_export::simulator::SimulatorConfig;

const DASHBOARD: &str = "deploy/grafana/smartassist-export.json";

/// Words of PromQL that stand where a metric name could: aggregation operators (which may be
/// followed by `by (...)` rather than by their parenthesis), binary and set operators, and
/// modifiers.
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "and",
    "or",
    "unless",
    "atan2",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
];

/// Keywords followed by a parenthesized list of label names (not expressions).
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Index just past the quote that closes the string opening at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() && chars[i] != quote {
        // Backquoted strings have no escapes.
        i += if chars[i] == '\\' && quote != '`' {
            2
        } else {
            1
        };
    }
    i + 1
}

/// Index just past the `close` matching the `open` at `start` (strings inside skipped).
fn skip_group(chars: &[char], start: usize, open: char, close: char) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => {
                i = skip_string(chars, i);
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// The metric names a PromQL expression (with Grafana variables) selects, in order.
fn metric_names(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '"' | '\'' | '`') {
            i = skip_string(&chars, i);
        } else if c == '{' {
            i = skip_group(&chars, i, '{', '}');
        } else if c == '[' {
            i = skip_group(&chars, i, '[', ']');
        } else if c == '$' {
            // A Grafana variable: `$name` or `${name}` / `${name:format}`.
            i += 1;
            if chars.get(i) == Some(&'{') {
                i = skip_group(&chars, i, '{', '}');
            } else {
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // A number or a duration (`0.95`, `1e3`, `5m`, `0x1f`).
            while i < chars.len() && (is_ident(chars[i]) || chars[i] == '.') {
                i += 1;
            }
        } else if is_ident_start(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let opens = chars.get(next) == Some(&'(');
            if LABEL_LISTS.contains(&word.as_str()) {
                if opens {
                    i = skip_group(&chars, next, '(', ')');
                }
            } else if !opens && !KEYWORDS.contains(&word.as_str()) {
                names.push(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// The expression of a query variable's query: the selector of `label_values(selector,
/// label)` (none for `label_values(label)`), or the expression of `query_result(expr)`.
fn variable_expr(query: &str) -> Option<&str> {
    let query = query.trim();
    if let Some(args) = query
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
    {
        return args.rsplit_once(',').map(|(selector, _label)| selector);
    }
    if let Some(expr) = query
        .strip_prefix("query_result(")
        .and_then(|q| q.strip_suffix(')'))
    {
        return Some(expr);
    }
    panic!("a variable query this test cannot read: {query:?}; teach variable_expr its form");
}

/// Every `expr` of the dashboard (panels, rows' panels, any depth), with where it is.
fn exprs(node: &serde_json::Value, at: &str, out: &mut Vec<(String, String)>) {
    match node {
        serde_json::Value::Object(map) => {
            let here = match map.get("title").and_then(|t| t.as_str()) {
                Some(title) => format!("{at}/{title}"),
                None => at.to_string(),
            };
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", serde_json::Value::String(e)) => out.push((here.clone(), e.clone())),
                    _ => exprs(value, &here, out),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                exprs(item, at, out);
            }
        }
        _ => {}
    }
}

/// Every metric name the dashboard uses, with the places that use it.
fn dashboard_names(dashboard: &serde_json::Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut found = Vec::new();
    exprs(&dashboard["panels"], "panels", &mut found);
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list is an array");
    for v in variables.iter().filter(|v| v["type"] == "query") {
        let query = match &v["query"] {
            serde_json::Value::String(q) => q.as_str(),
            q => q["query"].as_str().expect("a query variable has a query"),
        };
        if let Some(expr) = variable_expr(query) {
            let name = v["name"].as_str().unwrap_or("?");
            found.push((format!("variable ${name}"), expr.to_string()));
        }
    }
    let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (at, expr) in found {
        for name in metric_names(&expr) {
            names.entry(name).or_default().insert(at.clone());
        }
    }
    names
}

/// The series names an exposition declares: every sample's name, and for every `# TYPE`
/// line the names its type produces (so a family without a series yet still counts).
fn exposed_names(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (family, kind) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("a # TYPE line without a type: {line:?}"));
            let suffixes: &[&str] = match kind.trim() {
                "counter" if family.ends_with("_total") => &[""],
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                "summary" => &["", "_sum", "_count"],
                "info" => &["_info"],
                _ => &[""],
            };
            for suffix in suffixes {
                names.insert(format!("{family}{suffix}"));
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

/// The dashboard's names that `exposition` does not declare, each with where it is used and a
/// hint for a histogram's bare name.
fn unknown_names(dashboard: &serde_json::Value, exposition: &str) -> Vec<String> {
    let exposed = exposed_names(exposition);
    dashboard_names(dashboard)
        .into_iter()
        .filter(|(name, _)| !exposed.contains(name))
        .map(|(name, at)| {
            let hint = if exposed.contains(&format!("{name}_bucket")) {
                " (a histogram: use its _bucket, _sum or _count series)"
            } else {
                ""
            };
            format!("{name}{hint}, used by {at:?}")
        })
        .collect()
}

/// The body of the first `/metrics` scrape of the daemon with every registered dataset
/// enabled (each by its registry demo section). The simulator answers nothing for ten minutes,
/// so the scrape shows every series at its registered start, as Prometheus first sees it.
fn scrape_with_every_dataset() -> String {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sim = rt.block_on(start_sim(SimulatorConfig {
        latency: Duration::from_secs(600),
        ..SimulatorConfig::default()
    }));
    let tmp = tempfile::tempdir().expect("tmp");
    let sections: Vec<(&datasets::DatasetInfo, toml::Table)> = datasets::REGISTRY
        .iter()
        .map(|info| (*info, section(info, &[])))
        .collect();
    let on: Vec<(&datasets::DatasetInfo, &toml::Table)> =
        sections.iter().map(|(info, s)| (*info, s)).collect();
    let out = OutputAt::Local(tmp.path().join("out"));
    let base_url = sim.base_url();
    let config_for = |addr: std::net::SocketAddr| {
        let text = format!(
            "{}\n[server]\nlisten = \"{addr}\"\nshutdown_timeout_seconds = 2\n",
            config_text(&base_url, "UTC", &out, &on)
        );
        let path = tmp.path().join("config.toml");
        std::fs::write(&path, text).expect("write config");
        path
    };
    let (mut child, addr) = spawn_daemon_on_free_port(config_for, &tmp.path().join("run.log"));
    let body = wait_for_metrics(addr, &mut child, Duration::from_secs(60), |_| true);
    sigterm_and_wait(&mut child, Duration::from_secs(30));
    rt.block_on(sim.shutdown());
    body
}

fn read_dashboard() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DASHBOARD);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

#[test]
fn every_metric_the_dashboard_uses_is_served_on_metrics_with_every_dataset_enabled() {
    let dashboard = read_dashboard();
    let body = scrape_with_every_dataset();
    // The scrape is the one the test means: every registered dataset is enabled in it.
    for info in datasets::REGISTRY {
        let series = format!(
            "smartassist_runs_total{{dataset=\"{}\",outcome=\"success\"}} 0",
            info.name
        );
        assert!(
            body.lines().any(|l| l == series),
            "{} is not enabled in the scrape:\n{body}",
            info.name
        );
    }
    let unknown = unknown_names(&dashboard, &body);
    assert!(
        unknown.is_empty(),
        "{DASHBOARD} uses metric names /metrics does not serve:\n  {}\n\n/metrics:\n{body}",
        unknown.join("\n  ")
    );
    let used = dashboard_names(&dashboard);
    // The dashboard covers what it is for (and the tokenizer found its names).
    for family in [
        "smartassist_runs_total",
        "smartassist_watermark_lag_seconds",
        "smartassist_last_success_timestamp_seconds",
        "smartassist_rows_written_total",
        "smartassist_rejects_total",
        "smartassist_unmapped_fields_total",
        "smartassist_budget_used_ratio",
        "smartassist_budget_requests_total",
        "smartassist_budget_wait_seconds_bucket",
        "smartassist_http_throttled_total",
        "smartassist_intent_gaps_total",
        "smartassist_store_requests_total",
        "process_resident_memory_bytes",
    ] {
        assert!(used.contains_key(family), "no panel uses {family}");
    }
    println!(
        "{} metric names in {DASHBOARD}, all served: {:?}",
        used.len(),
        used.keys().collect::<Vec<_>>()
    );
}

// The tokenizer and the comparison, on hand-written expressions and a hand-written exposition.

#[test]
fn names_are_read_from_selectors_function_arguments_and_binary_operations() {
    let expr = r#"histogram_quantile(0.95, sum by (dataset, le) (rate(a_seconds_bucket{job=~"$job",x="}{[("}[$__rate_interval])))
        / on (dataset) group_left (version) b_info * 60
        and count(c_total offset 5m > bool 1e3) or vector(0) unless max without (x) (d{a='b'} @ 1700000000)"#;
    assert_eq!(
        metric_names(expr),
        ["a_seconds_bucket", "b_info", "c_total", "d"]
    );
    assert_eq!(
        metric_names("time() - e_seconds{a=\"1\"} and ${var:regex} > 0"),
        ["e_seconds"]
    );
    assert_eq!(metric_names("sum(f)"), ["f"]);
    assert_eq!(metric_names("g:recorded:rate5m"), ["g:recorded:rate5m"]);
}

#[test]
fn variable_queries_yield_their_selector() {
    assert_eq!(
        variable_expr(r#"label_values(a_total{job=~"$job"}, dataset)"#),
        Some(r#"a_total{job=~"$job"}"#)
    );
    assert_eq!(variable_expr("label_values(job)"), None);
    assert_eq!(variable_expr("query_result(b > 0)"), Some("b > 0"));
}

#[test]
fn a_misspelled_or_bare_histogram_name_is_reported_and_declared_families_count() {
    // Hand-written: a counter and a histogram with series, a gauge family without any.
    let exposition = "# HELP a Things.\n# TYPE a counter\na_total{dataset=\"x\"} 0\n\
        # HELP h Durations.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n\
        # HELP g Later.\n# TYPE g gauge\n";
    let dashboard = |expr: &str| {
        serde_json::json!({
            "panels": [{"title": "P", "targets": [{"expr": expr}]}],
            "templating": {"list": [
                {"name": "d", "type": "query", "query": {"query": "label_values(a_total, dataset)"}}
            ]}
        })
    };
    let ok =
        dashboard("rate(a_total[5m]) + h_sum / h_count + g + histogram_quantile(0.5, h_bucket)");
    assert_eq!(unknown_names(&ok, exposition), Vec::<String>::new());
    let misspelled = dashboard("rate(a_totl[5m])");
    assert_eq!(
        unknown_names(&misspelled, exposition),
        [r#"a_totl, used by {"panels/P"}"#]
    );
    let bare = dashboard("h + a");
    let unknown = unknown_names(&bare, exposition);
    assert_eq!(unknown.len(), 2, "{unknown:?}");
    assert!(unknown[0].starts_with("a, "), "{unknown:?}");
    assert!(unknown[1].contains("a histogram"), "{unknown:?}");
    let variable = serde_json::json!({
        "panels": [],
        "templating": {"list": [{"name": "d", "type": "query", "query": "label_values(b_total, dataset)"}]}
    });
    assert_eq!(
        unknown_names(&variable, exposition),
        [r#"b_total, used by {"variable $d"}"#]
    );
}
