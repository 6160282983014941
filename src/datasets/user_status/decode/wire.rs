//! The wire shapes of a UserStatus page, decoded in one pass with borrowed leaves: the
//! top-level object (the envelope or the legacy object keyed by user id), an agent, a
//! `timeInterval[]` bucket and a `status[]` entry. Keys match case-insensitively; every key a
//! shape does not read is kept as an unmapped field ([`Unmapped`]).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::sources::extra::Unmapped;
use crate::sources::wire::{Key, Leaf, Scalar, StatsLeaf};

/// The top-level object, before deciding between the envelope and the legacy shape. `T` is
/// the agent representation: typed (fast path) or raw (slow path).
pub(super) struct TopLevel<'a, T> {
    pub(super) envelope: bool,
    pub(super) has_more: Option<bool>,
    /// `Some(None)`: `"data": null`.
    pub(super) data: Option<Option<Vec<T>>>,
    pub(super) others: Vec<(Key<'a>, T)>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for TopLevel<'de, T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = TopLevel<'de, T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a UserStatus response object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut top = TopLevel {
                    envelope: false,
                    has_more: None,
                    data: None,
                    others: Vec::new(),
                };
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    if key.is("hasMore") {
                        top.envelope = true;
                        top.has_more = map.next_value()?;
                    } else if key.is("data") {
                        top.envelope = true;
                        top.data = Some(map.next_value()?);
                    } else if key.is("limit") || key.is("offset") {
                        top.envelope = true;
                        map.next_value::<IgnoredAny>()?;
                    } else {
                        top.others.push((key, map.next_value()?));
                    }
                }
                Ok(top)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

pub(super) struct AgentWire<'a> {
    pub(super) user_id: Option<Scalar<'a>>,
    pub(super) email: Option<Scalar<'a>>,
    pub(super) email_id: Option<Scalar<'a>>,
    pub(super) first_name: Option<Scalar<'a>>,
    pub(super) last_name: Option<Scalar<'a>>,
    pub(super) custom_id: Option<Scalar<'a>>,
    pub(super) buckets: Vec<BucketWire<'a>>,
    pub(super) extra: Unmapped<'a>,
}

impl<'de> Deserialize<'de> for AgentWire<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AgentWire<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an agent object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut a = AgentWire {
                    user_id: None,
                    email: None,
                    email_id: None,
                    first_name: None,
                    last_name: None,
                    custom_id: None,
                    buckets: Vec::new(),
                    extra: Unmapped::default(),
                };
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    if key.is("timeInterval") {
                        let buckets: Option<Vec<BucketWire<'de>>> = map.next_value()?;
                        a.buckets = buckets.unwrap_or_default();
                    } else if key.is("userId") {
                        a.user_id = map.next_value()?;
                    } else if key.is("email") {
                        a.email = map.next_value()?;
                    } else if key.is("emailId") {
                        a.email_id = map.next_value()?;
                    } else if key.is("firstName") {
                        a.first_name = map.next_value()?;
                    } else if key.is("lastName") {
                        a.last_name = map.next_value()?;
                    } else if key.is("customId") {
                        a.custom_id = map.next_value()?;
                    } else {
                        a.extra.push(key.0, map.next_value()?);
                    }
                }
                Ok(a)
            }
        }
        d.deserialize_map(V)
    }
}

/// One `timeInterval[]` bucket, leaves not yet validated.
#[derive(Debug, Clone)]
pub(super) struct BucketWire<'a> {
    pub(super) start: Option<Leaf<'a>>,
    pub(super) end: Option<Leaf<'a>>,
    pub(super) status: Vec<StatusWire<'a>>,
    pub(super) extra: Unmapped<'a>,
}

impl<'de> Deserialize<'de> for BucketWire<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BucketWire<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a timeInterval bucket object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut b = BucketWire {
                    start: None,
                    end: None,
                    status: Vec::new(),
                    extra: Unmapped::default(),
                };
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    if key.is("status") {
                        let status: Option<Vec<StatusWire<'de>>> = map.next_value()?;
                        b.status = status.unwrap_or_default();
                    } else if key.is("startTime") {
                        b.start = map.next_value()?;
                    } else if key.is("endTime") {
                        b.end = map.next_value()?;
                    } else {
                        b.extra.push(key.0, map.next_value()?);
                    }
                }
                Ok(b)
            }
        }
        d.deserialize_map(V)
    }
}

/// One `status[]` entry, leaves not yet validated.
#[derive(Debug, Clone)]
pub(super) struct StatusWire<'a> {
    pub(super) metric: Option<Leaf<'a>>,
    pub(super) value: Option<Leaf<'a>>,
    pub(super) stats: Option<StatsLeaf<'a>>,
    /// The entry's fields no column maps, with those of its `stats` object nested.
    pub(super) extra: Unmapped<'a>,
}

impl<'de> Deserialize<'de> for StatusWire<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StatusWire<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a status entry object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut s = StatusWire {
                    metric: None,
                    value: None,
                    stats: None,
                    extra: Unmapped::default(),
                };
                let mut stats_key = Cow::Borrowed("stats");
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    if key.is("metric") {
                        s.metric = map.next_value()?;
                    } else if key.is("value") {
                        s.value = map.next_value()?;
                    } else if key.is("stats") {
                        s.stats = map.next_value()?;
                        stats_key = key.0;
                    } else {
                        s.extra.push(key.0, map.next_value()?);
                    }
                }
                if let Some(StatsLeaf::Object { extra, .. }) = &mut s.stats {
                    s.extra.push_nested(stats_key, std::mem::take(extra));
                }
                Ok(s)
            }
        }
        d.deserialize_map(V)
    }
}
