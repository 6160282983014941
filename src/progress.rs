//! Backfill progress: days done, rows, requests sent, rate-limit waits and an ETA. On a
//! terminal (stderr is a TTY) it draws an `indicatif` bar; otherwise it logs the same figures as
//! one line every [`LOG_EVERY`]; a backfill handed over to a daemon publishes them to a
//! [`ProgressFeed`] instead, and the CLI that handed it over shows them with a
//! [`ProgressView`]. Log lines written while a bar is visible go through
//! [`LogWriter`], which hides the bar for the duration of the write so the two never interleave.
//!
//! The caller [`BackfillProgress::start`]s one reporter per backfill, calls
//! [`BackfillProgress::day_done`] / [`BackfillProgress::day_failed`] as days finish and
//! [`BackfillProgress::finish`] at the end. Requests and waits are read from the account's
//! request budget and every bot's budget (`bot_sessions`' requests take only their bot's) at
//! the priority of the backfill's client (catch-up), so retries and other catch-up work of
//! the same process are counted too.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tracing::info;

use crate::client::{ApiClient, LimiterUsage};

/// Interval between progress log lines when stderr is not a terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(5);
/// Refresh interval of the terminal bar.
const BAR_REFRESH: Duration = Duration::from_millis(250);

/// Interval between snapshots published to a [`ProgressFeed`].
pub const FEED_EVERY: Duration = Duration::from_secs(1);

/// Where [`ProgressMode::Feed`] publishes: the dataset being backfilled and its latest figures.
pub type ProgressFeed = tokio::sync::watch::Sender<Option<(&'static str, ProgressSnapshot)>>;

/// How progress is shown.
#[derive(Debug, Clone)]
pub enum ProgressMode {
    /// An `indicatif` bar on stderr.
    Bar,
    /// A log line every [`LOG_EVERY`].
    Log,
    /// Nothing.
    Off,
    /// Published every [`FEED_EVERY`] and at the end (a backfill handed over to a daemon).
    Feed(ProgressFeed),
}

impl ProgressMode {
    /// `Bar` when stderr is a terminal, `Log` otherwise.
    pub fn detect() -> ProgressMode {
        if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Log
        }
    }
}

/// The figures shown, at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressSnapshot {
    pub days_total: u64,
    pub days_done: u64,
    pub days_failed: u64,
    pub rows: u64,
    /// Requests since the backfill started (attempts, retries included), and waits for slots.
    pub limiter: LimiterUsage,
    pub elapsed: Duration,
}

impl ProgressSnapshot {
    /// Remaining time extrapolated from the days finished so far; `None` before the first day.
    pub fn eta(&self) -> Option<Duration> {
        let finished = self.days_done + self.days_failed;
        if finished == 0 {
            return None;
        }
        let remaining = self.days_total.saturating_sub(finished);
        Some(self.elapsed.mul_f64(remaining as f64 / finished as f64))
    }

    /// `rows 1234 · requests 56 · waited 12 × 3.4 s for the request budget · throttled 0`.
    pub fn figures(&self) -> String {
        format!(
            "rows {} · requests {} · waited {} × {:.1} s for the request budget · throttled {}",
            self.rows,
            self.limiter.granted,
            self.limiter.waits,
            self.limiter.waited.as_secs_f64(),
            self.limiter.throttled
        )
    }
}

struct Counters {
    dataset: &'static str,
    days_total: u64,
    days_done: AtomicU64,
    days_failed: AtomicU64,
    rows: AtomicU64,
    started: Instant,
    base: LimiterUsage,
    client: ApiClient,
}

impl Counters {
    /// The account budget's counters and those of every bot's budget (the XO runtime
    /// requests of `bot_sessions` take no grant of the account's budget).
    fn usage(&self) -> LimiterUsage {
        let priority = self.client.priority();
        let mut usage = self.client.budget().usage(priority);
        usage.add(&self.client.bot_budgets().usage(priority));
        usage
    }

    fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            days_total: self.days_total,
            days_done: self.days_done.load(Ordering::Relaxed),
            days_failed: self.days_failed.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
            limiter: self.usage().since(&self.base),
            elapsed: self.started.elapsed(),
        }
    }
}

/// The bar currently on screen, if any, so [`LogWriter`] can hide it while writing.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn active_bar() -> Option<ProgressBar> {
    ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn set_active_bar(bar: Option<ProgressBar>) {
    *ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()) = bar;
}

