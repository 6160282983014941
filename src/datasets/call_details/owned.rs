//! A Call Details record that outlives its response body ([`OwnedRecord`]): all its text moved
//! into one buffer it owns, the record's fields borrowing from that buffer.
//!
//! The window walk keeps a window's records until the window is complete, after their page's
//! body is gone (see `windows`). Owning each field's text separately
//! ([`CallRecord::into_owned`]) cost a `malloc` per field and a `free` per field when the
//! record was normalized: about 30 of each per session with its legs, 15% of a 7-day backfill's
//! profile, on the one malloc arena the decoding and encoding threads share
//! (docs/performance.md). Here a record makes one allocation for all its text.
//!
//! The record is reachable only through [`OwnedRecord::get`], whose lifetime is the
//! `OwnedRecord`'s own, so no borrowed text can outlive the buffer; the buffer is never
//! changed after the record points into it, and moving an `OwnedRecord` moves the `String`'s
//! handle, not its bytes.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};

use super::record::CallRecord;
use super::windows::Session;

/// A decoded session owning its text in one buffer (see the module docs).
pub struct OwnedRecord {
    /// Every text field is `Cow::Borrowed` from `text` (declared first: dropped before it).
    record: CallRecord<'static>,
    /// All the record's text, back to back; never changed once `record` points into it. Held,
    /// not read (but by a test): it is what `record`'s fields point into.
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "owned so that `record` can borrow it")
    )]
    text: String,
}

impl OwnedRecord {
    /// Moves every text of `record` into one buffer (text the decoder already owned, from
    /// JSON escapes, is copied and freed).
    pub fn new(mut record: CallRecord<'_>) -> OwnedRecord {
        let mut len = 0;
        record.texts_mut(&mut |s| len += s.len());
        let mut text = String::with_capacity(len);
        record.texts_mut(&mut |s| text.push_str(s));
        // `text` holds exactly `len` bytes in a buffer of at least that capacity: nothing below
        // writes to it, so its bytes stay where they are for as long as `text` lives.
        let base = text.as_ptr();
        let mut at = 0;
        record.texts_mut(&mut |s| {
            let n = s.len();
            // SAFETY: bytes `at..at + n` of `text` were copied from `s` by the previous pass,
            // which visited the same texts in the same order; they are initialized, valid
            // UTF-8 and inside the buffer (`at + n <= len`). The lifetime is unbounded here and
            // made true by the struct: the reference is only ever read through `get`, while
            // `text` lives and is not written.
            let packed = unsafe {
                std::str::from_utf8_unchecked(std::slice::from_raw_parts(base.add(at), n))
            };
            *s = Cow::Borrowed(packed);
            at += n;
        });
        debug_assert_eq!(at, text.len());
        // SAFETY: every text of `record` now borrows `text` (the pass above reached each one,
        // see `CallRecord::texts_mut`), so nothing in it borrows the response body; the
        // `'static` is only ever handed out shortened to a borrow of `self` (`get`).
        let record = unsafe { std::mem::transmute::<CallRecord<'_>, CallRecord<'static>>(record) };
        OwnedRecord { record, text }
    }

    /// The record, borrowed for as long as this value.
    pub fn get(&self) -> &CallRecord<'_> {
        &self.record
    }

    /// Bytes of text the record holds.
    #[cfg(test)]
    fn text_len(&self) -> usize {
        self.text.len()
    }
}

