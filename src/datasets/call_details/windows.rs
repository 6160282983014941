//! Window planning for Call Details: covers a local day completely under the API's caps
//! (`limit` ≤ 100, `offset` = page index ≤ 10, so at most 11 pages per request window) with as
//! few requests as the data allows. Pure except for the caller's page-fetch closure, so it is
//! tested without HTTP.
//!
//! [`fetch_day`] walks each DST-constant segment of the day ([`DayWindow`] from
//! [`plan_day`](crate::sources::window::plan_day)); windows never cross a segment, so each
//! request has one `timeZoneOffset`. A new window starts where the previous one ended and is
//! sized to hold [`TARGET_FILL`] of the capacity by the expected density: the hourly profile of
//! a recent day ([`Density`], which the caller persists from [`DayFetch::density`]), scaled by
//! how today's kept windows compare with it. A single rate cannot do this well: sized for the
//! busiest hour, windows fragment the rest of the day; sized for the mean, the busy hour
//! overflows. Without a profile the first window is the whole segment (one request on a sparse
//! day) and later ones use today's mean rate so far (see `planner.rs`).
//!
//! Each window is paged from page 0 until a short page. When page 10 is full the window is
//! split into pieces (its records are discarded; the pieces fetch them again) and the pieces are
//! fetched in order; a piece that the fetched records alone show to be over the cap is split
//! again before it is fetched. A one-second window that is full is probed once with
//! `endDate = startDate` (under an inclusive `endDate`, the full window may have counted the
//! next second too); if the probe is full as well, or returns fewer sessions than the full
//! window showed for that second (an exclusive `endDate`), the day fails with
//! [`WindowError::Saturated`].
//!
//! `numResults` is a hint only. When page 0 reports more than the capacity, the window is split
//! after one request instead of eleven, provided the value is below the parent window's hint
//! (so a constant cannot split forever), not disproved today (a window that completed with a
//! different count disproves it), and, until a window has confirmed it, within 4× of what the
//! planner expected there. It also sets the number of pieces when it is plausible (more than
//! what was fetched); otherwise the pieces are sized from the fetched records' time span, at
//! least 2.5× the capacity. Completeness never depends on it: a window is complete only after a
//! short page.
//!
//! The caller's closure does the I/O (and its retries); an error it returns ends the day with
//! [`WindowError::Fetch`] naming the window and page. Nothing is committed by this module: the
//! caller writes the records only after [`fetch_day`] returns.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;

use chrono::{DateTime, Duration, Utc};

use super::call_window::{capacity, CallWindow};
use super::planner::{Density, Planner};
use super::record::{CallRecord, Page};
use super::{MAX_PAGE_OFFSET, MAX_PAGE_SIZE};
use crate::sources::key_set::KeySet;
use crate::sources::window::DayWindow;
use crate::sources::Reject;

/// Most pieces one split produces.
const MAX_SPLIT: i64 = 16;

/// What the window walk reads of a decoded session: when it starts and its key. The export
/// keeps [`super::OwnedRecord`]s (text in one buffer); the tests, [`CallRecord`]s.
pub trait Session {
    /// `sessionStartTime`: which window the session belongs to.
    fn start(&self) -> DateTime<Utc>;
    /// `sessionId`: a session seen twice (in two windows' answers) is kept once.
    fn key(&self) -> &str;
}

impl Session for CallRecord<'_> {
    fn start(&self) -> DateTime<Utc> {
        self.session_start_time
    }
    fn key(&self) -> &str {
        &self.session_id
    }
}

/// Why a day could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum WindowError<E: std::error::Error + 'static> {
    /// At least `cap` sessions start in one second: no window can page past them.
    #[error(
        "at least {cap} call-details sessions start in the one-second window {window}; \
         the API's caps (limit ≤ 100, offset ≤ 10) cannot page past them"
    )]
    Saturated { window: CallWindow, cap: u64 },
    #[error("fetching page {page} of call-details window {window} failed")]
    Fetch {
        window: CallWindow,
        page: u32,
        #[source]
        source: E,
    },
    #[error("call-details page size {0} is outside 1..=100")]
    PageSize(u32),
}

