//! A JSON object's members, read by name: for decoders of flat records with many numeric keys
//! (the WFM interval reports), where a hand-written visitor per record type would repeat one
//! `if key.is(..)` line per field. [`Members::of`] keeps every member as its exact JSON text
//! (borrowed from the body); the decoder takes the fields it maps with the typed `take_*`
//! methods, whose names match any ASCII casing (the API is inconsistent: `maxqueueHoldTimeAbandoned`
//! next to `maxQueueHoldTimeAnswered`), and [`Members::into_unmapped`] hands every member it did
//! not take to the record's `extra` (see [`super::extra`]), in the order received.
//!
//! Errors are the reject reason of the record: they name the field and show its value.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::extra::Unmapped;
use super::tape::{Kind, Tape};
use super::wire::{json_str_leaf, parse_instant, Key};

/// The members of one JSON object, in the order received; taken ones are marked, not removed
/// (removing them shifted the rest once per field read: a `Vec::retain` per `take`, 6.6% of the
/// Contact Volume benchmark's samples).
#[derive(Default)]
pub struct Members<'a> {
    items: Vec<Member<'a>>,
}

/// One member: its key, its value's exact JSON text and, when read from a [`Tape`], the
/// value's node (so a container member is read from the index, not parsed again).
struct Member<'a> {
    key: Cow<'a, str>,
    text: &'a str,
    node: Option<usize>,
    /// Taken by a `take_*` method: no longer a member for any other method.
    taken: bool,
}

