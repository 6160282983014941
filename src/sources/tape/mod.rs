//! A one-pass index ("tape") of a JSON text: every value becomes one [`Node`] holding its
//! exact text's span and where its descendants end; a container's descendants follow it, so a
//! value's members are found without reading its bytes again. The Call Details decoder indexes
//! a page once and reads its envelope and every level of every record (session,
//! `customerinfo`, `destinations`, legs) from the index; the Agent Performance decoder reads
//! its agents, intervals and queues the same way
//! ([`crate::sources::members::Members::of_node`]), and so do Agent Status Details (agents and
//! their spans) and Bot Sessions (sessions and their `tags`). Agent Activity indexes its body
//! down to the updates and reads each small update with [`ObjectMembers`] (`flat.rs`), which
//! walks one object's members without building an index. Before, each level was parsed again into
//! raw values, so the bytes of an agent leg were walked five times; a profile of the benchmark
//! put that re-walking (serde_json's `ignore_value`/`skip_to_escape`) at about 15% of the
//! export's CPU.
//!
//! **Size.** The index lives beside the text it indexes, so a node is four `u32`s (16 bytes):
//! its span, where its descendants end and where its key opens; what can be read again from
//! the text is not stored: a value's [`Kind`] is its first byte, a member's key is the string
//! from that offset to the `:` before the value, unescaped when read ([`Tape::key`]). A node of
//! `usize` spans with its key held as a `Cow` took 56 bytes, about three bytes of index per
//! byte of an Agent Performance body (README, "Performance"). Texts of 2 GiB or more are not
//! indexed.
//!
//! **Two scans, one index.** [`Tape::index_valid`] checks every byte against the JSON grammar
//! as it indexes (`valid.rs`): a decoder that calls it needs no validation pass of its own
//! (Call Details reads a page's envelope and records from one such index; it used to let
//! serde_json validate the body first, a second walk of every byte). [`Tape::index`] trusts
//! its caller to pass text serde_json accepted and relies on that for brevity, never for
//! memory safety: on text that is not valid JSON it returns `None` or an index of no
//! particular meaning, never panics. Both keep an explicit stack, so a deeply nested value
//! (serde_json's raw values have no depth limit) cannot overflow the thread's stack.

use std::borrow::Cow;

mod flat;
mod valid;

pub use flat::ObjectMembers;
pub(crate) use valid::string_end;

/// The JSON type of a value, told by its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl Kind {
    /// The type as the decoder's messages name it ("a string", "an object", ...).
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
            Kind::Null => "null",
        }
    }

    /// The kind of a value whose text starts with `first` (the scanner only makes nodes of
    /// values starting with `{ [ " t f n - 0-9`).
    fn of_first_byte(first: u8) -> Kind {
        match first {
            b'{' => Kind::Object,
            b'[' => Kind::Array,
            b'"' => Kind::String,
            b't' | b'f' => Kind::Bool,
            b'n' => Kind::Null,
            _ => Kind::Number,
        }
    }
}

/// One value of the indexed text: byte offsets into it, 16 bytes (see the module docs, "Size").
#[derive(Debug, Clone, Copy)]
struct Node {
    start: u32,
    end: u32,
    /// Index of the first node after this value's descendants (its next sibling, if any).
    after: u32,
    /// For a member of an object, the offset of its key's opening quote, with [`ESCAPED`] set
    /// when the key has escapes; [`NO_KEY`] otherwise (no key opens at offset 0).
    key: u32,
}

const NO_KEY: u32 = 0;
/// The bit of [`Node::key`] telling that the key has escapes; the offset is in the others.
const ESCAPED: u32 = 1 << 31;

/// The index of one JSON value and everything inside it, in document order (a container
/// first, then its members).
#[derive(Debug, Default)]
pub struct Tape<'a> {
    text: &'a str,
    nodes: Vec<Node>,
}

