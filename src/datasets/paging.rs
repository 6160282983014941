//! The offset-paged walk of a unit's request windows, shared by every API that pages with an
//! offset (or `skip`) and a "more available" flag: ask for the page at offset 0, then at the
//! offset advanced by the records each page returned, while the API says there are more. The
//! dataset sends each request (it knows the parameter names, the body and the decoding), writes
//! the page's rows and reports what the page said ([`Page`]); [`OffsetPager`] owns the walk,
//! its stop rules and the per-window set of keys already seen.
//!
//! Advancing by the records received (not by the `limit` sent) makes a server that clamps
//! `limit` cost nothing. A page that says "more" but holds no record would make the loop spin,
//! and stopping there would record a partial day as complete: it fails the unit with a
//! retryable error, so nothing of the day is committed. [`MAX_PAGES_PER_WINDOW`] stops a server that never says
//! "no more".

use tracing::warn;

use super::history::MAX_PAGES_PER_WINDOW;
use super::DayUnit;
use crate::error::Error;
use crate::sources::key_set::KeySet;
use crate::sources::window::DayWindow;

/// Why a walk cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum PagingError {
    #[error(
        "{unit}: the API said there are more records after offset {offset} but returned none; \
         the day cannot be completed and nothing of it is committed (retried by the next run)"
    )]
    EmptyPageWithMore { unit: String, offset: usize },
}

/// What one page said about paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// The API's "more available" flag (`hasMore`, `moreAvailable`, ...).
    pub has_more: bool,
    /// Records the page held (before any filtering): the next page's offset advances by this.
    pub records: usize,
    /// Requests this page took (more than one when the dataset retried it differently).
    pub requests: usize,
}

/// Keys already kept in the current window: a server whose pages shift between requests may
/// return a record twice, and the second copy is skipped. Kept in one arena ([`KeySet`]), no
/// allocation per record.
#[derive(Debug, Default)]
pub struct Seen(KeySet);

impl Seen {
    /// `true` the first time `key` is seen in this window.
    pub fn first(&mut self, key: &str) -> bool {
        self.0.insert(key.as_bytes())
    }
}

/// Walks the pages of every window of a unit, in order: [`OffsetPager::next_page`] says which
/// page to fetch, the dataset fetches, decodes and writes it (skipping keys [`OffsetPager::seen`]
/// already holds), and [`OffsetPager::record`] says what the page held.
///
/// A window is whatever one request range is: a [`DayWindow`] for the APIs that take a local
/// date and an offset, a UTC range for those that take timestamps.
#[derive(Debug)]
pub struct OffsetPager<'a, W = DayWindow> {
    dataset: &'static str,
    unit: &'a DayUnit,
    windows: &'a [W],
    /// The window being paged, its next offset and the pages taken from it.
    window: usize,
    offset: usize,
    pages: usize,
    seen: Seen,
    requests: usize,
}

impl<'a, W> OffsetPager<'a, W> {
    pub fn new(dataset: &'static str, unit: &'a DayUnit, windows: &'a [W]) -> Self {
        OffsetPager {
            dataset,
            unit,
            windows,
            window: 0,
            offset: 0,
            pages: 0,
            seen: Seen::default(),
            requests: 0,
        }
    }

    /// The window and offset of the next page to fetch; `None` once every window is done.
    pub fn next_page(&mut self) -> Option<(&'a W, usize)> {
        if self.pages >= MAX_PAGES_PER_WINDOW {
            warn!(dataset = self.dataset, unit = %self.unit, pages = self.pages, "The API kept saying there are more records; stopping pagination of this window.");
            self.next_window();
        }
        let windows: &'a [W] = self.windows;
        windows.get(self.window).map(|w| (w, self.offset))
    }

    /// The keys already kept in the current window.
    pub fn seen(&mut self) -> &mut Seen {
        &mut self.seen
    }

    /// What the page [`OffsetPager::next_page`] named held. A page that says "more" but holds
    /// no record fails the unit ([`PagingError::EmptyPageWithMore`], retryable): the rest of
    /// the window cannot be asked for, and a partial day must not be recorded as done.
    pub fn record(&mut self, page: Page) -> Result<(), Error> {
        self.requests += page.requests;
        self.pages += 1;
        if !page.has_more {
            self.next_window();
        } else if page.records == 0 {
            return Err(Error::Dataset {
                dataset: self.dataset,
                retryable: true,
                source: Box::new(PagingError::EmptyPageWithMore {
                    unit: self.unit.to_string(),
                    offset: self.offset,
                }),
            });
        } else {
            self.offset += page.records;
        }
        Ok(())
    }

