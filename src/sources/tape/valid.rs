//! The validating scan behind [`Tape::index_valid`]: one pass over a JSON text that checks
//! every byte against the grammar serde_json accepts for a raw value and builds the same index
//! as the trusting scan ([`Tape::index_levels`]) of the same text. A decoder that used to let
//! serde_json validate the body and then index it walks the bytes once instead of twice.
//!
//! **What it accepts** is never more than serde_json's raw values accept (a test mutates valid
//! pages at random and holds the scan to that): RFC 8259 values; whitespace is space, tab, line
//! feed and carriage return; strings hold no byte below U+0020 and only the escapes `\" \\ \/
//! \b \f \n \r \t \uXXXX` (a `\u` escape of a lone surrogate is accepted, as serde_json accepts
//! it in a value it does not decode); numbers are `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`
//! of any length; nesting has no depth limit (the stack is explicit); nothing but whitespace
//! follows the root. It may refuse what serde_json would accept only by returning `None`, so
//! a caller that falls back to the validating path on `None` behaves exactly as before.

use super::{offset, skip_ws, Node, Tape, ESCAPED, NO_KEY};

/// An open container: its node (`None` when it lies below the indexed levels, inside a
/// container indexed as one node), whether it is an object, and whether its members get
/// nodes of their own.
#[derive(Clone, Copy)]
struct Frame {
    node: Option<u32>,
    object: bool,
    indexed: bool,
}

impl Tape<'_> {
    /// See the module docs. `None`: the text is not one valid JSON value (or is 2 GiB or
    /// longer); the index is otherwise what [`Tape::index_levels`] builds.
    pub(super) fn scan_valid(&mut self, levels: usize) -> Option<()> {
        let b = self.text.as_bytes();
        let mut open: Vec<Frame> = Vec::new();
        let mut key = NO_KEY;
        let mut i = 0;
        loop {
            // A value starts here.
            i = skip_ws(b, i);
            let c = *b.get(i)?;
            let has_node = open.last().is_none_or(|f| f.indexed);
            let node = if has_node { Some(self.count()?) } else { None };
            if has_node {
                self.nodes.push(Node {
                    start: offset(i)?,
                    end: 0,
                    after: self.count()?.checked_add(1)?,
                    key,
                });
            }
            key = NO_KEY;
            let scalar_end = match c {
                b'{' | b'[' => {
                    let object = c == b'{';
                    let indexed = has_node && open.len() < levels;
                    open.push(Frame {
                        node,
                        object,
                        indexed,
                    });
                    i = skip_ws(b, i + 1);
                    if b.get(i) == Some(if object { &b'}' } else { &b']' }) {
                        None
                    } else if object {
                        i = member_key(b, i, indexed, &mut key)?;
                        continue;
                    } else {
                        continue;
                    }
                }
                b'"' => Some(string_end(b, i)?.0),
                b't' => Some(literal(b, i, b"true")?),
                b'f' => Some(literal(b, i, b"false")?),
                b'n' => Some(literal(b, i, b"null")?),
                b'-' | b'0'..=b'9' => Some(number_end(b, i)?),
                _ => return None,
            };
            // `None`: an empty container, `i` at its closing bracket.
            if let Some(end) = scalar_end {
                if let Some(n) = node {
                    self.nodes[n as usize].end = offset(end)?;
                }
                i = end;
            }
            match self.after_value(b, &mut open, i, &mut key)? {
                Some(next) => i = next,
                None => return Some(()),
            }
        }
    }

    /// After a value ending at `i`: closes the containers that end there (their nodes' ends
    /// and `after`), then steps over the comma and, in an object, the next key. `Some(Some(j))`:
    /// the next value starts at `j`; `Some(None)`: the root is complete and only whitespace
    /// follows; `None`: the text is not valid here.
    fn after_value(
        &mut self,
        b: &[u8],
        open: &mut Vec<Frame>,
        mut i: usize,
        key: &mut u32,
    ) -> Option<Option<usize>> {
        loop {
            i = skip_ws(b, i);
            let Some(frame) = open.last().copied() else {
                return (i == b.len()).then_some(None);
            };
            let close = if frame.object { b'}' } else { b']' };
            match *b.get(i)? {
                b',' => {
                    i += 1;
                    if frame.object {
                        i = member_key(b, skip_ws(b, i), frame.indexed, key)?;
                    }
                    return Some(Some(i));
                }
                c if c == close => {
                    open.pop();
                    i += 1;
                    if let Some(n) = frame.node {
                        let after = if frame.indexed { self.count()? } else { n + 1 };
                        let node = &mut self.nodes[n as usize];
                        node.end = offset(i)?;
                        node.after = after;
                    }
                }
                _ => return None,
            }
        }
    }
}