impl<'a> Tape<'a> {
    /// Indexes `text`, one JSON value serde_json accepted; `None` if the text is not such a
    /// value after all, or is 2 GiB or longer (offsets are 31 bits, see [`Node::key`]).
    pub fn index(text: &'a str) -> Option<Tape<'a>> {
        Tape::index_levels(text, usize::MAX)
    }

    /// [`Tape::index`] down to `levels` below the root only: a container that deep is one node
    /// whose members are skipped, not indexed (its [`Tape::children`] are none; index its
    /// [`Tape::text`] on its own to read them). For a page read one record at a time: only
    /// that record's index is held beside the body, not the whole page's.
    pub fn index_levels(text: &'a str, levels: usize) -> Option<Tape<'a>> {
        Tape::scanned(text, levels, Tape::scan)
    }

    /// [`Tape::index`] of a text nobody has validated: `None` unless it is one JSON value
    /// serde_json would accept, checked in the same pass that indexes it (see `valid.rs` for
    /// the grammar). A decoder calls this instead of validating with serde_json first, and
    /// takes its old path (serde_json's validation and messages) only on `None`.
    pub fn index_valid(text: &'a str) -> Option<Tape<'a>> {
        Tape::index_valid_levels(text, usize::MAX)
    }

    /// [`Tape::index_levels`] of a text nobody has validated; `None` as for
    /// [`Tape::index_valid`]. What lies below `levels` is validated but not indexed.
    pub fn index_valid_levels(text: &'a str, levels: usize) -> Option<Tape<'a>> {
        Tape::scanned(text, levels, Tape::scan_valid)
    }

    /// The index `scan` builds of `text` down to `levels`; `None` when it fails or the text is
    /// too long for 31-bit offsets.
    fn scanned(
        text: &'a str,
        levels: usize,
        scan: fn(&mut Tape<'a>, usize) -> Option<()>,
    ) -> Option<Tape<'a>> {
        if text.len() >= ESCAPED as usize {
            return None;
        }
        let mut tape = Tape {
            text,
            nodes: Vec::new(),
        };
        scan(&mut tape, levels)?;
        Some(tape)
    }

    /// The root value (node 0).
    pub fn root(&self) -> usize {
        0
    }

    /// Nodes in the index (values in the text).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the index holds no node (only a [`Tape::default`] does).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The JSON type of node `i`.
    pub fn kind(&self, i: usize) -> Kind {
        let start = self.nodes[i].start as usize;
        Kind::of_first_byte(self.text.as_bytes().get(start).copied().unwrap_or(b'0'))
    }

    /// The exact JSON text of node `i`.
    pub fn text(&self, i: usize) -> &'a str {
        let n = &self.nodes[i];
        self.text
            .get(n.start as usize..n.end as usize)
            .unwrap_or("")
    }

    /// The key of node `i` (unescaped) when it is a member of an object; `None` for an array
    /// element, the root, and a member whose key is not a valid string (a lone surrogate
    /// escape, which serde_json's validation lets through but its string decoding does not).
    /// Read from the text each time: borrowed unless the key has escapes.
    pub fn key(&self, i: usize) -> Option<Cow<'a, str>> {
        let node = &self.nodes[i];
        if node.key == NO_KEY {
            return None;
        }
        let open = (node.key & !ESCAPED) as usize;
        let close = key_close(self.text.as_bytes(), node.start as usize)?;
        let quoted = self.text.get(open..close.checked_add(1)?)?;
        if node.key & ESCAPED != 0 {
            serde_json::from_str::<String>(quoted).ok().map(Cow::Owned)
        } else {
            Some(Cow::Borrowed(quoted.get(1..quoted.len() - 1)?))
        }
    }

    /// The members (object) or elements (array) of node `i`, in order; none for a scalar.
    pub fn children(&self, i: usize) -> Children<'_, 'a> {
        Children {
            tape: self,
            next: i + 1,
            end: self.nodes[i].after as usize,
        }
    }

    fn scan(&mut self, levels: usize) -> Option<()> {
        let b = self.text.as_bytes();
        let mut i = 0;
        // Open containers, as node indices, and whether each is an object.
        let mut open: Vec<(u32, bool)> = Vec::new();
        // Inside an object: the key just read (its value comes next), as [`Node::key`].
        let mut key = NO_KEY;
        loop {
            i = skip_ws(b, i);
            let c = *b.get(i)?;
            let in_object = open.last().is_some_and(|&(_, object)| object);
            match c {
                b',' => {
                    i += 1;
                    continue;
                }
                b'}' | b']' => {
                    let (o, _) = open.pop()?;
                    i += 1;
                    let after = self.count()?;
                    let node = &mut self.nodes[o as usize];
                    node.end = offset(i)?;
                    node.after = after;
                    if open.is_empty() {
                        return Some(());
                    }
                    continue;
                }
                b'"' if in_object && key == NO_KEY => {
                    let (end, escaped) = string_end(b, i)?;
                    let colon = skip_ws(b, end);
                    if b.get(colon) != Some(&b':') || i == 0 {
                        return None;
                    }
                    key = offset(i)? | if escaped { ESCAPED } else { 0 };
                    i = colon + 1;
                    continue;
                }
                _ => {}
            }
            let (container, mut end) = value_extent(b, i, c)?;
            let index = self.count()?;
            if container && open.len() < levels {
                open.push((index, c == b'{'));
            } else if container {
                end = container_end(b, i)?;
            }
            self.nodes.push(Node {
                start: offset(i)?,
                end: offset(end)?,
                after: index.checked_add(1)?,
                key,
            });
            key = NO_KEY;
            i = end;
            if open.is_empty() {
                return Some(());
            }
        }
    }

    /// The nodes so far, as a node index (fewer than the text's bytes, so it fits a `u32`).
    fn count(&self) -> Option<u32> {
        u32::try_from(self.nodes.len()).ok()
    }
}

/// A text offset as stored in a node ([`Tape::index`] refuses texts whose offsets do not fit).
fn offset(i: usize) -> Option<u32> {
    u32::try_from(i).ok()
}

/// The closing quote of the key of the member whose value starts at `start`: the last byte
/// before `:` and the whitespace around it.
fn key_close(b: &[u8], start: usize) -> Option<usize> {
    let colon = skip_ws_back(b, start)?.checked_sub(1)?;
    if b[colon] != b':' {
        return None;
    }
    let close = skip_ws_back(b, colon)?.checked_sub(1)?;
    (b[close] == b'"').then_some(close)
}

/// Whether the value whose first byte `c` is at `i` is a container, and where it ends (for a
/// container, just after its opening bracket: its members follow).
#[inline]
fn value_extent(b: &[u8], i: usize, c: u8) -> Option<(bool, usize)> {
    Some(match c {
        b'{' | b'[' => (true, i + 1),
        b'"' => (false, string_end(b, i)?.0),
        b't' => (false, i + 4),
        b'f' => (false, i + 5),
        b'n' => (false, i + 4),
        b'-' | b'0'..=b'9' => {
            let mut end = i + 1;
            while end < b.len() && matches!(b[end], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
            {
                end += 1;
            }
            (false, end)
        }
        _ => return None,
    })
}

/// The end (one past the closing bracket) of the container opening at `i`, its members
/// skipped.
fn container_end(b: &[u8], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = i;
    loop {
        match *b.get(j)? {
            b'"' => {
                j = string_end(b, j)?.0;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(j + 1);
                }
            }
            _ => {}
        }
        j += 1;
    }
}

/// The members of a container node (see [`Tape::children`]).
#[derive(Clone)]
pub struct Children<'t, 'a> {
    tape: &'t Tape<'a>,
    next: usize,
    end: usize,
}

impl Iterator for Children<'_, '_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.next >= self.end {
            return None;
        }
        let i = self.next;
        // A malformed tape cannot send the walk backwards (`after` > i by construction).
        self.next = (self.tape.nodes[i].after as usize).max(i + 1);
        Some(i)
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

/// The position just after the last non-whitespace byte before `i` (`None` past the end).
fn skip_ws_back(b: &[u8], mut i: usize) -> Option<usize> {
    if i > b.len() {
        return None;
    }
    while i > 0 && matches!(b[i - 1], b' ' | b'\n' | b'\r' | b'\t') {
        i -= 1;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(t: &Tape<'_>, i: usize) -> String {
        let key = t.key(i).map(|k| format!("{k}=")).unwrap_or_default();
        match t.kind(i) {
            Kind::Object | Kind::Array => {
                let inner: Vec<String> = t.children(i).map(|c| shape(t, c)).collect();
                let (o, c) = if t.kind(i) == Kind::Object {
                    ('{', '}')
                } else {
                    ('[', ']')
                };
                format!("{key}{o}{}{c}", inner.join(","))
            }
            _ => format!("{key}{}", t.text(i)),
        }
    }

    #[test]
    fn members_nest_and_keep_their_exact_text() {
        let text =
            r#" { "a" : [1, -2.5e+3, {"b\u0041":null}, []], "c":{}, "d":"x\"y", "e":true } "#;
        let t = Tape::index(text).expect("valid JSON");
        assert_eq!(
            shape(&t, t.root()),
            r#"{a=[1,-2.5e+3,{bA=null},[]],c={},d="x\"y",e=true}"#
        );
        let a = t.children(t.root()).next().expect("a");
        assert_eq!(t.text(a), r#"[1, -2.5e+3, {"b\u0041":null}, []]"#);
        let d = t.children(t.root()).nth(2).expect("d");
        assert_eq!(t.text(d), r#""x\"y""#);
        assert_eq!(t.kind(t.root()).describe(), "an object");
    }

    #[test]
    fn keys_are_read_from_the_text_whatever_their_escapes_and_spacing() {
        // Hand-written: each member's key as serde_json decodes it.
        let text = r#"{"plain":1, "sp"  :
            2,"q\"x":3,"ends\\":4,"\\\"":5,"":6,"u\u00e9":[7],"\ud800":8}"#;
        serde_json::from_str::<&serde_json::value::RawValue>(text).expect("valid JSON");
        let t = Tape::index(text).expect("valid JSON");
        let keys: Vec<Option<String>> = t
            .children(t.root())
            .map(|c| t.key(c).map(Cow::into_owned))
            .collect();
        let expected = ["plain", "sp", "q\"x", "ends\\", "\\\"", "", "u\u{e9}"];
        let mut want: Vec<Option<String>> = expected.iter().map(|k| Some(k.to_string())).collect();
        // A lone surrogate is no string serde_json decodes: the key reads as `None`.
        want.push(None);
        assert_eq!(keys, want);
        // Borrowed from the text unless escaped.
        let first = t.children(t.root()).next().expect("plain");
        assert!(matches!(t.key(first), Some(Cow::Borrowed("plain"))));
        // The root and array elements have no key.
        let array = t.children(t.root()).nth(6).expect("array");
        let element = t.children(array).next().expect("7");
        assert_eq!((t.key(t.root()), t.key(element)), (None, None));
        assert_eq!(t.text(element), "7");
    }

    #[test]
    fn an_index_of_some_levels_skips_what_lies_deeper() {
        let text = r#"{"n": 1, "records": [{"a": [1, {"b": "]}"}]}, [], 2], "o": {"p": [3]}}"#;
        let full = Tape::index(text).expect("valid JSON");
        let t = Tape::index_levels(text, 2).expect("valid JSON");
        assert_eq!(
            shape(&t, t.root()),
            r#"{n=1,records=[{},[],2],o={p=[]}}"#,
            "containers two levels down have no members in the index"
        );
        let records = t.children(t.root()).nth(1).expect("records");
        let texts: Vec<&str> = t.children(records).map(|c| t.text(c)).collect();
        assert_eq!(texts, [r#"{"a": [1, {"b": "]}"}]}"#, "[]", "2"]);
        // A skipped record, indexed on its own, reads as in the index of the whole text.
        let record = Tape::index(texts[0]).expect("valid JSON");
        let in_full = full.children(full.root()).nth(1).expect("records");
        let first = full.children(in_full).next().expect("record");
        assert_eq!(shape(&record, record.root()), shape(&full, first));
        assert!(t.len() < full.len());
        assert_eq!(shape(&Tape::index_levels(text, 0).expect("JSON"), 0), "{}");
    }

    #[test]
    fn a_node_is_sixteen_bytes() {
        // The index is held beside the body while a page is read (module docs, "Size").
        assert_eq!(std::mem::size_of::<Node>(), 16);
        let text = "[1, 2, 3]";
        let t = Tape::index(text).expect("valid JSON");
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn scalars_and_empty_containers_are_roots_too() {
        for (text, kind) in [
            ("\"s\"", Kind::String),
            ("12", Kind::Number),
            ("false", Kind::Bool),
            ("null", Kind::Null),
            ("[]", Kind::Array),
            ("{}", Kind::Object),
        ] {
            let t = Tape::index(text).expect(text);
            assert_eq!((t.kind(0), t.text(0)), (kind, text));
            assert_eq!(t.children(0).count(), 0);
        }
    }

    #[test]
    fn deep_nesting_does_not_recurse() {
        let depth = 200_000;
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let t = Tape::index(&text).expect("valid JSON");
        assert_eq!(t.text(0).len(), 2 * depth);
        let t = Tape::index_levels(&text, 1).expect("valid JSON");
        assert_eq!((t.len(), t.text(1).len()), (2, 2 * depth - 2));
    }

    #[test]
    fn text_that_is_not_json_gives_none_or_a_tape_without_panicking() {
        for text in ["", "{", "[1,", "{\"a\"", "{\"a\" 1}", "\"open", "]", "@"] {
            let _ = Tape::index(text);
        }
        assert!(Tape::index("").is_none());
        assert!(Tape::index("{\"a\" 1}").is_none());
    }
}
