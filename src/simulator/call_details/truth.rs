//! The ground truth of the `call_details` dataset (see [`crate::simulator::truth`]): every
//! session starting in the local days asked about that passes the section's `channels`,
//! `queues` and `direction` filters (as the handler filters a request's body), from
//! [`calls_in`]: one `call_details` row keyed `session_id`, and one `call_segments` row per leg
//! of [`segments`], keyed `(session_id, segment_index)`, both in the day of the session's start.
//! A hostile session is one reject and no row.

use serde_json::{json, Value};

use super::http::passes_filters;
use super::render::{destination_ref, leg_ref, RenderOpts, Selected, LEG_UNTYPED, SESSION_UNTYPED};
use super::{calls_in, segments, GeneratedCall, GeneratedSegment};
use crate::simulator::truth::{
    key, local_day, DatasetTruth, ExpectedRow, PageRequest, Truth, TruthError, TruthQuery,
};
use crate::simulator::unknown::{self, LevelFields};
use crate::simulator::SimulatorConfig;

const DATASET: &str = "call_details";
const SEGMENTS: &str = "call_segments";

pub(crate) const TRUTH: DatasetTruth = DatasetTruth {
    dataset: DATASET,
    answer,
    pages,
};

/// A request window's pages from the v2 path with every block selected (what the exporter
/// asks for by default), `numResults` as configured.
fn pages(cfg: &SimulatorConfig, req: &PageRequest) -> Vec<String> {
    let opts = RenderOpts {
        seed: cfg.seed,
        offset_minutes: i64::from(req.offset_minutes),
        v1: false,
        selected: Selected::ALL,
        unknown_fields: cfg.unknown_fields,
    };
    let calls = calls_in(cfg, req.utc_range());
    let sim = cfg.models.get::<super::CallDetailsSim>();
    calls
        .chunks(req.page_size.max(1))
        .map(|page| {
            let num_results = match sim.num_results {
                super::NumResults::WindowTotal => Some(calls.len() as u64),
                super::NumResults::PageCount => Some(page.len() as u64),
                super::NumResults::Absent => None,
            };
            super::render::page(page, num_results, &opts)
        })
        .collect()
}

fn answer(cfg: &SimulatorConfig, q: &TruthQuery<'_>) -> Result<Truth, TruthError> {
    let days = q.account_days(DATASET)?;
    let filter = filter_body(q)?;
    let blocks = Blocks::of(q)?;
    let mut truth = Truth::default();
    for &day in days {
        let range = local_day(q.zone, day);
        for call in calls_in(cfg, range) {
            if !passes_filters(&filter, &call) {
                continue;
            }
            if call.malformed.is_some() {
                truth.rejects.push(call.session_id);
                continue;
            }
            let row = |table, key| ExpectedRow::new(table, day, None, key);
            let session = session_fields(cfg, &call, blocks);
            let extra = unknown::expected_extra(std::slice::from_ref(&session));
            truth
                .rows
                .push(row(DATASET, call.session_id.clone()).with_extra(extra));
            for leg in segments(&call) {
                let index = leg.index.to_string();
                let extra = unknown::expected_extra(&[
                    session.clone(),
                    destination_fields(cfg, &call, &leg),
                    agent_fields(cfg, &call, &leg),
                ]);
                truth.rows.push(
                    row(SEGMENTS, key(&[call.session_id.as_str(), &index])).with_extra(extra),
                );
            }
        }
    }
    Ok(truth)
}

/// Which optional blocks of a record the exporter's requests select, and whether they go to v1.
#[derive(Debug, Clone, Copy)]
struct Blocks {
    v1: bool,
    customerinfo: bool,
    campaigninfo: bool,
}

impl Blocks {
    /// From the section's `path` and `selected_fields` (absent: every documented block of the
    /// path, `campaigninfo` only for v2, as the exporter sends).
    fn of(q: &TruthQuery<'_>) -> Result<Blocks, TruthError> {
        let path = q.text(DATASET, "path")?.unwrap_or("v2/interactionDetails");
        let v1 = path
            .trim_start_matches('/')
            .eq_ignore_ascii_case("calldetails");
        let names = match q.section.get("selected_fields") {
            Some(_) => q.texts(DATASET, "selected_fields")?,
            None if v1 => vec!["customerinfo".to_string()],
            None => vec!["customerinfo".to_string(), "campaigninfo".to_string()],
        };
        let has = |n: &str| names.iter().any(|x| x.eq_ignore_ascii_case(n));
        Ok(Blocks {
            v1,
            customerinfo: has("customerinfo"),
            campaigninfo: has("campaigninfo"),
        })
    }
}

fn on(cfg: &SimulatorConfig, level: &str, id: &str) -> Vec<(String, String)> {
    if cfg.unknown_fields {
        unknown::fields(level, id)
    } else {
        Vec::new()
    }
}

/// The session's unmapped fields: `holdDuration`, and its own and its blocks' unknown fields.
fn session_fields(cfg: &SimulatorConfig, call: &GeneratedCall, blocks: Blocks) -> LevelFields {
    let mut session = LevelFields::new("session");
    for (key, json) in SESSION_UNTYPED {
        session.fields.push((key.to_string(), json.to_string()));
    }
    session.fields.extend(on(cfg, "session", &call.session_id));
    let customer_sent = call.customer.is_some() || (blocks.v1 && call.direction.is_some());
    if blocks.customerinfo && customer_sent && cfg.unknown_fields {
        let fields = on(cfg, "customerinfo", &call.session_id);
        session.nested.push(("customerinfo".into(), fields));
    }
    if blocks.campaigninfo && call.campaign.is_some() && cfg.unknown_fields {
        let fields = on(cfg, "campaigninfo", &call.session_id);
        session.nested.push(("campaigninfo".into(), fields));
    }
    session
}

/// A queue entry's unknown fields (an `AgentSegment` has none of its own: it is the leg).
fn destination_fields(
    cfg: &SimulatorConfig,
    call: &GeneratedCall,
    leg: &GeneratedSegment,
) -> LevelFields {
    let mut destination = LevelFields::new("destination");
    if leg.queue.is_some() {
        let id = destination_ref(&call.session_id, leg.destination);
        destination.fields = on(cfg, "destination", &id);
    }
    destination
}

/// An agent leg's unmapped fields: the untyped ones of a leg with a status, and its unknown
/// fields.
fn agent_fields(
    cfg: &SimulatorConfig,
    call: &GeneratedCall,
    leg: &GeneratedSegment,
) -> LevelFields {
    let mut agent = LevelFields::new("agent");
    if let Some(l) = &leg.leg {
        if l.status.is_some() {
            for (key, json) in LEG_UNTYPED {
                agent.fields.push((key.to_string(), json.to_string()));
            }
        }
        agent
            .fields
            .extend(on(cfg, "agent", &leg_ref(&call.session_id, &l.agent_id)));
    }
    agent
}

/// The request body filters the section's keys send.
fn filter_body(q: &TruthQuery<'_>) -> Result<Value, TruthError> {
    let mut body = json!({
        "channels": q.texts(DATASET, "channels")?,
        "queues": q.texts(DATASET, "queues")?,
    });
    if let Some(direction) = q.text(DATASET, "direction")? {
        body["direction"] = json!(direction);
    }
    Ok(body)
}