/// Progress of one backfill.
pub struct BackfillProgress {
    counters: Arc<Counters>,
    bar: Option<ProgressBar>,
    ticker: Option<JoinHandle<()>>,
    feed: Option<ProgressFeed>,
}

impl BackfillProgress {
    /// Starts reporting on `days_total` days of `dataset`. Must be called inside a tokio
    /// runtime.
    pub fn start(
        dataset: &'static str,
        days_total: u64,
        client: &ApiClient,
        mode: ProgressMode,
    ) -> BackfillProgress {
        let counters = Arc::new(Counters {
            dataset,
            days_total,
            days_done: AtomicU64::new(0),
            days_failed: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            started: Instant::now(),
            base: client.budget().usage(client.priority()),
            client: client.clone(),
        });
        let mut feed = None;
        let (bar, ticker) = match mode {
            ProgressMode::Off => (None, None),
            ProgressMode::Feed(tx) => {
                let c = Arc::clone(&counters);
                feed = Some(tx.clone());
                let ticker = tokio::spawn(async move {
                    let mut tick = tokio::time::interval(FEED_EVERY);
                    loop {
                        tick.tick().await;
                        tx.send_replace(Some((c.dataset, c.snapshot())));
                    }
                });
                (None, Some(ticker))
            }
            ProgressMode::Bar => {
                let bar =
                    ProgressBar::with_draw_target(Some(days_total), ProgressDrawTarget::stderr());
                bar.set_style(bar_style());
                set_active_bar(Some(bar.clone()));
                let c = Arc::clone(&counters);
                let b = bar.clone();
                let ticker = tokio::spawn(async move {
                    let mut tick = tokio::time::interval(BAR_REFRESH);
                    loop {
                        tick.tick().await;
                        let s = c.snapshot();
                        b.set_position(s.days_done + s.days_failed);
                        b.set_message(s.figures());
                    }
                });
                (Some(bar), Some(ticker))
            }
            ProgressMode::Log => {
                let c = Arc::clone(&counters);
                let ticker = tokio::spawn(async move {
                    let mut tick = tokio::time::interval(LOG_EVERY);
                    tick.tick().await;
                    loop {
                        tick.tick().await;
                        log_line(&c.snapshot(), "Backfill progress.");
                    }
                });
                (None, Some(ticker))
            }
        };
        BackfillProgress {
            counters,
            bar,
            ticker,
            feed,
        }
    }

    /// One day written with `rows` rows.
    pub fn day_done(&self, rows: usize) {
        self.counters.days_done.fetch_add(1, Ordering::Relaxed);
        self.counters.rows.fetch_add(rows as u64, Ordering::Relaxed);
    }

    /// One day failed for good (or failed its first try: call [`Self::retrying`] when it is
    /// tried again).
    pub fn day_failed(&self) {
        self.counters.days_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// A failed day is being tried again.
    pub fn retrying(&self) {
        self.counters.days_failed.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        self.counters.snapshot()
    }

    /// Stops reporting, removes the bar and logs (or publishes) the final figures once.
    pub fn finish(mut self) -> ProgressSnapshot {
        self.stop();
        let s = self.counters.snapshot();
        match &self.feed {
            Some(feed) => {
                feed.send_replace(Some((self.counters.dataset, s)));
            }
            None => log_line(&s, "Backfill finished."),
        }
        s
    }

    fn stop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if let Some(bar) = self.bar.take() {
            set_active_bar(None);
            bar.finish_and_clear();
        }
    }
}

impl Drop for BackfillProgress {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Shows progress figures that arrive from elsewhere (a backfill handed over to a daemon): a
/// bar on a terminal, else a log line at most every [`LOG_EVERY`].
pub struct ProgressView {
    bar: Option<ProgressBar>,
    logged: Option<Instant>,
}

impl ProgressView {
    pub fn new(mode: &ProgressMode) -> ProgressView {
        let bar = matches!(mode, ProgressMode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(bar_style());
            set_active_bar(Some(bar.clone()));
            bar
        });
        ProgressView { bar, logged: None }
    }

