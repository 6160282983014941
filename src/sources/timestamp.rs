//! The date-times the APIs send, read in one pass over the bytes without format strings: the
//! hot path of every decoder's time parsing (chrono's `parse_from_str` interprets its format
//! string on every call, which a profile of a Call Details backfill put at about 9% of the
//! exporter's CPU). [`scan`] accepts only the strict shapes the APIs use; the callers fall back
//! to chrono's general parsers for anything else (the documentation's spaced sample, a
//! one-digit month, a leap second), so what is accepted and rejected does not change
//! (`tests` below compare both on every shape).
//!
//! Shapes: `YYYY-MM-DD`, `T` or a space, a one- or two-digit hour, `:MM`, optionally `:SS` and
//! then optionally `.` and 1 to 9 fraction digits, then nothing, `Z`, or an offset `±HH:MM` /
//! `±HHMM`.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// The zone part of a scanned date-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zone {
    /// No zone: local time of an offset the caller knows.
    Local,
    /// `Z`.
    Utc,
    /// `±HH:MM` or `±HHMM`, in seconds east of UTC.
    Offset(i32),
}

/// A date-time in one of the strict shapes (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scanned {
    pub naive: NaiveDateTime,
    pub zone: Zone,
    /// The hour had two digits.
    pub two_digit_hour: bool,
    /// Seconds were given.
    pub seconds: bool,
    /// `T` (not a space) separated date and time.
    pub t_separator: bool,
}

/// The value of `b` as ASCII decimal digits; `None` if any byte is not a digit.
#[inline]
fn number(b: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u32::from(d);
    }
    Some(n)
}

/// Reads `b` if it is one of the strict shapes and a valid calendar date and time (seconds
/// 0–59: a leap second goes to the general parser); `None` otherwise.
pub(crate) fn scan(b: &[u8]) -> Option<Scanned> {
    if b.len() < 15 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(number(&b[0..4])?).ok()?,
        number(&b[5..7])?,
        number(&b[8..10])?,
    )?;
    let t_separator = match b[10] {
        b'T' => true,
        b' ' => false,
        _ => return None,
    };
    let mut i = 11;
    let two_digit_hour = b.get(i + 2) == Some(&b':');
    let hour_len = if two_digit_hour { 2 } else { 1 };
    let hour = number(b.get(i..i + hour_len)?)?;
    i += hour_len;
    if b.get(i) != Some(&b':') {
        return None;
    }
    let minute = number(b.get(i + 1..i + 3)?)?;
    i += 3;
    let (mut second, mut nanos, mut seconds) = (0, 0, false);
    if b.get(i) == Some(&b':') {
        second = number(b.get(i + 1..i + 3)?)?;
        seconds = true;
        i += 3;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            let mut end = start;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            let digits = end - start;
            if digits == 0 || digits > 9 {
                return None;
            }
            nanos = number(&b[start..end])? * 10u32.pow(9 - digits as u32);
            i = end;
        }
    }
    let zone = match &b[i..] {
        [] => Zone::Local,
        [b'Z'] => Zone::Utc,
        [sign @ (b'+' | b'-'), hh @ .., mm1, mm2] => {
            let hh = match hh {
                [h1, h2, b':'] | [h1, h2] => number(&[*h1, *h2])?,
                _ => return None,
            };
            let mm = number(&[*mm1, *mm2])?;
            if hh > 23 || mm > 59 {
                return None;
            }
            let secs = (hh * 3600 + mm * 60) as i32;
            Zone::Offset(if *sign == b'-' { -secs } else { secs })
        }
        _ => return None,
    };
    if second > 59 {
        return None;
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    Some(Scanned {
        naive: date.and_time(time),
        zone,
        two_digit_hour,
        seconds,
        t_separator,
    })
}

