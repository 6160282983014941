//! Check 4, the docs: README is the entry point, with one row per dataset in its Datasets table
//! and one line per table in its output layout; each dataset has its page,
//! `docs/datasets/<name>.md`, whose columns tables list every column of its tables' schemas
//! in order with their types. (The page's configuration rows are checked against the
//! section's defaults by `datasets::config_tests`, its DuckDB views by `ddl`'s tests, its
//! queries run in DuckDB in `tests/engines.rs`.)

use std::path::{Path, PathBuf};

use arrow::datatypes::{DataType, Field};
use smartassist_export::datasets::{self, DatasetInfo};

use crate::common::registry::{enabled, is_history, section};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).expect("README.md")
}

fn page_path(info: &DatasetInfo) -> PathBuf {
    root().join(format!("docs/datasets/{}.md", info.name))
}

fn page(info: &DatasetInfo) -> String {
    let path = page_path(info);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: no page {}: {e}", info.name, path.display()))
}

/// The lines after `heading` up to the next heading of the same or a higher level.
fn section_of<'a>(markdown: &'a str, heading: &str) -> Option<Vec<&'a str>> {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let mut lines = markdown.lines().skip_while(|l| *l != heading);
    lines.next()?;
    Some(
        lines
            .take_while(|l| {
                let hashes = l.chars().take_while(|c| *c == '#').count();
                !(hashes > 0 && hashes <= level && l[hashes..].starts_with(' '))
            })
            .collect(),
    )
}

/// The cells of a table row, without the outer pipes; `None` for other lines.
fn cells(line: &str) -> Option<Vec<&str>> {
    let inner = line.trim().strip_prefix('|')?.strip_suffix('|')?;
    Some(inner.split('|').map(str::trim).collect())
}

#[test]
fn the_readme_output_layout_shows_every_table_with_its_partition_folders() {
    let readme = readme();
    let layout = readme
        .split("## Output layout")
        .nth(1)
        .and_then(|s| s.split("```text\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("README has an Output layout with a text block");
    for info in datasets::REGISTRY {
        for table in info.tables {
            let line = layout
                .lines()
                .find(|l| l.starts_with(&format!("{{url}}/{}/", table.name)))
                .unwrap_or_else(|| {
                    panic!(
                        "{}: README's output layout has no line for {table}",
                        info.name
                    )
                });
            let mut rest = line;
            for c in table.partition_columns() {
                let at = rest.find(&format!("/{c}=")).unwrap_or_else(|| {
                    panic!("{}: `{line}` lacks the {c}= folder (in order)", info.name)
                });
                rest = &rest[at + 1..];
            }
            assert!(
                rest.contains(".parquet"),
                "{}: `{line}` names no Parquet file",
                info.name
            );
        }
    }
}

#[test]
fn every_dataset_has_a_row_in_the_readme_datasets_table_linking_to_its_page() {
    let readme = readme();
    let table = section_of(&readme, "## Datasets").expect("README has a Datasets section");
    let rows: Vec<Vec<&str>> = table.iter().filter_map(|l| cells(l)).collect();
    for info in datasets::REGISTRY {
        let link = format!("](docs/datasets/{}.md)", info.name);
        let row = rows
            .iter()
            .find(|r| r.first() == Some(&format!("`{}`", info.name).as_str()))
            .unwrap_or_else(|| panic!("{}: README's Datasets table has no row", info.name));
        assert_eq!(
            row.len(),
            6,
            "{}: dataset | API: one row is | tables | kind | enabled by default | page",
            info.name
        );
        assert!(
            row[5].contains(&link),
            "{}: the row links to no page",
            info.name
        );
        assert!(
            page_path(info).is_file(),
            "{}: its page is missing",
            info.name
        );
        for t in info.tables {
            assert!(
                row[2].contains(&format!("`{}`", t.name)),
                "{}: the row does not name the table {}",
                info.name,
                t.name
            );
        }
        let dataset = enabled(info, &section(info, &[]));
        let kind = if is_history(&dataset) {
            "history"
        } else {
            "snapshot"
        };
        assert!(
            row[3].starts_with(kind),
            "{}: kind `{}`, expected {kind}",
            info.name,
            row[3]
        );
        let default = info
            .config
            .full_defaults()
            .into_iter()
            .find(|(k, _)| *k == format!("{}.enabled", info.name))
            .map(|(_, v)| v);
        match default {
            Some("true") => assert_eq!(row[4], "yes", "{}: enabled by default", info.name),
            Some("false") => assert_eq!(row[4], "no", "{}: enabled by default", info.name),
            _ => {}
        }
    }
}

/// How a page names a column's type: `string`, `int64`, `timestamp` (milliseconds, UTC),
/// `list<string>`, …, with ` not null` for a non-nullable column.
fn documented_type(field: &Field) -> String {
    fn name(t: &DataType) -> String {
        match t {
            DataType::Utf8 => "string".into(),
            DataType::Timestamp(..) => "timestamp".into(),
            DataType::List(item) => format!("list<{}>", name(item.data_type())),
            other => other.to_string().to_lowercase(),
        }
    }
    let null = if field.is_nullable() { "" } else { " not null" };
    format!("{}{null}", name(field.data_type()))
}

#[test]
fn every_dataset_page_lists_the_columns_of_its_tables_in_order() {
    for info in datasets::REGISTRY {
        let page = page(info);
        for table in info.tables {
            let heading = format!("### `{}`", table.name);
            let lines = section_of(&page, &heading)
                .unwrap_or_else(|| panic!("docs/datasets/{}.md has no \"{heading}\"", info.name));
            let documented: Vec<(String, String)> = lines
                .iter()
                .filter_map(|l| cells(l))
                .filter(|c| c.len() == 3 && c[0].starts_with('`'))
                .map(|c| (c[0].trim_matches('`').into(), c[1].trim_matches('`').into()))
                .collect();
            let schema = (table.schema)();
            let want: Vec<(String, String)> = schema
                .fields()
                .iter()
                .map(|f| (f.name().clone(), documented_type(f)))
                .collect();
            assert_eq!(
                documented, want,
                "docs/datasets/{}.md, {heading}: the columns table (name, type) differs from \
                 the schema",
                info.name
            );
        }
    }
}

#[test]
fn no_heading_appears_twice_in_the_readme_or_a_page() {
    let mut documents = vec![("README.md".to_string(), readme())];
    for info in datasets::REGISTRY {
        documents.push((format!("docs/datasets/{}.md", info.name), page(info)));
    }
    for (name, text) in documents {
        let mut seen = std::collections::BTreeSet::new();
        let mut fenced = false;
        for line in text.lines() {
            if line.starts_with("```") {
                fenced = !fenced;
            }
            if !fenced && line.starts_with('#') {
                assert!(
                    seen.insert(line),
                    "{name}: the heading {line:?} appears twice"
                );
            }
        }
    }
}