/// Request accounting of one day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchStats {
    pub page_size: u32,
    /// Page requests made (each counts against the account's 60/minute budget).
    pub requests: u64,
    /// Windows whose records were kept.
    pub windows: u64,
    /// Segments walked (1, or 2 on a fall-back day).
    pub segments: u64,
    /// What the kept windows cost without waste: `floor(records / page_size) + 1` pages each.
    /// Equals `ceil(sessions / page_size) + windows` except when a window's count is a multiple
    /// of the page size or it returned the inclusive end's extra second.
    pub pages_needed: u64,
    /// Windows whose page 10 was full (11 requests each, fetched again as pieces).
    pub overflows: u64,
    /// Windows split after page 0 because `numResults` exceeded the capacity.
    pub early_splits: u64,
    /// One-second windows probed with `endDate = startDate`.
    pub probes: u64,
    /// Unique sessions returned.
    pub sessions: u64,
    /// Records seen again (same `sessionId`) and dropped.
    pub duplicates: u64,
    /// Records starting outside the window that returned them (the inclusive `endDate`
    /// second) and dropped.
    pub outside: u64,
    /// Unique rejected records.
    pub rejects: u64,
}

impl FetchStats {
    /// The minimum for the windows used: [`FetchStats::pages_needed`]. The difference to
    /// `requests` is what overflows, early splits and probes cost.
    pub fn minimum_requests(&self) -> u64 {
        self.pages_needed
    }

    /// What no plan can beat: every window ends with a short page, so `W` windows holding `n`
    /// records (sessions and rejects) need at least `ceil((n + W) / page_size)` pages, and `W` is at least one per
    /// segment and `ceil(n / (capacity − 1))`.
    pub fn lower_bound_requests(&self) -> u64 {
        let ps = u64::from(self.page_size.max(1));
        let cap = capacity(self.page_size.max(1)).saturating_sub(1).max(1);
        let records = self.sessions + self.rejects;
        let windows = self.segments.max(records.div_ceil(cap)).max(1);
        (records + windows).div_ceil(ps)
    }

    /// `requests / lower_bound_requests` (1.0 is optimal).
    pub fn ratio(&self) -> f64 {
        self.requests as f64 / self.lower_bound_requests().max(1) as f64
    }
}

/// The result of [`fetch_day`].
#[derive(Debug, Clone)]
pub struct DayFetch<R = CallRecord<'static>> {
    /// Every session starting in the segments' claims, once each, in window order.
    pub records: Vec<R>,
    /// Rejected records of the kept windows, once each (by raw JSON).
    pub rejects: Vec<Reject>,
    pub stats: FetchStats,
    pub density: Density,
}

/// Fetches a local day: every session starting in the claims of `segments`, exactly once.
/// `fetch(window, page)` must POST the window's [`request_body`](super::request_body) with
/// [`request_query`](super::request_query)`(page_size, page)` and decode the body with
/// [`decode_page`](super::decode_page) at `window.offset_minutes`.
pub async fn fetch_day<F, Fut, E, R>(
    segments: &[DayWindow],
    expected: Option<&Density>,
    page_size: u32,
    fetch: F,
) -> Result<DayFetch<R>, WindowError<E>>
where
    F: FnMut(&CallWindow, u32) -> Fut,
    Fut: Future<Output = Result<Page<R>, E>>,
    R: Session,
    E: std::error::Error + 'static,
{
    let mut records = Vec::new();
    let mut rejects = Vec::new();
    let (stats, density) = fetch_day_with(segments, expected, page_size, fetch, |_, r, j| {
        records.extend(r);
        rejects.extend(j);
    })
    .await?;
    Ok(DayFetch {
        records,
        rejects,
        stats,
        density,
    })
}

