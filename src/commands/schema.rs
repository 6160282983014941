//! `schema`: the tables' Arrow schemas, or the Athena / DuckDB DDL over them, for the configured
//! output location (or placeholders when there is no usable config) and its ids.

use std::path::Path;

use super::SCHEMA_STAND_IN_SECRET;
use crate::cli::{SchemaArgs, SchemaFormat};
use crate::config::{Config, OutputLocation};
use crate::datasets::{self, Dataset};
use crate::ddl;
use crate::error::Error;
use crate::error_chain::error_chain;

pub(super) fn cmd_schema(path: &Path, args: SchemaArgs) -> Result<(), Error> {
    if args.format == SchemaFormat::Arrow {
        print_arrow_schemas();
        return Ok(());
    }
    let config = schema_config(path, args.location.is_some());
    let config_root = config.as_ref().map(|c| match &c.output {
        OutputLocation::Local(dir) => dir.display().to_string(),
        OutputLocation::S3 { bucket, prefix, .. } if prefix.is_empty() => format!("s3://{bucket}"),
        OutputLocation::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
    });
    match args.format {
        SchemaFormat::Athena => print_athena(&args, config.as_ref(), config_root),
        SchemaFormat::Duckdb => {
            print_duckdb(args.location, config.as_ref(), config_root);
            Ok(())
        }
        SchemaFormat::Arrow => Ok(()),
    }
}

fn print_arrow_schemas() {
    for table in datasets::tables() {
        println!(
            "{table} (partitioned by {})",
            table.partition_columns().join(", ")
        );
        for f in (table.schema)().fields() {
            let null = if f.is_nullable() {
                "nullable"
            } else {
                "not null"
            };
            println!(
                "  {:<22} {:<40} {null}",
                f.name(),
                f.data_type().to_string()
            );
        }
        println!();
    }
}

/// The config for DDL, when it loads. It supplies the location and the ids; DDL for a template
/// (the committed deploy/athena files) is produced with --location and --injected-ids. DDL
/// never uses the client secret, so a stand-in is passed (it wins over api.client_secret_file,
/// which is then not read): an analyst without the service's secret still gets real DDL.
fn schema_config(path: &Path, location_given: bool) -> Option<Config> {
    if !path.exists() {
        if !location_given {
            eprintln!(
                "note: no config file at {}; printing placeholders",
                path.display()
            );
        }
        return None;
    }
    match datasets::load_config(path, Some(SCHEMA_STAND_IN_SECRET.to_string())) {
        Ok(config) => Some(config),
        Err(e) => {
            eprintln!(
                "note: not using {} ({}); printing placeholders",
                path.display(),
                error_chain(&e)
            );
            None
        }
    }
}

fn print_athena(
    args: &SchemaArgs,
    config: Option<&Config>,
    config_root: Option<String>,
) -> Result<(), Error> {
    let root = args
        .location
        .clone()
        .or(config_root.filter(|r| r.starts_with("s3://")))
        .unwrap_or_else(|| ddl::PLACEHOLDER_LOCATION.to_string());
    let ids = match (config, args.injected_ids) {
        (Some(c), false) => ddl::IdProjection::Known {
            account_ids: vec![c.api.account_id.clone()],
            bot_ids: bots_of(&datasets::enabled(c)),
        },
        _ => ddl::IdProjection::Injected,
    };
    let start = args
        .athena_range_start
        .unwrap_or(ddl::DEFAULT_PROJECTION_START);
    let sql = ddl::athena_ddl(&root, &ids, start).map_err(|e| Error::Ddl(Box::new(e)))?;
    print!("{sql}\n{}", ddl::athena_views());
    Ok(())
}

fn print_duckdb(location: Option<String>, config: Option<&Config>, config_root: Option<String>) {
    let root = location
        .or(config_root)
        .unwrap_or_else(|| "out".to_string());
    let endpoint = match config.map(|c| &c.output) {
        Some(OutputLocation::S3 {
            endpoint: Some(url),
            region,
            ..
        }) => Some(ddl::S3Endpoint {
            url: url.clone(),
            region: region.clone(),
        }),
        _ => None,
    };
    print!(
        "{}",
        ddl::duckdb_views_with_endpoint(&root, endpoint.as_ref())
    );
}

/// The bots of every enabled dataset whose entities are bots (a snapshot's polls, a history
/// dataset's per-bot days), once each: the values of the DDL's `bot_id` projection.
fn bots_of(enabled: &[Dataset]) -> Vec<String> {
    let mut bots: Vec<String> = enabled
        .iter()
        .filter_map(|d| match d {
            Dataset::Snapshot(d) => (d.entity_kind() == "bot").then(|| d.entities().to_vec()),
            Dataset::History(d) => (d.entity_kind() == "bot").then(|| d.entities().to_vec()),
        })
        .flatten()
        .collect();
    bots.sort();
    bots.dedup();
    bots
}
