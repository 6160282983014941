//! The contents of one generated session, a pure function of the seed, its key and its start:
//! bot-only and agent-routed sessions, queue entries with and without a responding agent,
//! non-responding agents, transfers (a bare agent segment after a queue entry), surveys,
//! campaigns, tags and free-form `metaInfo`.

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde_json::json;

use super::super::generator::{hash, mix};
use super::{
    session_id, session_start, CallDetailsSim, GeneratedCall, GeneratedCampaign, GeneratedConsult,
    GeneratedCustomer, GeneratedDestination, GeneratedLeg, GeneratedQueue, GeneratedSurvey,
    Malformation, SessionKey,
};

const TAG_CALL: u64 = 0x45;
const TAG_MALFORMED: u64 = 0x46;

/// A deterministic stream of draws for one session.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

fn id(prefix: &str, seed: u64, kind: u64, n: u64) -> String {
    let h = hash(&[seed, TAG_CALL, kind, n]);
    format!(
        "{prefix}{:08x}-{:04x}-5{:03x}-{:04x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xFFFF,
        h & 0xFFF,
        0x8000 | (mix(h) >> 50),
        mix(h) & 0xFFFF_FFFF_FFFF
    )
}

const AGENTS: [&str; 8] = [
    "Asha Rao",
    "Liam Smith",
    "Chen Wang",
    "Fatima Khan",
    "Olga Ivanova",
    "Kwame Mensah",
    "Sofia Rossi",
    "Hiro Sato",
];
const QUEUES: [&str; 4] = ["Default Queue", "Billing", "Support", "Sales"];

/// The session `key`, or `None` when the key does not exist under `sim`.
pub fn call(
    seed: u64,
    sim: &CallDetailsSim,
    malformed_every: Option<u64>,
    key: SessionKey,
) -> Option<GeneratedCall> {
    session_start(seed, sim, key).map(|start| call_at(seed, key, start, malformed_every))
}

pub(super) fn call_at(
    seed: u64,
    key: SessionKey,
    start: DateTime<Utc>,
    malformed_every: Option<u64>,
) -> GeneratedCall {
    let words = match key {
        SessionKey::Hourly { hour, i } => [1, hour as u64, u64::from(i)],
        SessionKey::Burst { burst, i } => [2, u64::from(burst), u64::from(i)],
    };
    let mut d = Draw(hash(&[seed, TAG_CALL, words[0], words[1], words[2]]));
    let session_id = session_id(seed, key);
    let routed = d.chance(60);
    let end = start + TimeDelta::seconds(d.range(20, 1800));
    let bot = d.below(3);
    let user = d.below(5000);
    let channel = if routed {
        d.pick(&["Voice", "Web/Mobile Client", "System Mail", "Voice"])
    } else {
        d.pick(&["Web/Mobile Client", "Voice", "rtm", "telegram"])
    };
    let voice = channel == "Voice";
    let mut call = new_call(seed, key, session_id, (start, end), channel, (bot, user));
    if routed {
        fill_routed(&mut call, &mut d, seed, voice);
    } else {
        call.final_status = d.pick(&["BotResolved", "BotUnresolved"]).into();
        call.smart_status = "CLOSED AT BOT".into();
        if d.chance(30) {
            call.meta_info = Some(json!({"hostDomain": "example.com", "os": "Linux"}));
        }
    }
    call.survey = survey(&mut d);
    call.malformed = malformation(seed, words, malformed_every, &mut d);
    call
}

/// The call before its outcome is drawn: who and when, on which channel, the outcome's fields
/// empty.
fn new_call(
    seed: u64,
    key: SessionKey,
    session_id: String,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    channel: &str,
    (bot, user): (u64, u64),
) -> GeneratedCall {
    let voice = channel == "Voice";
    let bot_id = id("st-", seed, 1, bot);
    GeneratedCall {
        key,
        session_id,
        start,
        end,
        conversation_id: None,
        channel: channel.to_string(),
        bot_id: bot_id.clone(),
        user_id: id("u-", seed, 2, user),
        channel_specific_user_id: if voice {
            format!("+1555{:07}", user)
        } else {
            format!("user{user}@example.com")
        },
        org_id: id("o-", seed, 3, 0),
        final_status: String::new(),
        smart_status: String::new(),
        reason: String::new(),
        disconnecting_event: String::new(),
        error_details: String::new(),
        direction: None,
        is_voicemail: None,
        skills: None,
        dispositions: None,
        disposition_remarks: None,
        survey: None,
        customer: None,
        user_level_tags: None,
        session_level_tags: None,
        campaign: None,
        automation_bot_ids: vec![bot_id],
        meta_info: None,
        destinations: Vec::new(),
        malformed: None,
    }
}

