//! One object of a Call Details record read by its level's keys ([`Obj`]): the reads the
//! decoder (`wire`) makes of a session, `customerinfo`, `campaigninfo`, a destination or an
//! agent leg, each turning a wrong type or an unparsable value into the reason of a reject.
//!
//! Keys match in any casing. A key's value is the member with the exact spelling when present
//! and not null, else the first non-null member whose key matches case-insensitively; `null`
//! counts as absent. Building the view reads the object's members once from the [`Tape`] and
//! maps each key to its [`Level`] variant, so a read costs no key comparison.

use std::borrow::Cow;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};

use super::keys::Level;
use super::record::StrList;
use super::wire::parse_wire_time;
use crate::sources::extra::Unmapped;
use crate::sources::tape::{Children, Kind, Tape};

/// More keys than any level has (the session's 31; checked by a test).
const MAX_KEYS: usize = 32;
const ABSENT: u32 = u32::MAX;

/// A string leaf's value, as `sources::wire::Scalar` reads it: `Ok(None)` for `null`,
/// `Err(kind)` for another type (or a string serde_json cannot decode).
pub(super) fn scalar_str(json: &str) -> Result<Option<Cow<'_, str>>, &'static str> {
    crate::sources::wire::json_str_leaf(json)
}

/// An integer leaf: a JSON integer (or a float with no fraction), or a string of digits;
/// `""` and `null` are `None`.
pub(super) fn parse_int(json: &str) -> Result<Option<i64>, &'static str> {
    match json.as_bytes().first() {
        Some(b'"') => {
            let s = scalar_str(json)?.unwrap_or_default();
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            s.parse::<i64>()
                .map(Some)
                .map_err(|_| "a non-numeric string")
        }
        Some(b'n') => Ok(None),
        Some(b'-' | b'0'..=b'9') => {
            // The usual case, a plain integer in range, without building a serde_json Number.
            let digits = json.strip_prefix('-').unwrap_or(json);
            if digits.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(i) = json.parse::<i64>() {
                    return Ok(Some(i));
                }
            }
            let n: serde_json::Number = serde_json::from_str(json).map_err(|_| "a bad number")?;
            if let Some(i) = n.as_i64() {
                return Ok(Some(i));
            }
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                _ => Err("not an integer"),
            }
        }
        _ => Err(kind_of(json)),
    }
}

/// The JSON type of a value's text, as the decoder's messages name it.
pub(super) fn kind_of(json: &str) -> &'static str {
    match json.as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        _ => "a number",
    }
}

/// The variant of `L` whose name is `key` in any casing.
fn find<L: Level>(key: &str) -> Option<usize> {
    let b = key.as_bytes();
    let mut lower = [0u8; 32];
    if b.len() > lower.len() {
        return None;
    }
    for (l, c) in lower.iter_mut().zip(b) {
        *l = c.to_ascii_lowercase();
    }
    L::find(&lower[..b.len()])
}

/// One object of the tape, read by the keys of level `L`.
pub(super) struct Obj<'t, 'a, L: Level> {
    tape: &'t Tape<'a>,
    node: usize,
    /// Per key of the level: the member its reads use, or [`ABSENT`].
    chosen: [u32; MAX_KEYS],
    /// Per key of the level (bit = index): whether some member has it, whatever its value.
    present: u32,
    /// The members whose key is none of the level's, by position (bit `i` = member `i`; bit 63
    /// = some member at position 63 or later, which [`Obj::unmapped`] checks again).
    unmapped_at: u64,
    level: PhantomData<L>,
}

