//! JSON plumbing shared by the API modules: object keys matched case-insensitively, leaf values
//! that accept any JSON type (borrowed raw JSON in [`Scalar`], or decoded in the same pass in
//! [`Leaf`] for hot paths) so a wrong type or a bad value becomes a reject of one record instead
//! of a failed page, and the timestamp parser with its plausibility bounds.
//! Callers deserialize from a borrowed `&str`/`&[u8]` (raw values borrow from the input).

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde_json::value::RawValue;

use super::extra::Unmapped;
use super::timestamp::{scan, Scanned, Zone};

/// An object key, borrowed from the input unless it contained escapes.
pub(crate) struct Key<'a>(pub Cow<'a, str>);

impl Key<'_> {
    /// ASCII case-insensitive comparison: the API is inconsistent about key casing.
    pub fn is(&self, name: &str) -> bool {
        self.0.eq_ignore_ascii_case(name)
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A JSON value kept as its exact text, interpreted later. Used for leaves whose type the API
/// might get wrong: a wrong type then rejects one record, not the whole page.
#[derive(Clone, Copy)]
pub(crate) struct Scalar<'a>(pub &'a RawValue);

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a RawValue>::deserialize(d).map(Scalar)
    }
}

impl fmt::Debug for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.get())
    }
}

impl<'a> Scalar<'a> {
    /// The exact JSON text.
    pub fn raw(&self) -> &'a str {
        self.0.get()
    }

    /// The string value; `Ok(None)` for JSON `null`; `Err(kind)` for any other type.
    pub fn as_opt_str(&self) -> Result<Option<Cow<'a, str>>, &'static str> {
        json_str_leaf(self.0.get())
    }
}

/// A JSON leaf that serde_json has validated, read as a string: `Ok(None)` for `null`,
/// `Err(kind)` for any other type (or a string it cannot decode). Borrows the text between the
/// quotes unless it contains escapes.
pub fn json_str_leaf(raw: &str) -> Result<Option<Cow<'_, str>>, &'static str> {
    match raw.as_bytes().first() {
        Some(b'"') => {
            let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
            if inner.contains('\\') {
                serde_json::from_str::<String>(raw)
                    .map(|s| Some(Cow::Owned(s)))
                    .map_err(|_| "an invalid string")
            } else {
                Ok(Some(Cow::Borrowed(inner)))
            }
        }
        Some(b'n') => Ok(None),
        Some(b't' | b'f') => Err("a boolean"),
        Some(b'{') => Err("an object"),
        Some(b'[') => Err("an array"),
        _ => Err("a number"),
    }
}

/// A JSON leaf decoded in the same pass as its parent (the hot-path alternative to [`Scalar`]):
/// strings borrow from the input; any other type is kept re-serialized so the record can still
/// be rejected with its content.
#[derive(Debug, Clone)]
pub(crate) enum Leaf<'a> {
    Null,
    Str(Cow<'a, str>),
    /// A value of the wrong type (boxed: it is rare, and a smaller leaf makes the decoded
    /// records of a page smaller to build and move).
    Other(Box<WrongType>),
}

/// A leaf of the wrong type: what it is, and its JSON text.
#[derive(Debug, Clone)]
pub(crate) struct WrongType {
    pub kind: &'static str,
    pub json: String,
}

impl Leaf<'_> {
    fn other(kind: &'static str, json: String) -> Self {
        Leaf::Other(Box::new(WrongType { kind, json }))
    }
}

impl<'a> Leaf<'a> {
    /// JSON text of the value (strings re-escaped).
    pub fn to_json(&self) -> String {
        match self {
            Leaf::Null => "null".to_owned(),
            Leaf::Str(s) => json_string(s),
            Leaf::Other(w) => w.json.clone(),
        }
    }
}

/// A string leaf: `Ok(None)` when absent or null, `Err(reason)` naming the field otherwise.
pub(crate) fn leaf_str<'l, 'a>(
    field: &str,
    v: &'l Option<Leaf<'a>>,
) -> Result<Option<&'l str>, String> {
    match v {
        None | Some(Leaf::Null) => Ok(None),
        Some(Leaf::Str(s)) => Ok(Some(s)),
        Some(Leaf::Other(w)) => Err(format!(
            "{field} is {} ({}), expected a string",
            w.kind, w.json
        )),
    }
}

