//! A Call Details record that outlives its response body ([`OwnedRecord`]): all its text moved
//! into one buffer that the records of its page share, the record's fields borrowing from it.
//!
//! The window walk keeps a window's records until the window is complete, after their page's
//! body is gone (see `windows`). Owning each field's text separately (the former
//! `CallRecord::into_owned`) cost a `malloc` per field and a `free` per field when the record
//! was normalized: about 30 of each per session with its legs, 15% of a 7-day backfill's
//! profile, on the one malloc arena the decoding and encoding threads share
//! (docs/performance.md). Then a record made one allocation for all its text; now a page
//! makes one for all its records' text ([`Page::into_packed`]), and each record holds a
//! reference to it. A page's records are mostly kept or dropped together (a window is kept
//! whole or split and fetched again); the text of a record the walk drops on its own (outside
//! its window, or seen before) stays in the buffer until its page's kept records are written,
//! a few records at a window's edges.
//!
//! The record is reachable only through [`OwnedRecord::get`], whose lifetime is the
//! `OwnedRecord`'s own, so no borrowed text can outlive the buffer; the buffer is never
//! changed after records point into it, and moving an `OwnedRecord` moves a reference to it,
//! not its bytes.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::record::{CallRecord, Page};
use super::windows::Session;
use crate::sources::Reject;

/// A decoded session owning its text in a buffer shared with its page (see the module docs).
pub struct OwnedRecord {
    /// Every text field is `Cow::Borrowed` from `text` (declared first: dropped before it).
    record: CallRecord<'static>,
    /// The text of every record of the page, back to back; never changed once records point
    /// into it. Held, not read (but by a test): it is what `record`'s fields point into. A
    /// `String` behind the `Arc`, not a `str`: the records borrow the `String`'s heap buffer,
    /// which neither moving nor cloning the `Arc` touches.
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "owned so that `record` can borrow it")
    )]
    text: Arc<String>,
}

impl OwnedRecord {
    /// Moves every text of `record` into a buffer of its own (text the decoder already owned,
    /// from JSON escapes, is copied and freed). The export packs whole pages
    /// ([`Page::into_packed`]); the tests pack one record.
    #[cfg(test)]
    pub fn new(record: CallRecord<'_>) -> OwnedRecord {
        let mut one = [Ok(record)];
        let text = pack_texts(&mut one);
        let [record] = one;
        // Always `Ok`: it was put in as one, and `pack_texts` leaves the results as they are.
        // SAFETY: `pack_texts` re-pointed every text of the record into `text`.
        unsafe { OwnedRecord::own(record.unwrap_or_default(), &text) }
    }

    /// `record` holding `text`.
    ///
    /// # Safety
    ///
    /// Every text of `record` (each one [`CallRecord::texts_mut`] reaches) must borrow `text`:
    /// re-pointed there by [`pack_texts`], or cloned from a record that does.
    unsafe fn own(record: CallRecord<'_>, text: &Arc<String>) -> OwnedRecord {
        // SAFETY: every text of `record` borrows `text` (the caller's guarantee), so nothing in
        // it borrows the response body; the `'static` is only ever handed out shortened to a
        // borrow of `self` (`get`), and `self` holds the buffer.
        let record = unsafe { std::mem::transmute::<CallRecord<'_>, CallRecord<'static>>(record) };
        OwnedRecord {
            record,
            text: Arc::clone(text),
        }
    }

    /// The record, borrowed for as long as this value.
    pub fn get(&self) -> &CallRecord<'_> {
        &self.record
    }
}

