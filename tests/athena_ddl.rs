//! The shipped Athena DDL (`deploy/athena/tables.sql`, kept equal to `schema --format athena`
//! by the drift test) is read by an independent SQL parser in the Hive and Athena dialects
//! (sqlglot, from the pinned test venv), and what it declares is compared with the registered
//! tables: every table is there, with its schema's columns (partition columns excluded), its
//! partition columns, a `dt` projection ending at `NOW+1DAYS`, and a location template naming
//! every partition column. Fails (never skips) without Python unless `SMARTASSIST_SKIP_PY=1`.

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
            let t = tables
                .iter()
                .find(|t| t["table"] == table.name)
                .unwrap_or_else(|| panic!("{dialect}: no CREATE TABLE for {}", table.name));
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
            let range = props["projection.dt.range"].as_str().unwrap_or_default();
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
}