impl fmt::Debug for Members<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.items.iter().filter(|m| !m.taken).map(|m| &m.key))
            .finish()
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let value = map.next_value::<&'de RawValue>()?;
                    items.push(Member {
                        key: key.0,
                        text: value.get(),
                        node: None,
                        taken: false,
                    });
                }
                Ok(Members { items })
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> Members<'a> {
    /// The members of `raw`; `Err` (a reject reason) when it is not an object.
    pub fn of(raw: &'a RawValue) -> Result<Members<'a>, String> {
        if !raw.get().starts_with('{') {
            return Err("record is not an object".into());
        }
        serde_json::from_str(raw.get()).map_err(|e| e.to_string())
    }

    /// The members of node `node` of `tape` (an index of validated text: `Tape::index_valid`,
    /// or serde_json's validation before `Tape::index`), read
    /// from the index: the same members [`Members::of`] reads from the node's text, without
    /// parsing it again. `Err` (a reject reason) when it is not an object, or when a key is not
    /// a valid string (then the reason is serde_json's, as [`Members::of`] gives it).
    pub fn of_node(tape: &Tape<'a>, node: usize) -> Result<Members<'a>, String> {
        if tape.kind(node) != Kind::Object {
            return Err("record is not an object".into());
        }
        let mut items = Vec::new();
        for child in tape.children(node) {
            let Some(key) = tape.key(child) else {
                // A key the index could not read (a lone surrogate escape): the parse says why.
                let raw: &RawValue =
                    serde_json::from_str(tape.text(node)).map_err(|e| e.to_string())?;
                return Members::of(raw);
            };
            items.push(Member {
                key,
                text: tape.text(child),
                node: Some(child),
                taken: false,
            });
        }
        Ok(Members { items })
    }

    /// Whether a member called `name` (any casing) is present, `null` included.
    pub fn has(&self, name: &str) -> bool {
        self.items
            .iter()
            .any(|m| !m.taken && m.key.eq_ignore_ascii_case(name))
    }

    /// Takes every member called `name` in any ASCII casing (each is then gone for every other
    /// method); the first one's value's JSON text. A `null` value reads as absent.
    pub fn take(&mut self, name: &str) -> Option<&'a str> {
        self.take_member(name).map(|(text, _)| text)
    }

    /// [`Members::take`] with the value's node when read from a [`Tape`].
    fn take_member(&mut self, name: &str) -> Option<(&'a str, Option<usize>)> {
        let mut found = None;
        for m in &mut self.items {
            if !m.taken && m.key.eq_ignore_ascii_case(name) {
                m.taken = true;
                found = found.or(Some((m.text, m.node)));
            }
        }
        found.filter(|(text, _)| *text != "null")
    }

    /// A string field; `Err` when present with another type.
    pub fn take_str(&mut self, name: &str) -> Result<Option<Cow<'a, str>>, String> {
        match self.take(name) {
            None => Ok(None),
            Some(text) => json_str_leaf(text)
                .map_err(|kind| format!("{name} is {kind} ({text}), expected a string")),
        }
    }

    /// An integer field: a JSON integer, or a number with no fractional part (`12.0`); `Err`
    /// for a fraction, a string or any other type.
    pub fn take_int(&mut self, name: &str) -> Result<Option<i64>, String> {
        let Some(text) = self.take(name) else {
            return Ok(None);
        };
        let bad = || format!("{name} {text} is not an integer");
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Some(n));
        }
        match text.parse::<f64>() {
            // Whole numbers in the i64 range convert exactly enough for counts and durations.
            Ok(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
            _ => Err(bad()),
        }
    }

    /// A number field (integer or fraction); `Err` for any other type.
    pub fn take_f64(&mut self, name: &str) -> Result<Option<f64>, String> {
        let Some(text) = self.take(name) else {
            return Ok(None);
        };
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() && !text.starts_with('"') => Ok(Some(f)),
            _ => Err(format!("{name} {text} is not a number")),
        }
    }

    /// A boolean field; `Err` for any other type.
    pub fn take_bool(&mut self, name: &str) -> Result<Option<bool>, String> {
        match self.take(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(format!("{name} {other} is not a boolean")),
        }
    }

    /// An ISO-8601 instant with an offset (see `parse_instant`); `Err` for anything else.
    pub fn take_instant(&mut self, name: &str) -> Result<Option<DateTime<Utc>>, String> {
        match self.take_str(name)? {
            None => Ok(None),
            Some(s) => parse_instant(&s)
                .map(Some)
                .map_err(|e| e.describe(name, &s)),
        }
    }

    /// An array field's elements; `Err` when present and not an array.
    pub fn take_array(&mut self, name: &str) -> Result<Vec<&'a RawValue>, String> {
        match self.take(name) {
            None => Ok(Vec::new()),
            Some(text) => serde_json::from_str::<Vec<&RawValue>>(text)
                .map_err(|_| format!("{name} is not an array: {text}")),
        }
    }

    /// [`Members::take_array`] for members read by [`Members::of_node`]: the elements' nodes
    /// in `tape`, read from the index.
    pub fn take_array_nodes(&mut self, name: &str, tape: &Tape<'a>) -> Result<Vec<usize>, String> {
        match self.take_member(name) {
            None => Ok(Vec::new()),
            Some((_, Some(node))) if tape.kind(node) == Kind::Array => {
                Ok(tape.children(node).collect())
            }
            Some((text, _)) => Err(format!("{name} is not an array: {text}")),
        }
    }

    /// Every member not taken, for the record's `extra`.
    pub fn into_unmapped(self) -> Unmapped<'a> {
        let mut out = Unmapped::default();
        for m in self.items.into_iter().filter(|m| !m.taken) {
            out.push_json(m.key, m.text);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> &RawValue {
        serde_json::from_str(json).expect("test JSON")
    }

    #[test]
    fn fields_are_taken_in_any_casing_and_the_rest_stays_unmapped_in_order() {
        let body = raw(
            r#"{"maxqueueHoldTimeAbandoned":180150,"queueId":"qu-1","z":[1, 2],"a":null,"MAXQUEUEHOLDTIMEABANDONED":1}"#,
        );
        let mut m = Members::of(body).expect("object");
        assert_eq!(m.take_int("maxQueueHoldTimeAbandoned"), Ok(Some(180150)));
        assert_eq!(m.take_str("QUEUEID").unwrap().as_deref(), Some("qu-1"));
        assert_eq!(m.take_int("missing"), Ok(None));
        // Taken members (every casing of the name) are gone for every later read.
        assert!(!m.has("queueid") && m.has("Z"));
        assert_eq!(m.take_int("MaxQueueHoldTimeAbandoned"), Ok(None));
        assert_eq!(format!("{m:?}"), r#"["z", "a"]"#);
        assert_eq!(m.into_unmapped().to_json(), r#"{"z":[1, 2],"a":null}"#);
    }

    #[test]
    fn values_of_the_wrong_type_name_the_field() {
        let mut m = Members::of(raw(
            r#"{"n":"12","f":1.5,"w":34035.0,"b":1,"t":"2023-06-01T09:45:00.000Z","s":3}"#,
        ))
        .expect("object");
        assert_eq!(m.take_int("n"), Err(r#"n "12" is not an integer"#.into()));
        assert_eq!(m.take_int("f"), Err("f 1.5 is not an integer".into()));
        assert_eq!(m.take_int("w"), Ok(Some(34035)));
        assert_eq!(m.take_bool("b"), Err("b 1 is not a boolean".into()));
        assert_eq!(
            m.take_instant("t"),
            Ok(Some("2023-06-01T09:45:00Z".parse().unwrap()))
        );
        assert!(m.take_str("s").unwrap_err().contains("expected a string"));
        assert!(Members::of(raw("[1]")).is_err());
    }

    #[test]
    fn numbers_read_as_fractions_too() {
        let mut m = Members::of(raw(r#"{"a":4,"b":4.25,"c":"4"}"#)).expect("object");
        assert_eq!(m.take_f64("a"), Ok(Some(4.0)));
        assert_eq!(m.take_f64("b"), Ok(Some(4.25)));
        assert!(m.take_f64("c").is_err());
    }
}
