//! The simulator's Sessions History model: `POST /api/public/bot/{botId}/getSessions` answers
//! `{total, moreAvailable, sessions}` for a configured bot (`SimulatorConfig::bots`; any other
//! id is a 404): the bot's sessions started in `[dateFrom, dateTo)` by "now" (those still
//! running as `sessionStatus` `active` without an `end_time`: the key left out or `null`)
//! (bare dates read as
//! GMT days; the v1 defaults when one is missing), newest first by start time, paged with
//! `skip` (or `offset`) and `limit` (clamped to [`BotSessionsSim::max_limit`]), filtered by the
//! `containmentType` query parameter when one is given. A range of 7 days or more is a 400, as
//! v1 documents. The sessions are IntentRealtimeData's ([`generator`]), so capture can be
//! measured against them.
//!
//! Its settings ([`BotSessionsSim`]): the per-bot limits of the XO runtime APIs (60 a minute
//! and 1,800 an hour per bot, rolling; unlimited by default, like the account limit) and
//! `advance_per_request`: the model's "now" for a bot and range moves on by that much with each
//! request for them (the first `advancing_requests` of them), so sessions keep arriving while
//! an exporter pages (newest first, so the
//! pages shift). [`BotSessionsClock::served_until`] says what "now" the last request for a bot
//! and range saw, [`BotSessionsClock::latest_from`] the latest of any range from one start.

mod generator;
mod truth;

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use tokio::time::Instant;

pub use generator::{bot_session, listed, GeneratedBotSession, MAX_SESSION_SECONDS};

use crate::simulator::intent_realtime::feed;
use crate::simulator::model::{ApiModel, ApiRequest, Handler, ModelState, Reply};
use crate::simulator::render::push_json_str;
use crate::simulator::shared::{lock, Shared};
use crate::simulator::{unknown, SimulatorConfig};

/// The `/_sim/stats` label of getSessions requests.
pub const ENDPOINT: &str = "getSessions";

/// The message of a per-bot limit's 429.
pub const BOT_RATE_LIMIT_MSG: &str =
    "Rate limit for this API has been reached. Please try again later.";

pub(crate) static MODEL: ApiModel = ApiModel {
    endpoint: ENDPOINT,
    route,
    methods: &[Method::POST],
    gated: true,
    blocking: true,
    state: Some(new_state),
    truth: Some(truth::TRUTH),
};

/// The model's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotSessionsSim {
    /// Requests admitted per bot in any 60 s (`None`: unlimited).
    pub per_bot_per_minute: Option<u32>,
    /// Requests admitted per bot in any hour (`None`: unlimited).
    pub per_bot_per_hour: Option<u32>,
    /// Upper clamp of `limit`.
    pub max_limit: usize,
    /// How far "now" moves for a bot and range with each request for them ...
    pub advance_per_request: Duration,
    /// ... for the first this many requests (then sessions stop arriving, so a walk can be
    /// checked against a fixed list).
    pub advancing_requests: u32,
}

impl Default for BotSessionsSim {
    fn default() -> Self {
        BotSessionsSim {
            per_bot_per_minute: None,
            per_bot_per_hour: None,
            max_limit: 1000,
            advance_per_request: Duration::ZERO,
            advancing_requests: u32::MAX,
        }
    }
}

/// A bot and a range's bounds in Unix milliseconds.
type RangeKey = (String, i64, i64);

