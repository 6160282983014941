//! One Call Details request window ([`CallWindow`]: sessions starting in `[start, end)` at
//! one `timeZoneOffset`) and the capacity rules the planner and the fetch loop share. Pure.

use std::fmt;

use chrono::{DateTime, Utc};

use super::MAX_PAGE_OFFSET;

/// Fraction of a window's capacity (11 pages) that new windows aim for: enough headroom that
/// ordinary variation in density does not overflow a window (11 wasted requests), small
/// enough that the per-window short page stays a small share of the requests.
pub const TARGET_FILL: f64 = 0.7;
/// One request window: sessions starting in `[start, end)` at one `timeZoneOffset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// JavaScript convention (IST = −330, New York = 300 / 240).
    pub offset_minutes: i32,
    /// The instant sent as `endDate`: `end`, or `start` for the one-second probe.
    pub send_end: DateTime<Utc>,
}

impl CallWindow {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>, offset_minutes: i32) -> Self {
        CallWindow {
            start,
            end,
            offset_minutes,
            send_end: end,
        }
    }

    /// Whether a session starting at `at` belongs to this window.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }

    pub fn seconds(&self) -> i64 {
        (self.end - self.start).num_seconds()
    }

    pub(super) fn is_probe(&self) -> bool {
        self.send_end == self.start
    }
}

impl fmt::Display for CallWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}, {}) at timeZoneOffset {}",
            self.start.format("%Y-%m-%dT%H:%M:%SZ"),
            self.end.format("%Y-%m-%dT%H:%M:%SZ"),
            self.offset_minutes
        )
    }
}

/// Most sessions one window can yield: `page_size` records on each of the pages 0..=10.
pub(super) fn capacity(page_size: u32) -> u64 {
    u64::from(page_size) * u64::from(MAX_PAGE_OFFSET + 1)
}
