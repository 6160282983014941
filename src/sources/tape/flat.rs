//! The members of one small object read straight from its text, without an index: for a
//! decoder whose records are many and tiny (Agent Activity's updates, about a hundred bytes
//! each), where building a [`Tape`](super::Tape) per record costs two allocations and a pass
//! that a reader visiting each member once does not need.

use std::borrow::Cow;

use super::{container_end, skip_ws, string_end, value_extent};

/// The members of an object's JSON text, in order: each key (unescaped when it has escapes;
/// `None` when it is not a valid string, as a lone surrogate escape) with its value's exact
/// text. The text must be valid JSON (a value of a body [`Tape::index_valid`] or serde_json
/// accepted);
/// on anything else the iterator ends early or yields text of no particular meaning, never
/// panics.
///
/// [`Tape::index_valid`]: super::Tape::index_valid
pub struct ObjectMembers<'a> {
    text: &'a str,
    /// Where the next member (or `,` or `}`) starts.
    at: usize,
}

impl<'a> ObjectMembers<'a> {
    /// The members of `text`; `None` when it is not an object.
    pub fn of(text: &'a str) -> Option<ObjectMembers<'a>> {
        let b = text.as_bytes();
        let open = skip_ws(b, 0);
        (b.get(open) == Some(&b'{')).then_some(ObjectMembers { text, at: open + 1 })
    }
}

impl<'a> Iterator for ObjectMembers<'a> {
    type Item = (Option<Cow<'a, str>>, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.text.as_bytes();
        let mut i = skip_ws(b, self.at);
        if b.get(i) == Some(&b',') {
            i = skip_ws(b, i + 1);
        }
        if b.get(i) != Some(&b'"') {
            // `}`: the end (or text that is not JSON).
            self.at = b.len();
            return None;
        }
        let (key_end, escaped) = string_end(b, i)?;
        let colon = skip_ws(b, key_end);
        if b.get(colon) != Some(&b':') {
            self.at = b.len();
            return None;
        }
        let start = skip_ws(b, colon + 1);
        let (container, mut end) = value_extent(b, start, *b.get(start)?)?;
        if container {
            end = container_end(b, start)?;
        }
        self.at = end;
        let quoted = self.text.get(i..key_end)?;
        let key = if escaped {
            serde_json::from_str::<String>(quoted).ok().map(Cow::Owned)
        } else {
            quoted.get(1..quoted.len() - 1).map(Cow::Borrowed)
        };
        Some((key, self.text.get(start..end)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(text: &str) -> Vec<(Option<String>, &str)> {
        ObjectMembers::of(text)
            .expect("an object")
            .map(|(k, v)| (k.map(Cow::into_owned), v))
            .collect()
    }

    #[test]
    fn every_member_with_its_exact_value_text_in_order() {
        let text = r#" { "a" : 1 , "b":"x\"}" ,"c":{"d":[1,{"e":"]"}]},"e\u00e9":null,"f":[ ],"g":-1.5e3,"h":true}"#;
        assert_eq!(
            members(text),
            [
                (Some("a".into()), "1"),
                (Some("b".into()), r#""x\"}""#),
                (Some("c".into()), r#"{"d":[1,{"e":"]"}]}"#),
                (Some("eé".into()), "null"),
                (Some("f".into()), "[ ]"),
                (Some("g".into()), "-1.5e3"),
                (Some("h".into()), "true"),
            ]
        );
        assert!(members("{}").is_empty());
        assert!(members(" {\n} ").is_empty());
    }

    #[test]
    fn a_key_that_is_not_a_valid_string_reads_as_none_and_non_objects_have_no_members() {
        assert_eq!(
            members(r#"{"\ud800":1,"b":2}"#),
            [(None, "1"), (Some("b".into()), "2")]
        );
        assert!(ObjectMembers::of("[1]").is_none());
        assert!(ObjectMembers::of("\"{\"").is_none());
        assert!(ObjectMembers::of("").is_none());
        // Not JSON: the members end, nothing panics.
        for broken in ["{\"a\"", "{\"a\":", "{\"a\" 1}", "{1:2}", "{\"a\":[1,2"] {
            let _ = ObjectMembers::of(broken).map(Iterator::count);
        }
    }
}
