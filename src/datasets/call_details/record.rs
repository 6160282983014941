//! The decoded form of a Call Details page ([`Page`], [`CallRecord`] and its parts), as `wire`
//! produces it and `windows`/`rows` consume it.
//!
//! Text borrows from the response body (`Cow::Borrowed`) unless the JSON had to be changed to
//! read it (escapes), and a list of strings is the array's text ([`StrList`]), so decoding a
//! page allocates per record, not per field. Records that outlive their body move their text
//! into one buffer their page shares at the page boundary ([`super::OwnedRecord`], reaching
//! every text through [`CallRecord::texts_mut`]): every export's records do, since the window
//! walk keeps a window's records until the window is complete (see `windows`).

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};

use crate::sources::extra::{Unmapped, UnmappedCounts};
use crate::sources::tape::string_end;
use crate::sources::wire::json_str_leaf;
use crate::sources::Reject;

/// A decoded response page: of [`CallRecord`]s as [`decode_page`](super::decode_page) reads
/// them, or of records owning their text ([`super::OwnedRecord`]) as the export keeps them.
#[derive(Debug, Clone)]
pub struct Page<R = CallRecord<'static>> {
    /// `numResults` as received: undefined by the docs (a window total in some samples, not in
    /// others), so only a hint. `None` when absent or not a non-negative integer.
    pub num_results: Option<u64>,
    /// Every element of `data`, in order: counted for paging whether decoded or rejected.
    pub records: Vec<Result<R, Reject>>,
}

/// One session (one element of `data`).
///
/// Every borrow of `'a` here and in the parts is a `Cow<'a, str>` (a [`StrList`] holds one)
/// that [`CallRecord::texts_mut`] reaches: [`super::OwnedRecord`] relies on it to re-point them
/// all into its page's buffer. A field of another borrowed type (`&'a str`, `&'a RawValue`)
/// would break that silently.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallRecord<'a> {
    /// `sessionId`; never empty. The key of the session.
    pub session_id: Cow<'a, str>,
    /// `conversationId` (`c-…`); only on agent-routed records.
    pub conversation_id: Option<Cow<'a, str>>,
    pub channel: Option<Cow<'a, str>>,
    pub bot_id: Option<Cow<'a, str>>,
    pub user_id: Option<Cow<'a, str>>,
    pub channel_specific_user_id: Option<Cow<'a, str>>,
    pub org_id: Option<Cow<'a, str>>,
    pub session_start_time: DateTime<Utc>,
    pub session_end_time: Option<DateTime<Utc>>,
    /// The `timeZoneOffset` of the request the record came from (JavaScript convention).
    pub time_zone_offset: i32,
    pub final_status: Option<Cow<'a, str>>,
    pub smart_status: Option<Cow<'a, str>>,
    /// `reason` or `Reason` (the first non-empty one when both are sent).
    pub reason: Option<Cow<'a, str>>,
    pub disconnecting_event: Option<Cow<'a, str>>,
    pub error_details: Option<Cow<'a, str>>,
    /// `Direction`/`direction`, or v1's `customerinfo.Direction`.
    pub direction: Option<Cow<'a, str>>,
    pub is_voicemail: Option<bool>,
    /// `skills` as JSON text (element type undocumented).
    pub skills: Option<Cow<'a, str>>,
    pub dispositions: Option<StrList<'a>>,
    pub disposition_remarks: Option<StrList<'a>>,
    pub survey_type: Option<Cow<'a, str>>,
    pub csat_score: Option<i64>,
    pub csat_feedback: Option<Cow<'a, str>>,
    pub nps_score: Option<i64>,
    pub like_dislike_score: Option<i64>,
    pub customer: Customer<'a>,
    /// `userleveltags` as JSON text (`[{name, value}]`, value type undocumented).
    pub user_level_tags: Option<Cow<'a, str>>,
    /// `sessionleveltags` as JSON text.
    pub session_level_tags: Option<Cow<'a, str>>,
    pub campaign: Campaign<'a>,
    pub automation_bot_ids: Option<StrList<'a>>,
    /// `metaInfo` exactly as received (free-form JSON).
    pub meta_info: Option<Cow<'a, str>>,
    /// The legs, in the documented walk order (see [`Segment`]).
    pub segments: Vec<Segment<'a>>,
    /// The session's fields no column maps (`customerinfo`'s and `campaigninfo`'s nested).
    pub extra: Unmapped<'a>,
}

