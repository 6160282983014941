//! The answer's text: a JSON array with the queue's record, after a `//` line comment as in
//! the documented sample, with unknown fields at every level when configured.

use super::GeneratedQueue;
use crate::simulator::render::push_json_str;
use crate::simulator::unknown;

/// The unknown fields of a level of `q`'s record (`queue`, `agentStatus`, `queueSummary`).
pub(super) fn unknown_of(level: &str, q: &GeneratedQueue) -> Vec<(String, String)> {
    unknown::fields(level, &q.queue_id)
}

/// The body served for `q`.
pub(super) fn answer(q: &GeneratedQueue, unknown_fields: bool) -> String {
    let mut out = String::from("[\n  // queue size of ");
    out.push_str(&q.queue_id);
    out.push_str("\n  {\"queueId\":");
    push_json_str(&mut out, &q.queue_id);
    out.push_str(",\"queueName\":");
    push_json_str(&mut out, &q.queue_name);
    out.push_str(",\"skills\":");
    out.push_str(&q.skills);
    if q.malformed {
        out.push_str(&format!(",\"waiting\":\"{} waiting\"", q.waiting));
    } else {
        out.push_str(&format!(",\"waiting\":{}", q.waiting));
    }
    out.push_str(&format!(
        ",\"engaged\":{},\"dropOff\":{},\"agentStatus\":{{\"available\":{},\"offline\":{},\"busy\":{},\"away\":{}",
        q.engaged, q.drop_off, q.available, q.offline, q.busy, q.away
    ));
    if unknown_fields {
        unknown::push_members(&mut out, &unknown_of("agentStatus", q));
    }
    out.push_str(&format!(
        "}},\"noOfAgents\":{},\"queueSummary\":{{\"avgWait\":{},\"maxWait\":{},\"ASA\":{}",
        q.agents,
        number(q.avg_wait),
        number(q.max_wait),
        q.asa
    ));
    if unknown_fields {
        unknown::push_members(&mut out, &unknown_of("queueSummary", q));
    }
    out.push('}');
    if unknown_fields {
        unknown::push_members(&mut out, &unknown_of("queue", q));
    }
    out.push_str("}\n]");
    out
}

/// A wait as the API would write it: an integer when whole, else with its decimals.
fn number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}
