//! `check`, `token` and `healthcheck`: the commands that check a setup without exporting. `check`
//! validates the config, the polls against the budget and the token, then probes every enabled
//! dataset with one request (per entity for snapshots) unless another process owns the budget
//! (the probes hold the budget's lease, so the next holder counts them);
//! `token` prints a minted token; `healthcheck` asks a running daemon's `/healthz`.

use std::path::Path;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::load_config;
use crate::app::{self, App};
use crate::auth::TokenMinter;
use crate::cli::HealthcheckArgs;
use crate::client::Priority;
use crate::datasets::{self, Context, Dataset, EntitySource, SnapshotDataset};
use crate::error::Error;
use crate::error_chain::error_chain;
use crate::handover::cli::budget_owner;
use crate::lease::{Holder, Identity, Leases, BUDGET, LEASE_TTL, RENEW_EVERY};
use crate::metrics::Metrics;
use crate::sources::window::local_date;

/// Exit 0 when `/healthz` of a running daemon answers 200 (for container HEALTHCHECKs in images
/// without curl).
pub(super) fn cmd_healthcheck(path: &Path, args: HealthcheckArgs) -> Result<(), Error> {
    let addr = match args.addr {
        Some(a) => a,
        None => {
            let mut a = load_config(path)?.server.listen;
            if a.ip().is_unspecified() {
                a.set_ip(if a.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            a
        }
    };
    match crate::server::http_get(addr, "/healthz") {
        Ok((200, body)) => {
            print!("{body}");
            Ok(())
        }
        Ok((status, body)) => Err(Error::Unhealthy(format!(
            "{addr}: {status}: {}",
            body.trim()
        ))),
        Err(source) => Err(Error::Io {
            context: format!("GET http://{addr}/healthz"),
            source,
        }),
    }
}

pub(super) fn cmd_token(path: &Path) -> Result<(), Error> {
    let config = load_config(path)?;
    let minter = TokenMinter::new(
        &config.api.client_id,
        &app::client_secret(&config),
        &config.auth,
    );
    let token = minter.mint()?;
    println!("{}", token.expose());
    Ok(())
}

pub(super) async fn cmd_check(path: &Path, cancel: CancellationToken) -> Result<(), Error> {
    let config = load_config(path)?;
    println!("config {}: valid", path.display());
    let polls = crate::daemon::PollBudget::of(
        &datasets::enabled(&config),
        config.api.requests_per_minute,
        Utc::now(),
    );
    polls.check()?;
    if let Some(line) = polls.summary() {
        println!("budget: {line}");
    }
    let minter = TokenMinter::new(
        &config.api.client_id,
        &app::client_secret(&config),
        &config.auth,
    );
    minter.mint()?;
    println!("token: minted (HS256, appId = {})", config.api.client_id);
    if let Some(jwe) = minter.jwe() {
        println!(
            "token: wrapped in a JWE ({}, {}, kid {})",
            jwe.alg(),
            jwe.enc(),
            jwe.kid()
        );
    }
    let metrics = Metrics::new();
    let output = crate::sink::Output::open_with(&config.output, &metrics)?
        .with_page_row_group_bytes(config.encoding.page_row_group_bytes);
    if let Some(owner) = budget_owner(&output.state, &config.api.account_id).await? {
        skip_probes(&owner);
        return Ok(());
    }
    // The probes are the account's requests like any other: they are sent under the budget's
    // lease, and its release hands their grants to the next holder (a daemon started right
    // after `check` counts them).
    let leases = match Leases::acquire(
        &output.state,
        &Identity::current(),
        &config.api.account_id,
        &[BUDGET],
        "check",
        LEASE_TTL,
    )
    .await
    {
        Ok(leases) => leases.keep(RENEW_EVERY),
        Err(refused) => match refused.holder() {
            // Taken between the look above and now.
            Some(owner) => {
                skip_probes(owner);
                return Ok(());
            }
            None => return Err(refused.into()),
        },
    };
    let app = match App::start(config, cancel, metrics).await {
        Ok(app) => app,
        Err(e) => {
            let _ = leases.release().await;
            return Err(e);
        }
    };
    leases.tell_budget(app.cx.client.budget());
    let (failures, probes) = probe_all(&app).await;
    let released = leases.release().await;
    app.shutdown().await;
    released?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Partial {
            failed: failures.len(),
            total: probes,
            units: failures,
        })
    }
}

/// What `check` says instead of probing when `owner` spends the account's budget.
fn skip_probes(owner: &Holder) {
    println!(
        "probes: skipped: the account's request budget is in use by {owner}; probes would \
         add requests beyond it (that process's /healthz and logs show whether its \
         requests succeed)"
    );
}

/// One request per enabled dataset (per entity for snapshots), through the same request path
/// the export uses. Returns the failed probes and how many probes ran.
async fn probe_all(app: &App) -> (Vec<String>, usize) {
    let mut failures = Vec::new();
    let mut probes = 0;
    for dataset in app.datasets() {
        match dataset {
            Dataset::History(d) => {
                probes += 1;
                let today = local_date(d.schedule().timezone, Utc::now());
                let cx = app.cx.for_work(d.info().name, Priority::Scheduled);
                match d.probe(&cx, today).await {
                    Ok(detail) => println!("{}: OK ({detail})", d.info().name),
                    Err(e) => {
                        println!("{}: FAILED: {}", d.info().name, error_chain(&e));
                        failures.push(d.info().name.to_string());
                    }
                }
            }
            Dataset::Snapshot(d) => {
                let (name, kind) = (d.info().name, d.entity_kind());
                let cx = app.cx.for_work(name, Priority::Realtime);
                let entities = match listed_entities(d.as_ref(), &cx).await {
                    Ok(entities) => entities,
                    Err(line) => {
                        println!("{line}");
                        failures.push(format!("{name} {kind} list"));
                        continue;
                    }
                };
                for entity in &entities {
                    probes += 1;
                    match d.probe(&cx, entity).await {
                        Ok(detail) => println!("{name} {kind} {entity}: OK ({detail})"),
                        Err(e) => {
                            println!("{name} {kind} {entity}: FAILED: {}", error_chain(&e));
                            failures.push(format!("{kind} {entity}"));
                        }
                    }
                }
            }
        }
    }
    (failures, probes)
}

/// The entities `check` probes: the configured ones, or those of the current list (printing
/// where they come from); `Err` with the line to print when the list cannot be read.
async fn listed_entities(d: &dyn SnapshotDataset, cx: &Context) -> Result<Vec<String>, String> {
    let (name, kind) = (d.info().name, d.entity_kind());
    let source = d.entity_source();
    if source == EntitySource::Config {
        return Ok(d.entities().to_vec());
    }
    println!(
        "{name}: {kind} ids: {}",
        source.describe(&format!("{name}.{kind}_ids"), kind)
    );
    match d.current_entities(cx, Utc::now()).await {
        Ok(Some(entities)) => {
            println!("{name}: {} {kind}(s) in the latest list", entities.len());
            Ok(entities)
        }
        Ok(None) => {
            println!(
                "{name}: no {kind} list in the output yet: nothing to probe; the daemon polls \
                 every {kind} once the list export has written one"
            );
            Ok(Vec::new())
        }
        Err(e) => Err(format!(
            "{name}: FAILED reading the {kind} list: {}",
            error_chain(&e)
        )),
    }
}