/// `customerinfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customer<'a> {
    pub phone: Option<Cow<'a, str>>,
    pub center_phone: Option<Cow<'a, str>>,
    pub first_name: Option<Cow<'a, str>>,
    pub last_name: Option<Cow<'a, str>>,
    pub email: Option<Cow<'a, str>>,
}

/// `campaigninfo`; every field `None` when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Campaign<'a> {
    pub name: Option<Cow<'a, str>>,
    pub id: Option<Cow<'a, str>>,
    pub instance_id: Option<Cow<'a, str>>,
    pub dialing_list_id: Option<Cow<'a, str>>,
    /// Integer on campaign calls; `""` on inbound records becomes `None`.
    pub attempt: Option<i64>,
    pub contact_status: Option<Cow<'a, str>>,
    pub run_date: Option<DateTime<Utc>>,
    pub contact_list_names: Option<StrList<'a>>,
}

/// Which kind of `destinations[]` element a leg came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentKind {
    QueueEntry,
    AgentSegment,
}

impl SegmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentKind::QueueEntry => "QueueEntry",
            SegmentKind::AgentSegment => "AgentSegment",
        }
    }
}

/// One row of `call_segments`. Walking `destinations` in order: a `QueueEntry` gives its
/// `respondingAgent` (if any, `responding = Some(true)`), then each of `nonRespondingAgents`
/// (`Some(false)`), or one leg with `agent = None` and `responding = None` when it has
/// neither; a bare `AgentSegment` gives one leg (`Some(true)`, no queue fields). The position in
/// [`CallRecord::segments`] is the `segment_index`.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment<'a> {
    pub kind: SegmentKind,
    pub queue_id: Option<Cow<'a, str>>,
    pub queue_name: Option<Cow<'a, str>>,
    pub enter_time: Option<DateTime<Utc>>,
    pub callback_opted: Option<bool>,
    pub callback_opted_time: Option<DateTime<Utc>>,
    pub user_callback_accept_time: Option<DateTime<Utc>>,
    pub responding: Option<bool>,
    /// Whether this is the first leg of its destination. A `QueueEntry` with several agents
    /// repeats its queue fields (and `queue_extra`) on each of their legs; its unmapped fields
    /// are counted on this one only ([`CallRecord::count_unmapped`]).
    pub opens_destination: bool,
    pub agent: Option<AgentLeg<'a>>,
    /// The `QueueEntry`'s fields no column maps (empty for an `AgentSegment`, whose fields are
    /// its agent's).
    pub queue_extra: Unmapped<'a>,
}

/// An agent's part of a leg (`respondingAgent`, a `nonRespondingAgents[]` element or a bare
/// `AgentSegment`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentLeg<'a> {
    /// A `u-…` user id.
    pub agent_id: Option<Cow<'a, str>>,
    pub email: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    pub status: Option<Cow<'a, str>>,
    pub non_response_event: Option<Cow<'a, str>>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub accepted_time: Option<DateTime<Utc>>,
    pub first_response_time: Option<DateTime<Utc>>,
    pub first_response_seconds: Option<i64>,
    pub interaction_end_time: Option<DateTime<Utc>>,
    pub interaction_seconds: Option<i64>,
    pub after_call_work_end_time: Option<DateTime<Utc>>,
    pub after_call_work_seconds: Option<i64>,
    pub agent_notes: Option<StrList<'a>>,
    /// `ConsultingAgents` as JSON text.
    pub consulting_agents: Option<Cow<'a, str>>,
    /// The leg's fields no column maps.
    pub extra: Unmapped<'a>,
}

/// Calls `f` on the text of an optional list.
fn list_mut<'a, F: FnMut(&mut Cow<'a, str>)>(list: &mut Option<StrList<'a>>, f: &mut F) {
    if let Some(list) = list {
        f(&mut list.0);
    }
}

/// A list of strings kept as the JSON text it was sent as: an array whose elements are all
/// strings, or (`campaigninfo.contactListName`) one bare string, a list of one. The decoder
/// checks each element once (one that is not a string rejects the record) and keeps the text;
/// the row builder reads the items from it ([`StrList::iter`]). A vector of the items cost a
/// `malloc` per list per record on the decoding thread and a `free` on the encoding one, 13%
/// of a Call Details backfill's allocations, on the one malloc arena they share.
///
/// Two lists are equal when their items are, however the JSON spelled them.
#[derive(Clone)]
pub struct StrList<'a>(Cow<'a, str>);

