//! The wire shapes of a Sessions History (`getSessions`) page before validation: the
//! top-level object, a `sessions[]` record ([`SessionFields`]) and its `tags` object
//! ([`TagsFields`]), each field kept as its exact JSON text. A valid page is read from one
//! validating index of the body ([`Tape`], [`page_of_tape`]), each record's and each `tags`
//! object's members from the index; a page that is not such an object, and a record whose keys
//! the index cannot read (a lone surrogate escape), are read by serde_json instead, which says
//! what is wrong. Both ways fill the fields through the same [`SessionFields::slot`] and
//! [`TagsFields::slot`]: keys match case-insensitively, the last of two casings wins, `null`
//! reads as absent, and the keys no slot takes are kept as unmapped ([`Unmapped`]).
//! Validation and the batch stay in the parent module.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::sources::extra::Unmapped;
use crate::sources::tape::{Kind, Tape};
use crate::sources::wire::{Key, Scalar};

/// How deep a body is indexed for [`page_of_tape`]: the root (0), `sessions` (1), a record
/// (2), its fields (3) and the members of its `tags` (4; so are the items of `session_lang`
/// and of any other array or object field, unread: `session_lang` is read from its text); the
/// tag arrays below are single nodes, read as text.
pub(super) const LEVELS: usize = 4;

/// The page's top level: the keys paging needs, the sessions array kept raw (the general
/// way, for a body [`page_of_tape`] does not read).
#[derive(serde::Deserialize)]
pub(super) struct Envelope<'a> {
    #[serde(borrow)]
    pub(super) total: Option<Scalar<'a>>,
    #[serde(borrow, rename = "moreAvailable")]
    pub(super) more_available: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) sessions: Option<Scalar<'a>>,
}

/// A page's `total` and `moreAvailable` as JSON text, and each record's text with its node
/// when the page was read from an index (its fields are read from there one record at a time,
/// [`SessionFields::of_node`]; `None`: read them with [`SessionFields::of_raw`]).
pub(super) struct PageFields<'a> {
    pub(super) total: Option<&'a str>,
    pub(super) more_available: Option<&'a str>,
    pub(super) records: Vec<(&'a str, Option<usize>)>,
}

/// A record's fields and, when its `tags` is an object, that object's members (`Err`: why
/// serde_json cannot read them).
pub(super) type Fields<'a> = (SessionFields<'a>, Option<Result<TagsFields<'a>, String>>);

/// The page of `tape` (an index of the whole body, [`LEVELS`] deep): `None` unless the root is
/// an object with one `sessions` that is an array and at most one `total` and one
/// `moreAvailable` (keys matched exactly, as the envelope's; every key readable); the caller
/// then reads the body the general way, which names the problem.
pub(super) fn page_of_tape<'a>(tape: &Tape<'a>) -> Option<PageFields<'a>> {
    let root = tape.root();
    if tape.kind(root) != Kind::Object {
        return None;
    }
    let (mut total, mut more_available, mut sessions) = (None, None, None);
    for child in tape.children(root) {
        let slot = match tape.key(child)?.as_ref() {
            "total" => &mut total,
            "moreAvailable" => &mut more_available,
            "sessions" => &mut sessions,
            _ => continue,
        };
        // A key sent twice is an error of the general way ("duplicate field").
        if slot.replace(child).is_some() {
            return None;
        }
    }
    let sessions = sessions.filter(|&n| tape.kind(n) == Kind::Array)?;
    let records = tape
        .children(sessions)
        .map(|n| (tape.text(n), Some(n)))
        .collect();
    Some(PageFields {
        total: total.map(|n| tape.text(n)),
        more_available: more_available.map(|n| tape.text(n)),
        records,
    })
}

/// One `sessions[]` record before validation: every key a column or a check reads kept as
/// its JSON text (`None`: absent or `null`), the others unmapped.
#[derive(Default)]
pub(super) struct SessionFields<'a> {
    pub(super) session_id: Option<&'a str>,
    pub(super) bot_id: Option<&'a str>,
    pub(super) user_id: Option<&'a str>,
    pub(super) channel: Option<&'a str>,
    pub(super) start_time: Option<&'a str>,
    pub(super) end_time: Option<&'a str>,
    pub(super) session_lang: Option<&'a str>,
    pub(super) session_type: Option<&'a str>,
    pub(super) containment_type: Option<&'a str>,
    pub(super) is_developer: Option<&'a str>,
    pub(super) session_status: Option<&'a str>,
    pub(super) tags: Option<&'a str>,
    pub(super) messages: Option<&'a str>,
    pub(super) tasks: Option<&'a str>,
    pub(super) extra: Unmapped<'a>,
}

