//! The one-line rendering of an error and its sources ([`error_chain`]), used wherever an
//! error is logged or printed. A leaf: it knows nothing of the crate, so any module may use it
//! without joining a dependency cycle (the crate error in [`crate::error`] depends on most
//! modules' error types; a module such as [`crate::lease`] that only needs to print an error
//! takes this instead).

/// An error and its sources on one line: each source's text is appended after `": "` unless
/// the text so far already contains it (an error that prints its source in its own message).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write state")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read x: disk full")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn sources_are_appended_once() {
        let outer = Outer(std::io::Error::other("disk full"));
        assert_eq!(error_chain(&outer), "cannot write state: disk full");
        let repeats = Repeats(std::io::Error::other("disk full"));
        assert_eq!(error_chain(&repeats), "cannot read x: disk full");
    }
}