impl PartialEq for StrList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for StrList<'_> {}

impl<'a> StrList<'a> {
    /// `json`: an array of JSON strings or one JSON string, every one of which
    /// [`json_str_leaf`] reads (the decoder has checked them).
    pub(super) fn from_checked_json(json: &'a str) -> StrList<'a> {
        StrList(Cow::Borrowed(json))
    }

    /// The list of `items` (for tests).
    #[cfg(test)]
    pub fn of<S: AsRef<str>>(items: &[S]) -> StrList<'static> {
        let mut json = String::from("[");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            crate::sources::wire::push_json_string(&mut json, item.as_ref());
        }
        json.push(']');
        StrList(Cow::Owned(json))
    }

    /// The items, in order: borrowed from the text unless they have escapes.
    pub fn iter(&self) -> StrItems<'_> {
        StrItems { rest: &self.0 }
    }

    /// The items as owned strings (for tests).
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(Cow::into_owned).collect()
    }
}

impl fmt::Debug for StrList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The items of a [`StrList`].
pub struct StrItems<'s> {
    /// The text after the last item read.
    rest: &'s str,
}

impl<'s> Iterator for StrItems<'s> {
    type Item = Cow<'s, str>;

    fn next(&mut self) -> Option<Cow<'s, str>> {
        // Every element is a string, so the next quote opens the next item.
        let open = self.rest.find('"')?;
        // One past its closing quote (an ASCII byte, so a character boundary); never `None` on
        // the checked JSON a list holds.
        let (end, _) = string_end(self.rest.as_bytes(), open)?;
        let quoted = &self.rest[open..end];
        self.rest = &self.rest[end..];
        // The decoder read every item with `json_str_leaf` before keeping the list.
        Some(json_str_leaf(quoted).ok().flatten().unwrap_or_default())
    }
}

impl CallRecord<'_> {
    /// Counts the unmapped fields of the session, of each destination once (on the leg that
    /// opens it) and of each agent leg: one occurrence per field per record it was sent in.
    pub fn count_unmapped(&self, counts: &mut UnmappedCounts) {
        counts.add(&self.extra);
        for seg in &self.segments {
            if seg.opens_destination {
                counts.add(&seg.queue_extra);
            }
            if let Some(agent) = &seg.agent {
                counts.add(&agent.extra);
            }
        }
    }
}

impl<'a> CallRecord<'a> {
    /// Calls `f` on every text of the record (fields, lists, its customer, campaign, legs and
    /// unmapped fields), in a fixed order. Every field is named (no `..`), so a new field of
    /// text cannot be missed: [`super::owned::OwnedRecord`] relies on this reaching all of them.
    pub fn texts_mut<F: FnMut(&mut Cow<'a, str>)>(&mut self, f: &mut F) {
        let CallRecord {
            session_id,
            conversation_id,
            channel,
            bot_id,
            user_id,
            channel_specific_user_id,
            org_id,
            session_start_time: _,
            session_end_time: _,
            time_zone_offset: _,
            final_status,
            smart_status,
            reason,
            disconnecting_event,
            error_details,
            direction,
            is_voicemail: _,
            skills,
            dispositions,
            disposition_remarks,
            survey_type,
            csat_score: _,
            csat_feedback,
            nps_score: _,
            like_dislike_score: _,
            customer,
            user_level_tags,
            session_level_tags,
            campaign,
            automation_bot_ids,
            meta_info,
            segments,
            extra,
        } = self;
        f(session_id);
        for s in [
            conversation_id,
            channel,
            bot_id,
            user_id,
            channel_specific_user_id,
            org_id,
            final_status,
            smart_status,
            reason,
            disconnecting_event,
            error_details,
            direction,
            skills,
            survey_type,
            csat_feedback,
            user_level_tags,
            session_level_tags,
            meta_info,
        ] {
            s.iter_mut().for_each(&mut *f);
        }
        for list in [dispositions, disposition_remarks, automation_bot_ids] {
            list_mut(list, f);
        }
        customer.texts_mut(f);
        campaign.texts_mut(f);
        segments.iter_mut().for_each(|s| s.texts_mut(f));
        extra.texts_mut(f);
    }
}

