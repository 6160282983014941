//! The shipped Athena DDL (`deploy/athena/tables.sql`, kept equal to `schema --format athena`
//! by the drift test) is read by an independent SQL parser in the Hive and Athena dialects
//! (sqlglot, from the pinned test venv), and what it declares is compared with the registered
//! tables: every table is there (as `<name>_files` when it has several files per partition),
//! with its schema's columns (partition columns excluded), its partition columns, a `dt`
//! projection ending at `NOW+1DAYS`, and a location template naming every partition column.
//! The views (Trino SQL) are parsed in the Trino and Athena dialects: each table with several
//! files per partition has one, under its own name, returning every column of the schema and
//! keeping the first copy per partition columns and key. Fails (never skips) without Python
//! unless `SMARTASSIST_SKIP_PY=1`.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use smartassist_export::datasets;

#[test]
fn the_shipped_athena_ddl_parses_as_hive_and_declares_every_registered_table() {
    if opted_out(SKIP_PY_ENV, "the Hive-dialect parse of the Athena DDL") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python())
        .arg(root.join("tests/py/parse_ddl.py"))
        .arg(root.join("deploy/athena/tables.sql"))
        .output()
        .expect("run parse_ddl.py");
    assert!(
        out.status.success(),
        "the DDL does not parse:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for dialect in ["hive", "athena"] {
        let tables = parsed[dialect].as_array().expect("tables");
        assert_eq!(
            tables.len(),
            datasets::tables().count(),
            "{dialect}: one CREATE TABLE per registered table"
        );
        for table in datasets::tables() {
            let name = match table.dedupe {
                Some(_) => format!("{}_files", table.name),
                None => table.name.to_string(),
            };
            let t = tables
                .iter()
                .find(|t| t["table"] == name.as_str())
                .unwrap_or_else(|| panic!("{dialect}: no CREATE TABLE {name}"));
            let partitions = table.partition_columns();
            let expected: Vec<String> = (table.schema)()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .filter(|n| !partitions.contains(&n.as_str()))
                .collect();
            let columns: Vec<String> = serde_json::from_value(t["columns"].clone()).expect("cols");
            assert_eq!(columns, expected, "{dialect}: columns of {}", table.name);
            let parts: Vec<String> =
                serde_json::from_value(t["partitions"].clone()).expect("parts");
            assert_eq!(parts, partitions, "{dialect}: partitions of {}", table.name);
            let props = &t["properties"];
            assert_eq!(props["projection.enabled"], "true", "{}", table.name);
            let date = table.layout.date_column();
            let range = props[format!("projection.{date}.range").as_str()]
                .as_str()
                .unwrap_or_default();
            assert!(range.ends_with(",NOW+1DAYS"), "{}: {range}", table.name);
            let template = props["storage.location.template"]
                .as_str()
                .unwrap_or_default();
            for p in partitions {
                assert!(
                    template.contains(&format!("/{p}=${{{p}}}")),
                    "{}: {template}",
                    table.name
                );
            }
        }
    }
    check_views(&parsed["views"]);
}

/// One view per table with several files per partition, reading its `_files` table.
fn check_views(views: &serde_json::Value) {
    let views = views.as_array().expect("views");
    let deduped: Vec<_> = datasets::tables().filter(|t| t.dedupe.is_some()).collect();
    assert!(
        !deduped.is_empty(),
        "intent_realtime has several files per partition"
    );
    assert_eq!(
        views.len(),
        deduped.len(),
        "one view per such table: {views:?}"
    );
    for table in deduped {
        let dedupe = table.dedupe.expect("filtered");
        let v = views
            .iter()
            .find(|v| v["view"] == table.name)
            .unwrap_or_else(|| panic!("no view {}", table.name));
        let partitions = table.partition_columns();
        let mut expected: Vec<String> = (table.schema)()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| !partitions.contains(&n.as_str()))
            .collect();
        expected.extend(partitions.iter().map(|p| p.to_string()));
        let columns: Vec<String> = serde_json::from_value(v["columns"].clone()).expect("cols");
        assert_eq!(columns, expected, "columns of view {}", table.name);
        assert_eq!(v["reads"], format!("{}_files", table.name).as_str());
        assert_eq!(v["star"], true, "{v}");
        let by: Vec<String> = serde_json::from_value(v["partition_by"].clone()).expect("by");
        let want: Vec<&str> = partitions.iter().chain(table.key).copied().collect();
        assert_eq!(
            by, want,
            "copies of a row are numbered per partition and key"
        );
        assert_eq!(v["order_by"], serde_json::json!([dedupe.keep_first_by]));
        assert_eq!(v["filter"], serde_json::json!([v["numbered_as"], "1"]));
    }
}