/// [`fetch_day`] that hands each kept window's new records and rejects to `sink` as soon as
/// the window is complete, so a caller can normalize while fetching instead of holding a whole
/// day. Records passed to `sink` are final (never retracted).
pub async fn fetch_day_with<F, Fut, E, S, R>(
    segments: &[DayWindow],
    expected: Option<&Density>,
    page_size: u32,
    mut fetch: F,
    mut sink: S,
) -> Result<(FetchStats, Density), WindowError<E>>
where
    F: FnMut(&CallWindow, u32) -> Fut,
    Fut: Future<Output = Result<Page<R>, E>>,
    E: std::error::Error + 'static,
    S: FnMut(&CallWindow, Vec<R>, Vec<Reject>),
    R: Session,
{
    if page_size == 0 || page_size > MAX_PAGE_SIZE {
        return Err(WindowError::PageSize(page_size));
    }
    let day_start = segments.first().map(|s| s.claim.start).unwrap_or_default();
    let day_end = segments.last().map_or(day_start, |s| s.claim.end);
    let mut walker = Walker::new(page_size, Planner::new(expected, day_start, page_size));
    for seg in segments {
        walker.stats.segments += 1;
        walker.segment(seg, &mut fetch, &mut sink).await?;
    }
    let hours = ((day_end - day_start).num_seconds().max(0) + 3599) / 3600;
    let density = walker.density(hours);
    let s = &walker.stats;
    tracing::debug!(
        day = %segments.first().map(|s| s.day.to_string()).unwrap_or_default(),
        requests = s.requests,
        minimum = s.minimum_requests(),
        lower_bound = s.lower_bound_requests(),
        windows = s.windows,
        overflows = s.overflows,
        early_splits = s.early_splits,
        sessions = s.sessions,
        "Fetched call details for a local day."
    );
    Ok((walker.stats, density))
}

/// A window waiting to be fetched.
struct Planned {
    window: CallWindow,
    /// `numResults` of the window this one was split from.
    parent_hint: Option<u64>,
    /// Sessions the planner expected in a new window (`None` for pieces and probes, or when
    /// nothing is known yet).
    expected: Option<f64>,
    /// For a probe: sessions the full one-second window showed at that second.
    probe_min: Option<usize>,
}

enum Outcome<R> {
    Complete {
        records: Vec<R>,
        rejects: Vec<Reject>,
    },
    /// Page 10 was full (or page 0's `numResults` exceeded the capacity).
    Full {
        /// Start times of the fetched sessions inside the window.
        starts: Vec<DateTime<Utc>>,
        hint: Option<u64>,
    },
}

struct Walker {
    page_size: u32,
    cap: u64,
    target: f64,
    stats: FetchStats,
    /// Keys of the sessions kept so far, and the raw JSON of the rejects.
    seen: KeySet,
    seen_rejects: KeySet,
    hint_disproved: bool,
    hint_verified: bool,
    planner: Planner,
    hourly: BTreeMap<i64, u32>,
}

impl Walker {
    fn new(page_size: u32, planner: Planner) -> Self {
        Walker {
            page_size,
            cap: capacity(page_size),
            target: planner.target,
            stats: FetchStats {
                page_size,
                ..FetchStats::default()
            },
            seen: KeySet::default(),
            seen_rejects: KeySet::default(),
            hint_disproved: false,
            hint_verified: false,
            planner,
            hourly: BTreeMap::new(),
        }
    }

    async fn segment<F, Fut, E, S, R>(
        &mut self,
        seg: &DayWindow,
        fetch: &mut F,
        sink: &mut S,
    ) -> Result<(), WindowError<E>>
    where
        F: FnMut(&CallWindow, u32) -> Fut,
        Fut: Future<Output = Result<Page<R>, E>>,
        E: std::error::Error + 'static,
        S: FnMut(&CallWindow, Vec<R>, Vec<Reject>),
        R: Session,
    {
        let (claim, offset) = (&seg.claim, seg.offset_minutes);
        let mut cursor = claim.start;
        let mut queue: VecDeque<Planned> = VecDeque::new();
        loop {
            let p = match queue.pop_front() {
                Some(p) => p,
                None if cursor < claim.end => {
                    let end = self.planner.next_end(cursor, claim.end);
                    let window = CallWindow::new(cursor, end, offset);
                    cursor = end;
                    Planned {
                        expected: self.planner.expected(&window),
                        window,
                        parent_hint: None,
                        probe_min: None,
                    }
                }
                None => return Ok(()),
            };
            match self.fetch_window(fetch, &p).await? {
                Outcome::Complete { records, rejects } => {
                    let n = self.accept(&p, records, rejects, sink)?;
                    self.planner.observe(&p.window, n);
                }
                Outcome::Full { starts, hint } => self.split_into(&mut queue, p, &starts, hint)?,
            }
        }
    }