/// Copies every text of the records in `records` into one buffer, back to back, and re-points
/// each text at its copy; returns the buffer, which the records now borrow (rejects are left
/// alone).
fn pack_texts<'a>(records: &mut [Result<CallRecord<'a>, Reject>]) -> Arc<String> {
    let mut len = 0;
    for r in records.iter_mut().flatten() {
        r.texts_mut(&mut |s| len += s.len());
    }
    let mut text = String::with_capacity(len);
    for r in records.iter_mut().flatten() {
        r.texts_mut(&mut |s| text.push_str(s));
    }
    let text = Arc::new(text);
    // `text` holds exactly `len` bytes in a buffer of at least that capacity: nothing below
    // writes to it, so its bytes stay where they are for as long as the `Arc` lives.
    let base = text.as_ptr();
    let mut at = 0;
    for r in records.iter_mut().flatten() {
        r.texts_mut(&mut |s| {
            let n = s.len();
            // SAFETY: bytes `at..at + n` of `text` were copied from `s` by the previous pass,
            // which visited the same texts in the same order; they are initialized, valid
            // UTF-8 and inside the buffer (`at + n <= text.len()`). The lifetime is unbounded
            // here and made true by `OwnedRecord`: the reference is only ever read through
            // `get`, while the record holds the `Arc` and the buffer is not written.
            let packed = unsafe {
                std::str::from_utf8_unchecked(std::slice::from_raw_parts(base.add(at), n))
            };
            *s = Cow::Borrowed(packed);
            at += n;
        });
    }
    debug_assert_eq!(at, text.len());
    text
}

impl Page<CallRecord<'_>> {
    /// The same page with each record owning its text ([`OwnedRecord`]), in one buffer the
    /// page's records share.
    pub fn into_packed(mut self) -> Page<OwnedRecord> {
        let text = pack_texts(&mut self.records);
        Page {
            num_results: self.num_results,
            records: self
                .records
                .into_iter()
                // SAFETY: `pack_texts` re-pointed every text of these records into `text`.
                .map(|r| r.map(|r| unsafe { OwnedRecord::own(r, &text) }))
                .collect(),
        }
    }
}

impl Clone for OwnedRecord {
    /// The same record sharing the same buffer (a clone's texts borrow where the original's do).
    fn clone(&self) -> OwnedRecord {
        // SAFETY: a clone's texts are `Cow::Borrowed` where the original's are, all in `text`.
        unsafe { OwnedRecord::own(self.record.clone(), &self.text) }
    }
}

impl fmt::Debug for OwnedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.record.fmt(f)
    }
}

