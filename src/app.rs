//! The composition root: the one place that turns a validated [`Config`] into running parts and
//! hands plain values to the core. It starts the built-in simulator when `base_url =
//! "simulator"` (the core never does), resolves the client secret (the simulator's default when
//! none is configured for it), builds the token minter, the API client, the output (its sink
//! and state store) and the [`Context`] with the caller's metrics handle (the output reports
//! its S3 requests to it too),
//! registers every series the enabled datasets and the S3 client will emit (so `/metrics` is
//! complete from the first scrape), and lists the enabled datasets.
//! Commands build one [`App`], use it, and call [`App::shutdown`].

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::info;
use url::Url;

use crate::auth::TokenMinter;
use crate::client::{ApiClient, MemoryGate};
use crate::config::{BaseUrl, Config, OutputLocation, Secret};
use crate::datasets::{self, Context, Dataset, DatasetInfo};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::pipeline::PAGES_IN_MEMORY;
use crate::simulator::{self, RunningSimulator, SimulatorConfig};
use crate::sink::Output;

/// A configured exporter: context, enabled datasets, and the simulator it started, if any.
pub struct App {
    pub config: Arc<Config>,
    pub cx: Context,
    datasets: Vec<Dataset>,
    simulator: Option<RunningSimulator>,
}

impl App {
    /// Build everything a command needs from `config`. `cancel` abandons outstanding HTTP
    /// requests when cancelled.
    pub async fn start(
        config: Config,
        cancel: CancellationToken,
        metrics: Metrics,
    ) -> Result<App, Error> {
        let secret = client_secret(&config);
        let (base, simulator) = match &config.api.base_url {
            BaseUrl::Remote(url) => (url.clone(), None),
            BaseUrl::Simulator => {
                let sim = start_simulator(&config, &secret).await?;
                let url = Url::parse(&sim.base_url()).map_err(|e| Error::Startup {
                    what: "the built-in simulator (its base URL is invalid)",
                    source: Box::new(e),
                })?;
                info!(base_url = %url, "Started the built-in simulator.");
                (url, Some(sim))
            }
        };
        let minter = TokenMinter::new(&config.api.client_id, &secret, &config.auth);
        let client = ApiClient::new(&config.api, base, minter, cancel, metrics.clone())?;
        let output = Output::open_with(&config.output, &metrics)?;
        let datasets = datasets::enabled(&config);
        register_series(&metrics, &datasets);
        if matches!(config.output, OutputLocation::S3 { .. }) {
            metrics.register_store();
        }
        let cx = Context {
            account_id: config.api.account_id.clone(),
            client,
            sink: output.sink,
            state: output.state,
            metrics,
            page_gate: Arc::new(MemoryGate::new(PAGES_IN_MEMORY)),
        };
        Ok(App {
            config: Arc::new(config),
            cx,
            datasets,
            simulator,
        })
    }

    /// Every dataset the config enables, in registry order.
    pub fn datasets(&self) -> &[Dataset] {
        &self.datasets
    }

    /// The enabled datasets among `names` (all enabled ones when empty); naming a disabled
    /// dataset is a usage error.
    pub fn select(&self, names: &[&'static DatasetInfo]) -> Result<Vec<Dataset>, Error> {
        select(&self.datasets, names)
    }

    /// Stop the built-in simulator, if one was started.
    pub async fn shutdown(self) {
        if let Some(sim) = self.simulator {
            sim.shutdown().await;
        }
    }
}

/// The enabled datasets among `names` (all when `names` is empty).
pub fn select(enabled: &[Dataset], names: &[&'static DatasetInfo]) -> Result<Vec<Dataset>, Error> {
    if names.is_empty() {
        return Ok(enabled.to_vec());
    }
    let mut chosen = Vec::new();
    for name in names {
        match enabled.iter().find(|d| d.name() == name.name) {
            Some(d) => chosen.push(d.clone()),
            None => {
                return Err(Error::Usage(format!(
                    "--dataset {}: that dataset is disabled in the config",
                    name.name
                )))
            }
        }
    }
    Ok(chosen)
}

/// The configured secret, or the simulator's default when talking to the built-in simulator
/// without one (validation guarantees a secret otherwise).
pub fn client_secret(config: &Config) -> Secret {
    config
        .api
        .client_secret
        .clone()
        .unwrap_or_else(|| Secret::new(simulator::DEFAULT_SECRET))
}

async fn start_simulator(config: &Config, secret: &Secret) -> Result<RunningSimulator, Error> {
    simulator::start(
        simulator_config_for(config, secret),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .map_err(|e| Error::Startup {
        what: "the built-in simulator",
        source: Box::new(e),
    })
}

/// The simulator configuration matching an exporter config (`base_url = "simulator"`).
pub fn simulator_config_for(config: &Config, secret: &Secret) -> SimulatorConfig {
    // The bots every snapshot dataset polls (each bot once).
    let mut bots: Vec<String> = Vec::new();
    for dataset in datasets::enabled(config) {
        if let Dataset::Snapshot(d) = dataset {
            for bot in d.entities() {
                if !bots.contains(bot) {
                    bots.push(bot.clone());
                }
            }
        }
    }
    if bots.is_empty() {
        bots.push("st-demo-bot".to_string());
    }
    SimulatorConfig {
        account_id: config.api.account_id.clone(),
        iid: config.api.iid.clone(),
        client_id: config.api.client_id.clone(),
        client_secret: secret.expose().to_string(),
        enforce_jti: config.auth.enforce_jti,
        bots,
        ..SimulatorConfig::default()
    }
}

/// Registers, at zero, every series the enabled datasets will emit: runs, rejects and writes
/// per dataset, requests per endpoint, and each dataset's own families per snapshot entity.
/// The families of every registered dataset are declared, enabled or not, so `/metrics` lists
/// the same families whatever the config.
fn register_series(metrics: &Metrics, datasets: &[Dataset]) {
    for family in datasets::REGISTRY.iter().flat_map(|d| d.metrics) {
        metrics.declare(family);
    }
    for dataset in datasets {
        let info = dataset.info();
        metrics.register_dataset(info.name);
        for table in &info.tables[1..] {
            metrics.register_table(table.name);
        }
        metrics.register_endpoint(info.endpoint);
        if let Dataset::Snapshot(d) = dataset {
            for entity in d.entities() {
                for family in info.metrics {
                    metrics.register_entity(family, entity);
                }
            }
        }
    }
}
