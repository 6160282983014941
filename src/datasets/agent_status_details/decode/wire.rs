//! The wire shapes of an Agent Status Details page, decoded with borrowed leaves: the
//! response envelope (`hasMore`, `data`, an `errors` body), a `data[]` agent record and a
//! `status[]` span entry, each before validation, every leaf kept as its JSON text. Keys match
//! case-insensitively and the last of two casings wins; the fields an agent or a span does not
//! map are kept as unmapped ([`Unmapped`]), the envelope's unknown keys are skipped.
//!
//! A valid page is read from one validating index of the body ([`Tape`], [`page_of_tape`]);
//! what that does not read (an error body, an envelope of the wrong types, a key the index
//! cannot decode) is read by serde_json through the `Deserialize` impls below, which fill the
//! same fields through the same `slot` functions and say what is wrong. Validation and
//! normalization stay in the parent module.

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::sources::extra::Unmapped;
use crate::sources::tape::{Kind, Tape};
use crate::sources::wire::Key;

/// A page read from its index: `hasMore`, and each `data[]` record's text with its fields
/// (`None`: a key of the record the index cannot decode, or a `status` that is neither an
/// array nor null; read it with serde_json, which says what is wrong).
pub(super) struct PageFields<'a> {
    pub(super) has_more: bool,
    pub(super) records: Vec<(&'a str, Option<AgentWire<'a, Vec<SpanEntry<'a>>>>)>,
}

/// The page of `tape`, an index of the whole body: `None` unless the envelope is one the
/// general way reads without an error (every `hasMore` a boolean or null, every `data` an
/// array or null, at least one `data`, no `errors`/`error` key, every key readable); the
/// caller then reads the body the general way, which says what is wrong.
pub(super) fn page_of_tape<'a>(tape: &Tape<'a>) -> Option<PageFields<'a>> {
    let root = tape.root();
    if tape.kind(root) != Kind::Object {
        return None;
    }
    let (mut has_more, mut data) = (false, None);
    for child in tape.children(root) {
        let key = tape.key(child)?;
        let text = tape.text(child);
        if key.eq_ignore_ascii_case("hasMore") {
            has_more = match text {
                "true" => true,
                "false" | "null" => false,
                _ => return None,
            };
        } else if key.eq_ignore_ascii_case("data") {
            data = match tape.kind(child) {
                Kind::Array => Some(Some(child)),
                Kind::Null => Some(None),
                _ => return None,
            };
        } else if key.eq_ignore_ascii_case("errors") || key.eq_ignore_ascii_case("error") {
            return None;
        }
    }
    let records = match data? {
        None => Vec::new(),
        Some(data) => tape
            .children(data)
            .map(|n| (tape.text(n), AgentWire::of_node(tape, n)))
            .collect(),
    };
    Some(PageFields { has_more, records })
}

/// A `status[]` entry: its JSON text and, when read from the index, its fields (`None`: not
/// an object, or a key the index cannot decode; the normalizer reads the text with
/// serde_json, which says what is wrong).
#[derive(Debug, Clone)]
pub(super) struct SpanEntry<'a> {
    pub(super) raw: &'a str,
    pub(super) fields: Option<SpanWire<'a>>,
}

impl<'a> SpanEntry<'a> {
    /// An entry the normalizer reads with serde_json.
    pub(super) fn raw(raw: &'a str) -> SpanEntry<'a> {
        SpanEntry { raw, fields: None }
    }
}

/// The response envelope, its agents read as `R` (raw, or decoded in the same pass). Keys
/// match case-insensitively; `limit`, `offset` and unknown keys are skipped.
pub(super) struct Envelope<'a, R> {
    pub(super) has_more: Option<bool>,
    /// `Some(None)`: `"data": null`.
    pub(super) data: Option<Option<Vec<R>>>,
    pub(super) errors: Option<&'a RawValue>,
}

impl<'de, R: Deserialize<'de>> Deserialize<'de> for Envelope<'de, R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<R>(std::marker::PhantomData<R>);
        impl<'de, R: Deserialize<'de>> Visitor<'de> for V<R> {
            type Value = Envelope<'de, R>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an agentstatusdetails response object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut top = Envelope {
                    has_more: None,
                    data: None,
                    errors: None,
                };
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    if key.is("hasMore") {
                        top.has_more = map.next_value()?;
                    } else if key.is("data") {
                        top.data = Some(map.next_value()?);
                    } else if key.is("errors") || key.is("error") {
                        top.errors = Some(map.next_value()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(top)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// One `data[]` record before validation, its `status` read as `S` (raw, or as the array of
/// raw entries in the same pass, or its entries from the index).
#[derive(Debug)]
pub(super) struct AgentWire<'a, S> {
    pub(super) user_id: Option<&'a str>,
    pub(super) agent_id: Option<&'a str>,
    pub(super) email: Option<&'a str>,
    pub(super) first_name: Option<&'a str>,
    pub(super) last_name: Option<&'a str>,
    pub(super) custom_id: Option<&'a str>,
    pub(super) status: Option<S>,
    pub(super) extra: Unmapped<'a>,
}

impl<'a, S> AgentWire<'a, S> {
    fn new() -> Self {
        AgentWire {
            user_id: None,
            agent_id: None,
            email: None,
            first_name: None,
            last_name: None,
            custom_id: None,
            status: None,
            extra: Unmapped::default(),
        }
    }

    /// The leaf that `key` (any casing) fills; `None` for `status` and unmapped keys.
    fn slot(&mut self, key: &str) -> Option<&mut Option<&'a str>> {
        let k = |name: &str| key.eq_ignore_ascii_case(name);
        Some(match () {
            _ if k("userId") => &mut self.user_id,
            _ if k("aId") => &mut self.agent_id,
            _ if k("email") => &mut self.email,
            _ if k("firstName") => &mut self.first_name,
            _ if k("lastName") => &mut self.last_name,
            _ if k("customId") => &mut self.custom_id,
            _ => return None,
        })
    }
}

