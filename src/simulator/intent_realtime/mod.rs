//! The simulator's IntentRealtimeData model: `GET` or `POST /api/public/bot/{botId}/
//! intentrealtimedata` (also with the documented `//intentrealtimedata` spelling) answers the
//! latest [`LATEST_SESSIONS`] sessions of a configured bot (`SimulatorConfig::bots`; any
//! other id is a 404) completed by "now" (`frozen_now` or the clock), newest first. Sessions
//! follow each bot's schedule from `intent_epoch` every `intent_interval`.
//!
//! The data come from the pure generator in `generator.rs` (its items re-exported here); tests
//! compare exported rows with [`session`] and [`latest_sessions`] for the [`feed`] of a bot.

mod generator;
mod render;
mod truth;

use axum::http::{Method, StatusCode};
use chrono::Utc;

pub use generator::{
    format_time_handled, latest_session_index, latest_sessions, session, session_end,
    GeneratedSession, IntentFeed, LATEST_SESSIONS,
};

use crate::simulator::model::{check_header, ApiModel, Handler, Reply};
use crate::simulator::shared::Shared;
use crate::simulator::SimulatorConfig;

/// The `/_sim/stats` label of IntentRealtimeData requests.
pub const ENDPOINT: &str = "intentrealtimedata";

pub(crate) static MODEL: ApiModel = ApiModel {
    endpoint: ENDPOINT,
    route,
    methods: &[Method::GET, Method::POST],
    gated: true,
    blocking: false,
    state: None,
    truth: Some(truth::TRUTH),
};

/// The session schedule a simulator started with `cfg` serves for `bot_id` (for expected
/// values).
pub fn feed(cfg: &SimulatorConfig, bot_id: &str) -> IntentFeed {
    IntentFeed {
        seed: cfg.seed,
        bot_id: bot_id.to_string(),
        epoch: cfg.intent_epoch,
        interval: cfg.intent_interval,
        malformed_every: cfg.malformed_every,
    }
}

fn route(segments: &[&str]) -> Option<Handler> {
    match segments {
        ["api", "public", "bot", bot, "intentrealtimedata"] => {
            let bot = bot.to_string();
            Some(Handler::new(move |shared, req| {
                intent(shared, &bot, &req.headers).unwrap_or_else(|e| e)
            }))
        }
        _ => None,
    }
}

fn intent(shared: &Shared, bot: &str, headers: &axum::http::HeaderMap) -> Result<Reply, Reply> {
    let cfg = &shared.cfg;
    check_header(headers, "accountId", &cfg.account_id, true)?;
    if !cfg.bots.iter().any(|b| b == bot) {
        return Err(Reply::error(StatusCode::NOT_FOUND, "Bot not found"));
    }
    let now = cfg.frozen_now.unwrap_or_else(Utc::now);
    let sessions = latest_sessions(&feed(cfg, bot), now);
    Ok(Reply::json(
        StatusCode::OK,
        render::sessions(&sessions, cfg.unknown_fields),
    ))
}

#[cfg(test)]
mod tests;