/// A zone-less date-time as chrono reads `%Y-%m-%dT%H:%M:%S%.f` or `%Y-%m-%d %H:%M:%S%.f`
/// (and, when `minutes_suffice`, `%Y-%m-%dT%H:%M` or `%Y-%m-%d %H:%M`): the strict shapes in one
/// pass, anything else through chrono. `None` when neither reads it.
pub(crate) fn parse_local(s: &str, minutes_suffice: bool) -> Option<NaiveDateTime> {
    if let Some(t) = scan(s.as_bytes()) {
        if t.zone == Zone::Local && (t.seconds || minutes_suffice) {
            return Some(t.naive);
        }
    }
    parse_local_general(s, minutes_suffice)
}

/// [`parse_local`] without its fast path.
fn parse_local_general(s: &str, minutes_suffice: bool) -> Option<NaiveDateTime> {
    const WITH_SECONDS: [&str; 2] = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"];
    const MINUTES: [&str; 2] = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"];
    let minutes: &[&str] = if minutes_suffice { &MINUTES } else { &[] };
    WITH_SECONDS
        .iter()
        .chain(minutes)
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").expect("test time")
    }

    #[test]
    fn strict_shapes_are_read_exactly() {
        let got = scan(b"2024-03-10T07:05:09.123456789+05:30").expect("scans");
        assert_eq!(got.naive, at("2024-03-10 07:05:09.123456789"));
        assert_eq!(got.zone, Zone::Offset(19_800));
        assert!(got.two_digit_hour && got.seconds && got.t_separator);
        let got = scan(b"2023-01-10 2:25").expect("scans");
        assert_eq!(got.naive, at("2023-01-10 02:25:00"));
        assert_eq!(got.zone, Zone::Local);
        assert!(!got.two_digit_hour && !got.seconds && !got.t_separator);
        assert_eq!(
            scan(b"2024-01-01T00:00:00Z").map(|s| s.zone),
            Some(Zone::Utc)
        );
        assert_eq!(
            scan(b"2024-01-01T00:00:00-0800").map(|s| s.zone),
            Some(Zone::Offset(-28_800))
        );
        assert_eq!(
            scan(b"2024-01-01T00:00:00.5").map(|s| s.naive),
            Some(at("2024-01-01 00:00:00.5"))
        );
    }

    #[test]
    fn local_times_read_as_chrono_reads_them() {
        let mut answered = 0;
        for sep in ["T", " ", "t"] {
            for hour in ["7", "07", "23", "24"] {
                for secs in ["", ":09", ":60"] {
                    for frac in ["", ".1", ".123456789", ".1234567891"] {
                        for tail in ["", "Z", " "] {
                            for minutes_suffice in [false, true] {
                                let s = format!("2024-02-29{sep}{hour}:05{secs}{frac}{tail}");
                                let fast = scan(s.as_bytes())
                                    .filter(|t| t.zone == Zone::Local)
                                    .filter(|t| t.seconds || minutes_suffice);
                                if let Some(fast) = fast {
                                    answered += 1;
                                    let general = parse_local_general(&s, minutes_suffice);
                                    assert_eq!(Some(fast.naive), general, "{s}");
                                }
                                assert_eq!(
                                    parse_local(&s, minutes_suffice),
                                    parse_local_general(&s, minutes_suffice),
                                    "{s}"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert!(answered > 20, "{answered}");
    }

    #[test]
    fn anything_else_is_left_to_the_general_parsers() {
        for s in [
            "2024-1-01T00:00:00Z",
            "2024-01-01T00:00:60Z",
            "2024-02-30T00:00:00",
            "2024-01-01T24:00:00",
            "2024-01-01t00:00:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00.1234567891",
            "2024-01-01T00:00:00+05",
            "2024-01-01T00:00:00+24:00",
            "2022-01-06T14: 07: 08.185+00: 00",
            "2024-01-01T00:00:00 ",
            "2024-01-01",
            "-",
            "",
        ] {
            assert_eq!(scan(s.as_bytes()), None, "{s}");
        }
    }
}
