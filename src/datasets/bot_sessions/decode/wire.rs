//! The wire shapes of a Sessions History (`getSessions`) page, decoded with borrowed leaves:
//! the top-level object (with its `sessions` array read in the same pass, or kept raw to say
//! what is wrong with a page), a `sessions[]` record and its `tags` object, each before
//! validation. Keys of a record and of `tags` match case-insensitively, and the keys they do
//! not read are kept as unmapped ([`Unmapped`]). Validation and the batch stay in the parent
//! module.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::sources::extra::Unmapped;
use crate::sources::wire::{Key, Scalar};

/// The page's top level with its sessions array read in the same pass: what a valid page
/// decodes to (see [`decode_page_in`](super::decode_page_in)).
#[derive(serde::Deserialize)]
pub(super) struct TypedEnvelope<'a> {
    #[serde(borrow)]
    pub(super) total: Option<Scalar<'a>>,
    #[serde(borrow, rename = "moreAvailable")]
    pub(super) more_available: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) sessions: Option<Vec<&'a RawValue>>,
}

/// The page's top level: the keys paging needs, the sessions array kept raw.
#[derive(serde::Deserialize)]
pub(super) struct Envelope<'a> {
    #[serde(borrow)]
    pub(super) total: Option<Scalar<'a>>,
    #[serde(borrow, rename = "moreAvailable")]
    pub(super) more_available: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) sessions: Option<Scalar<'a>>,
}

/// One `sessions[]` record before validation: every key a column or a check reads kept as
/// a raw leaf, the others unmapped.
pub(super) struct SessionWire<'a> {
    pub(super) session_id: Option<Scalar<'a>>,
    pub(super) bot_id: Option<Scalar<'a>>,
    pub(super) user_id: Option<Scalar<'a>>,
    pub(super) channel: Option<Scalar<'a>>,
    pub(super) start_time: Option<Scalar<'a>>,
    pub(super) end_time: Option<Scalar<'a>>,
    pub(super) session_lang: Option<Scalar<'a>>,
    pub(super) session_type: Option<Scalar<'a>>,
    pub(super) containment_type: Option<Scalar<'a>>,
    pub(super) is_developer: Option<Scalar<'a>>,
    pub(super) session_status: Option<Scalar<'a>>,
    pub(super) tags: Option<Scalar<'a>>,
    pub(super) messages: Option<Scalar<'a>>,
    pub(super) tasks: Option<Scalar<'a>>,
    pub(super) extra: Unmapped<'a>,
}

impl<'de> Deserialize<'de> for SessionWire<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SessionWire<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a session object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut w = SessionWire {
                    session_id: None,
                    bot_id: None,
                    user_id: None,
                    channel: None,
                    start_time: None,
                    end_time: None,
                    session_lang: None,
                    session_type: None,
                    containment_type: None,
                    is_developer: None,
                    session_status: None,
                    tags: None,
                    messages: None,
                    tasks: None,
                    extra: Unmapped::default(),
                };
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let slot = match () {
                        _ if key.is("sessionId") => &mut w.session_id,
                        _ if key.is("userId") => &mut w.user_id,
                        _ if key.is("channel") => &mut w.channel,
                        _ if key.is("start_time") => &mut w.start_time,
                        _ if key.is("end_time") => &mut w.end_time,
                        _ if key.is("session_lang") => &mut w.session_lang,
                        _ if key.is("sessionType") => &mut w.session_type,
                        _ if key.is("containmentType") => &mut w.containment_type,
                        _ if key.is("isDeveloper") => &mut w.is_developer,
                        _ if key.is("sessionStatus") => &mut w.session_status,
                        _ if key.is("tags") => &mut w.tags,
                        _ if key.is("noOfMessagesExchanged") => &mut w.messages,
                        _ if key.is("noOfTasksExecuted") => &mut w.tasks,
                        // The row's bot is the unit's; the echo is only compared with it.
                        _ if key.is("botId") => &mut w.bot_id,
                        _ => {
                            w.extra.push(key.0, map.next_value()?);
                            continue;
                        }
                    };
                    *slot = map.next_value()?;
                }
                Ok(w)
            }
        }
        d.deserialize_map(V)
    }
}

/// `tags`: the two tag arrays kept raw, every other key unmapped.
pub(super) struct TagsWire<'a> {
    pub(super) user_tags: Option<Scalar<'a>>,
    pub(super) session_tags: Option<Scalar<'a>>,
    pub(super) extra: Unmapped<'a>,
}

impl<'de> Deserialize<'de> for TagsWire<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TagsWire<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tags object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut t = TagsWire {
                    user_tags: None,
                    session_tags: None,
                    extra: Unmapped::default(),
                };
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    if key.is("userTags") {
                        t.user_tags = map.next_value()?;
                    } else if key.is("sessionTags") {
                        t.session_tags = map.next_value()?;
                    } else {
                        t.extra.push(key.0, map.next_value()?);
                    }
                }
                Ok(t)
            }
        }
        d.deserialize_map(V)
    }
}
