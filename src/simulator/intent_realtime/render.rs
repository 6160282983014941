//! The IntentRealtimeData body: a bare JSON array of sessions, written straight into a
//! `String` from the generator's values (raw time strings as generated).

use super::generator::GeneratedSession;
use crate::simulator::render::push_json_str;
use crate::simulator::unknown;

/// The IntentRealtimeData array; each session with [`unknown::fields`] when `unknown_fields`.
pub(crate) fn sessions(sessions: &[GeneratedSession], unknown_fields: bool) -> String {
    let mut out = String::with_capacity(sessions.len() * 520 + 2);
    out.push('[');
    for (n, s) in sessions.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str("{\"intent\":[");
        for (i, intent) in s.intents.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_str(&mut out, intent);
        }
        out.push_str("],\"ANI\":");
        push_json_str(&mut out, &s.ani);
        out.push_str(",\"DNI\":");
        push_json_str(&mut out, &s.dni);
        out.push_str(",\"channel\":");
        push_json_str(&mut out, &s.channel);
        out.push_str(",\"startTime\":");
        push_json_str(&mut out, &s.start_time_raw);
        out.push_str(",\"endTime\":");
        push_json_str(&mut out, &s.end_time_raw);
        out.push_str(",\"status\":");
        push_json_str(&mut out, &s.status);
        out.push_str(",\"timeHandled\":");
        push_json_str(&mut out, &s.time_handled_raw);
        out.push_str(",\"deflectedTo\":");
        match &s.deflected_to {
            Some(d) => push_json_str(&mut out, d),
            None => out.push_str("null"),
        }
        out.push_str(",\"userId\":");
        push_json_str(&mut out, &s.user_id);
        out.push_str(",\"sessionId\":");
        push_json_str(&mut out, &s.session_id);
        if unknown_fields {
            unknown::push_members(&mut out, &unknown::fields("session", &s.session_id));
        }
        out.push('}');
    }
    out.push(']');
    out
}
