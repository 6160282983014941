//! Shared pieces of the report APIs' decoders: wire scalars, durations, day windows, the
//! unmapped fields every record keeps in its `extra` column ([`extra`]), the set of keys a day
//! has kept ([`key_set`]), flat records read by member name ([`members`]), a one-pass index of
//! a JSON text ([`tape`]). Nothing here does I/O: the caller fetches bodies, hands them to
//! `decode_*`, retries the request on a [`DecodeError`], and writes every [`Reject`] to the
//! rejects dataset.

pub mod durations;
pub mod extra;
pub mod key_set;
pub mod members;
pub mod tape;
pub(crate) mod timestamp;
pub mod window;
pub(crate) mod wire;

/// A record that could not be normalized, kept whole for the rejects dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Why it was rejected, e.g. `stats.sum "abc" is not "<n> sec"`.
    pub reason: String,
    /// The record's JSON as received (or re-serialized when only a fragment was bad).
    pub raw_json: String,
}

/// A response body that could not be decoded at all (truncated, not JSON, wrong top-level
/// shape). The request is retried; the body is not a record-level reject.
#[derive(Debug, thiserror::Error)]
#[error("response body is not a valid {api} response: {reason}")]
pub struct DecodeError {
    pub api: &'static str,
    pub reason: String,
}
