//! The walk over one (bot, day)'s sessions, whose pages shift while it runs. getSessions lists
//! a range's sessions newest first (by start time) and pages them with `skip`/`limit`; a
//! session that appears during the walk (one that starts, or becomes listed when it ends) is
//! inserted above the pages not yet read, so it pushes every later session one place down:
//! nothing is skipped (the next page repeats sessions already held, which the caller keeps
//! once, by id), but the new session itself lands in the part already read and would be
//! missed. So the walk does not end at the last page. The first pass always reads to the end
//! of the list (`moreAvailable` false): `total` is not documented (one sample fits both "all
//! in the range" and "on this page"), so it never cuts a pass short. At the end of a pass,
//! `total` decides whether another is needed: when the sessions held reach the `total` the
//! latest page reported, every session listed at that moment is held; otherwise the walk reads
//! again from the top, as often as [`MAX_PASSES`], stopping as soon as the count is reached
//! (new sessions are mostly at the top, so a second pass usually takes one page). A `total`
//! below what a full pass holds is warned about as unreliable (the walk still ends there: it
//! read the whole list). A re-read pass that adds nothing new ends the walk too: the server
//! lists fewer sessions than its `total` says, and the walk holds everything it lists (warned
//! as a `total` larger than listed, the day counts as complete). A server that reports no
//! `total` gets the documented fallback: after the first pass, the walk re-reads from the top
//! until a page overlaps what it holds (a page with no new
//! session). Pure: the caller sends each request and reports what the page held.

use tracing::warn;

use super::super::history::MAX_PAGES_PER_WINDOW;

/// Passes over the list (the first included) before the walk gives up on catching up with
/// sessions that keep arriving; what it holds is exported, and the next run exports the day
/// again.
pub const MAX_PASSES: usize = 6;

/// What one page held, as the caller counted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkPage {
    /// Records on the page (the next `skip` advances by this).
    pub records: usize,
    /// Records whose id the walk did not hold before this page.
    pub new: usize,
    /// Distinct ids held after this page.
    pub held: usize,
    /// `moreAvailable`.
    pub more: bool,
    /// `total`, when the server reports it.
    pub total: Option<u64>,
}

/// Where the walk is (see the module docs).
#[derive(Debug)]
pub struct SessionWalk {
    pass: usize,
    skip: usize,
    pages: usize,
    /// Records new to the walk during the current pass.
    pass_new: usize,
    done: bool,
    /// The walk ended before it could prove it holds every listed session.
    pub gave_up: bool,
}

impl Default for SessionWalk {
    fn default() -> Self {
        SessionWalk::new()
    }
}

impl SessionWalk {
    pub fn new() -> SessionWalk {
        SessionWalk {
            pass: 0,
            skip: 0,
            pages: 0,
            pass_new: 0,
            done: false,
            gave_up: false,
        }
    }

    /// The `skip` of the next page; `None` once the walk is over.
    pub fn next_skip(&self) -> Option<usize> {
        (!self.done).then_some(self.skip)
    }

    /// Requests (pages) so far.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// Passes started so far.
    pub fn passes(&self) -> usize {
        self.pass + 1
    }

    /// What the page [`SessionWalk::next_skip`] named held.
    pub fn record(&mut self, page: WalkPage) {
        self.pages += 1;
        if self.pages >= MAX_PAGES_PER_WINDOW {
            warn!(
                pages = self.pages,
                "getSessions kept listing pages; stopping this day's walk."
            );
            self.finish(true);
            return;
        }
        self.pass_new += page.new;
        let caught_up = page.total.is_some_and(|t| page.held as u64 >= t);
        let end_of_list = !page.more || page.records == 0;
        if page.more && page.records == 0 {
            warn!(
                skip = self.skip,
                "getSessions said there are more sessions but returned none."
            );
        }
        if end_of_list {
            self.end_of_pass(page);
            return;
        }
        match page.total {
            // Only a re-read pass stops mid-list: the first pass reads the whole list.
            Some(_) if caught_up && self.pass > 0 => self.finish(false),
            // Without a total: after the first pass, a page with nothing new overlaps.
            None if self.pass > 0 && page.new == 0 => self.finish(false),
            _ => self.skip += page.records,
        }
    }

    /// The last page of a pass: the walk ends, or reads again from the top.
    fn end_of_pass(&mut self, page: WalkPage) {
        match page.total {
            Some(t) if page.held as u64 >= t => {
                if (page.held as u64) > t {
                    warn!(
                        total = t,
                        held = page.held,
                        "getSessions reported a total smaller than the sessions it listed; its total is unreliable (every listed session is kept)."
                    );
                }
                return self.finish(false);
            }
            Some(t) if self.pass > 0 && self.pass_new == 0 => {
                warn!(
                    total = t,
                    held = page.held,
                    "getSessions reported a total larger than the sessions it lists, and reading the list again found nothing new; its total is unreliable (every listed session is kept)."
                );
                return self.finish(false);
            }
            None if self.pass > 0 && page.new == 0 => return self.finish(false),
            _ => {}
        }
        if self.pass + 1 >= MAX_PASSES {
            self.finish(true);
        } else {
            self.pass += 1;
            self.pass_new = 0;
            self.skip = 0;
        }
    }