impl<'t, 'a, L: Level> Obj<'t, 'a, L> {
    /// The object at `node`; `Err(kind)` when it is not one ("an invalid object" when a key is
    /// not a valid string).
    pub fn view(tape: &'t Tape<'a>, node: usize) -> Result<Self, &'static str> {
        let kind = tape.kind(node);
        if kind != Kind::Object {
            return Err(kind.describe());
        }
        let mut o = Obj {
            tape,
            node,
            chosen: [ABSENT; MAX_KEYS],
            present: 0,
            unmapped_at: 0,
            level: PhantomData,
        };
        // Set when the chosen member of a key has its exact spelling.
        let mut exact = 0u32;
        for (i, c) in tape.children(node).enumerate() {
            let key = tape.key(c).ok_or("an invalid object")?;
            let Some(k) = find::<L>(&key) else {
                o.unmapped_at |= 1u64 << i.min(63);
                continue;
            };
            let bit = 1u32 << k;
            o.present |= bit;
            if exact & bit != 0 || tape.kind(c) == Kind::Null {
                continue;
            }
            if key == L::NAMES[k] {
                exact |= bit;
                o.chosen[k] = c as u32;
            } else if o.chosen[k] == ABSENT {
                o.chosen[k] = c as u32;
            }
        }
        Ok(o)
    }

    /// The node of `key`'s value (absent and null are `None`).
    pub fn get(&self, key: L) -> Option<usize> {
        match self.chosen[key.index()] {
            ABSENT => None,
            c => Some(c as usize),
        }
    }

    /// The exact JSON text of `key`'s value.
    pub fn raw(&self, key: L) -> Option<&'a str> {
        self.get(key).map(|c| self.tape.text(c))
    }

    /// Whether the key is present (any casing, any value).
    pub fn has(&self, key: L) -> bool {
        self.present & (1u32 << key.index()) != 0
    }

    /// The spelling of the key [`Obj::get`] reads `key` from.
    pub fn key_of(&self, key: L) -> Option<Cow<'a, str>> {
        self.get(key).and_then(|c| self.tape.key(c))
    }

    /// Every member whose key is none of the level's (in any casing), in order.
    pub fn unmapped(&self) -> Unmapped<'a> {
        let mut out = Unmapped::default();
        // Only the members the view found unmapped are read again (keys are decoded and
        // matched once per member otherwise: 10% of decoding a page with unknown fields).
        for (i, c) in self.tape.children(self.node).enumerate() {
            if i < 63 && self.unmapped_at >> i == 0 {
                break;
            }
            if self.unmapped_at & (1u64 << i.min(63)) == 0 {
                continue;
            }
            if let Some(key) = self.tape.key(c) {
                if i < 63 || find::<L>(&key).is_none() {
                    out.push_json(key, self.tape.text(c));
                }
            }
        }
        out
    }

    /// A string, borrowed from the body unless it has escapes.
    pub fn string(&self, key: L) -> Result<Option<Cow<'a, str>>, String> {
        match self.raw(key) {
            None => Ok(None),
            Some(raw) => scalar_str(raw)
                .map_err(|kind| format!("{} is {kind} ({raw}), expected a string", key.name())),
        }
    }

    /// For keys sent in two casings (`Reason`/`reason`): the first non-empty string among
    /// every spelling, else `""` if one was sent.
    pub fn first_nonempty_string(&self, key: L) -> Result<Option<Cow<'a, str>>, String> {
        if !self.has(key) {
            return Ok(None);
        }
        let mut empty = None;
        for c in self.tape.children(self.node) {
            let Some(k) = self.tape.key(c) else {
                continue;
            };
            if !k.eq_ignore_ascii_case(key.name()) {
                continue;
            }
            let raw = self.tape.text(c);
            match scalar_str(raw) {
                Ok(Some(s)) if !s.is_empty() => return Ok(Some(s)),
                Ok(Some(_)) => empty = Some(Cow::Borrowed("")),
                Ok(None) => {}
                Err(kind) => return Err(format!("{k} is {kind} ({raw}), expected a string")),
            }
        }
        Ok(empty)
    }

    pub fn int(&self, key: L) -> Result<Option<i64>, String> {
        match self.raw(key) {
            None => Ok(None),
            Some(raw) => parse_int(raw)
                .map_err(|kind| format!("{} is {kind} ({raw}), expected an integer", key.name())),
        }
    }

    /// A duration in whole seconds: an integer ≥ 0.
    pub fn seconds(&self, key: L) -> Result<Option<i64>, String> {
        match self.int(key)? {
            Some(n) if n < 0 => Err(format!("{} is negative ({n})", key.name())),
            other => Ok(other),
        }
    }

    /// A boolean sent as `true`/`false` or as `"YES"`/`"NO"`/`"true"`/`"false"` (any case);
    /// `""` is `None`.
    pub fn boolish(&self, key: L) -> Result<Option<bool>, String> {
        let Some(raw) = self.raw(key) else {
            return Ok(None);
        };
        let bad = || format!("{} is {raw}, expected a boolean or YES/NO", key.name());
        match raw {
            "true" => return Ok(Some(true)),
            "false" => return Ok(Some(false)),
            _ => {}
        }
        let s = scalar_str(raw).map_err(|_| bad())?;
        match s.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(v)
                if ["yes", "true", "y"]
                    .iter()
                    .any(|t| v.eq_ignore_ascii_case(t)) =>
            {
                Ok(Some(true))
            }
            Some(v)
                if ["no", "false", "n"]
                    .iter()
                    .any(|t| v.eq_ignore_ascii_case(t)) =>
            {
                Ok(Some(false))
            }
            Some(_) => Err(bad()),
        }
    }

    pub fn time(&self, key: L, offset: i32) -> Result<Option<DateTime<Utc>>, String> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) => parse_wire_time(&s, offset).map_err(|e| format!("{} {e}", key.name())),
        }
    }

    /// The elements of an array value.
    pub fn array(&self, key: L) -> Result<Option<Children<'t, 'a>>, String> {
        let Some(c) = self.get(key) else {
            return Ok(None);
        };
        let kind = self.tape.kind(c);
        if kind != Kind::Array {
            return Err(format!(
                "{} is {} ({}), expected an array",
                key.name(),
                kind.describe(),
                self.tape.text(c)
            ));
        }
        Ok(Some(self.tape.children(c)))
    }

    /// A list of strings: an array whose every element is a string, kept as its text.
    pub fn string_list(&self, key: L) -> Result<Option<StrList<'a>>, String> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        let name = key.name();
        for (i, c) in items.enumerate() {
            match scalar_str(self.tape.text(c)) {
                Ok(Some(_)) => {}
                Ok(None) => return Err(format!("{name}[{i}] is null, expected a string")),
                Err(kind) => return Err(format!("{name}[{i}] is {kind}, expected a string")),
            }
        }
        Ok(self.raw(key).map(StrList::from_checked_json))
    }

    /// One bare string, kept as a list of one; `None` when absent or null.
    pub fn string_as_list(&self, key: L) -> Result<Option<StrList<'a>>, String> {
        Ok(match self.string(key)? {
            Some(_) => self.raw(key).map(StrList::from_checked_json),
            None => None,
        })
    }

    /// An object value, read by the keys of level `M`.
    pub fn object<M: Level>(&self, key: L) -> Result<Option<Obj<'t, 'a, M>>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(c) => Obj::view(self.tape, c)
                .map(Some)
                .map_err(|kind| format!("{} is {kind}, expected an object", key.name())),
        }
    }

    /// The value's exact JSON text (any type); `None` when absent or null.
    pub fn json_text(&self, key: L) -> Option<Cow<'a, str>> {
        self.raw(key).map(Cow::Borrowed)
    }

    /// The tape the object is read from.
    pub fn tape(&self) -> &'t Tape<'a> {
        self.tape
    }
}