impl Session for OwnedRecord {
    fn start(&self) -> DateTime<Utc> {
        self.record.session_start_time
    }
    fn key(&self) -> &str {
        &self.record.session_id
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use super::*;
    use crate::datasets::call_details::decode_page;
    use crate::datasets::call_details::{AgentLeg, Campaign, Customer, Segment, StrList};
    use crate::sources::extra::Unmapped;

    /// A page whose record sets every text field the decoder reads, none with an escape (so
    /// each is borrowed from the body until packed): top-level strings, lists, JSON texts,
    /// customer, campaign, a queue entry with a responding and a non-responding agent, an agent
    /// segment, and unmapped fields at every level (nested ones too).
    const PAGE: &str = r#"{"numResults": 1, "data": [{
        "sessionId": "s-1", "conversationId": "c-1", "channel": "voice", "botId": "st-b",
        "userId": "u-cust", "channelSpecificUserId": "+1555", "orgId": "o-1",
        "sessionStartTime": "2024-05-01T10:00:00.000Z", "sessionEndTime": "2024-05-01T10:05:00.000Z",
        "finalStatus": "closed", "smartStatus": "resolved", "reason": "done",
        "disconnectingEvent": "agent", "errorDetails": "none", "Direction": "inbound",
        "isVoicemail": false, "skills": [{"id": "sk-1"}], "dispositions": ["d1", "d2"],
        "dispositionRemarks": ["r1"], "surveyType": "csat", "csatScore": 5,
        "csatFeedback": "good", "npsScore": 9, "likeDislikeScore": 1,
        "customerinfo": {"CustomerPhone": "+1555", "CenterPhone": "+1800",
            "CustomerFirstName": "Ann", "CustomerLastName": "Lee", "CustomerEmail": "a@x",
            "loyalty": {"tier": 2}},
        "userleveltags": [{"name": "t", "value": 1}], "sessionleveltags": [{"name": "s"}],
        "campaigninfo": {"campaignName": "spring", "campaignId": "cp-1",
            "campaignInstanceId": "ci-1", "campaignDialingListId": "dl-1", "attempt": 2,
            "contactStatus": "reached", "contactListName": ["l1", "l2"], "wave": "w3"},
        "automationBotIDs": ["st-a1"], "metaInfo": {"k": "v"}, "surprise": [1, 2],
        "destinations": [
          {"destinationType": "QueueEntry", "queueId": "qu-1", "queueName": "Sales",
           "EnterTime": "2024-05-01T10:00:10.000Z", "queueColor": "red",
           "respondingAgent": {"agentId": "u-1", "email": "b@x", "name": "Bo",
             "status": "accepted", "nonResponseEvent": "none", "agentNotes": ["n1"],
             "ConsultingAgents": [{"id": "u-3"}], "desk": "7"},
           "nonRespondingAgents": [{"agentId": "u-2", "name": "Cy",
             "nonResponseEvent": "timeout"}]},
          {"destinationType": "AgentSegment", "agentId": "u-4", "email": "d@x",
           "name": "Di", "status": "accepted", "badge": "b"}
        ]}]}"#;

    fn first(page: &str) -> CallRecord<'_> {
        let page = decode_page(page.as_bytes(), 0).expect("decodes");
        page.records
            .into_iter()
            .next()
            .expect("one")
            .expect("valid")
    }

    /// Where each text of `r` is (its bytes' addresses), found without `CallRecord::texts_mut`
    /// (every field named, no `..`), so that a field it misses is still checked here; fails
    /// unless each one is set.
    fn texts_of(r: &CallRecord<'_>) -> Vec<Range<usize>> {
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
        } = r;
        let mut out = vec![at(session_id)];
        let one = [
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
        ];
        let lists = [dispositions, disposition_remarks, automation_bot_ids];
        set_texts(&mut out, &one, &lists, true);
        unmapped_texts(&mut out, extra, true);
        customer_and_campaign_texts(&mut out, customer, campaign);
        let full = segments
            .iter()
            .find(|s| s.agent.is_some() && !s.queue_extra.is_empty());
        leg_texts(&mut out, full.expect("a queue entry's agent leg"), true);
        // Every leg's texts, whichever it sets (a walk that stopped early would miss these).
        assert_eq!(segments.len(), 3);
        for leg in segments {
            leg_texts(&mut out, leg, false);
        }
        out
    }

    fn customer_and_campaign_texts(
        out: &mut Vec<Range<usize>>,
        c: &Customer<'_>,
        k: &Campaign<'_>,
    ) {
        let Customer {
            phone,
            center_phone,
            first_name,
            last_name,
            email,
        } = c;
        set_texts(
            out,
            &[phone, center_phone, first_name, last_name, email],
            &[],
            true,
        );
        let Campaign {
            name,
            id,
            instance_id,
            dialing_list_id,
            attempt: _,
            contact_status,
            run_date: _,
            contact_list_names,
        } = k;
        let one = [name, id, instance_id, dialing_list_id, contact_status];
        set_texts(out, &one, &[contact_list_names], true);
    }

    /// A leg's texts; `strict`: each one must be set.
    fn leg_texts(out: &mut Vec<Range<usize>>, leg: &Segment<'_>, strict: bool) {
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
        } = leg;
        set_texts(out, &[queue_id, queue_name], &[], strict);
        unmapped_texts(out, queue_extra, strict);
        let Some(agent) = agent else {
            assert!(!strict, "an agent");
            return;
        };
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
        } = agent;
        let one = [
            agent_id,
            email,
            name,
            status,
            non_response_event,
            consulting_agents,
        ];
        set_texts(out, &one, &[agent_notes], strict);
        unmapped_texts(out, extra, strict);
    }

    fn at(s: &str) -> Range<usize> {
        let start = s.as_ptr() as usize;
        start..start + s.len()
    }

    /// The texts of `one` and `lists`; `strict`: each one must be set (a list, non-empty).
    fn set_texts(
        out: &mut Vec<Range<usize>>,
        one: &[&Option<Cow<'_, str>>],
        lists: &[&Option<StrList<'_>>],
        strict: bool,
    ) {
        for s in one {
            assert!(!strict || s.is_some(), "every text field set");
            out.extend(s.as_deref().map(at));
        }
        for l in lists {
            assert!(
                !strict || l.as_ref().is_some_and(|l| l.iter().next().is_some()),
                "every list set"
            );
            // Each item is borrowed from the list's text, and so from the record's buffer.
            for list in l.iter() {
                out.extend(list.iter().map(|s| {
                    assert!(matches!(s, Cow::Borrowed(_)), "an item without escapes");
                    at(&s)
                }));
            }
        }
    }

    /// Where the keys and JSON texts of `u` are (a clone's borrowed `Cow`s point where the
    /// original's do; a packed record's are all borrowed).
    fn unmapped_texts(out: &mut Vec<Range<usize>>, u: &Unmapped<'_>, strict: bool) {
        assert!(!strict || !u.is_empty(), "unmapped fields set");
        u.clone().texts_mut(&mut |s| out.push(at(s)));
    }

    #[test]
    fn every_text_of_a_packed_record_lives_in_its_buffer() {
        let body = PAGE.to_owned();
        let decoded = first(&body);
        let copy = decoded.clone();
        let packed = OwnedRecord::new(decoded);
        assert_eq!(packed.get(), &copy);
        let buffer = at(packed.text.as_str());
        for t in texts_of(packed.get()) {
            assert!(
                buffer.start <= t.start && t.end <= buffer.end,
                "a text at {t:?} is outside the record's buffer {buffer:?}"
            );
        }
    }

    #[test]
    fn a_page_s_records_share_one_buffer_that_outlives_any_one_of_them() {
        let two = PAGE.replacen("[{", "[{\"sessionId\": \"s-0\", \"sessionStartTime\": \"2024-05-01T09:00:00Z\", \"BOTID\": \"b\\u00e9\"}, {", 1);
        let page = decode_page(two.as_bytes(), 0).expect("decodes");
        let copies: Vec<CallRecord<'_>> = page.records.iter().flatten().cloned().collect();
        assert_eq!(copies.len(), 2);
        let packed = page.into_packed();
        let records: Vec<OwnedRecord> = packed.records.into_iter().flatten().collect();
        assert!(
            Arc::ptr_eq(&records[0].text, &records[1].text),
            "one buffer per page"
        );
        let buffer = at(records[0].text.as_str());
        for t in texts_of(records[1].get()) {
            assert!(
                buffer.start <= t.start && t.end <= buffer.end,
                "{t:?} outside {buffer:?}"
            );
        }
        assert_eq!(records[0].get().bot_id.as_deref(), Some("b\u{e9}"));
        let mut records = records;
        let second = records.pop().expect("two");
        drop(records);
        assert_eq!(second.get(), &copies[1]);
        assert_eq!(second.clone().get(), &copies[1]);
    }

    #[test]
    fn escaped_text_is_packed_and_a_moved_or_cloned_record_keeps_its_text() {
        let escaped = PAGE.replace(r#""reason": "done""#, r#""reason": "done\u00e9""#);
        let decoded = first(&escaped);
        assert!(
            matches!(decoded.reason, Some(Cow::Owned(_))),
            "unescaped by the decoder"
        );
        let copy = decoded.clone();
        let packed = vec![OwnedRecord::new(decoded)];
        let moved: Vec<OwnedRecord> = packed.into_iter().rev().collect();
        let cloned = moved[0].clone();
        drop(moved);
        assert_eq!(cloned.get(), &copy);
        assert_eq!(cloned.get().reason.as_deref(), Some("done\u{e9}"));
        assert_eq!(cloned.key(), "s-1");
    }
}