    /// Pages one window until a short page, or until page 10 is full.
    async fn fetch_window<F, Fut, E, R>(
        &mut self,
        fetch: &mut F,
        p: &Planned,
    ) -> Result<Outcome<R>, WindowError<E>>
    where
        F: FnMut(&CallWindow, u32) -> Fut,
        Fut: Future<Output = Result<Page<R>, E>>,
        E: std::error::Error + 'static,
        R: Session,
    {
        let w = &p.window;
        let mut records = Vec::new();
        let mut rejects = Vec::new();
        let mut hints = Vec::new();
        let mut count = 0u64;
        for page in 0..=MAX_PAGE_OFFSET {
            self.stats.requests += 1;
            let got = fetch(w, page).await.map_err(|source| WindowError::Fetch {
                window: w.clone(),
                page,
                source,
            })?;
            let n = got.records.len() as u64;
            count += n;
            hints.push(got.num_results);
            for r in got.records {
                match r {
                    Ok(rec) => records.push(rec),
                    Err(rej) => rejects.push(rej),
                }
            }
            if n < u64::from(self.page_size) {
                self.stats.pages_needed += count / u64::from(self.page_size) + 1;
                if hints.iter().flatten().any(|&h| h != count) {
                    self.hint_disproved = true;
                } else if count >= u64::from(self.page_size) && hints.iter().all(Option::is_some) {
                    self.hint_verified = true;
                }
                return Ok(Outcome::Complete { records, rejects });
            }
            let early = page == 0
                && w.seconds() > 1
                && !w.is_probe()
                && got.num_results.is_some_and(|h| self.trust_hint(h, p));
            if early {
                self.stats.early_splits += 1;
                return Ok(Outcome::Full {
                    starts: starts_in(w, &records),
                    hint: got.num_results,
                });
            }
        }
        self.stats.overflows += 1;
        // A plausible total: the same on every page and more than was fetched.
        let hint = match hints.first() {
            Some(&Some(h)) if hints.iter().all(|x| *x == Some(h)) && h > count => Some(h),
            _ => None,
        };
        Ok(Outcome::Full {
            starts: starts_in(w, &records),
            hint: hint.filter(|_| !self.hint_disproved),
        })
    }

    /// Whether page 0's `numResults = h` justifies splitting the window before paging it:
    /// over the capacity, below the parent's hint (a constant value cannot split forever), not
    /// disproved today, and, until a window has confirmed it, within 4× of what the planner
    /// expected there.
    fn trust_hint(&self, h: u64, p: &Planned) -> bool {
        let plausible = self.hint_verified
            || p.expected
                .is_none_or(|e| h as f64 <= 4.0 * e.max(self.cap as f64));
        !self.hint_disproved && h > self.cap && p.parent_hint.is_none_or(|ph| h < ph) && plausible
    }

    /// Keeps the window's records (inside it, not seen before) and hands them to `sink`;
    /// returns how many sessions start in the window.
    fn accept<E, S, R>(
        &mut self,
        p: &Planned,
        mut records: Vec<R>,
        rejects: Vec<Reject>,
        sink: &mut S,
    ) -> Result<u64, WindowError<E>>
    where
        E: std::error::Error + 'static,
        S: FnMut(&CallWindow, Vec<R>, Vec<Reject>),
        R: Session,
    {
        let w = &p.window;
        let mut inside = 0u64;
        // Filtered in place: a window's records are about a megabyte, and a second vector
        // of them was fresh memory to fault in and copy every record into.
        records.retain(|r| {
            let start = r.start();
            if !w.contains(start) {
                self.stats.outside += 1;
                return false;
            }
            inside += 1;
            if !self.seen.insert(r.key().as_bytes()) {
                self.stats.duplicates += 1;
                return false;
            }
            let hour = (start - self.planner.day_start).num_hours();
            *self.hourly.entry(hour).or_default() += 1;
            true
        });
        // Held until the rows are encoded: no more than the records kept (a `realloc` in place).
        records.shrink_to_fit();
        if let Some(min) = p.probe_min {
            if (inside as usize) < min {
                // Fewer than the full window showed at this second: `endDate` is exclusive,
                // so the full window covered only this second and it holds ≥ cap sessions.
                return Err(self.saturated(w));
            }
        }
        let rejects: Vec<Reject> = rejects
            .into_iter()
            .filter(|r| self.seen_rejects.insert(r.raw_json.as_bytes()))
            .collect();
        self.stats.windows += 1;
        self.stats.sessions += records.len() as u64;
        self.stats.rejects += rejects.len() as u64;
        sink(w, records, rejects);
        Ok(inside)
    }