impl<'a> SessionFields<'a> {
    /// The field that `key` (any casing) fills; `None` for a key kept unmapped.
    fn slot(&mut self, key: &str) -> Option<&mut Option<&'a str>> {
        let k = |name: &str| key.eq_ignore_ascii_case(name);
        Some(match () {
            _ if k("sessionId") => &mut self.session_id,
            _ if k("userId") => &mut self.user_id,
            _ if k("channel") => &mut self.channel,
            _ if k("start_time") => &mut self.start_time,
            _ if k("end_time") => &mut self.end_time,
            _ if k("session_lang") => &mut self.session_lang,
            _ if k("sessionType") => &mut self.session_type,
            _ if k("containmentType") => &mut self.containment_type,
            _ if k("isDeveloper") => &mut self.is_developer,
            _ if k("sessionStatus") => &mut self.session_status,
            _ if k("tags") => &mut self.tags,
            _ if k("noOfMessagesExchanged") => &mut self.messages,
            _ if k("noOfTasksExecuted") => &mut self.tasks,
            // The row's bot is the unit's; the echo is only compared with it.
            _ if k("botId") => &mut self.bot_id,
            _ => return None,
        })
    }

    /// The fields of record node `node` and of its `tags` object, read from the index; `None`
    /// when a key of either cannot be read from it (read the record with [`Self::of_raw`]).
    /// A record that is not an object has no fields and no tags.
    pub(super) fn of_node(tape: &Tape<'a>, node: usize) -> Option<Fields<'a>> {
        let mut fields = SessionFields::default();
        if tape.kind(node) != Kind::Object {
            return Some((fields, None));
        }
        let mut tags_node = None;
        for child in tape.children(node) {
            let key = tape.key(child)?;
            match fields.slot(&key) {
                Some(slot) => {
                    let text = tape.text(child);
                    *slot = (text != "null").then_some(text);
                    if key.eq_ignore_ascii_case("tags") {
                        tags_node = slot.map(|_| child);
                    }
                }
                None => fields.extra.push_json(key, tape.text(child)),
            }
        }
        let tags = match tags_node {
            Some(n) if tape.kind(n) == Kind::Object => {
                let mut tags = TagsFields::default();
                for child in tape.children(n) {
                    let key = tape.key(child)?;
                    let text = tape.text(child);
                    match tags.slot(&key) {
                        Some(slot) => *slot = (text != "null").then_some(text),
                        None => tags.extra.push_json(key, text),
                    }
                }
                Some(Ok(tags))
            }
            _ => None,
        };
        Some((fields, tags))
    }

    /// The fields of a record's text and of its `tags` object, read by serde_json; `Err` with
    /// its message when the record is not an object it can read.
    pub(super) fn of_raw(raw: &'a str) -> Result<Fields<'a>, String> {
        let fields: SessionFields<'a> = serde_json::from_str(raw).map_err(|e| e.to_string())?;
        let tags = match fields.tags {
            Some(t) if t.starts_with('{') => {
                Some(serde_json::from_str::<TagsFields<'a>>(t).map_err(|e| e.to_string()))
            }
            _ => None,
        };
        Ok((fields, tags))
    }
}

/// `tags`: the two tag arrays as JSON text, every other key unmapped.
#[derive(Default)]
pub(super) struct TagsFields<'a> {
    pub(super) user_tags: Option<&'a str>,
    pub(super) session_tags: Option<&'a str>,
    pub(super) extra: Unmapped<'a>,
}

impl<'a> TagsFields<'a> {
    fn slot(&mut self, key: &str) -> Option<&mut Option<&'a str>> {
        if key.eq_ignore_ascii_case("userTags") {
            Some(&mut self.user_tags)
        } else if key.eq_ignore_ascii_case("sessionTags") {
            Some(&mut self.session_tags)
        } else {
            None
        }
    }
}

/// Fills `slot`'s fields from a JSON object read by serde_json (the general way): each key
/// through `slot`, the rest unmapped.
fn visit<'de, T, A, F>(mut map: A, mut out: T, slot: F) -> Result<T, A::Error>
where
    A: MapAccess<'de>,
    F: for<'s> Fn(&'s mut T, &str) -> Option<&'s mut Option<&'de str>>,
    T: HasExtra<'de>,
{
    while let Some(key) = map.next_key::<Key<'de>>()? {
        match slot(&mut out, &key.0) {
            Some(s) => {
                *s = map
                    .next_value::<Option<&'de RawValue>>()?
                    .map(RawValue::get)
            }
            None => out.extra().push(key.0, map.next_value()?),
        }
    }
    Ok(out)
}

/// The unmapped keys of a shape [`visit`] fills.
trait HasExtra<'a> {
    fn extra(&mut self) -> &mut Unmapped<'a>;
}

impl<'a> HasExtra<'a> for SessionFields<'a> {
    fn extra(&mut self) -> &mut Unmapped<'a> {
        &mut self.extra
    }
}

impl<'a> HasExtra<'a> for TagsFields<'a> {
    fn extra(&mut self) -> &mut Unmapped<'a> {
        &mut self.extra
    }
}

impl<'de> Deserialize<'de> for SessionFields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SessionFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a session object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                visit(map, SessionFields::default(), SessionFields::slot)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for TagsFields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TagsFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tags object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                visit(map, TagsFields::default(), TagsFields::slot)
            }
        }
        d.deserialize_map(V)
    }
}