    /// Requests made so far.
    pub fn requests(&self) -> usize {
        self.requests
    }

    fn next_window(&mut self) {
        self.window += 1;
        self.offset = 0;
        self.pages = 0;
        self.seen = Seen::default();
    }
}

/// The walk of an undocumented `offset`/`limit` list (a bare array, no "more" flag, no total):
/// ask for `limit` records at offset 0, then at the offset advanced by the records received,
/// and stop at the first page that is shorter than `limit`, holds no key not seen before (a
/// server that ignores `offset` answers the same list again), or is byte for byte the previous
/// page; [`MAX_PAGES_PER_WINDOW`] stops anything else. A server that ignores `limit` and
/// returns the whole list costs one more request, whose records are all seen. The dataset
/// keeps a record only when [`ListPager::seen`] says its key is new.
#[derive(Debug)]
pub struct ListPager {
    dataset: &'static str,
    limit: usize,
    offset: usize,
    pages: usize,
    previous: Option<u64>,
    done: bool,
    seen: Seen,
}

/// What one page of a list held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListPage {
    /// Records on the page (rejected ones included).
    pub records: usize,
    /// Records whose key was new.
    pub new_keys: usize,
    /// A hash of the response body, to tell a repeated page.
    pub body_hash: u64,
}

impl ListPager {
    pub fn new(dataset: &'static str, limit: usize) -> ListPager {
        ListPager {
            dataset,
            limit: limit.max(1),
            offset: 0,
            pages: 0,
            previous: None,
            done: false,
            seen: Seen::default(),
        }
    }

    /// The offset and limit of the next page; `None` once the list is done.
    pub fn next_page(&self) -> Option<(usize, usize)> {
        (!self.done).then_some((self.offset, self.limit))
    }

    /// The keys already kept.
    pub fn seen(&mut self) -> &mut Seen {
        &mut self.seen
    }

    /// Requests made so far.
    pub fn requests(&self) -> usize {
        self.pages
    }

    /// What the page [`ListPager::next_page`] named held.
    pub fn record(&mut self, page: ListPage) {
        self.pages += 1;
        let repeated = self.previous == Some(page.body_hash);
        self.previous = Some(page.body_hash);
        if page.records < self.limit || page.new_keys == 0 || repeated {
            if page.records >= self.limit {
                // A full page with nothing new: either the server ignores `offset` (and the
                // first page was the whole list) or it does not, and records past this page
                // were never seen. The exporter cannot tell which.
                warn!(dataset = self.dataset, offset = self.offset, limit = self.limit, "The API answered a full list page with nothing new; it may ignore offset, so the list may be incomplete (more than limit records); stopping.");
            }
            self.done = true;
        } else if self.pages >= MAX_PAGES_PER_WINDOW {
            warn!(
                dataset = self.dataset,
                pages = self.pages,
                "The list kept returning full pages; stopping pagination."
            );
            self.done = true;
        } else {
            self.offset += page.records;
        }
    }
}