/// The model's state: the clock of each (bot, range) and each bot's recent requests.
#[derive(Debug, Default)]
pub struct BotSessionsClock {
    /// (bot, dateFrom, dateTo) → (requests served, the "now" of the last).
    served: Mutex<HashMap<RangeKey, (u32, DateTime<Utc>)>>,
    /// Arrival times of each bot's admitted requests within the last hour.
    arrivals: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl BotSessionsClock {
    /// The "now" the last request of `bot` for `range` was answered at (`None`: no request).
    pub fn served_until(&self, bot: &str, range: &Range<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        let key = (
            bot.to_string(),
            range.start.timestamp_millis(),
            range.end.timestamp_millis(),
        );
        lock(&self.served).get(&key).map(|(_, now)| *now)
    }

    /// The latest "now" any request of `bot` for a range starting at `from` was answered at
    /// (an exporter that narrows a range's end while it pages asks for several ranges).
    pub fn latest_from(&self, bot: &str, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        lock(&self.served)
            .iter()
            .filter(|((b, f, _), _)| b == bot && *f == from.timestamp_millis())
            .map(|(_, (_, now))| *now)
            .max()
    }

    /// The "now" of the next request of `bot` for `range`.
    fn tick(
        &self,
        cfg: &SimulatorConfig,
        bot: &str,
        range: &Range<DateTime<Utc>>,
    ) -> DateTime<Utc> {
        let sim = cfg.models.get::<BotSessionsSim>();
        let base = cfg.frozen_now.unwrap_or_else(Utc::now);
        let key = (
            bot.to_string(),
            range.start.timestamp_millis(),
            range.end.timestamp_millis(),
        );
        let mut served = lock(&self.served);
        let entry = served.entry(key).or_insert((0, base));
        let step = TimeDelta::from_std(sim.advance_per_request).unwrap_or(TimeDelta::zero());
        let steps = entry.0.min(sim.advancing_requests);
        let now = base + step * i32::try_from(steps).unwrap_or(i32::MAX);
        *entry = (entry.0 + 1, now);
        now
    }

    /// Admits one request of `bot` under its per-bot limits, or refuses it.
    fn admit(&self, sim: &BotSessionsSim, bot: &str) -> bool {
        let now = Instant::now();
        let mut all = lock(&self.arrivals);
        let q = all.entry(bot.to_string()).or_default();
        while q
            .front()
            .is_some_and(|&t| now.duration_since(t) >= Duration::from_secs(3600))
        {
            q.pop_front();
        }
        let in_minute = q
            .iter()
            .filter(|&&t| now.duration_since(t) < Duration::from_secs(60))
            .count();
        if sim
            .per_bot_per_minute
            .is_some_and(|l| in_minute >= l as usize)
            || sim.per_bot_per_hour.is_some_and(|l| q.len() >= l as usize)
        {
            return false;
        }
        q.push_back(now);
        true
    }
}

fn new_state(_: &SimulatorConfig) -> ModelState {
    Box::new(BotSessionsClock::default())
}

fn route(segments: &[&str]) -> Option<Handler> {
    match segments {
        ["api", "public", "bot", bot, "getSessions"] => {
            let bot = bot.to_string();
            Some(Handler::new(move |shared, req| {
                sessions(shared, &bot, req).unwrap_or_else(|e| e)
            }))
        }
        _ => None,
    }
}

/// What a request asks for.
struct SessionsQuery {
    range: Range<DateTime<Utc>>,
    skip: usize,
    limit: usize,
    containment: Option<String>,
}

fn sessions(shared: &Shared, bot: &str, req: &ApiRequest) -> Result<Reply, Reply> {
    let cfg = &shared.cfg;
    let sim = cfg.models.get::<BotSessionsSim>();
    if !cfg.bots.iter().any(|b| b == bot) {
        return Err(Reply::error(StatusCode::NOT_FOUND, "Bot not found"));
    }
    let Some(clock) = shared.state::<BotSessionsClock>() else {
        return Err(Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "no state"));
    };
    if !clock.admit(&sim, bot) {
        return Err(Reply::error(
            StatusCode::TOO_MANY_REQUESTS,
            BOT_RATE_LIMIT_MSG,
        ));
    }
    let base_now = cfg.frozen_now.unwrap_or_else(Utc::now);
    let q = parse(req, base_now, sim.max_limit).map_err(|m| Reply::bad_request(&m))?;
    let now = clock.tick(cfg, bot, &q.range);
    let all: Vec<GeneratedBotSession> = listed(&feed(cfg, bot), &q.range, now)
        .into_iter()
        .filter(|s| {
            q.containment
                .as_deref()
                .is_none_or(|c| c == s.containment_type)
        })
        .collect();
    let page = all.iter().skip(q.skip).take(q.limit);
    let more = q.skip + q.limit < all.len();
    Ok(Reply::json(
        StatusCode::OK,
        render(bot, all.len(), more, page, now, cfg.unknown_fields),
    ))
}