/// Reads a member's key at `i` (its opening quote) and the `:` after it; sets `key` to the
/// key's [`Node::key`] when the object's members are indexed. Returns where the value may
/// start.
fn member_key(b: &[u8], i: usize, indexed: bool, key: &mut u32) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let (end, escaped) = string_end(b, i)?;
    let colon = skip_ws(b, end);
    if b.get(colon) != Some(&b':') {
        return None;
    }
    if indexed {
        *key = offset(i)? | if escaped { ESCAPED } else { 0 };
    }
    Some(colon + 1)
}

/// The end (one past the closing quote) of the string opening at `i`, and whether it has an
/// escape; `None` for a control character, an unknown escape or a short `\u` escape. The
/// trusting scan and Call Details' string lists (text already checked) use it too: on valid
/// JSON it never refuses.
///
/// Eight bytes are looked at a time ([`specials`]) until one of them may end, escape or break
/// the string; that byte is then read alone (a byte at a time, this was the tape-read
/// datasets' largest single cost; docs/performance.md).
#[inline]
pub(crate) fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        while let Some(word) = b.get(j..j + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
            let found = specials(u64::from_le_bytes(word));
            if found != 0 {
                j += (found.trailing_zeros() / 8) as usize;
                break;
            }
            j += 8;
        }
        match *b.get(j)? {
            b'"' => return Some((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                j += match *b.get(j + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                    b'u' => {
                        let hex = b.get(j + 2..j + 6)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        6
                    }
                    _ => return None,
                };
            }
            0x00..=0x1f => return None,
            _ => j += 1,
        }
    }
}

/// The bytes of `word` (eight bytes, little-endian) that are `"`, `\` or below 0x20, as the
/// high bit of each such byte. Only the lowest set bit is exact (a borrow can mark a byte
/// above a marked one), which is all [`string_end`] reads: the first such byte.
#[inline]
fn specials(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    zero_bytes(word ^ (ONES * u64::from(b'"')))
        | zero_bytes(word ^ (ONES * u64::from(b'\\')))
        | (word.wrapping_sub(ONES * 0x20) & !word & HIGH)
}

/// The end of the literal `word` at `i`.
fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    let end = i + word.len();
    (b.get(i..end)? == word).then_some(end)
}

/// The end of the number at `i` (see the module docs for the grammar).
fn number_end(b: &[u8], i: usize) -> Option<usize> {
    let digits = |mut j: usize| {
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        j
    };
    let mut j = i + usize::from(b[i] == b'-');
    match b.get(j)? {
        b'0' => j += 1,
        b'1'..=b'9' => j = digits(j + 1),
        _ => return None,
    }
    if b.get(j) == Some(&b'.') {
        let end = digits(j + 1);
        if end == j + 1 {
            return None;
        }
        j = end;
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        j += 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let end = digits(j);
        if end == j {
            return None;
        }
        j = end;
    }
    Some(j)
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::super::Tape;
    use super::string_end;

    /// `string_end` a byte at a time, as it was before it read words: the reference.
    fn string_end_bytewise(b: &[u8], i: usize) -> Option<(usize, bool)> {
        let mut j = i + 1;
        let mut escaped = false;
        loop {
            match *b.get(j)? {
                b'"' => return Some((j + 1, escaped)),
                b'\\' => {
                    escaped = true;
                    j += match *b.get(j + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                        b'u' if b.get(j + 2..j + 6)?.iter().all(u8::is_ascii_hexdigit) => 6,
                        _ => return None,
                    };
                }
                0x00..=0x1f => return None,
                _ => j += 1,
            }
        }
    }

    #[test]
    fn string_end_reads_words_as_the_bytewise_scan_reads_bytes() {
        // Every special byte at every offset from the opening quote (so at every position of
        // an eight-byte word), between plain ASCII, multi-byte UTF-8 and bytes of 0x80 and
        // above, and strings cut short.
        let pieces: [&[u8]; 12] = [
            b"a",
            b"\"",
            b"\\\"",
            b"\\\\",
            b"\\u00e9",
            b"\\uZZ",
            b"\\q",
            b"\x01",
            b"\x1f",
            b"\x7f",
            "é".as_bytes(),
            "\u{1F600}".as_bytes(),
        ];
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        for _ in 0..20_000 {
            // A start at any offset of a word, after bytes that are not read.
            let start = next(9);
            let mut text = vec![b'"'; start + 1];
            for _ in 0..next(24) {
                if next(3) == 0 {
                    text.extend_from_slice(pieces[next(pieces.len())]);
                } else {
                    text.push(b'a' + next(26) as u8);
                }
            }
            if next(4) != 0 {
                text.push(b'"');
            }
            // Often the buffer ends inside the string's last word, or inside the string.
            if next(2) == 0 {
                text.extend_from_slice(b"tail\"");
            }
            assert_eq!(
                string_end(&text, start),
                string_end_bytewise(&text, start),
                "{:?}",
                String::from_utf8_lossy(&text)
            );
        }
    }
    /// A page-like text with every kind of value, escapes, nesting and spacing.
    const DOC: &str = r#" {"data": [
        {"sessionId": "s-1", "n": -0.5e+3, "z": 0, "big": 12345678901234567890123,
         "t": true, "f": false, "x": null, "esc": "q\"b\\s\/\b\f\n\r\tu\u00e9\uD83D\ude00",
         "caf\u00e9": "é ✓", "nested": {"a": [1, [2, [3, {"b": {}}]], []], "c": {"d": "e"}},
         "empty": "", "list": ["x", "y"]},
        {"sessionId": "s-2", "destinations": [{"agentId": "u-1", "notes": [ ]}]}
    ], "numResults": 2 }
