//! Parsers for the API's human-readable durations (STUB).

/// `"919 sec"` → 919.
pub fn parse_sec_sum(_s: &str) -> Option<i64> {
    todo!()
}

/// `"50s"`, `"13m: 8s"`, `"1h: 2m: 3s"` → seconds; `None` when unparsable.
pub fn parse_time_handled(_s: &str) -> Option<i64> {
    todo!()
}