#[cfg(test)]
mod tests {
    use super::super::keys::{A, C, K, Q, S};
    use super::*;

    #[test]
    fn every_level_fits_the_key_slots() {
        for names in [
            <S as Level>::NAMES,
            <C as Level>::NAMES,
            <K as Level>::NAMES,
            <Q as Level>::NAMES,
            <A as Level>::NAMES,
        ] {
            assert!(names.len() <= MAX_KEYS);
            assert!(names.iter().all(|n| n.len() <= 32));
        }
    }

    #[test]
    fn the_exact_spelling_wins_then_the_first_non_null_in_any_casing() {
        let text = r#"{"CHANNEL": "upper", "channel": null, "Channel": "mixed", "botid": "b1",
                       "BOTID": "b2", "botId": "exact", "userId": null, "odd": 1}"#;
        let t = Tape::index(text).expect("JSON");
        let o = Obj::<S>::view(&t, t.root()).expect("object");
        assert_eq!(o.string(S::Channel), Ok(Some("upper".into())));
        assert_eq!(o.string(S::BotId), Ok(Some("exact".into())));
        assert_eq!(o.string(S::UserId), Ok(None));
        assert!(o.has(S::UserId));
        assert!(!o.has(S::OrgId));
        assert_eq!(o.key_of(S::Channel).as_deref(), Some("CHANNEL"));
        assert_eq!(o.unmapped().to_json(), r#"{"odd":1}"#);
    }