/// How the call is malformed, when `malformed_every` picks it (every n-th by its hash).
fn malformation(
    seed: u64,
    words: [u64; 3],
    malformed_every: Option<u64>,
    d: &mut Draw,
) -> Option<Malformation> {
    malformed_every
        .filter(|&n| n > 0)
        .filter(|&n| hash(&[seed, TAG_MALFORMED, words[0], words[1], words[2]]).is_multiple_of(n))
        .map(|_| match d.below(6) {
            0 => Malformation::BadStartTime,
            1 => Malformation::NoSessionId,
            2 => Malformation::BadCsatScore,
            3 => Malformation::DestinationsNotArray,
            4 => Malformation::BadVoicemail,
            _ => Malformation::NotAnObject,
        })
}

fn survey(d: &mut Draw) -> Option<GeneratedSurvey> {
    let none = GeneratedSurvey {
        survey_type: String::new(),
        csat_score: None,
        csat_feedback: None,
        nps_score: None,
        like_dislike_score: None,
    };
    match d.below(6) {
        0 | 1 => Some(GeneratedSurvey {
            survey_type: "csat".into(),
            csat_score: Some(d.range(1, 5)),
            csat_feedback: Some(d.pick(&["services", "quick", ""]).into()),
            ..none
        }),
        2 => Some(GeneratedSurvey {
            survey_type: "nps".into(),
            nps_score: Some(d.range(0, 10)),
            csat_feedback: d.chance(50).then(|| "ok".to_string()),
            ..none
        }),
        3 => Some(GeneratedSurvey {
            survey_type: "likeDislike".into(),
            like_dislike_score: Some(d.range(0, 1)),
            ..none
        }),
        _ => None,
    }
}

fn fill_routed(call: &mut GeneratedCall, d: &mut Draw, seed: u64, voice: bool) {
    let n = d.next();
    call.conversation_id = Some(format!("c-{:07x}-{:08x}", n >> 40, n as u32));
    let resolved = d.chance(80);
    call.final_status = "CLOSED".into();
    call.smart_status = if resolved { "CLOSED" } else { "ABANDONED" }.into();
    call.reason = if resolved { "Resolved" } else { "" }.into();
    call.disconnecting_event = d.pick(&["Agent Closed", "User Closed", ""]).into();
    let outbound = d.chance(20);
    call.direction = Some(if outbound { "Outbound" } else { "Inbound" }.into());
    call.is_voicemail = voice.then(|| d.chance(10));
    call.skills = Some(if d.chance(50) {
        json!([])
    } else {
        json!([{"id": format!("sk-{}", d.below(9)), "name": "Billing"}])
    });
    call.dispositions = Some(if resolved {
        vec![d.pick(&["Resolved", "Callback", "Sale"]).into()]
    } else {
        Vec::new()
    });
    call.disposition_remarks = Some(vec![format!("remark {}", d.below(100))]);
    call.customer = Some(GeneratedCustomer {
        phone: if voice {
            format!("+1555{:07}", d.below(10_000_000))
        } else {
            String::new()
        },
        center_phone: if voice { "+18005550100" } else { "" }.into(),
        first_name: d.pick(&["Ann", "Bo", "", "Dev"]).into(),
        last_name: d.pick(&["Lee", "", "Ortiz"]).into(),
        email: String::new(),
    });
    call.user_level_tags =
        Some(json!([{"name": "accountnum", "value": format!("{}", d.below(99_999))}]));
    call.session_level_tags = Some(if d.chance(30) {
        json!([{"name": "audioCodesCallDisconnect", "value": "1"}])
    } else {
        json!([])
    });
    call.campaign = Some(if outbound {
        GeneratedCampaign {
            name: Some("Spring outreach".into()),
            id: Some(id("cd-", seed, 4, 0)),
            instance_id: Some(id("cid-", seed, 5, d.below(3))),
            dialing_list_id: Some(id("cdl-", seed, 6, 0)),
            attempt: Some(d.range(1, 3)),
            contact_status: d.pick(&["answered", "no-answer"]).into(),
            run_date: Some(call.start - TimeDelta::milliseconds(d.range(1, 86_400_000))),
            contact_list_names: Some(vec!["WANTED JAN23".into()]),
        }
    } else {
        GeneratedCampaign {
            name: None,
            id: None,
            instance_id: None,
            dialing_list_id: None,
            attempt: None,
            contact_status: "answered".into(),
            run_date: None,
            contact_list_names: None,
        }
    });
    call.meta_info = Some(json!({
        "caller": call.channel_specific_user_id,
        "callee": "+18005550100",
        "identities": [{"val": call.user_id, "type": "userId"}],
        "customData": {"tier": d.pick(&["gold", "silver"]), "year": call.start.year()},
        "agentTransferConfig": {"skillsIds": [], "overrideAgents": false}
    }));
    call.destinations = destinations(d, seed, call.start);
}

