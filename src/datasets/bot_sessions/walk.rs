//! The walk over one (bot, day)'s sessions, whose pages shift while it runs. getSessions lists
//! a range's sessions newest first (by start time) and pages them with `skip`/`limit`; a
//! session that appears during the walk is inserted above the pages not yet read (at the top
//! when it starts, among older sessions when a server lists a session only once it ends), so it
//! pushes every later session one place down: nothing that was listed is skipped (the next page
//! repeats sessions already held, which the caller keeps once, by id).
//!
//! What the walk promises: every session listed when it began is held once. What arrives after
//! that belongs to the next export of the day (a day still running is provisional, exported
//! again). Two rules make that hold whatever the arrival rate:
//!
//! * **The range is pinned after the first page.** Its newest record (rejects included: the
//!   pinned list must hold every record the first page listed, or `skip` would pass over
//!   one) started at `t0`; every session listed then started at `t0` or before, so the later
//!   requests ask for `dateFrom .. t0 + 1 ms` (never past the day's end). A first page with a
//!   record whose start cannot be read is not pinned (the walk then works as before the pin,
//!   its re-read pass catching what arrived on top). Sessions starting later are not
//!   listed to this walk at all, so new sessions arriving faster than a page per request no
//!   longer push the end of the list out of reach: the first pass reads to its end
//!   (`moreAvailable` false) in a bounded number of requests, and holds every session
//!   listed at the first page (insertions only push sessions down, past the pages already read).
//! * **At most one re-read pass, ending where it overlaps.** `total` is not documented (one
//!   sample fits both "all in the range" and "on this page"), so it never cuts the first pass
//!   short and never starts more than one pass again. At the end of the first pass, the walk
//!   ends when the sessions it holds reach the `total` the latest page reported (a `total`
//!   below that is warned about as unreliable: the whole list was read). Otherwise (a `total`
//!   above what it holds, or none) it reads again from the top, for the sessions that arrived
//!   among the pages already read, and stops at the first page that lists a session held
//!   before this pass began (it reached what the first pass read: below it, only sessions
//!   that arrived after the walk began can be missing), when the count is reached, or at the
//!   end of the list. A `total` still above what the walk holds is then warned about (a
//!   `total` larger than listed, or sessions that arrived during the walk; the next export
//!   has them).
//! * **`moreAvailable` false is not the end while `total` says more.** On the first pass, a
//!   page that brought new sessions, whose `moreAvailable` is false (or left out, which reads
//!   as false) while the `total` it reports is above what the walk holds, does not end the
//!   list: the walk reads on until a page brings nothing new (an empty page past the end: one
//!   request more when the total is merely unreliable; a page of repeats pushed down by
//!   arrivals ends it too, so arrivals cannot keep it reading), so a server that leaves
//!   `moreAvailable` out does not cut the day to its first page.
//!
//! Pure: the caller sends each request (with [`SessionWalk::range_end`]) and reports what the
//! page held.

use chrono::{DateTime, TimeDelta, Utc};
use tracing::warn;

use super::super::history::MAX_PAGES_PER_WINDOW;

/// What one page held, as the caller counted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkPage {
    /// Records on the page (the next `skip` advances by this).
    pub records: usize,
    /// Records whose id the walk did not hold before this page.
    pub new: usize,
    /// Records whose id the walk held before the current pass began.
    pub earlier: usize,
    /// Distinct ids held after this page.
    pub held: usize,
    /// `moreAvailable`.
    pub more: bool,
    /// `total`, when the server reports it.
    pub total: Option<u64>,
    /// The latest `start_time` among the page's sessions (`None`: none could be read).
    pub newest: Option<DateTime<Utc>>,
}

