//! The composition root: the one place that turns a validated [`Config`] into running parts and
//! hands plain values to the core. It starts the built-in simulator when `base_url =
//! "simulator"` (the core never does), resolves the client secret (the simulator's default when
//! none is configured for it), builds the token minter, the account's request budget (keeping
//! a realtime reserve of one place per polled entity), the API client, the output (its sink
//! and state store) and the [`Context`] with the caller's metrics handle (the output reports
//! its S3 requests to it too, and it reads the budget at each scrape),
//! registers every series the enabled datasets and the S3 client will emit (so `/metrics` is
//! complete from the first scrape), and lists the enabled datasets.
//! Commands build one [`App`], use it, and call [`App::shutdown`].

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::info;
use url::Url;

use crate::auth::TokenMinter;
use crate::client::{ApiClient, Budget, MemoryGate, Priority};
use crate::config::{BaseUrl, Config, OutputLocation, Secret};
use crate::datasets::{self, Context, Dataset, DatasetInfo};
use crate::error::Error;
use crate::metrics::{BotBudgetReading, BudgetReading, Metrics};
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
        let datasets = datasets::enabled(&config);
        let budget = account_budget(&config, &datasets, &metrics);
        let client = ApiClient::new(&config.api, base, minter, budget, cancel, metrics.clone())?;
        watch_bot_budgets(&client, &datasets, &metrics);
        let output = Output::open_with(&config.output, &metrics)?
            .with_page_row_group_bytes(config.encoding.page_row_group_bytes);
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
            page_gate: Arc::new(MemoryGate::new(config.api.page_memory_bytes)),
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
    // The bots any enabled dataset polls or exports (each bot once).
    let mut bots: Vec<String> = Vec::new();
    for dataset in datasets::enabled(config) {
        if dataset.entity_kind() == "bot" {
            for bot in dataset.entities() {
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

/// The account's request budget: `requests_per_minute`, with one place of the window kept
/// for each polled entity while polls are active (so the polls of one tick go out at once;
/// capped in [`Budget::new`]; a dataset whose entities are listed adds its own each time it
/// reads its list, [`Budget::reserve_for_listed`]). `metrics` reads it at every scrape.
fn account_budget(config: &Config, datasets: &[Dataset], metrics: &Metrics) -> Arc<Budget> {
    let polled: usize = datasets
        .iter()
        .map(|d| match d {
            Dataset::Snapshot(_) if d.is_listed() => 0,
            Dataset::Snapshot(s) => s.entities().len(),
            Dataset::History(_) => 0,
        })
        .fold(0, usize::saturating_add);
    let reserve = u32::try_from(polled).unwrap_or(u32::MAX);
    let budget = Arc::new(Budget::new(
        "account",
        config.api.requests_per_minute,
        reserve,
    ));
    let read = Arc::downgrade(&budget);
    metrics.watch_budget(Arc::new(move || {
        let Some(budget) = read.upgrade() else {
            return Vec::new();
        };
        budget
            .snapshot()
            .priorities
            .iter()
            .map(|p| BudgetReading {
                priority: p.priority.label(),
                queued: p.queued as u64,
                share: p.share,
            })
            .collect()
    }));
    budget
}

/// The per-bot budgets of the bots whose datasets use them, created now (so the status page and
/// `/metrics` show them from the start, at zero) and read by `metrics` at every scrape: the
/// `bot_id` label takes only these configured bots.
fn watch_bot_budgets(client: &ApiClient, datasets: &[Dataset], metrics: &Metrics) {
    for bot in datasets.iter().flat_map(Dataset::bot_budget_bots) {
        client.bot_budgets().of(bot);
        metrics.register_bot_budget(bot);
    }
    let read = Arc::downgrade(client.bot_budgets());
    metrics.watch_bot_budgets(Arc::new(move || {
        let Some(budgets) = read.upgrade() else {
            return Vec::new();
        };
        budgets
            .all()
            .iter()
            .map(|b| {
                let (minute, hour) = (b.minute.snapshot(), b.hour.snapshot());
                let queued = minute
                    .priorities
                    .iter()
                    .chain(&hour.priorities)
                    .map(|p| p.queued as u64)
                    .sum();
                BotBudgetReading {
                    bot_id: b.bot_id.clone(),
                    minute_share: minute.share_used(),
                    hour_share: hour.share_used(),
                    queued,
                }
            })
            .collect()
    }));
}

/// Registers, at zero, every series the enabled datasets will emit: runs, rejects and writes
/// per dataset, requests per endpoint and per budget priority, and each dataset's own families
/// per entity (a polled bot, a per-entity history's id; an account-wide dataset's one series is
/// labelled with its name, see [`Dataset::metric_entities`]). The families of every registered dataset are declared, enabled or not,
/// so `/metrics` lists the same families whatever the config.
fn register_series(metrics: &Metrics, datasets: &[Dataset]) {
    for family in datasets::REGISTRY.iter().flat_map(|d| d.metrics) {
        metrics.declare(family);
    }
    for dataset in datasets {
        let info = dataset.info();
        metrics.register_dataset(info.name);
        let priorities: &[Priority] = match dataset {
            Dataset::Snapshot(_) => &[Priority::Realtime],
            Dataset::History(_) => &[Priority::Scheduled, Priority::CatchUp],
        };
        let labels: Vec<&str> = priorities.iter().map(|p| p.label()).collect();
        // A dataset on the per-bot budgets takes no grant of the account's.
        if dataset.bot_budget_bots().is_empty() {
            metrics.register_budget(info.name, &labels);
        }
        for table in &info.tables[1..] {
            metrics.register_table(table.name);
        }
        metrics.register_endpoint(info.endpoint);
        for entity in dataset.metric_entities() {
            for family in info.metrics {
                metrics.register_entity(family, entity);
            }
        }
    }
}
