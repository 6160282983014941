//! The simulated day the dataset benchmarks (`datasets`, `writer_memory`) read their pages from:
//! 2024-05-01 as one UTC window, answered by a simulator of a chosen number of agents with Call
//! Details at `BENCH_CALLS_PER_DAY` sessions a day (default 4,000). Each bench includes this
//! file with `#[path]`, so both measure the same day.

use chrono::NaiveDate;
use smartassist_export::simulator::call_details::CallDetailsSim;
use smartassist_export::simulator::{ModelSettings, SimulatorConfig};
use smartassist_export::sources::window::{plan_day, DayWindow};

/// The variable `name` as a number, `default` when it is unset or not one.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The simulator of `agents` agents, Call Details at `BENCH_CALLS_PER_DAY` sessions a day.
pub fn simulator(agents: usize) -> SimulatorConfig {
    let calls_per_day = env_usize("BENCH_CALLS_PER_DAY", 4_000) as u32;
    SimulatorConfig {
        agents,
        models: ModelSettings::default().with(CallDetailsSim {
            sessions_per_hour: calls_per_day.div_ceil(24),
            ..CallDetailsSim::default()
        }),
        ..SimulatorConfig::default()
    }
}

/// The measured day and its one window (UTC has no transition, so one window covers it).
pub fn day() -> (NaiveDate, DayWindow) {
    let day = NaiveDate::from_ymd_opt(2024, 5, 1).expect("a date");
    let window = plan_day(chrono_tz::UTC, day).remove(0);
    (day, window)
}
