//! Expected session density of a day and the sizing of new windows from it. [`Density`] is the
//! hourly profile of a fetched day, which the caller persists and passes to the next
//! [`fetch_day`](super::fetch_day); [`Planner`] scales it by what the day shows so far and
//! picks where each new window ends so it holds about [`TARGET_FILL`] of the capacity.

use chrono::{DateTime, Duration, Utc};

use super::call_window::{capacity, CallWindow, TARGET_FILL};
use super::MAX_PAGE_SIZE;

/// Sessions per hour of a local day, counted from its first instant (23, 24 or 25 entries,
/// or fewer for a partial day). Persist the latest day's value and pass it to the next
/// [`fetch_day`](super::fetch_day): a few dozen integers.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Density {
    pub hourly: Vec<u32>,
}

impl Density {
    pub fn sessions(&self) -> u64 {
        self.hourly.iter().map(|&n| u64::from(n)).sum()
    }

    /// Expected sessions per hour at hour `h` of the day: the profile's value, or its mean
    /// beyond its end.
    pub(super) fn rate(&self, h: i64) -> f64 {
        match usize::try_from(h).ok().and_then(|h| self.hourly.get(h)) {
            Some(&n) => f64::from(n),
            None if self.hourly.is_empty() => 0.0,
            None => self.sessions() as f64 / self.hourly.len() as f64,
        }
    }
}

/// Sizes new windows from the expected density: the profile scaled by how today's kept
/// windows compare with it, or without a profile today's mean rate so far.
pub(super) struct Planner {
    profile: Option<Density>,
    pub(super) day_start: DateTime<Utc>,
    pub(super) target: f64,
    cap: f64,
    /// Sessions in kept windows, and the profile's integral over them (hours without one).
    seen: f64,
    seen_expected: f64,
}

impl Planner {
    pub(super) fn new(
        expected: Option<&Density>,
        day_start: DateTime<Utc>,
        page_size: u32,
    ) -> Self {
        let cap = capacity(page_size.clamp(1, MAX_PAGE_SIZE)) as f64;
        Planner {
            profile: expected.filter(|d| d.sessions() > 0).cloned(),
            day_start,
            target: cap * TARGET_FILL,
            cap,
            seen: 0.0,
            seen_expected: 0.0,
        }
    }

    fn hour_of(&self, t: DateTime<Utc>) -> i64 {
        (t - self.day_start).num_seconds().div_euclid(3600)
    }

    fn base(&self, hour: i64) -> f64 {
        self.profile.as_ref().map_or(1.0, |p| p.rate(hour))
    }

    /// The base rate integrated over `[a, b)`: sessions (profile) or hours (none).
    fn integral(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
        let mut acc = 0.0;
        let mut t = a;
        while t < b {
            let h = self.hour_of(t);
            let e = (self.day_start + Duration::hours(h + 1)).min(b);
            acc += self.base(h) * (e - t).num_seconds() as f64 / 3600.0;
            t = e;
        }
        acc
    }

    /// Today's sessions per unit of the base; `None` before anything is known.
    fn scale(&self) -> Option<f64> {
        // Pseudo-sessions that keep the profile's scale near 1 until a few windows are seen.
        let prior = self.target / 2.0;
        match self.profile {
            Some(_) => Some((self.seen + prior) / (self.seen_expected + prior)),
            None if self.seen_expected > 0.0 => Some(self.seen / self.seen_expected),
            None => None,
        }
    }

    /// Sessions expected in `w`, once anything is known.
    pub(super) fn expected(&self, w: &CallWindow) -> Option<f64> {
        self.scale().map(|s| s * self.integral(w.start, w.end))
    }

    pub(super) fn observe(&mut self, w: &CallWindow, sessions: u64) {
        self.seen += sessions as f64;
        self.seen_expected += self.integral(w.start, w.end);
    }

    /// End of a new window from `cursor`: where the expected count reaches the target, or
    /// the segment end when the rest is expected to fit (no sliver windows).
    pub(super) fn next_end(&self, cursor: DateTime<Utc>, seg_end: DateTime<Utc>) -> DateTime<Utc> {
        let Some(scale) = self.scale() else {
            return seg_end;
        };
        let whole = scale * self.integral(cursor, seg_end);
        if whole <= self.target {
            return seg_end;
        }
        let mut acc = 0.0;
        let mut t = cursor;
        while t < seg_end {
            let h = self.hour_of(t);
            let hour_end = (self.day_start + Duration::hours(h + 1)).min(seg_end);
            let rate = scale * self.base(h);
            let chunk = rate * (hour_end - t).num_seconds() as f64 / 3600.0;
            if rate > 0.0 && acc + chunk >= self.target {
                let secs = ((self.target - acc) / rate * 3600.0).floor() as i64;
                let end = (t + Duration::seconds(secs.max(1))).min(seg_end);
                let rest = scale * self.integral(end, seg_end);
                if rest < 0.25 * self.target && whole <= 0.9 * self.cap {
                    return seg_end;
                }
                return end;
            }
            acc += chunk;
            t = hour_end;
        }
        seg_end
    }
}
