//! What one (bot, day) walk holds, and how it sorts each page against it. A session is held
//! once, by `sessionId` (a record without one, by its JSON text), with the pass it was first
//! listed in (the walk's re-read pass stops where it reaches sessions the first pass held) and
//! a digest of that first listing's JSON text. Pages shift while sessions arrive, so the walk
//! sees many sessions again; nothing it lists again is dropped silently:
//!
//! * a repeat identical to the first listing is skipped (counted in [`Sorted::repeats`]);
//! * a repeat that differs (a session that ended between two listings, or a server that
//!   serves two records under one id) is a [`Reject`], its JSON as sent and the reason naming
//!   the id, counted in [`Sorted::conflicting`] and in `smartassist_rejects_total`: the first
//!   listing is kept (its row is written already, and nothing says which one is right), the
//!   reject shows the other, and the next export of the day lists the session afresh. Each
//!   differing content is rejected once however often it is listed.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Range;

use chrono::{DateTime, Utc};

use super::decode::{BotSession, SessionsPage};
use crate::sources::Reject;

/// The sessions a walk holds (see the module docs).
#[derive(Debug, Default)]
pub struct Held {
    /// Key → (pass first listed in, digest of that listing).
    ids: HashMap<String, (usize, u64)>,
    /// (key, digest) of the differing repeats rejected already.
    rejected: HashSet<(String, u64)>,
}

/// One page sorted against what the walk holds.
#[derive(Debug, Default)]
pub struct Sorted {
    /// New sessions that start in the day.
    pub kept: Vec<BotSession>,
    /// New broken records, and differing repeats.
    pub rejects: Vec<Reject>,
    /// Records new to the walk.
    pub new: usize,
    /// Records held before the pass `pass` began.
    pub earlier: usize,
    /// Identical repeats, skipped.
    pub repeats: usize,
    /// Differing repeats (among `rejects`).
    pub conflicting: usize,
    /// New records rejected because they start outside the day (among `rejects`).
    pub outside: usize,
    /// The latest `start_time` among the page's records ([`SessionsPage::newest`]).
    pub newest: Option<DateTime<Utc>>,
}

fn digest(raw: &str) -> u64 {
    let mut h = DefaultHasher::new();
    raw.hash(&mut h);
    h.finish()
}

impl Held {
    /// Distinct sessions (and broken records) held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Sorts `page`, listed during pass `pass` of a walk over `day` (see the module docs).
    pub fn sort(&mut self, page: SessionsPage, pass: usize, day: &Range<DateTime<Utc>>) -> Sorted {
        let mut out = Sorted {
            newest: page.newest,
            ..Sorted::default()
        };
        for (item, raw) in page.sessions.into_iter().zip(page.raw.iter()) {
            let key = match &item {
                Ok(s) => format!("id:{}", s.session_id),
                Err((Some(id), _)) => format!("id:{id}"),
                Err((None, r)) => format!("raw:{}", r.raw_json),
            };
            let d = digest(raw);
            match self.ids.get(&key) {
                Some(&(first_pass, first)) => {
                    out.earlier += usize::from(first_pass < pass);
                    if first == d {
                        out.repeats += 1;
                    } else if self.rejected.insert((key.clone(), d)) {
                        out.conflicting += 1;
                        let id = key.strip_prefix("id:").unwrap_or(&key);
                        out.rejects.push(Reject {
                            reason: format!(
                                "session {id:?} listed again during the walk with different \
                                 content (the first listing is kept)"
                            ),
                            raw_json: raw.to_string(),
                        });
                    }
                    continue;
                }
                None => {
                    out.new += 1;
                    let outside = key
                        .strip_prefix("id:")
                        .is_some_and(|id| page.outside.iter().any(|o| o == id));
                    self.ids.insert(key, (pass, d));
                    match item {
                        Ok(s) if day.contains(&s.start_time) => out.kept.push(s),
                        // Exactly at the range's end: the next day's first session.
                        Ok(_) => {}
                        Err((_, r)) => {
                            out.outside += usize::from(outside);
                            out.rejects.push(r);
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode::decode_page_in;
    use super::*;

    fn day() -> Range<DateTime<Utc>> {
        let t = |s: &str| s.parse::<DateTime<Utc>>().expect("t");
        t("2025-03-18T04:00:00Z")..t("2025-03-19T04:00:00Z")
    }

    fn page(records: &[&str]) -> SessionsPage {
        let body = format!(
            r#"{{"total":9,"moreAvailable":true,"sessions":[{}]}}"#,
            records.join(",")
        );
        decode_page_in(body.as_bytes(), Some(&day())).expect("decodes")
    }

    const ACTIVE: &str = r#"{"sessionId":"a","start_time":"2025-03-18T14:00:00.000Z"}"#;
    const ENDED: &str = r#"{"sessionId":"a","start_time":"2025-03-18T14:00:00.000Z","end_time":"2025-03-18T14:05:00.000Z"}"#;
    const OTHER: &str = r#"{"sessionId":"b","start_time":"2025-03-18T13:00:00.000Z"}"#;

    #[test]
    fn an_identical_repeat_is_skipped_and_counted() {
        let mut held = Held::default();
        let first = held.sort(page(&[ACTIVE, OTHER]), 0, &day());
        assert_eq!((first.kept.len(), first.new, first.repeats), (2, 2, 0));
        let again = held.sort(page(&[OTHER, ACTIVE]), 0, &day());
        assert_eq!(
            (
                again.kept.len(),
                again.new,
                again.repeats,
                again.rejects.len()
            ),
            (0, 0, 2, 0)
        );
        assert_eq!(held.len(), 2);
    }

    #[test]
    fn a_differing_repeat_is_rejected_once_as_sent_and_the_first_kept() {
        let mut held = Held::default();
        let first = held.sort(page(&[ACTIVE]), 0, &day());
        assert_eq!(first.kept[0].end_time, None);
        let again = held.sort(page(&[ENDED, ENDED]), 0, &day());
        assert!(again.kept.is_empty());
        assert_eq!((again.conflicting, again.rejects.len()), (1, 1));
        assert_eq!(again.rejects[0].raw_json, ENDED);
        assert!(
            again.rejects[0].reason.contains("\"a\" listed again")
                && again.rejects[0].reason.contains("first listing is kept"),
            "{}",
            again.rejects[0].reason
        );
        // Listed a third time the same way: not rejected again.
        let third = held.sort(page(&[ENDED]), 0, &day());
        assert_eq!((third.conflicting, third.rejects.len()), (0, 0));
    }

    #[test]
    fn sessions_held_before_the_pass_are_counted_as_earlier() {
        let mut held = Held::default();
        held.sort(page(&[ACTIVE]), 0, &day());
        let s = held.sort(page(&[OTHER, ACTIVE]), 1, &day());
        assert_eq!((s.new, s.earlier, s.repeats), (1, 1, 1));
        let t = held.sort(page(&[OTHER]), 1, &day());
        assert_eq!((t.new, t.earlier, t.repeats), (0, 0, 1));
        assert_eq!(
            s.newest,
            Some("2025-03-18T14:00:00Z".parse::<DateTime<Utc>>().expect("t"))
        );
    }
}