    #[test]
    fn unmapped_members_are_kept_in_order_past_the_64th_member() {
        // Members 0..70 unknown but for a mapped key at 10 and at 66 (past the position mask).
        let members: Vec<String> = (0..70)
            .map(|i| match i {
                10 => r#""channel": "voice""#.to_string(),
                66 => r#""BOTID": "b""#.to_string(),
                _ => format!(r#""x{i}": {i}"#),
            })
            .collect();
        let text = format!("{{{}}}", members.join(", "));
        let t = Tape::index(&text).expect("JSON");
        let o = Obj::<S>::view(&t, t.root()).expect("object");
        let expected: Vec<String> = (0..70)
            .filter(|i| ![10, 66].contains(i))
            .map(|i| format!(r#""x{i}":{i}"#))
            .collect();
        assert_eq!(
            o.unmapped().to_json(),
            format!("{{{}}}", expected.join(","))
        );
        assert_eq!(o.string(S::BotId), Ok(Some("b".into())));
        let mapped_only = Tape::index(r#"{"channel": "voice", "botId": "b"}"#).expect("JSON");
        let o = Obj::<S>::view(&mapped_only, mapped_only.root()).expect("object");
        assert!(o.unmapped().is_empty());
    }

    #[test]
    fn ints_read_integers_integral_floats_and_digit_strings() {
        assert_eq!(parse_int("42"), Ok(Some(42)));
        assert_eq!(parse_int("-7"), Ok(Some(-7)));
        assert_eq!(parse_int("9.0"), Ok(Some(9)));
        assert_eq!(parse_int("1e3"), Ok(Some(1000)));
        assert_eq!(parse_int("\" 12 \""), Ok(Some(12)));
        assert_eq!(parse_int("\"\""), Ok(None));
        assert_eq!(parse_int("null"), Ok(None));
        assert_eq!(parse_int("9.5"), Err("not an integer"));
        assert_eq!(parse_int("99999999999999999999"), Err("not an integer"));
        assert_eq!(parse_int("\"five\""), Err("a non-numeric string"));
        assert_eq!(parse_int("true"), Err("a boolean"));
    }

    #[test]
    fn a_key_serde_json_cannot_read_makes_its_object_invalid_and_rejects_the_record() {
        // A lone surrogate passes serde_json's validation of raw values but not its string
        // decoding: the object holding the key is invalid, as it was when each level was parsed
        // by serde_json.
        let body = r#"{"data": [
            {"sessionId": "a", "sessionStartTime": "2025-01-01T00:00:00",
             "customerinfo": {"\ud800": 1}},
            {"sessionId": "b", "sessionStartTime": "2025-01-01T00:00:00", "\udc00x": 2}]}"#;
        let page = super::super::wire::decode_page(body.as_bytes(), 0).expect("decodable");
        let reasons: Vec<String> = page
            .records
            .iter()
            .map(|r| r.as_ref().expect_err("reject").reason.clone())
            .collect();
        assert_eq!(
            reasons,
            vec![
                "data[0]: session a: customerinfo is an invalid object, expected an object",
                "data[1]: record is an invalid object, expected an object",
            ]
        );
    }
}