    fn saturated<E: std::error::Error + 'static>(&self, w: &CallWindow) -> WindowError<E> {
        WindowError::Saturated {
            window: CallWindow::new(w.start, w.end, w.offset_minutes),
            cap: self.cap,
        }
    }

    /// Queues the pieces of a full window (or its probe) at the front, in time order.
    fn split_into<E: std::error::Error + 'static>(
        &mut self,
        queue: &mut VecDeque<Planned>,
        p: Planned,
        starts: &[DateTime<Utc>],
        hint: Option<u64>,
    ) -> Result<(), WindowError<E>> {
        let w = &p.window;
        if p.probe_min.is_some() {
            return Err(self.saturated(w));
        }
        if w.seconds() <= 1 {
            let at_start = starts.iter().filter(|&&t| t < w.end).count();
            self.stats.probes += 1;
            tracing::debug!(window = %w, "Call-details window of one second is full; probing it.");
            queue.push_front(Planned {
                window: CallWindow {
                    send_end: w.start,
                    ..w.clone()
                },
                parent_hint: None,
                expected: None,
                probe_min: Some(at_start),
            });
            return Ok(());
        }
        let pieces = self.pieces(w, starts, hint);
        tracing::debug!(window = %w, pieces = pieces.len(), hint, "Splitting a full call-details window.");
        for window in pieces.into_iter().rev() {
            queue.push_front(Planned {
                window,
                parent_hint: hint,
                expected: None,
                probe_min: None,
            });
        }
        Ok(())
    }

    /// Equal pieces of `w`, as many as the estimated total needs at the target fill (from a
    /// plausible hint, else from the fetched records' time span, but at least 2.5× the
    /// capacity: a wrong guess on the low side costs another overflow of 11 requests, one on
    /// the high side a short page per extra piece); a piece that the fetched records alone put
    /// at or over the capacity is split again.
    fn pieces(
        &self,
        w: &CallWindow,
        starts: &[DateTime<Utc>],
        hint: Option<u64>,
    ) -> Vec<CallWindow> {
        let secs = w.seconds();
        let estimate = match hint.filter(|&h| h > starts.len() as u64) {
            Some(h) => h as f64,
            None => {
                let from_span = match (starts.iter().min(), starts.iter().max()) {
                    (Some(lo), Some(hi)) => {
                        let sample_span = (*hi - *lo).num_seconds() + 1;
                        starts.len() as f64 * secs as f64 / sample_span as f64
                    }
                    _ => 0.0,
                };
                from_span.max(self.cap as f64 * 2.5)
            }
        };
        let k = ((estimate / self.target).ceil() as i64).clamp(2, MAX_SPLIT.min(secs));
        let mut out = Vec::with_capacity(k as usize);
        for i in 0..k {
            let a = w.start + Duration::seconds(secs * i / k);
            let b = w.start + Duration::seconds(secs * (i + 1) / k);
            let piece = CallWindow::new(a, b, w.offset_minutes);
            let inside: Vec<DateTime<Utc>> = starts
                .iter()
                .copied()
                .filter(|&t| piece.contains(t))
                .collect();
            if inside.len() as u64 >= self.cap && piece.seconds() > 1 {
                out.extend(self.pieces(&piece, &inside, None));
            } else {
                out.push(piece);
            }
        }
        out
    }

    fn density(&self, hours: i64) -> Density {
        let len = usize::try_from(hours).unwrap_or(0);
        let mut hourly = vec![0u32; len];
        for (&h, &n) in &self.hourly {
            if let Some(slot) = usize::try_from(h).ok().and_then(|h| hourly.get_mut(h)) {
                *slot = n;
            }
        }
        Density { hourly }
    }
}

fn starts_in<R: Session>(w: &CallWindow, records: &[R]) -> Vec<DateTime<Utc>> {
    records
        .iter()
        .map(Session::start)
        .filter(|&t| w.contains(t))
        .collect()
}