impl<'a> Customer<'a> {
    fn texts_mut<F: FnMut(&mut Cow<'a, str>)>(&mut self, f: &mut F) {
        let Customer {
            phone,
            center_phone,
            first_name,
            last_name,
            email,
        } = self;
        for s in [phone, center_phone, first_name, last_name, email] {
            s.iter_mut().for_each(&mut *f);
        }
    }
}

impl<'a> Campaign<'a> {
    fn texts_mut<F: FnMut(&mut Cow<'a, str>)>(&mut self, f: &mut F) {
        let Campaign {
            name,
            id,
            instance_id,
            dialing_list_id,
            attempt: _,
            contact_status,
            run_date: _,
            contact_list_names,
        } = self;
        for s in [name, id, instance_id, dialing_list_id, contact_status] {
            s.iter_mut().for_each(&mut *f);
        }
        list_mut(contact_list_names, f);
    }
}

impl<'a> Segment<'a> {
    fn texts_mut<F: FnMut(&mut Cow<'a, str>)>(&mut self, f: &mut F) {
        let Segment {
            kind: _,
            queue_id,
            queue_name,
            enter_time: _,
            callback_opted: _,
            callback_opted_time: _,
            user_callback_accept_time: _,
            responding: _,
            opens_destination: _,
            agent,
            queue_extra,
        } = self;
        for s in [queue_id, queue_name] {
            s.iter_mut().for_each(&mut *f);
        }
        if let Some(agent) = agent {
            agent.texts_mut(f);
        }
        queue_extra.texts_mut(f);
    }
}

impl<'a> AgentLeg<'a> {
    fn texts_mut<F: FnMut(&mut Cow<'a, str>)>(&mut self, f: &mut F) {
        let AgentLeg {
            agent_id,
            email,
            name,
            status,
            non_response_event,
            assigned_at: _,
            accepted_time: _,
            first_response_time: _,
            first_response_seconds: _,
            interaction_end_time: _,
            interaction_seconds: _,
            after_call_work_end_time: _,
            after_call_work_seconds: _,
            agent_notes,
            consulting_agents,
            extra,
        } = self;
        for s in [
            agent_id,
            email,
            name,
            status,
            non_response_event,
            consulting_agents,
        ] {
            s.iter_mut().for_each(&mut *f);
        }
        list_mut(agent_notes, f);
        extra.texts_mut(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(json: &str) -> Vec<String> {
        StrList::from_checked_json(json).to_vec()
    }

    #[test]
    fn a_list_reads_its_items_from_the_json_it_was_sent_as() {
        assert_eq!(items(r#"["a", "bc" ,"" , "é"]"#), ["a", "bc", "", "é"]);
        assert_eq!(items("[]"), Vec::<String>::new());
        assert_eq!(items(" [ ] "), Vec::<String>::new());
        // A bare string is a list of one.
        assert_eq!(items(r#""WANTED JAN23""#), ["WANTED JAN23"]);
        // Escapes, including an escaped quote and a backslash just before the closing quote.
        let escaped = r#"["a\"b", "c\\", "\u00e9\n", "\\\"", "x"]"#;
        let expected: Vec<String> = serde_json::from_str(escaped).expect("JSON");
        assert_eq!(items(escaped), expected);
        // Items without escapes are borrowed from the text; escaped ones are owned.
        let list = StrList::from_checked_json(escaped);
        let got: Vec<_> = list.iter().collect();
        assert!(matches!(got[4], Cow::Borrowed(_)));
        assert!(matches!(got[0], Cow::Owned(_)));
    }

    #[test]
    fn a_list_built_from_items_reads_them_back() {
        let strings = ["plain", "quote \" here", "back\\slash", "tab\t", "ünï", ""];
        let list = StrList::of(&strings);
        assert_eq!(list.to_vec(), strings);
        assert_eq!(format!("{list:?}"), format!("{strings:?}"));
        assert_eq!(StrList::of::<&str>(&[]).to_vec(), Vec::<String>::new());
        // Equal by items, however the JSON spelled them.
        let spelled = StrList::from_checked_json(r#" [ "a" ,"\u0062"] "#);
        assert_eq!(spelled, StrList::of(&["a", "b"]));
        assert_ne!(spelled, StrList::of(&["a"]));
        assert_ne!(spelled, StrList::of(&["a", "b", ""]));
    }
}