/// Visitor methods shared by [`Leaf`] and [`StatsLeaf`]: every non-object value becomes a
/// [`Leaf`], wrapped by `$wrap`.
macro_rules! leaf_scalar_visits {
    ($wrap:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Leaf::Null))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Leaf::Null))
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok($wrap(Leaf::Str(Cow::Borrowed(v))))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok($wrap(Leaf::Str(Cow::Owned(v.to_owned()))))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok($wrap(Leaf::Str(Cow::Owned(v))))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok($wrap(Leaf::other("a boolean", v.to_string())))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok($wrap(Leaf::other("a number", v.to_string())))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok($wrap(Leaf::other("a number", v.to_string())))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            let json = serde_json::Number::from_f64(v)
                .map_or_else(|| "null".to_owned(), |n| n.to_string());
            Ok($wrap(Leaf::other("a number", json)))
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            let v = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
            Ok($wrap(Leaf::other("an array", v.to_string())))
        }
    };
}

impl<'de> Deserialize<'de> for Leaf<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Leaf<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            leaf_scalar_visits!(|l| l);
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Leaf::other("an object", v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A UserStatus `stats` value: an object of which `sum` is mapped (its other keys are kept as
/// unmapped fields), or any other value.
#[derive(Debug, Clone)]
pub(crate) enum StatsLeaf<'a> {
    Object {
        sum: Option<Leaf<'a>>,
        extra: Unmapped<'a>,
    },
    NotObject(Leaf<'a>),
}

impl<'de> Deserialize<'de> for StatsLeaf<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StatsLeaf<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a stats object")
            }
            leaf_scalar_visits!(StatsLeaf::NotObject);
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut sum = None;
                let mut extra = Unmapped::default();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    if key.is("sum") {
                        sum = Some(map.next_value::<Leaf<'de>>()?);
                    } else {
                        extra.push(key.0, map.next_value()?);
                    }
                }
                Ok(StatsLeaf::Object { sum, extra })
            }
        }
        d.deserialize_any(V)
    }
}

impl StatsLeaf<'_> {
    /// JSON text (an object keeps only `sum`).
    pub fn to_json(&self) -> String {
        match self {
            StatsLeaf::Object { sum: Some(sum), .. } => {
                format!("{{\"sum\":{}}}", sum.to_json())
            }
            StatsLeaf::Object { sum: None, .. } => "{}".to_owned(),
            StatsLeaf::NotObject(l) => l.to_json(),
        }
    }
}

/// A string leaf: `Ok(None)` when absent or null, `Err(reason)` naming the field when the value
/// is not a string.
pub(crate) fn opt_str<'a>(
    field: &str,
    v: Option<Scalar<'a>>,
) -> Result<Option<Cow<'a, str>>, String> {
    opt_text(field, v.map(|s| s.raw()))
}

/// [`opt_str`] of a leaf's JSON text (for decoders that read a body's index, not serde_json's
/// raw values).
pub(crate) fn opt_text<'a>(
    field: &str,
    v: Option<&'a str>,
) -> Result<Option<Cow<'a, str>>, String> {
    match v {
        None => Ok(None),
        Some(text) => json_str_leaf(text)
            .map_err(|kind| format!("{field} is {kind} ({text}), expected a string")),
    }
}

/// Earliest instant accepted from the API (exclusive bounds reject sentinel dates such as
/// year 0, 1970-01-01 or 9999-12-31).
pub(crate) const MIN_PLAUSIBLE: &str = "2000-01-01T00:00:00Z";
/// First instant no longer accepted from the API.
pub(crate) const MAX_PLAUSIBLE: &str = "2100-01-01T00:00:00Z";

fn plausible_millis(ms: i64) -> bool {
    // 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z in Unix milliseconds.
    (946_684_800_000..4_102_444_800_000).contains(&ms)
}

/// Why a timestamp string was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InstantError {
    Unparsable,
    Implausible,
}