/// A hash of a response body, for [`ListPage::body_hash`].
pub fn body_hash(body: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::sources::window::plan_day;

    fn unit() -> DayUnit {
        // The US fall-back day (25 h): two request windows at different offsets.
        DayUnit::day("2024-11-03".parse().expect("day"))
    }

    /// A server holding `total` records per window that answers at most `clamp` per page.
    fn serve(total: usize, clamp: usize, offset: usize) -> Page {
        let records = total.saturating_sub(offset).min(clamp);
        Page {
            has_more: offset + records < total,
            records,
            requests: 1,
        }
    }

    /// Drives `pager` like a dataset does, answering each page with `answer`.
    fn drive(
        pager: &mut OffsetPager<'_>,
        mut answer: impl FnMut(&DayWindow, usize, &mut Seen) -> Result<Page, Error>,
    ) -> Result<usize, Error> {
        while let Some((window, offset)) = pager.next_page() {
            let page = answer(window, offset, pager.seen())?;
            pager.record(page)?;
        }
        Ok(pager.requests())
    }

    #[test]
    fn offsets_advance_by_the_records_received_in_every_window() {
        let unit = unit();
        let windows = plan_day(chrono_tz::America::New_York, unit.day);
        assert_eq!(windows.len(), 2);
        let mut asked = Vec::new();
        let mut pager = OffsetPager::new("t", &unit, &windows);
        let requests = drive(&mut pager, |w, offset, _| {
            asked.push((w.offset_minutes, offset));
            Ok(serve(7, 3, offset))
        })
        .expect("pages");
        assert_eq!(requests, 6);
        let offsets: Vec<usize> = asked.iter().map(|(_, o)| *o).collect();
        assert_eq!(offsets, [0, 3, 6, 0, 3, 6]);
        assert_ne!(asked[0].0, asked[3].0, "two windows at different offsets");
    }

    #[test]
    fn a_page_that_says_more_but_holds_nothing_fails_the_unit_retryably() {
        let unit = unit();
        let windows = plan_day(chrono_tz::UTC, unit.day);
        let mut calls = 0;
        let mut pager = OffsetPager::new("t", &unit, &windows);
        let err = drive(&mut pager, |_, offset, _| {
            calls += 1;
            Ok(Page {
                has_more: true,
                records: if offset == 0 { 3 } else { 0 },
                requests: 1,
            })
        })
        .expect_err("an empty page saying more fails the unit");
        assert_eq!(calls, 2);
        assert!(err.is_retryable());
        let chain = crate::error_chain::error_chain(&err);
        assert!(
            chain.contains("more records after offset 3 but returned none"),
            "{chain}"
        );
    }

    #[test]
    fn a_server_that_never_says_no_more_is_stopped_at_the_page_cap() {
        let unit = unit();
        let windows = plan_day(chrono_tz::UTC, unit.day);
        let mut pager = OffsetPager::new("t", &unit, &windows);
        let requests = drive(&mut pager, |_, _, _| {
            Ok(Page {
                has_more: true,
                records: 1,
                requests: 1,
            })
        })
        .expect("pages");
        assert_eq!(requests, MAX_PAGES_PER_WINDOW);
    }

    #[test]
    fn seen_keys_reset_per_window() {
        let unit = unit();
        let windows = plan_day(chrono_tz::America::New_York, unit.day);
        let mut firsts = Vec::new();
        let mut pager = OffsetPager::new("t", &unit, &windows);
        drive(&mut pager, |_, offset, seen| {
            firsts.push(seen.first("agent-1"));
            firsts.push(seen.first("agent-1"));
            Ok(serve(2, 1, offset))
        })
        .expect("pages");
        assert_eq!(
            firsts,
            [true, false, false, false, true, false, false, false]
        );
    }

    #[test]
    fn any_request_range_can_be_a_window() {
        // E.g. the exact UTC range of a local day, for APIs that take timestamps.
        let unit = unit();
        let windows = [crate::sources::window::local_day_bounds(
            chrono_tz::America::New_York,
            unit.day,
        )];
        let mut pager = OffsetPager::new("t", &unit, &windows);
        let mut offsets = Vec::new();
        while let Some((range, offset)) = pager.next_page() {
            assert_eq!(range.end - range.start, chrono::TimeDelta::hours(25));
            offsets.push(offset);
            pager
                .record(serve(5, 2, offset))
                .expect("a page with records");
        }
        assert_eq!(offsets, [0, 2, 4]);
        assert_eq!(pager.requests(), 3);
    }

    /// A list of `total` records served by a server that honours `offset`/`limit` or ignores
    /// both; the pages walked and the keys kept.
    fn walk_list(total: usize, limit: usize, honours: bool) -> (usize, Vec<usize>) {
        let mut pager = ListPager::new("t", limit);
        let mut kept = Vec::new();
        while let Some((offset, limit)) = pager.next_page() {
            let ids: Vec<usize> = if honours {
                (offset..total.min(offset + limit)).collect()
            } else {
                (0..total).collect()
            };
            let body = format!("{ids:?}");
            let mut new_keys = 0;
            for id in &ids {
                if pager.seen().first(&id.to_string()) {
                    kept.push(*id);
                    new_keys += 1;
                }
            }
            pager.record(ListPage {
                records: ids.len(),
                new_keys,
                body_hash: body_hash(body.as_bytes()),
            });
        }
        (pager.requests(), kept)
    }

    #[test]
    fn a_list_is_paged_when_the_server_honours_offset_and_limit() {
        assert_eq!(walk_list(12, 5, true), (3, (0..12).collect()));
        // A full last page needs one more, empty, page to be sure.
        assert_eq!(walk_list(10, 5, true), (3, (0..10).collect()));
        assert_eq!(walk_list(0, 5, true), (1, vec![]));
    }

    #[test]
    fn a_server_ignoring_offset_and_limit_costs_at_most_one_more_request() {
        // The whole list at once: shorter than limit, or repeated on the next page.
        assert_eq!(walk_list(3, 5, false), (1, (0..3).collect()));
        assert_eq!(walk_list(12, 5, false), (2, (0..12).collect()));
    }
}
