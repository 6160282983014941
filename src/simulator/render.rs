//! JSON writing every API model shares, written straight into a `String` (no
//! `serde_json::Value` trees) because some pages get large: string literals and the Kore-style
//! error body. Each model renders its own bodies in its folder.

use std::fmt::Write as _;

/// Appends `s` as a JSON string literal.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                // Writing into a String cannot fail.
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `{"errors":[{"msg":…,"code":…}]}`.
pub(crate) fn error_body(msg: &str, code: u32) -> String {
    let mut out = String::with_capacity(msg.len() + 40);
    out.push_str("{\"errors\":[{\"msg\":");
    push_json_str(&mut out, msg);
    let _ = write!(out, ",\"code\":{code}}}]}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_strings() {
        let mut s = String::new();
        push_json_str(&mut s, "a\"b\\c\n\u{1}é");
        assert_eq!(s, r#""a\"b\\c\n\u0001é""#);
    }

    #[test]
    fn error_body_shape() {
        assert_eq!(
            error_body("Bot not \"found\"", 404),
            r#"{"errors":[{"msg":"Bot not \"found\"","code":404}]}"#
        );
    }
}
