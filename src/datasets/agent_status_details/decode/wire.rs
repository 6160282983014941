//! The wire shapes of an Agent Status Details page, decoded with borrowed leaves: the
//! response envelope (`hasMore`, `data`, an `errors` body), a `data[]` agent record and a
//! `status[]` span entry, each before validation. Keys match case-insensitively; the fields an
//! agent or a span does not map are kept as unmapped ([`Unmapped`]), the envelope's unknown keys
//! are skipped. Validation and normalization stay in the parent module.

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::sources::extra::Unmapped;
use crate::sources::wire::{Key, Scalar};

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
/// raw entries in the same pass).
pub(super) struct AgentWire<'a, S> {
    pub(super) user_id: Option<Scalar<'a>>,
    pub(super) agent_id: Option<Scalar<'a>>,
    pub(super) email: Option<Scalar<'a>>,
    pub(super) first_name: Option<Scalar<'a>>,
    pub(super) last_name: Option<Scalar<'a>>,
    pub(super) custom_id: Option<Scalar<'a>>,
    pub(super) status: Option<S>,
    pub(super) extra: Unmapped<'a>,
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
                let mut a = AgentWire {
                    user_id: None,
                    agent_id: None,
                    email: None,
                    first_name: None,
                    last_name: None,
                    custom_id: None,
                    status: None,
                    extra: Unmapped::default(),
                };
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let slot = if key.is("userId") {
                        &mut a.user_id
                    } else if key.is("aId") {
                        &mut a.agent_id
                    } else if key.is("email") {
                        &mut a.email
                    } else if key.is("firstName") {
                        &mut a.first_name
                    } else if key.is("lastName") {
                        &mut a.last_name
                    } else if key.is("customId") {
                        &mut a.custom_id
                    } else if key.is("status") {
                        a.status = Some(map.next_value()?);
                        continue;
                    } else {
                        a.extra.push(key.0, map.next_value()?);
                        continue;
                    };
                    *slot = Some(map.next_value()?);
                }
                Ok(a)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// One `status[]` entry before validation.
#[derive(Default)]
pub(super) struct SpanWire<'a> {
    pub(super) primary: Option<Scalar<'a>>,
    pub(super) secondary: Option<Scalar<'a>>,
    pub(super) start: Option<Scalar<'a>>,
    pub(super) end: Option<Scalar<'a>>,
    pub(super) duration: Option<Scalar<'a>>,
    pub(super) extra: Unmapped<'a>,
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
                    let slot = if key.is("primaryStatus") {
                        &mut s.primary
                    } else if key.is("secondaryStatus") {
                        &mut s.secondary
                    } else if key.is("startTime") {
                        &mut s.start
                    } else if key.is("endTime") {
                        &mut s.end
                    } else if key.is("duration") {
                        &mut s.duration
                    } else {
                        s.extra.push(key.0, map.next_value()?);
                        continue;
                    };
                    *slot = Some(map.next_value()?);
                }
                Ok(s)
            }
        }
        d.deserialize_map(V)
    }
}