    /// Prints `line` on stdout (above the bar, if one is shown).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    /// The latest figures of `dataset`.
    pub fn update(&mut self, dataset: &str, s: &ProgressSnapshot) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(s.days_total);
                bar.set_position(s.days_done + s.days_failed);
                bar.set_message(format!("{dataset} · {}", s.figures()));
            }
            None => {
                if self.logged.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                    self.logged = Some(Instant::now());
                    log_line(s, "Backfill progress (in the daemon).");
                }
            }
        }
    }
}

impl Drop for ProgressView {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            set_active_bar(None);
            bar.finish_and_clear();
        }
    }
}

/// The bar's style: days, figures, ETA.
fn bar_style() -> ProgressStyle {
    // The template is a constant that parses; fall back to the default style if a future
    // indicatif ever refuses it.
    ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} days · {msg} · ETA {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn log_line(s: &ProgressSnapshot, msg: &'static str) {
    info!(
        days_done = s.days_done,
        days_failed = s.days_failed,
        days_total = s.days_total,
        rows = s.rows,
        requests = s.limiter.granted,
        rate_limit_waits = s.limiter.waits,
        rate_limit_wait_s = format_args!("{:.1}", s.limiter.waited.as_secs_f64()),
        throttled = s.limiter.throttled,
        elapsed_s = format_args!("{:.1}", s.elapsed.as_secs_f64()),
        eta_s = s.eta().map(|d| d.as_secs()),
        "{msg}"
    );
}

/// Log writer for `tracing_subscriber` (stderr): while a progress bar is visible, each log
/// line is written with the bar hidden, then the bar is redrawn below it.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match active_bar() {
            Some(bar) => bar.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match active_bar() {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf)),
            None => std::io::stderr().write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> LogWriter {
        LogWriter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(done: u64, failed: u64, total: u64, secs: u64) -> ProgressSnapshot {
        ProgressSnapshot {
            days_total: total,
            days_done: done,
            days_failed: failed,
            rows: 0,
            limiter: LimiterUsage::default(),
            elapsed: Duration::from_secs(secs),
        }
    }

    #[test]
    fn eta_extrapolates_from_finished_days() {
        assert_eq!(snap(0, 0, 10, 5).eta(), None);
        // 2 days in 10 s, 8 left: 40 s.
        assert_eq!(snap(2, 0, 10, 10).eta(), Some(Duration::from_secs(40)));
        // Failed days count as finished.
        assert_eq!(snap(1, 1, 4, 10).eta(), Some(Duration::from_secs(10)));
        assert_eq!(snap(4, 0, 4, 10).eta(), Some(Duration::ZERO));
    }

    /// A `bot_sessions` backfill sends its requests on its bots' budgets only: its progress
    /// counts them (and their waits), not only the account budget's.
    #[tokio::test]
    async fn progress_counts_the_requests_of_bot_budgets() {
        let out = tempfile::tempdir().expect("tmp");
        let text = format!(
            "[api]\nbase_url = \"simulator\"\naccount_id = \"acct\"\niid = \"st-1\"\n\
             client_id = \"cs-1\"\n\
             [output]\nurl = {:?}\n[user_status]\nenabled = false\n",
            out.path().display().to_string()
        );
        let config = crate::datasets::config_from_toml(&text, std::path::Path::new("t.toml"), None)
            .expect("config");
        let app = crate::app::App::start(
            config,
            tokio_util::sync::CancellationToken::new(),
            crate::metrics::Metrics::new(),
        )
        .await
        .expect("app");
        let client = app
            .cx
            .client
            .for_work("bot_sessions", crate::client::Priority::CatchUp);
        let progress = BackfillProgress::start("bot_sessions", 1, &client, ProgressMode::Off);
        let bot = client.bot_budgets().of("st-bot-a");
        bot.acquire(client.priority()).await;
        bot.throttled(client.priority(), Duration::ZERO);
        let s = progress.finish().limiter;
        assert_eq!((s.granted, s.throttled), (1, 1), "{s:?}");
    }

    #[test]
    fn figures_name_every_counter() {
        let mut s = snap(1, 0, 2, 1);
        s.rows = 1234;
        s.limiter = LimiterUsage {
            granted: 56,
            waits: 12,
            waited: Duration::from_millis(3_400),
            throttled: 2,
        };
        assert_eq!(
            s.figures(),
            "rows 1234 · requests 56 · waited 12 × 3.4 s for the request budget · throttled 2"
        );
    }
}