impl InstantError {
    pub fn describe(self, field: &str, value: &str) -> String {
        match self {
            InstantError::Unparsable => {
                format!("{field} {value:?} is not an ISO-8601 timestamp with an offset")
            }
            InstantError::Implausible => format!(
                "{field} {value:?} is outside the plausible range [{MIN_PLAUSIBLE}, {MAX_PLAUSIBLE})"
            ),
        }
    }
}

/// Parses an ISO-8601 / RFC 3339 timestamp with an offset (`Z`, `+00:00`, `+05:30`, `+0530`;
/// `T` or a space between date and time; optional fraction) into UTC. Timestamps without an
/// offset are refused (their zone is unknown), as are instants outside
/// [`MIN_PLAUSIBLE`, `MAX_PLAUSIBLE`).
pub(crate) fn parse_instant(s: &str) -> Result<DateTime<Utc>, InstantError> {
    let s = s.trim();
    let utc = match scan(s.as_bytes()).and_then(|t| zoned_instant(&t)) {
        Some(utc) => utc,
        None => parse_instant_general(s)?,
    };
    if plausible_millis(utc.timestamp_millis()) {
        Ok(utc)
    } else {
        Err(InstantError::Implausible)
    }
}

/// The instant of a scanned date-time with a zone, when the general parser would read it the
/// same (a `Z` only after `T`, a two-digit hour and seconds, as RFC 3339 has it; an offset
/// after seconds); `None` leaves the string to the general parser.
pub(crate) fn zoned_instant(t: &Scanned) -> Option<DateTime<Utc>> {
    let offset = match t.zone {
        Zone::Local => return None,
        Zone::Utc if t.t_separator && t.two_digit_hour && t.seconds => 0,
        Zone::Utc => return None,
        Zone::Offset(_) if !t.seconds => return None,
        Zone::Offset(secs) => secs,
    };
    Some((t.naive - chrono::TimeDelta::seconds(i64::from(offset))).and_utc())
}

/// [`parse_instant`] without its fast path, plausibility not checked.
fn parse_instant_general(s: &str) -> Result<DateTime<Utc>, InstantError> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%z"))
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| InstantError::Unparsable)
}