impl<'a> AgentWire<'a, Vec<SpanEntry<'a>>> {
    /// The record of node `node`, its `status` entries read from the index too; `None` when a
    /// key cannot be read from the index or the last `status` is neither an array nor null
    /// (the general way names either). A record that is not an object has no fields.
    fn of_node(tape: &Tape<'a>, node: usize) -> Option<Self> {
        let mut a = AgentWire::new();
        if tape.kind(node) != Kind::Object {
            return Some(a);
        }
        let mut status = None;
        for child in tape.children(node) {
            let key = tape.key(child)?;
            match a.slot(&key) {
                Some(slot) => *slot = Some(tape.text(child)),
                None if key.eq_ignore_ascii_case("status") => status = Some(child),
                None => a.extra.push_json(key, tape.text(child)),
            }
        }
        a.status = match status {
            None => None,
            Some(n) => match tape.kind(n) {
                Kind::Null => Some(Vec::new()),
                Kind::Array => Some(
                    tape.children(n)
                        .map(|span| SpanEntry {
                            raw: tape.text(span),
                            fields: SpanWire::of_node(tape, span),
                        })
                        .collect(),
                ),
                // Not an array: the general way names it.
                _ => return None,
            },
        };
        Some(a)
    }
}

impl<'de, S: Deserialize<'de>> Deserialize<'de> for AgentWire<'de, S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<S>(std::marker::PhantomData<S>);
        impl<'de, S: Deserialize<'de>> Visitor<'de> for V<S> {
            type Value = AgentWire<'de, S>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an agent object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut a = AgentWire::new();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    if let Some(slot) = a.slot(&key.0) {
                        *slot = Some(map.next_value::<&'de RawValue>()?.get());
                    } else if key.is("status") {
                        a.status = Some(map.next_value()?);
                    } else {
                        a.extra.push(key.0, map.next_value()?);
                    }
                }
                Ok(a)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// One `status[]` entry before validation.
#[derive(Debug, Clone, Default)]
pub(super) struct SpanWire<'a> {
    pub(super) primary: Option<&'a str>,
    pub(super) secondary: Option<&'a str>,
    pub(super) start: Option<&'a str>,
    pub(super) end: Option<&'a str>,
    pub(super) duration: Option<&'a str>,
    pub(super) extra: Unmapped<'a>,
}

impl<'a> SpanWire<'a> {
    /// The leaf that `key` (any casing) fills; `None` for an unmapped key.
    fn slot(&mut self, key: &str) -> Option<&mut Option<&'a str>> {
        let k = |name: &str| key.eq_ignore_ascii_case(name);
        Some(match () {
            _ if k("primaryStatus") => &mut self.primary,
            _ if k("secondaryStatus") => &mut self.secondary,
            _ if k("startTime") => &mut self.start,
            _ if k("endTime") => &mut self.end,
            _ if k("duration") => &mut self.duration,
            _ => return None,
        })
    }

    /// The entry of node `node`, read from the index; `None` when it is not an object or a key
    /// cannot be read from the index.
    fn of_node(tape: &Tape<'a>, node: usize) -> Option<Self> {
        if tape.kind(node) != Kind::Object {
            return None;
        }
        let mut s = SpanWire::default();
        for child in tape.children(node) {
            let key = tape.key(child)?;
            match s.slot(&key) {
                Some(slot) => *slot = Some(tape.text(child)),
                None => s.extra.push_json(key, tape.text(child)),
            }
        }
        Some(s)
    }
}

impl<'de> Deserialize<'de> for SpanWire<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SpanWire<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a status span object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut s = SpanWire::default();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    match s.slot(&key.0) {
                        Some(slot) => *slot = Some(map.next_value::<&'de RawValue>()?.get()),
                        None => s.extra.push(key.0, map.next_value()?),
                    }
                }
                Ok(s)
            }
        }
        d.deserialize_map(V)
    }
}
