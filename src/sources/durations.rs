//! Parsers for the human-readable durations the report APIs send instead of numbers:
//! UserStatus `stats.sum` (`"919 sec"`), IntentRealtimeData `timeHandled` (`"13m: 8s"`) and
//! Agent Status Details `duration` (`"32:17:04"`).
//! Both are total functions: any input, however hostile, yields `Some(seconds)` or `None`, never
//! a panic or an overflow. The caller decides what `None` means (a reject for `stats.sum`, a
//! null column next to the kept raw string for `timeHandled`).

/// Parses a UserStatus `stats.sum` value into whole seconds.
///
/// Accepts `"919 sec"`, `"919sec"`, `"919 secs"`, `"919"` with surrounding whitespace and any
/// ASCII casing of the unit. Rejects signs, fractions, other units, empty digits and values that
/// do not fit in an `i64`.
pub fn parse_sec_sum(s: &str) -> Option<i64> {
    let s = s.trim();
    let digits_end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let (digits, rest) = s.split_at(digits_end);
    let unit = rest.trim_start();
    let unit_ok =
        unit.is_empty() || unit.eq_ignore_ascii_case("sec") || unit.eq_ignore_ascii_case("secs");
    if !unit_ok {
        return None;
    }
    parse_digits(digits)
}

/// Parses an IntentRealtimeData `timeHandled` value into whole seconds.
///
/// The value is a sequence of `<n>h`, `<n>m`, `<n>s` components, in that order, each at most
/// once, separated by optional `:` and whitespace: `"50s"`, `"13m: 8s"`, `"1h: 2m: 3s"`,
/// `"13m 8s"`, `"1h:2m:3s"`, `"2m"`, `"1h"`. Returns `None` for anything else (empty input,
/// a bare number, unknown units, repeated or out-of-order units, signs, a dangling separator,
/// or a total that overflows `i64`).
pub fn parse_time_handled(s: &str) -> Option<i64> {
    let bytes = s.trim().as_bytes();
    let mut pos = 0;
    let mut total: i64 = 0;
    // Index into UNITS of the next unit allowed; enforces order and uniqueness.
    let mut next_unit = 0;
    let mut components = 0;
    const UNITS: [(u8, i64); 3] = [(b'h', 3600), (b'm', 60), (b's', 1)];

    while pos < bytes.len() {
        if components > 0 {
            // Separator between components: optional ':' surrounded by optional whitespace.
            while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if pos < bytes.len() && bytes[pos] == b':' {
                pos += 1;
                while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                    pos += 1;
                }
            }
            if pos == bytes.len() {
                // A trailing separator ("13m:") is not a complete value.
                return None;
            }
        }
        let digits_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        // Slicing at ASCII-digit boundaries keeps the slice on char boundaries.
        let digits = std::str::from_utf8(&bytes[digits_start..pos]).ok()?;
        let n = parse_digits(digits)?;
        let unit = bytes.get(pos)?.to_ascii_lowercase();
        pos += 1;
        let idx = UNITS[next_unit..].iter().position(|(u, _)| *u == unit)? + next_unit;
        next_unit = idx + 1;
        total = total.checked_add(n.checked_mul(UNITS[idx].1)?)?;
        components += 1;
    }
    (components > 0).then_some(total)
}

/// Parses an Agent Status Details `duration` (`"HH:MM:SS"`) into whole seconds.
///
/// Hours are one or more ASCII digits and may exceed 24 (`"32:17:04"`); minutes and seconds
/// are exactly two digits below 60. Surrounding whitespace is ignored. Returns `None` for
/// anything else (the open-span marker `"-"`, signs, fractions, missing or extra fields) and for
/// totals that overflow `i64`.
pub fn parse_hms(s: &str) -> Option<i64> {
    let mut parts = s.trim().split(':');
    let (h, m, sec) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || m.len() != 2 || sec.len() != 2 {
        return None;
    }
    let (h, m, sec) = (parse_digits(h)?, parse_digits(m)?, parse_digits(sec)?);
    if m >= 60 || sec >= 60 {
        return None;
    }
    h.checked_mul(3600)?.checked_add(m * 60 + sec)
}