/// JSON string literal for `s` (for hand-assembled reject fragments).
pub(crate) fn json_string(s: &str) -> String {
    // Serializing a &str cannot fail.
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// Appends the JSON string literal for `s` to `out`, exactly as [`json_string`] renders it,
/// without allocating when `s` needs no escape (the usual case for keys): serde_json escapes
/// only `"`, `\\` and control characters below U+0020.
pub(crate) fn push_json_string(out: &mut String, s: &str) {
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(&json_string(s));
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar_of(json: &str) -> Result<Option<String>, &'static str> {
        let raw: &RawValue = serde_json::from_str(json).expect("test JSON");
        Scalar(raw).as_opt_str().map(|o| o.map(Cow::into_owned))
    }

    #[test]
    fn pushed_string_literals_match_serde_json() {
        let all_controls: String = (0u8..0x20).map(char::from).collect();
        for s in [
            "",
            "plain key",
            "caf\u{e9} \u{1f600}",
            "quote\"inside",
            "back\\slash",
            "tab\tnew\nline",
            "\u{7f} del and / slash",
            all_controls.as_str(),
        ] {
            let mut out = String::from("prefix,");
            push_json_string(&mut out, s);
            let want = format!(
                "prefix,{}",
                serde_json::to_string(s).expect("a str serializes")
            );
            assert_eq!(out, want, "for {s:?}");
        }
    }

    #[test]
    fn scalars_distinguish_strings_null_and_other_types() {
        assert_eq!(scalar_of(r#""Available""#), Ok(Some("Available".into())));
        assert_eq!(scalar_of(r#""""#), Ok(Some(String::new())));
        assert_eq!(scalar_of(r#""a\"b\u00e9""#), Ok(Some("a\"bé".into())));
        assert_eq!(scalar_of("null"), Ok(None));
        assert_eq!(scalar_of("12"), Err("a number"));
        assert_eq!(scalar_of("-1.5e3"), Err("a number"));
        assert_eq!(scalar_of("true"), Err("a boolean"));
        assert_eq!(scalar_of("{}"), Err("an object"));
        assert_eq!(scalar_of("[1]"), Err("an array"));
    }

    #[test]
    fn unescaped_strings_are_borrowed() {
        let raw: &RawValue = serde_json::from_str(r#""u-1""#).expect("test JSON");
        assert!(matches!(
            Scalar(raw).as_opt_str(),
            Ok(Some(Cow::Borrowed("u-1")))
        ));
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("test instant")
    }

    #[test]
    fn instants_with_offsets_become_utc() {
        assert_eq!(
            parse_instant("2022-12-12T00:00:00Z"),
            Ok(at("2022-12-12T00:00:00Z"))
        );
        assert_eq!(
            parse_instant("2022-01-06T14:07:08.185+00:00"),
            Ok(at("2022-01-06T14:07:08.185Z"))
        );
        assert_eq!(
            parse_instant("2022-01-06T19:37:08.185+05:30"),
            Ok(at("2022-01-06T14:07:08.185Z"))
        );
        assert_eq!(
            parse_instant("2022-01-06T19:37:08+0530"),
            Ok(at("2022-01-06T14:07:08Z"))
        );
        // The doc sample's spaced form is unambiguous and accepted.
        assert_eq!(
            parse_instant("2022-01-06T14: 07: 08.185+00: 00"),
            Ok(at("2022-01-06T14:07:08.185Z"))
        );
        assert_eq!(
            parse_instant("2022-01-06 09:07:08-05:00"),
            Ok(at("2022-01-06T14:07:08Z"))
        );
    }

    #[test]
    fn the_fast_path_agrees_with_the_general_parser() {
        assert_eq!(
            parse_instant("2022-12-12T15:30:00Z"),
            Ok(at("2022-12-12T15:30:00Z"))
        );
        assert_eq!(
            parse_instant("2024-02-29T23:59:59.999Z"),
            Ok(at("2024-02-29T23:59:59.999Z"))
        );
        // Not the fast form: the general parser takes it.
        assert_eq!(
            parse_instant("2022-12-12T15:30:00.12Z"),
            Ok(at("2022-12-12T15:30:00.120Z"))
        );
        for bad in [
            "2023-02-29T00:00:00Z",
            "2022-12-12T24:00:00Z",
            "2022-12-12T15:60:00Z",
            "2022-12-1XT15:30:00Z",
            "2022/12/12T15:30:00Z",
        ] {
            assert_eq!(parse_instant(bad), Err(InstantError::Unparsable), "{bad}");
        }
    }

    /// Every shape the fast path reads, and its neighbours: wherever it answers, the general
    /// parser gives the same instant.
    #[test]
    fn the_fast_path_answers_only_what_the_general_parser_answers_the_same() {
        let mut answered = 0;
        for sep in ["T", " ", "t"] {
            for hour in ["7", "07", "23"] {
                for secs in ["", ":09", ":59"] {
                    for frac in ["", ".1", ".123", ".123456789"] {
                        for zone in ["", "Z", "z", "+05:30", "-0800", "+05", "+00:00", "-23:59"] {
                            let s = format!("2024-03-10{sep}{hour}:05{secs}{frac}{zone}");
                            let fast = scan(s.as_bytes()).and_then(|t| zoned_instant(&t));
                            if let Some(fast) = fast {
                                answered += 1;
                                assert_eq!(Ok(fast), parse_instant_general(&s), "{s}");
                            }
                        }
                    }
                }
            }
        }
        assert!(answered > 100, "{answered}");
    }

    #[test]
    fn bad_or_absurd_instants_are_refused() {
        for bad in [
            "",
            "abc",
            "2022-12-12",
            "2022-12-12T00:00:00",
            "2022-13-12T00:00:00Z",
            "2022-12-12T00:00:00+25:00",
        ] {
            assert_eq!(parse_instant(bad), Err(InstantError::Unparsable), "{bad}");
        }
        for absurd in [
            "0000-01-01T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "1999-12-31T23:59:59.999Z",
            "9999-12-31T23:59:59Z",
            "2100-01-01T00:00:00Z",
        ] {
            assert_eq!(
                parse_instant(absurd),
                Err(InstantError::Implausible),
                "{absurd}"
            );
        }
        assert!(parse_instant("2000-01-01T00:00:00Z").is_ok());
        assert!(parse_instant("2099-12-31T23:59:59.999Z").is_ok());
    }
}
