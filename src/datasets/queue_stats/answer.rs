//! What one poll keeps of its answer. A poll asks for one queue (its id is in the path), so
//! it keeps at most one record, the first record of that queue; nothing else the answer holds
//! is dropped silently:
//!
//! * a repeat of that record, identical once decoded, is skipped and counted
//!   ([`Sorted::repeats`], `smartassist_queue_stats_repeated_records_total`);
//! * a second record of the queue that differs from the first is a [`Reject`] (its JSON as
//!   sent, the reason naming the queue) and counted
//!   (`smartassist_queue_stats_conflicting_records_total`): the first is kept because nothing
//!   says which one is right, and the reject shows the other one;
//! * a record of another queue is a [`Reject`] and counted
//!   (`smartassist_queue_stats_other_queue_records_total`): its `polled_at` would be this
//!   poll's, not one of that queue's own polls, it could add a row for a queue nobody
//!   configured, and a second copy of a row that queue's own poll writes under another
//!   second; a server that answers other queues is worth seeing, not merging;
//! * an answer without a record of the queue keeps nothing ([`Sorted::kept`] is `None`): the
//!   poll counts it (`smartassist_queue_stats_missing_total`), warns naming the queue, and
//!   reports the poll as empty to the coverage record.
//!
//! Elements that do not decode are rejects already ([`super::decode`]); an answer whose
//! records all failed to decode keeps nothing either (an empty poll, warned as such), but is
//! not counted as missing the queue: its record may be among the rejects.

use super::decode::{Element, QueueSnapshot};
use crate::sources::Reject;

/// An answer sorted for the queue `asked`.
#[derive(Debug, Default, PartialEq)]
pub struct Sorted {
    /// The first record of the asked queue.
    pub kept: Option<QueueSnapshot>,
    /// Every element not kept and not an identical repeat, with its reason.
    pub rejected: Vec<Reject>,
    /// Identical repeats of the kept record, skipped.
    pub repeats: usize,
    /// Differing second records of the asked queue (among `rejected`).
    pub conflicting: usize,
    /// Records of other queues (among `rejected`).
    pub other_queues: usize,
    /// Elements that did not decode, whichever queue they were of (among `rejected`).
    pub undecodable: usize,
}

/// Sorts the elements of one answer to a poll of `asked` (see the module docs).
pub fn sort(asked: &str, elements: Vec<Element>) -> Sorted {
    let mut out = Sorted::default();
    for (i, element) in elements.into_iter().enumerate() {
        let snapshot = match element.decoded {
            Ok(s) => s,
            Err(reject) => {
                out.undecodable += 1;
                out.rejected.push(reject);
                continue;
            }
        };
        let reason = if snapshot.queue_id != asked {
            out.other_queues += 1;
            format!(
                "[{i}]: a record of queue {:?} in the answer for queue {asked:?}: a poll keeps \
                 only the queue it asked for",
                snapshot.queue_id
            )
        } else {
            match &out.kept {
                None => {
                    out.kept = Some(snapshot);
                    continue;
                }
                Some(first) if *first == snapshot => {
                    out.repeats += 1;
                    continue;
                }
                Some(_) => {
                    out.conflicting += 1;
                    format!(
                        "[{i}]: a second record of queue {asked:?} in one answer, differing from \
                         the first (the first is kept)"
                    )
                }
            }
        };
        out.rejected.push(Reject {
            reason,
            raw_json: element.raw_json,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::super::decode::decode_elements;
    use super::*;

    fn sorted(asked: &str, body: &str) -> Sorted {
        let at = Utc
            .with_ymd_and_hms(2024, 6, 12, 9, 0, 0)
            .single()
            .expect("t");
        sort(
            asked,
            decode_elements(body.as_bytes(), at).expect("decodes"),
        )
    }

    #[test]
    fn the_first_record_of_the_asked_queue_is_kept_and_an_identical_repeat_counted() {
        let s = sorted(
            "qu-1",
            r#"[{"queueId":"qu-1","waiting":3}, {"waiting":3, "queueId":"qu-1"}]"#,
        );
        assert_eq!(s.kept.as_ref().map(|k| k.waiting), Some(Some(3)));
        assert_eq!((s.repeats, s.conflicting, s.other_queues), (1, 0, 0));
        assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    }

    #[test]
    fn a_differing_second_record_is_rejected_as_sent_and_the_first_kept() {
        let second = r#"{"queueId":"qu-1","waiting":4}"#;
        let s = sorted(
            "qu-1",
            &format!(r#"[{{"queueId":"qu-1","waiting":3}},{second}]"#),
        );
        assert_eq!(s.kept.as_ref().map(|k| k.waiting), Some(Some(3)));
        assert_eq!((s.repeats, s.conflicting, s.other_queues), (0, 1, 0));
        assert_eq!(s.rejected.len(), 1);
        assert_eq!(s.rejected[0].raw_json, second);
        assert!(
            s.rejected[0]
                .reason
                .starts_with("[1]: a second record of queue \"qu-1\""),
            "{}",
            s.rejected[0].reason
        );
    }

    #[test]
    fn records_of_other_queues_are_rejected_naming_both_queues() {
        let other = r#"{"queueId":"qu-2","waiting":1}"#;
        let s = sorted("qu-1", &format!(r#"[{other}, {{"queueId":"qu-1"}}, 7]"#));
        assert_eq!(s.kept.as_ref().map(|k| k.queue_id.as_str()), Some("qu-1"));
        assert_eq!((s.repeats, s.conflicting, s.other_queues), (0, 0, 1));
        // The other queue's record and the element that is not an object.
        assert_eq!(s.rejected.len(), 2, "{:?}", s.rejected);
        assert_eq!(s.rejected[0].raw_json, other);
        assert!(
            s.rejected[0].reason.contains("\"qu-2\"") && s.rejected[0].reason.contains("\"qu-1\""),
            "{}",
            s.rejected[0].reason
        );
        assert_eq!(s.rejected[1].raw_json, "7");
    }

    #[test]
    fn an_answer_without_the_asked_queue_keeps_nothing() {
        let s = sorted("qu-1", "[]");
        assert_eq!(s, Sorted::default());
        let s = sorted("qu-1", r#"[{"queueId":"qu-9"}]"#);
        assert!(s.kept.is_none());
        assert_eq!(s.other_queues, 1);
        assert_eq!(s.undecodable, 0);
    }

    #[test]
    fn an_answer_whose_only_record_does_not_decode_is_counted_as_undecodable() {
        let s = sorted("qu-1", r#"[{"queueId":"qu-1","waiting":"many"}]"#);
        assert!(s.kept.is_none());
        assert_eq!((s.undecodable, s.other_queues, s.rejected.len()), (1, 0, 1));
    }
}