/// A non-empty run of ASCII digits as an `i64`, `None` on overflow.
fn parse_digits(digits: &str) -> Option<i64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.bytes().try_fold(0i64, |acc, b| {
        acc.checked_mul(10)?.checked_add(i64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sec_sum_accepts_the_documented_form_and_variants() {
        assert_eq!(parse_sec_sum("919 sec"), Some(919));
        assert_eq!(parse_sec_sum("565 sec"), Some(565));
        assert_eq!(parse_sec_sum("0 sec"), Some(0));
        assert_eq!(parse_sec_sum("919sec"), Some(919));
        assert_eq!(parse_sec_sum("919 secs"), Some(919));
        assert_eq!(parse_sec_sum("  919   sec  "), Some(919));
        assert_eq!(parse_sec_sum("919 SEC"), Some(919));
        assert_eq!(parse_sec_sum("919"), Some(919));
        assert_eq!(parse_sec_sum("\t1800\n"), Some(1800));
        assert_eq!(parse_sec_sum("007 sec"), Some(7));
        assert_eq!(parse_sec_sum("9223372036854775807 sec"), Some(i64::MAX));
    }

    #[test]
    fn sec_sum_rejects_everything_else() {
        for bad in [
            "",
            " ",
            "sec",
            " sec",
            "-5 sec",
            "+5 sec",
            "-0",
            "abc sec",
            "NaN",
            "NaN sec",
            "inf",
            "1.5 sec",
            "1e3 sec",
            "919 min",
            "919 s",
            "919 seconds",
            "919 sec sec",
            "9 1 sec",
            "9223372036854775808 sec",
            "99999999999999999999999 sec",
            "٣ sec", // non-ASCII digit
            "919 séc",
        ] {
            assert_eq!(parse_sec_sum(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn time_handled_accepts_documented_and_tolerated_forms() {
        assert_eq!(parse_time_handled("50s"), Some(50));
        assert_eq!(parse_time_handled("13m: 8s"), Some(13 * 60 + 8));
        assert_eq!(parse_time_handled("1h: 2m: 3s"), Some(3723));
        assert_eq!(parse_time_handled("2m"), Some(120));
        assert_eq!(parse_time_handled("1h"), Some(3600));
        assert_eq!(parse_time_handled("13m 8s"), Some(788));
        assert_eq!(parse_time_handled("1h:2m:3s"), Some(3723));
        assert_eq!(parse_time_handled("1h 3s"), Some(3603));
        assert_eq!(parse_time_handled("  0s "), Some(0));
        assert_eq!(parse_time_handled("1h : 2m"), Some(3720));
        assert_eq!(parse_time_handled("13M: 8S"), Some(788));
        assert_eq!(parse_time_handled("13m8s"), Some(788));
        assert_eq!(parse_time_handled("100h"), Some(360_000));
    }

    #[test]
    fn time_handled_rejects_garbage() {
        for bad in [
            "",
            "  ",
            "50",
            "s",
            "h: m: s",
            "-5s",
            "5s: -3s",
            "+5s",
            "5x",
            "5 s",
            "8s: 13m",
            "1m: 1m",
            "1h: 2m: 3s: 4s",
            "13m:",
            "13m: ",
            ":13m",
            "13m:: 8s",
            "1.5s",
            "5d",
            "abc",
            "NaN",
            "٣s",
            "9223372036854775807h",
            "99999999999999999999s",
        ] {
            assert_eq!(parse_time_handled(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn time_handled_detects_overflow_at_the_boundary() {
        let max_h = i64::MAX / 3600;
        assert_eq!(parse_time_handled(&format!("{max_h}h")), Some(max_h * 3600));
        assert_eq!(parse_time_handled(&format!("{}h", max_h + 1)), None);
        let rem = i64::MAX - max_h * 3600;
        assert_eq!(
            parse_time_handled(&format!("{max_h}h: {rem}s")),
            Some(i64::MAX)
        );
        assert_eq!(parse_time_handled(&format!("{max_h}h: {}s", rem + 1)), None);
    }

    #[test]
    fn hms_accepts_hours_beyond_a_day() {
        assert_eq!(parse_hms("01:07:48"), Some(4068));
        assert_eq!(parse_hms("00:00:55"), Some(55));
        assert_eq!(parse_hms("32:17:04"), Some(32 * 3600 + 17 * 60 + 4));
        assert_eq!(parse_hms("123:00:00"), Some(442_800));
        assert_eq!(parse_hms("0:05:00"), Some(300));
        assert_eq!(parse_hms(" 00:00:00\n"), Some(0));
        assert_eq!(parse_hms("2562047788015215:30:07"), Some(i64::MAX));
    }

    #[test]
    fn hms_rejects_everything_else() {
        for bad in [
            "",
            "-",
            " - ",
            "00:00",
            "00:00:00:00",
            ":00:00",
            "00:60:00",
            "00:00:60",
            "00:0:00",
            "00:00:5",
            "00:000:00",
            "-1:00:00",
            "+1:00:00",
            "1.5:00:00",
            "00:00:00.5",
            "00 :00:00",
            "aa:bb:cc",
            "٣:00:00",
            "2562047788015215:30:08",
            "99999999999999999999:00:00",
        ] {
            assert_eq!(parse_hms(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn hms_round_trips_every_canonical_value(total in 0i64..=10_000_000_000) {
            let text = format!("{:02}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60);
            proptest::prop_assert_eq!(parse_hms(&text), Some(total));
        }

        #[test]
        fn hms_is_total_on_arbitrary_text(s in "\\PC{0,24}") {
            if let Some(v) = parse_hms(&s) {
                proptest::prop_assert!(v >= 0);
            }
        }

        #[test]
        fn hms_matches_a_field_by_field_reading(h in 0u64..1_000_000, m in 0u64..100, sec in 0u64..100) {
            let expected = (m < 60 && sec < 60).then(|| (h * 3600 + m * 60 + sec) as i64);
            proptest::prop_assert_eq!(parse_hms(&format!("{h}:{m:02}:{sec:02}")), expected);
        }
    }

    #[test]
    fn parsers_do_not_panic_on_odd_bytes() {
        for s in [
            "\u{0}",
            "1\u{0}s",
            "é",
            "1é",
            "1h\u{2028}2m",
            "🙂s",
            "1🙂",
            "::",
            "s:s",
        ] {
            let _ = parse_sec_sum(s);
            let _ = parse_time_handled(s);
            let _ = parse_hms(s);
        }
    }
}
