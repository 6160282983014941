//! `simulate`: the built-in simulator of the APIs as a server on a loopback address, with the
//! settings of the command line, until the process is stopped.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cli::SimulateArgs;
use crate::error::Error;
use crate::error_chain::error_chain;
use crate::simulator::call_details::CallDetailsSim;
use crate::simulator::user_status::UserStatusSim;
use crate::simulator::{self, ModelSettings, SimulatorConfig};

pub(super) async fn cmd_simulate(
    args: SimulateArgs,
    cancel: CancellationToken,
) -> Result<(), Error> {
    if !args.listen.ip().is_loopback() {
        return Err(Error::Usage(format!(
            "--listen {}: the simulator only binds loopback addresses",
            args.listen
        )));
    }
    let defaults = SimulatorConfig::default();
    let jwe = match &args.jwe_private_key_file {
        None => None,
        Some(path) => Some(
            simulator::jwe::SimJwe::from_key_file(path, args.jwe_kid.clone()).map_err(|e| {
                Error::Usage(format!("--jwe-private-key-file: {}", error_chain(&e)))
            })?,
        ),
    };
    let cfg = SimulatorConfig {
        jwe,
        seed: args.seed,
        account_id: args.account_id,
        iid: args.iid,
        client_id: args.client_id,
        client_secret: args.client_secret.unwrap_or(defaults.client_secret.clone()),
        agents: args.agents,
        bots: if args.bots.is_empty() {
            defaults.bots.clone()
        } else {
            args.bots
        },
        enforce_jti: args.enforce_jti,
        latency: Duration::from_millis(args.latency_ms),
        max_page_size: args.max_page_size,
        strict_page_size: args.strict_page_size,
        models: ModelSettings::default()
            .with(UserStatusSim {
                legacy_shape: args.legacy_shape,
            })
            .with(CallDetailsSim {
                sessions_per_hour: args.call_sessions_per_hour,
                ..CallDetailsSim::default()
            }),
        cache_responses: args.cache_responses,
        rate_limit_per_minute: args.rate_limit_per_minute,
        intent_interval: Duration::from_millis(args.intent_interval_ms.max(1)),
        ..defaults
    };
    let sim = simulator::start(cfg, args.listen)
        .await
        .map_err(|e| Error::Startup {
            what: "the simulator",
            source: Box::new(e),
        })?;
    println!("simulator listening on {}", sim.base_url());
    cancel.cancelled().await;
    sim.shutdown().await;
    Ok(())
}