/// The request's range, paging and filter; `Err` is the 400's message.
fn parse(req: &ApiRequest, now: DateTime<Utc>, max_limit: usize) -> Result<SessionsQuery, String> {
    let mut containment = None;
    for (k, v) in url::form_urlencoded::parse(req.query().unwrap_or("").as_bytes()) {
        if k == "containmentType" {
            if !matches!(v.as_ref(), "dropOff" | "selfService" | "agent") {
                return Err(format!("invalid containmentType {v:?}"));
            }
            containment = Some(v.into_owned());
        }
    }
    let body: serde_json::Value = if req.body.is_empty() {
        serde_json::json!({})
    } else {
        serde_json::from_slice(&req.body).map_err(|e| format!("invalid JSON body: {e}"))?
    };
    let date = |key: &str| -> Result<Option<DateTime<Utc>>, String> {
        match body.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => parse_date(s)
                .map(Some)
                .ok_or_else(|| format!("{key} {s:?} is not yyyy-mm-dd or an ISO date-time")),
            Some(other) => Err(format!("{key} must be a string, not {other}")),
        }
    };
    let week = TimeDelta::days(7);
    let (from, to) = match (date("dateFrom")?, date("dateTo")?) {
        (Some(f), Some(t)) => (f, t),
        (Some(f), None) => (f, f + week),
        (None, Some(t)) => (t - week, t),
        (None, None) => (now - week, now),
    };
    if to - from >= week || to < from {
        return Err("dateTo - dateFrom must be less than 7 days".into());
    }
    let count = |keys: &[&str], default: usize| -> Result<usize, String> {
        for key in keys {
            if let Some(v) = body.get(*key) {
                return v
                    .as_u64()
                    .map(|n| n as usize)
                    .ok_or_else(|| format!("{key} must be a non-negative integer"));
            }
        }
        Ok(default)
    };
    let limit = count(&["limit"], 50)?.clamp(1, max_limit.max(1));
    Ok(SessionsQuery {
        range: from..to,
        skip: count(&["skip", "offset"], 0)?,
        limit,
        containment,
    })
}

/// `yyyy-mm-dd` (a GMT day) or an ISO date-time with a zone.
fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = s.parse::<NaiveDate>() {
        return Some(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The response body.
pub(crate) fn render<'a>(
    bot: &str,
    total: usize,
    more: bool,
    page: impl Iterator<Item = &'a GeneratedBotSession>,
    now: DateTime<Utc>,
    unknown_fields: bool,
) -> String {
    let mut out = format!("{{\"total\":{total},\"moreAvailable\":{more},\"sessions\":[");
    for (n, s) in page.enumerate() {
        if n > 0 {
            out.push(',');
        }
        render_session(&mut out, bot, s, now, unknown_fields);
    }
    out.push_str("]}");
    out
}

fn render_session(
    out: &mut String,
    bot: &str,
    s: &GeneratedBotSession,
    now: DateTime<Utc>,
    unknown_fields: bool,
) {
    let b = &s.base;
    let at = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    out.push_str("{\"sessionId\":");
    push_json_str(out, &b.session_id);
    out.push_str(",\"botId\":");
    push_json_str(out, bot);
    out.push_str(",\"channel\":");
    push_json_str(out, &b.channel);
    out.push_str(",\"userId\":");
    push_json_str(out, &b.user_id);
    let active = s.is_active_at(now);
    out.push_str(&format!(",\"start_time\":\"{}\"", at(b.start_time)));
    match (active, s.omits_end_when_active()) {
        (false, _) => out.push_str(&format!(",\"end_time\":\"{}\"", at(b.end_time))),
        (true, false) => out.push_str(",\"end_time\":null"),
        (true, true) => {}
    }
    out.push_str(",\"session_lang\":[");
    for (i, l) in s.session_lang.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, l);
    }
    let developer = match (s.developer_as_number, s.is_developer) {
        (true, true) => "1",
        (true, false) => "0",
        (false, true) => "true",
        (false, false) => "false",
    };
    out.push_str(&format!(
        "],\"sessionType\":\"{}\",\"containmentType\":\"{}\",\"isDeveloper\":{developer},\
         \"sessionStatus\":\"{}\",\"tags\":{{\"userTags\":{},\"sessionTags\":{},\"altText\":[]",
        s.session_type,
        s.containment_type,
        if active { "active" } else { "closed" },
        s.user_tags,
        s.session_tags
    ));
    if unknown_fields {
        unknown::push_members(out, &unknown::fields("tags", &b.session_id));
    }
    if s.malformed {
        out.push_str("},\"noOfMessagesExchanged\":\"many\"");
    } else {
        out.push_str(&format!("}},\"noOfMessagesExchanged\":{}", s.messages));
    }
    out.push_str(&format!(",\"noOfTasksExecuted\":{}", s.tasks));
    if unknown_fields {
        unknown::push_members(out, &unknown::fields("session", &b.session_id));
    }
    out.push('}');
}

#[cfg(test)]
mod tests;
