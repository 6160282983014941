//! Hand-written fakes of the API on loopback, and the exporter's app run in-process against
//! them: [`serve`] puts an axum router on a free port of 127.0.0.1, [`start_app`] starts the
//! app of a config written by `write_config` (the simulator's client secret, fresh metrics),
//! and [`Barrier`] holds a fake's answers until the requests of every expected key have
//! arrived, recording when each arrived: the event a test asserts when requests must go out
//! together.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use smartassist_export::app::App;
use smartassist_export::metrics::Metrics;
use smartassist_export::simulator::SimulatorConfig;
use tokio::sync::watch;

/// Serves `app` on a free port of 127.0.0.1 until the test's runtime ends.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The app of the config at `config` (its client secret: the simulator's), with the metrics
/// it reports to; the caller calls `app.shutdown()`.
pub async fn start_app(config: &Path) -> (App, Metrics) {
    let secret = SimulatorConfig::default().client_secret;
    let config = smartassist_export::datasets::load_config(config, Some(secret)).expect("config");
    let metrics = Metrics::new();
    let app = App::start(
        config,
        tokio_util::sync::CancellationToken::new(),
        metrics.clone(),
    )
    .await
    .expect("app");
    (app, metrics)
}

/// One request as a fake received it.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub key: String,
    /// Wall clock, when its handler started.
    pub at: SystemTime,
}

/// What had arrived when the first answer was let go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstAnswer {
    /// Distinct keys received by then.
    pub keys: usize,
    /// Whether the barrier opened because they all arrived (`false`: it gave up waiting).
    pub all_arrived: bool,
}

/// Holds every answer until requests of `expected` distinct keys have arrived, or until
/// `give_up` after the first wait began (then it answers anyway, and [`Barrier::first_answer`]
/// says so); from then on answers at once.
#[derive(Clone)]
pub struct Barrier {
    expected: usize,
    give_up: Duration,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    first: Arc<Mutex<Option<FirstAnswer>>>,
    open: watch::Sender<bool>,
}

impl Barrier {
    pub fn new(expected: usize, give_up: Duration) -> Barrier {
        Barrier {
            expected,
            give_up,
            arrivals: Arc::default(),
            first: Arc::default(),
            open: watch::Sender::new(false),
        }
    }

    fn distinct(arrivals: &[Arrival]) -> usize {
        arrivals
            .iter()
            .map(|a| &a.key)
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Records a request of `key`, then waits until the barrier is open; a handler calls it
    /// before it answers.
    pub async fn arrive(&self, key: &str) {
        let distinct = {
            let mut arrivals = self.arrivals.lock().expect("arrivals");
            arrivals.push(Arrival {
                key: key.to_string(),
                at: SystemTime::now(),
            });
            Barrier::distinct(&arrivals)
        };
        if distinct >= self.expected {
            self.open.send_replace(true);
        }
        let mut open = self.open.subscribe();
        let all_arrived = tokio::time::timeout(self.give_up, open.wait_for(|o| *o))
            .await
            .is_ok();
        self.open.send_replace(true);
        let mut first = self.first.lock().expect("first");
        if first.is_none() {
            let keys = Barrier::distinct(&self.arrivals.lock().expect("arrivals"));
            *first = Some(FirstAnswer {
                keys,
                all_arrived: all_arrived && keys >= self.expected,
            });
        }
    }

    /// Every request received so far, in order of arrival.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().expect("arrivals").clone()
    }

    /// What had arrived when the first answer was let go (`None`: nothing answered yet).
    pub fn first_answer(&self) -> Option<FirstAnswer> {
        self.first.lock().expect("first").clone()
    }
}