impl Clone for OwnedRecord {
    fn clone(&self) -> OwnedRecord {
        OwnedRecord::new(self.record.clone())
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
    use super::*;
    use crate::datasets::call_details::decode_page;

    /// A page whose record sets every text the decoder reads: top-level strings, lists, JSON
    /// texts, customer, campaign, a queue entry with a responding and a non-responding agent,
    /// an agent segment, unmapped fields at every level (nested ones too) and an escape.
    const PAGE: &str = r#"{"numResults": 1, "data": [{
        "sessionId": "s-1", "conversationId": "c-1", "channel": "voice", "botId": "st-b",
        "userId": "u-cust", "channelSpecificUserId": "+1555", "orgId": "o-1",
        "sessionStartTime": "2024-05-01T10:00:00.000Z", "sessionEndTime": "2024-05-01T10:05:00.000Z",
        "finalStatus": "closed", "smartStatus": "resolved", "reason": "done\u00e9",
        "disconnectingEvent": "agent", "errorDetails": "none", "Direction": "inbound",
        "isVoicemail": false, "skills": [{"id": "sk-1"}], "dispositions": ["d1", "d2"],
        "dispositionRemarks": ["r1"], "surveyType": "csat", "csatScore": 5,
        "csatFeedback": "good", "npsScore": 9, "likeDislikeScore": 1,
        "customerinfo": {"phoneNumber": "+1555", "centerPhoneNumber": "+1800",
            "firstName": "Ann", "lastName": "Lee", "email": "a@x", "loyalty": {"tier": 2}},
        "userleveltags": [{"name": "t", "value": 1}], "sessionleveltags": [],
        "campaigninfo": {"campaignName": "spring", "campaignId": "cp-1",
            "campaignInstanceId": "ci-1", "dialingListId": "dl-1", "attempt": 2,
            "contactStatus": "reached", "contactListNames": ["l1", "l2"], "wave": "w3"},
        "automationBotIds": ["st-a1"], "metaInfo": {"k": "v"}, "surprise": [1, 2],
        "destinations": [
          {"destinationType": "QueueEntry", "queueId": "qu-1", "queueName": "Sales",
           "enterTime": "2024-05-01T10:00:10.000Z", "queueColor": "red",
           "respondingAgent": {"agentId": "u-1", "email": "b@x", "name": "Bo",
             "status": "accepted", "agentNotes": ["n1"], "ConsultingAgents": [{"id": "u-3"}],
             "desk": "7"},
           "nonRespondingAgents": [{"agentId": "u-2", "name": "Cy",
             "nonResponseEvent": "timeout"}]},
          {"destinationType": "AgentSegment", "agentId": "u-4", "email": "d@x",
           "name": "Di", "status": "accepted", "badge": "b"}
        ]}]}"#;

    #[test]
    fn packed_record_equals_the_decoded_one_and_borrows_nothing_of_the_body() {
        let mut body = PAGE.as_bytes().to_vec();
        let page = decode_page(&body, 0).expect("decodes");
        let decoded = page
            .records
            .into_iter()
            .next()
            .expect("one")
            .expect("valid");
        let copy = decoded.clone().into_owned();
        let packed = OwnedRecord::new(decoded);
        assert_eq!(packed.get(), &copy);
        assert_eq!(packed.get().segments.len(), 3);
        assert!(!packed.get().extra.is_empty(), "unmapped fields are kept");
        // Were any text still borrowed from the body, it would read these bytes now.
        body.fill(b'#');
        assert_eq!(packed.get(), &copy);
        let mut all = String::new();
        copy.clone().texts_mut(&mut |s| all.push_str(s));
        assert_eq!(packed.text_len(), all.len());
        assert!(all.contains("done\u{e9}") && all.contains("loyalty") && all.contains("desk"));
    }

    #[test]
    fn a_moved_and_cloned_record_keeps_its_text() {
        let page = decode_page(PAGE.as_bytes(), 0).expect("decodes");
        let decoded = page
            .records
            .into_iter()
            .next()
            .expect("one")
            .expect("valid");
        let copy = decoded.clone().into_owned();
        let packed = vec![OwnedRecord::new(decoded)];
        let moved: Vec<OwnedRecord> = packed.into_iter().rev().collect();
        let cloned = moved[0].clone();
        drop(moved);
        assert_eq!(cloned.get(), &copy);
        assert_eq!(cloned.key(), "s-1");
    }
}