"#;

    fn nodes(t: &Tape<'_>) -> Vec<(u32, u32, u32, u32)> {
        t.nodes
            .iter()
            .map(|n| (n.start, n.end, n.after, n.key))
            .collect()
    }

    fn serde_accepts(text: &str) -> bool {
        serde_json::from_str::<&RawValue>(text).is_ok()
    }

    #[test]
    fn a_valid_text_gets_the_index_the_trusting_scan_builds_at_every_depth() {
        let scalars = [
            "0",
            " -1.5E-7 ",
            "\"\"",
            "true",
            "null",
            "[]",
            "{}",
            "[[[]]]",
        ];
        for text in scalars.iter().copied().chain([DOC]) {
            assert!(serde_accepts(text), "{text}");
            for levels in [0, 1, 2, 3, usize::MAX] {
                let want = Tape::index_levels(text, levels).expect("valid JSON");
                let got = Tape::index_valid_levels(text, levels).expect("accepted");
                assert_eq!(nodes(&got), nodes(&want), "{text} at {levels} levels");
            }
        }
    }

    #[test]
    fn what_serde_json_refuses_is_refused() {
        let bad = [
            "",
            " ",
            "{",
            "[1,]",
            "[,1]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "{\"a\":}",
            "[1 2]",
            "[1]]",
            "[1] x",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "tru",
            "nul",
            "True",
            "\"unterminated",
            "\"tab\there\"",
            "\"bad \\x escape\"",
            "\"short \\u12\"",
            "\"bad hex \\u12G4\"",
            "[\"a\"}",
            "{\"a\":1]",
            "{\"a\":[1,{\"b\":2]}}",
        ];
        for text in bad {
            assert!(!serde_accepts(text), "serde_json accepts {text:?}");
            assert!(Tape::index_valid(text).is_none(), "{text:?} accepted");
            assert!(
                Tape::index_valid_levels(text, 1).is_none(),
                "{text:?} at 1 level"
            );
        }
    }

    #[test]
    fn no_mutation_of_a_page_is_accepted_unless_serde_json_accepts_it() {
        const BYTES: &[u8] = b"\"\\{}[],: 0123456789-+e.Eutfnl\x01\x0b\x0c\x1f\x7fa/";
        let mut rng = fastrand::Rng::with_seed(23);
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..30_000 {
            let mut m = DOC.as_bytes().to_vec();
            for _ in 0..rng.usize(1..=3) {
                let at = rng.usize(0..m.len());
                let byte = BYTES[rng.usize(0..BYTES.len())];
                match rng.u8(0..4) {
                    0 => m.truncate(at),
                    1 => m[at] = byte,
                    2 => m.insert(at, byte),
                    _ => {
                        m.remove(at);
                    }
                }
                if m.is_empty() {
                    break;
                }
            }
            let Ok(text) = String::from_utf8(m) else {
                continue;
            };
            match Tape::index_valid(&text) {
                Some(t) => {
                    assert!(
                        serde_accepts(&text),
                        "accepted what serde_json refuses: {text}"
                    );
                    let want = Tape::index(&text).expect("valid JSON");
                    assert_eq!(nodes(&t), nodes(&want), "{text}");
                    accepted += 1;
                }
                None => {
                    // Never stricter than serde_json on these texts either.
                    assert!(
                        !serde_accepts(&text),
                        "refused what serde_json accepts: {text}"
                    );
                    refused += 1;
                }
            }
        }
        // Both outcomes occur often, so both assertions above are exercised.
        assert!(
            accepted > 1_000 && refused > 1_000,
            "{accepted} / {refused}"
        );
    }
}