/// Where the walk is (see the module docs).
#[derive(Debug)]
pub struct SessionWalk {
    /// 0: the first pass; 1: the re-read pass.
    pass: usize,
    skip: usize,
    pages: usize,
    /// The pinned end of the request range (exclusive), once the first page is read.
    end: Option<DateTime<Utc>>,
    done: bool,
    /// The walk ended before it could prove it holds every session listed at its start.
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
            end: None,
            done: false,
            gave_up: false,
        }
    }

    /// The `skip` of the next page; `None` once the walk is over.
    pub fn next_skip(&self) -> Option<usize> {
        (!self.done).then_some(self.skip)
    }

    /// The end the next request's range has (never past `day_end`): the day's end for the
    /// first page, then the pinned end (see the module docs).
    pub fn range_end(&self, day_end: DateTime<Utc>) -> DateTime<Utc> {
        self.end.map_or(day_end, |e| e.min(day_end))
    }

    /// Requests (pages) so far.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// Passes started so far.
    pub fn passes(&self) -> usize {
        self.pass + 1
    }

    /// Whether the walk is in its re-read pass.
    pub fn rereading(&self) -> bool {
        self.pass > 0
    }

    /// What the page [`SessionWalk::next_skip`] named held.
    pub fn record(&mut self, page: WalkPage) {
        self.pages += 1;
        if self.pages >= MAX_PAGES_PER_WINDOW {
            warn!(
                pages = self.pages,
                "getSessions kept listing pages; stopping this day's walk."
            );
            return self.finish(true);
        }
        if self.pages == 1 {
            // Whatever is listed now started at `newest` or before (newest first).
            self.end = page.newest.map(|t| t + TimeDelta::milliseconds(1));
        }
        // `moreAvailable` false on a page of the first pass that held new sessions while the
        // count says more were listed than are held (a server that leaves `moreAvailable` out
        // reads as false): read on until a page brings nothing new, not to lose the rest of
        // the list. A page of repeats only (sessions pushed down by arrivals above) ends it,
        // so arrivals cannot keep the walk reading.
        let short =
            self.pass == 0 && page.new > 0 && page.total.is_some_and(|t| (page.held as u64) < t);
        let end_of_list = page.records == 0 || (!page.more && !short);
        if page.more && page.records == 0 {
            warn!(
                skip = self.skip,
                "getSessions said there are more sessions but returned none."
            );
        }
        let caught_up = page.total.is_some_and(|t| page.held as u64 >= t);
        if self.pass == 0 {
            if end_of_list {
                self.end_of_first_pass(page);
            } else {
                self.skip += page.records;
            }
        } else if page.earlier > 0 || caught_up || end_of_list {
            // The re-read reached what the first pass read, the count, or the list's end.
            self.end_of_reread(page);
        } else {
            self.skip += page.records;
        }
    }

    /// The last page of the first pass: the walk ends, or reads again from the top.
    fn end_of_first_pass(&mut self, page: WalkPage) {
        match page.total {
            Some(t) if page.held as u64 >= t => {
                if (page.held as u64) > t {
                    warn!(
                        total = t,
                        held = page.held,
                        "getSessions reported a total smaller than the sessions it listed; its total is unreliable (every listed session is kept)."
                    );
                }
                self.finish(false)
            }
            _ => {
                self.pass = 1;
                self.skip = 0;
            }
        }
    }

    /// The re-read pass is over (see the module docs).
    fn end_of_reread(&mut self, page: WalkPage) {
        if let Some(t) = page.total.filter(|t| (page.held as u64) < *t) {
            warn!(
                total = t,
                held = page.held,
                "getSessions reported a total larger than the sessions the walk holds after reading the list again: sessions that arrived during the walk (the next export of the day has them), or an unreliable total."
            );
        }
        self.finish(false)
    }

    fn finish(&mut self, gave_up: bool) {
        self.done = true;
        self.gave_up = gave_up;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    /// A session's start time: its id, in milliseconds (ids sort as the server lists them).
    fn at(id: u32) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(i64::from(id)).expect("in range")
    }

    /// Inserts `id` where a server listing newest first puts it.
    fn arrive_at(list: &mut Vec<u32>, id: u32) {
        let i = list.partition_point(|x| *x > id);
        list.insert(i, id);
    }

    /// What a driven walk ended with.
    struct Walked {
        held: HashSet<u32>,
        /// The sessions listed for the day when the first page was answered.
        at_start: HashSet<u32>,
        pages: usize,
        gave_up: bool,
    }

    /// A server listing `list` (sorted newest first) for a day ending at id 1,000,000, each
    /// page's `total` computed from (records on the page, sessions in the range asked for);
    /// `arrive` runs before each request (sessions appearing meanwhile, with the request's
    /// number). Drives the walk to its end.
    fn drive(
        list: Vec<u32>,
        limit: usize,
        total: impl Fn(usize, usize) -> Option<u64>,
        arrive: impl FnMut(usize, &mut Vec<u32>),
    ) -> Walked {
        drive_saying(list, limit, total, arrive, |more| more)
    }

    /// [`drive`] with a server whose `moreAvailable` is `say(what it should be)`.
    fn drive_saying(
        mut list: Vec<u32>,
        limit: usize,
        total: impl Fn(usize, usize) -> Option<u64>,
        mut arrive: impl FnMut(usize, &mut Vec<u32>),
        say: impl Fn(bool) -> bool,
    ) -> Walked {
        let day_end = at(1_000_000);
        let mut walk = SessionWalk::new();
        let mut held: HashMap<u32, usize> = HashMap::new();
        let mut at_start = HashSet::new();
        while let Some(skip) = walk.next_skip() {
            arrive(walk.pages(), &mut list);
            let end = walk.range_end(day_end);
            let listed: Vec<u32> = list.iter().copied().filter(|id| at(*id) < end).collect();
            if walk.pages() == 0 {
                at_start = listed.iter().copied().collect();
            }
            let page: Vec<u32> = listed.iter().skip(skip).take(limit).copied().collect();
            let pass = walk.passes() - 1;
            let earlier = page
                .iter()
                .filter(|id| held.get(id).is_some_and(|p| *p < pass))
                .count();
            let mut new = 0;
            for id in &page {
                if !held.contains_key(id) {
                    held.insert(*id, pass);
                    new += 1;
                }
            }
            walk.record(WalkPage {
                records: page.len(),
                new,
                earlier,
                held: held.len(),
                more: say(skip + page.len() < listed.len()),
                total: total(page.len(), listed.len()),
                newest: page.iter().max().map(|id| at(*id)),
            });
        }
        Walked {
            held: held.into_keys().collect(),
            at_start,
            pages: walk.pages(),
            gave_up: walk.gave_up,
        }
    }

    fn all(_: usize, listed: usize) -> Option<u64> {
        Some(listed as u64)
    }

    fn desc(n: u32) -> Vec<u32> {
        (0..n).rev().map(|i| 1000 + i * 10).collect()
    }

    #[test]
    fn a_quiet_day_is_one_pass_and_no_extra_request() {
        let w = drive(desc(250), 100, all, |_, _| {});
        assert_eq!(w.held.len(), 250);
        assert_eq!(w.held, w.at_start);
        assert_eq!((w.pages, w.gave_up), (3, false));
    }

    #[test]
    fn sessions_starting_faster_than_a_page_per_request_do_not_keep_the_walk_going() {
        // 25 sessions start before each request, 10 to a page: without the pinned range the
        // end of the list would move away faster than the walk reads.
        let mut next = 500_000;
        let w = drive(desc(300), 10, all, |_, l| {
            for _ in 0..25 {
                arrive_at(l, next);
                next += 1;
            }
        });
        assert!(!w.gave_up);
        assert_eq!(w.at_start.len(), 325);
        assert_eq!(
            w.held, w.at_start,
            "every session listed at the start, once"
        );
        assert_eq!(w.pages, 33, "one pass over what was listed at the start");
    }

    #[test]
    fn sessions_listed_late_among_the_pages_read_do_not_keep_the_walk_going() {
        // Sessions listed when they end land among older ones: 12 before each of the 2nd to
        // 4th requests (more than a page), all in the part already read, so each pushes the
        // unread part down.
        let w = drive(desc(200), 10, all, |n, l| {
            if (1..4).contains(&n) {
                for j in 0..12 {
                    arrive_at(l, 2990 - 10 * j - n as u32);
                }
            }
        });
        assert!(!w.gave_up);
        assert_eq!(w.at_start.len(), 200);
        assert!(
            w.at_start.is_subset(&w.held),
            "nothing listed at the start missed"
        );
        // Late ones that landed in the part already read are the next export's: the re-read
        // pass (the total counts them) ends at its first page, which lists sessions the first
        // pass held. 20 pages of sessions, 36 late ones and as many repeats they pushed down,
        // one page again: at most 29 requests.
        assert!(w.held.len() <= 236);
        assert!(w.pages <= 29, "{} pages", w.pages);
    }

    #[test]
    fn without_a_total_the_walk_rereads_the_top_until_a_page_overlaps() {
        let w = drive(desc(150), 50, |_, _| None, |_, _| {});
        assert_eq!(w.held, w.at_start);
        // One pass of 3 pages, then the top page, which overlaps.
        assert_eq!((w.pages, w.gave_up), (4, false));
    }

    #[test]
    fn a_walk_whose_first_page_has_no_start_time_rereads_the_sessions_that_arrived_on_top() {
        // Nothing to pin the range to (the first page is empty of readable starts: modelled
        // by an unpinned range), sessions arrive on top during the first pass only.
        let mut walk = SessionWalk::new();
        walk.record(WalkPage {
            records: 10,
            new: 10,
            earlier: 0,
            held: 10,
            more: true,
            total: Some(30),
            newest: None,
        });
        assert_eq!(walk.range_end(at(7)), at(7), "not pinned");
        walk.record(WalkPage {
            records: 10,
            new: 5,
            earlier: 0,
            held: 15,
            more: false,
            total: Some(20),
            newest: Some(at(3)),
        });
        // Fewer held than the count: the list is read on past its end (an empty page), then
        // again from the top.
        assert_eq!((walk.rereading(), walk.next_skip()), (false, Some(20)));
        walk.record(WalkPage {
            records: 0,
            new: 0,
            earlier: 0,
            held: 15,
            more: false,
            total: Some(20),
            newest: None,
        });
        assert!(walk.rereading());
        assert_eq!(walk.next_skip(), Some(0));
        walk.record(WalkPage {
            records: 10,
            new: 5,
            earlier: 5,
            held: 20,
            more: true,
            total: Some(20),
            newest: Some(at(9)),
        });
        assert_eq!(
            (walk.next_skip(), walk.gave_up, walk.pages()),
            (None, false, 4)
        );
    }

    #[test]
    fn a_total_that_counts_the_page_does_not_end_the_first_pass() {
        // The server's `total` is the page's count: 100 on a full page, 50 on the last.
        let w = drive(desc(250), 100, |n, _| Some(n as u64), |_, _| {});
        assert_eq!(w.held, w.at_start);
        assert_eq!(w.held.len(), 250);
        assert_eq!((w.pages, w.gave_up), (3, false));
    }

    #[test]
    fn a_list_without_more_available_is_read_while_its_total_is_above_what_is_held() {
        // A server that leaves `moreAvailable` out (read as false) but reports the range's
        // total: the first page is not the end of a list of 250.
        let w = drive_saying(desc(250), 100, all, |_, _| {}, |_| false);
        assert_eq!(w.held, w.at_start);
        assert_eq!(w.held.len(), 250);
        // Three pages, then the count is reached.
        assert_eq!((w.pages, w.gave_up), (3, false));
    }

    #[test]
    fn reading_on_without_more_available_ends_at_a_page_of_repeats_while_sessions_arrive() {
        // No `moreAvailable`, and 3 sessions listed late just below the first page's newest
        // before each request (inside the pinned range): they push the end of the list down
        // as fast as the walk reads it, so a page past the end keeps listing repeats (for 60
        // requests here: a walk that reads on through them takes over 60 pages).
        let list: Vec<u32> = (0..250).rev().map(|i| 1000 + i * 1000).collect();
        let top = list[0];
        let w = drive_saying(
            list,
            100,
            all,
            |n, l| {
                if (1..=60).contains(&n) {
                    for j in 0..3 {
                        arrive_at(l, top - 1 - 3 * n as u32 - j);
                    }
                }
            },
            |_| false,
        );
        assert!(!w.gave_up, "{} pages", w.pages);
        assert!(w.at_start.is_subset(&w.held));
        assert!(w.pages <= 6, "{} pages", w.pages);
    }

    #[test]
    fn a_total_larger_than_listed_ends_after_one_rereading_page() {
        let w = drive(desc(250), 100, |_, all| Some(all as u64 + 7), |_, _| {});
        assert_eq!(w.held, w.at_start);
        // One pass, an empty page past its end (the count says more), and the first page
        // again, which overlaps; not six passes.
        assert_eq!((w.pages, w.gave_up), (5, false));
    }
}