fn destinations(d: &mut Draw, seed: u64, start: DateTime<Utc>) -> Vec<GeneratedDestination> {
    let mut out = Vec::new();
    let mut t = start + TimeDelta::seconds(d.range(1, 15));
    let entries = if d.chance(75) { 1 } else { 2 };
    for _ in 0..entries {
        let q = d.below(QUEUES.len() as u64);
        let sparse = d.chance(15);
        let callback = !sparse && d.chance(15);
        let enter = (!sparse).then_some(t);
        let responding = d.chance(75).then(|| leg(d, seed, &mut t, true));
        let non_responding = (0..d.below(3))
            .map(|_| leg(d, seed, &mut t, false))
            .collect();
        out.push(GeneratedDestination::Queue(GeneratedQueue {
            queue_id: id("qu-", seed, 7, q),
            queue_name: (!sparse).then(|| QUEUES[q as usize].to_string()),
            enter_time: enter,
            callback_opted: if sparse { None } else { Some(callback) },
            callback_opted_time: callback.then(|| t + TimeDelta::milliseconds(780)),
            user_callback_accept_time: callback.then(|| t + TimeDelta::milliseconds(27_591)),
            responding,
            non_responding,
        }));
    }
    if d.chance(25) {
        out.push(GeneratedDestination::Agent(leg(d, seed, &mut t, true)));
    }
    out
}

/// One agent leg starting at `*t`; advances `*t` past it.
fn leg(d: &mut Draw, seed: u64, t: &mut DateTime<Utc>, responding: bool) -> GeneratedLeg {
    let a = d.below(AGENTS.len() as u64);
    let name = AGENTS[a as usize];
    let assigned = *t + TimeDelta::seconds(d.range(0, 5));
    let mut leg = GeneratedLeg {
        agent_id: id("u-", seed, 8, a),
        email: format!("{}@example.com", name.to_lowercase().replace(' ', ".")),
        name: name.into(),
        status: None,
        non_response_event: None,
        assigned_at: assigned,
        accepted_time: None,
        first_response_time: None,
        first_response_seconds: None,
        interaction_end_time: None,
        interaction_seconds: None,
        after_call_work_end_time: None,
        after_call_work_seconds: None,
        notes: Vec::new(),
        consulting: Vec::new(),
    };
    if !responding {
        leg.non_response_event = Some(
            d.pick(&["Supervisor Reassigned", "Timeout", "Rejected"])
                .into(),
        );
        *t = assigned + TimeDelta::seconds(d.range(5, 30));
        return leg;
    }
    let accepted = assigned + TimeDelta::seconds(d.range(1, 10));
    let first = d.range(0, 40);
    let interaction = d.range(5, 900);
    let acw = d.range(0, 120);
    leg.status = Some("Answered".into());
    leg.accepted_time = Some(accepted);
    leg.first_response_time = Some(accepted + TimeDelta::seconds(first));
    leg.first_response_seconds = Some(first);
    leg.interaction_end_time = Some(accepted + TimeDelta::seconds(interaction));
    leg.interaction_seconds = Some(interaction);
    leg.after_call_work_end_time = Some(accepted + TimeDelta::seconds(interaction + acw));
    leg.after_call_work_seconds = Some(acw);
    if d.chance(40) {
        leg.notes = vec![format!("note {}", d.below(1000))];
    }
    if d.chance(10) {
        let at = accepted + TimeDelta::seconds(d.range(1, interaction.max(1)));
        leg.consulting = vec![GeneratedConsult {
            name: "+919550000000".into(),
            assigned_at: at,
            accepted_time: at + TimeDelta::seconds(3),
            consulting_end_time: at + TimeDelta::seconds(60),
        }];
    }
    *t = accepted + TimeDelta::seconds(interaction + acw);
    leg
}

/// A rendering choice for one session (key casing, value types): deterministic in the seed,
/// the session and the choice `what`, true about once in `one_in`.
pub(super) fn variant(seed: u64, session_id: &str, what: u64, one_in: u64) -> bool {
    let h = session_id
        .bytes()
        .fold(hash(&[seed, what]), |acc, b| mix(acc ^ u64::from(b)));
    h.is_multiple_of(one_in.max(1))
}
