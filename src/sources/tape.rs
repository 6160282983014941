//! A one-pass index ("tape") of a JSON text that serde_json has already validated: every value
//! becomes one [`Node`] holding its exact text's span, its kind and, for a member of an
//! object, its key; a container's descendants follow it, so a value's members are found
//! without reading its bytes again. The Call Details decoder indexes the `data` array of a
//! page once and reads every level of every record (session, `customerinfo`, `destinations`,
//! legs) from the index; the Agent Performance decoder reads its agents, intervals and queues
//! the same way ([`crate::sources::members::Members::of_node`]). Before, each level was parsed
//! again into raw values, so the bytes of an agent leg were walked five times; a profile of the
//! benchmark put that re-walking (serde_json's `ignore_value`/`skip_to_escape`) at about 15% of
//! the export's CPU.
//!
//! The caller must pass text serde_json accepted (the page's top-level parse validates every
//! byte): the scanner relies on it for brevity, never for memory safety. On text that is not
//! valid JSON it returns `None` or an index of no particular meaning, never panics. It keeps
//! an explicit stack, so a deeply nested value (serde_json's raw values have no depth limit)
//! cannot overflow the thread's stack.

use std::borrow::Cow;

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
}

/// One value of the indexed text.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    /// The member's key (unescaped); `None` for an array element, the root, and a member whose
    /// key is not a valid string.
    pub key: Option<Cow<'a, str>>,
    pub kind: Kind,
    start: usize,
    end: usize,
    /// Index of the first node after this value's descendants (its next sibling, if any).
    after: usize,
}

/// The index of one JSON value and everything inside it, in document order (a container
/// first, then its members).
#[derive(Debug, Default)]
pub struct Tape<'a> {
    text: &'a str,
    nodes: Vec<Node<'a>>,
}

impl<'a> Tape<'a> {
    /// Indexes `text`, one JSON value serde_json accepted; `None` if the text is not such a
    /// value after all.
    pub fn index(text: &'a str) -> Option<Tape<'a>> {
        let mut tape = Tape {
            text,
            nodes: Vec::new(),
        };
        tape.scan()?;
        Some(tape)
    }

    /// The root value (node 0).
    pub fn root(&self) -> usize {
        0
    }

    pub fn node(&self, i: usize) -> &Node<'a> {
        &self.nodes[i]
    }

    /// The exact JSON text of node `i`.
    pub fn text(&self, i: usize) -> &'a str {
        let n = &self.nodes[i];
        self.text.get(n.start..n.end).unwrap_or("")
    }

    /// The members (object) or elements (array) of node `i`, in order; none for a scalar.
    pub fn children(&self, i: usize) -> Children<'_, 'a> {
        Children {
            tape: self,
            next: i + 1,
            end: self.nodes[i].after,
        }
    }

    fn scan(&mut self) -> Option<()> {
        let b = self.text.as_bytes();
        let mut i = 0;
        // Open containers, as node indices.
        let mut open: Vec<usize> = Vec::new();
        // The key just read inside an object (its value comes next).
        let mut key: Option<Option<Cow<'a, str>>> = None;
        loop {
            i = skip_ws(b, i);
            let c = *b.get(i)?;
            let in_object = open
                .last()
                .is_some_and(|&o| self.nodes[o].kind == Kind::Object);
            match c {
                b',' => {
                    i += 1;
                    continue;
                }
                b'}' | b']' => {
                    let o = open.pop()?;
                    i += 1;
                    self.nodes[o].end = i;
                    self.nodes[o].after = self.nodes.len();
                    if open.is_empty() {
                        return Some(());
                    }
                    continue;
                }
                b'"' if in_object && key.is_none() => {
                    let (read, after) = read_key(self.text, i)?;
                    key = Some(read);
                    i = after;
                    continue;
                }
                _ => {}
            }
            let start = i;
            let (kind, end) = value_extent(b, i, c)?;
            if matches!(kind, Kind::Object | Kind::Array) {
                open.push(self.nodes.len());
            }
            let index = self.nodes.len();
            self.nodes.push(Node {
                key: if in_object {
                    key.take().flatten()
                } else {
                    None
                },
                kind,
                start,
                end,
                after: index + 1,
            });
            i = end;
            if open.is_empty() {
                return Some(());
            }
        }
    }
}

/// The key whose opening quote is at `i`, and the position after its `:`. A key serde_json
/// cannot read as a string (a lone surrogate escape, which its validation lets through) is
/// read as `None`: the object is invalid.
#[inline]
fn read_key(text: &str, i: usize) -> Option<(Option<Cow<'_, str>>, usize)> {
    let b = text.as_bytes();
    let (end, escaped) = string_end(b, i)?;
    let quoted = text.get(i..end)?;
    let key = if escaped {
        serde_json::from_str::<String>(quoted).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(quoted.get(1..quoted.len() - 1)?))
    };
    let colon = skip_ws(b, end);
    (b.get(colon) == Some(&b':')).then_some((key, colon + 1))
}

/// The kind of the value whose first byte `c` is at `i`, and where it ends (for a container,
/// just after its opening bracket: its members follow).
#[inline]
fn value_extent(b: &[u8], i: usize, c: u8) -> Option<(Kind, usize)> {
    Some(match c {
        b'{' => (Kind::Object, i + 1),
        b'[' => (Kind::Array, i + 1),
        b'"' => (Kind::String, string_end(b, i)?.0),
        b't' => (Kind::Bool, i + 4),
        b'f' => (Kind::Bool, i + 5),
        b'n' => (Kind::Null, i + 4),
        b'-' | b'0'..=b'9' => {
            let mut end = i + 1;
            while end < b.len() && matches!(b[end], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
            {
                end += 1;
            }
            (Kind::Number, end)
        }
        _ => return None,
    })
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
        self.next = self.tape.nodes[i].after.max(i + 1);
        Some(i)
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

/// The end (one past the closing quote) of the string literal opening at `i`, and whether it
/// contains an escape.
fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        match *b.get(j)? {
            b'"' => return Some((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                j += 2;
            }
            _ => j += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(t: &Tape<'_>, i: usize) -> String {
        let n = t.node(i);
        let key = n
            .key
            .as_deref()
            .map(|k| format!("{k}="))
            .unwrap_or_default();
        match n.kind {
            Kind::Object | Kind::Array => {
                let inner: Vec<String> = t.children(i).map(|c| shape(t, c)).collect();
                let (o, c) = if n.kind == Kind::Object {
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
        assert_eq!(t.node(t.root()).kind.describe(), "an object");
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
            assert_eq!((t.node(0).kind, t.text(0)), (kind, text));
            assert_eq!(t.children(0).count(), 0);
        }
    }

    #[test]
    fn deep_nesting_does_not_recurse() {
        let depth = 200_000;
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let t = Tape::index(&text).expect("valid JSON");
        assert_eq!(t.text(0).len(), 2 * depth);
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