    fn finish(&mut self, gave_up: bool) {
        self.done = true;
        self.gave_up = gave_up;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// A server listing `list` newest first (index 0 first), calling `arrive` before answering
    /// each request (sessions appearing meanwhile); drives the walk to the end and returns the
    /// ids held and the requests made.
    fn drive(
        list: Vec<u32>,
        limit: usize,
        with_total: bool,
        arrive: impl FnMut(usize, &mut Vec<u32>),
    ) -> (HashSet<u32>, usize, bool, Vec<u32>) {
        let total = move |_: usize, all: usize| with_total.then_some(all as u64);
        drive_with(list, limit, total, arrive)
    }

    /// [`drive`] with the `total` each page reports computed from (records on the page,
    /// sessions listed).
    fn drive_with(
        mut list: Vec<u32>,
        limit: usize,
        total: impl Fn(usize, usize) -> Option<u64>,
        mut arrive: impl FnMut(usize, &mut Vec<u32>),
    ) -> (HashSet<u32>, usize, bool, Vec<u32>) {
        let mut walk = SessionWalk::new();
        let mut held = HashSet::new();
        while let Some(skip) = walk.next_skip() {
            arrive(walk.pages(), &mut list);
            let page: Vec<u32> = list.iter().skip(skip).take(limit).copied().collect();
            let new = page.iter().filter(|id| held.insert(**id)).count();
            walk.record(WalkPage {
                records: page.len(),
                new,
                held: held.len(),
                more: skip + page.len() < list.len(),
                total: total(page.len(), list.len()),
            });
        }
        (held, walk.pages(), walk.gave_up, list)
    }

    #[test]
    fn a_quiet_day_is_one_pass_and_no_extra_request() {
        let (held, pages, gave_up, list) = drive((0..250).rev().collect(), 100, true, |_, _| {});
        assert_eq!(held.len(), 250);
        assert_eq!((pages, gave_up), (3, false));
        assert_eq!(held, list.into_iter().collect());
    }

    #[test]
    fn sessions_arriving_at_the_top_and_in_the_middle_are_all_held_once() {
        let mut next = 1000;
        let (held, pages, gave_up, list) = drive((0..250).rev().collect(), 100, true, |n, l| {
            if n < 4 {
                // A new session at the top, and one that ended late but started long ago.
                l.insert(0, next);
                l.insert(120, next + 1);
                next += 2;
            }
        });
        assert!(!gave_up);
        assert_eq!(held, list.iter().copied().collect::<HashSet<_>>());
        assert_eq!(held.len(), 258);
        assert!(pages > 3, "a second pass was needed: {pages}");
    }

    #[test]
    fn without_a_total_the_walk_rereads_the_top_until_a_page_overlaps() {
        let mut next = 1000;
        let (held, pages, _, list) = drive((0..150).rev().collect(), 50, false, |n, l| {
            if n < 3 {
                l.insert(0, next);
                next += 1;
            }
        });
        assert_eq!(held, list.iter().copied().collect::<HashSet<_>>());
        // One pass of 4 pages, then the top page (two sessions new since it was read) and the
        // next one (nothing new: it overlaps).
        assert_eq!(pages, 6);
    }

    #[test]
    fn sessions_that_never_stop_arriving_end_the_walk_after_the_last_pass() {
        let mut next = 1000;
        let (held, _, gave_up, _) = drive((0..100).rev().collect(), 10, true, |_, l| {
            // Deep in the list, every request: the count is never reached.
            l.insert(50, next);
            next += 1;
        });
        assert!(gave_up);
        assert!(held.len() >= 100);
    }

    #[test]
    fn a_total_that_counts_the_page_does_not_end_the_first_pass() {
        // The server's `total` is the page's count: 100 on a full page, 50 on the last.
        let (held, pages, gave_up, list) = drive_with(
            (0..250).rev().collect(),
            100,
            |n, _| Some(n as u64),
            |_, _| {},
        );
        assert_eq!(held, list.into_iter().collect::<HashSet<_>>());
        assert_eq!(held.len(), 250);
        assert_eq!((pages, gave_up), (3, false));
    }

    #[test]
    fn a_total_larger_than_listed_ends_after_one_rereading_pass_with_nothing_new() {
        let (held, pages, gave_up, list) = drive_with(
            (0..250).rev().collect(),
            100,
            |_, all| Some(all as u64 + 7),
            |_, _| {},
        );
        assert_eq!(held, list.into_iter().collect::<HashSet<_>>());
        // One pass, one pass again that finds nothing new; not six.
        assert_eq!((pages, gave_up), (6, false));
    }
}
