//! Fields of an API record that no column maps, kept instead of skipped: the decoders collect
//! each unmapped key of a record with its value's exact JSON text ([`Unmapped`], borrowed from
//! the response body, so nothing is re-serialized and numbers and escapes stay as sent), the
//! normalizers render the levels a row is built from into its `extra` cell ([`ExtraColumn`],
//! null when no level has one) and count every occurrence by name ([`UnmappedCounts`]).
//!
//! A key is mapped when the decoder reads it under any casing (the API is inconsistent about
//! casing, so `Direction` is as mapped as `direction`); every other key of the record is
//! unmapped, whatever its value (`null` included). A mapped key whose value is an object read
//! field by field (`customerinfo`, `stats`) keeps that object's unmapped keys nested under its
//! name (`{"customerinfo":{"CustomerAge":42}}`), so `json_extract(extra, '$.customerinfo.CustomerAge')`
//! follows the API's own path.
//!
//! **Levels.** A row built from several records (an agent, its bucket and a status entry; a
//! session, a queue entry and an agent leg) merges the unmapped keys of every level into one
//! object, outermost level first. When two levels carry the same unmapped key, the innermost
//! level keeps the plain key and each outer level's value is kept under `<level>.<key>` (e.g.
//! `agent.note` next to `note` from the bucket): the innermost record is the one the row
//! describes, so a reader's `$.note` reads the value closest to the row, and no value is
//! dropped. A key repeated inside one record is kept as often as it was sent.
//!
//! **Counting.** [`UnmappedCounts`] counts one occurrence per unmapped key per record (a nested
//! key as `customerinfo.CustomerAge`); a normalizer counts a record once when it first
//! contributes a row, so a session whose keys repeat on each of its legs counts once.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringBuilder};
use arrow::datatypes::{DataType, Field};
use serde_json::value::RawValue;

use super::wire::push_json_string;

/// Name of the column holding the unmapped fields of a row.
pub const EXTRA_COLUMN: &str = "extra";

/// The `extra` column: nullable Utf8 holding a JSON object. Every table built from API
/// records ends with it (after `exported_at`), so a file written before it existed has a
/// prefix of the new column list (see README "Reading files of an older schema version").
pub fn extra_field() -> Field {
    Field::new(EXTRA_COLUMN, DataType::Utf8, true)
}

/// The unmapped fields of one record, in the order received. Empty (no allocation) when the
/// record has none, which is the usual case.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Unmapped<'a> {
    fields: Vec<(Cow<'a, str>, Value<'a>)>,
}

#[derive(Clone, PartialEq, Eq)]
enum Value<'a> {
    /// A value's exact JSON text: borrowed from the body, or owned once the record outlives it.
    Json(Cow<'a, str>),
    /// The unmapped keys of a mapped object value.
    Nested(Unmapped<'a>),
}

impl fmt::Debug for Unmapped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write_object(&mut out);
        f.write_str(&out)
    }
}

impl<'a> Unmapped<'a> {
    /// No unmapped field.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Keeps `key` with its value's exact JSON text.
    pub fn push(&mut self, key: Cow<'a, str>, value: &'a RawValue) {
        self.fields
            .push((key, Value::Json(Cow::Borrowed(value.get()))));
    }

    /// Keeps `key` with `json`, its value's exact JSON text (for decoders that index the body
    /// themselves rather than through serde_json's raw values).
    pub fn push_json(&mut self, key: Cow<'a, str>, json: &'a str) {
        self.fields.push((key, Value::Json(Cow::Borrowed(json))));
    }

    /// Keeps the unmapped keys of the object under the mapped key `key` (nothing when empty).
    pub fn push_nested(&mut self, key: Cow<'a, str>, inner: Unmapped<'a>) {
        if !inner.is_empty() {
            self.fields.push((key, Value::Nested(inner)));
        }
    }

    /// Calls `f` on every key and JSON text of the fields, nested ones included, in order (for
    /// a record that moves all its text into one buffer).
    pub fn texts_mut<F: FnMut(&mut Cow<'a, str>)>(&mut self, f: &mut F) {
        let Unmapped { fields } = self;
        for (key, value) in fields {
            f(key);
            match value {
                Value::Json(text) => f(text),
                Value::Nested(inner) => inner.texts_mut(f),
            }
        }
    }

    /// The same fields, owning their text (for records that outlive the response body).
    pub fn into_owned(self) -> Unmapped<'static> {
        Unmapped {
            fields: self
                .fields
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                .collect(),
        }
    }

    /// The fields as one JSON object (`{}` when empty).
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_object(&mut out);
        out
    }

    /// The `extra` cell of a one-level record: `None` when it has no unmapped field.
    pub fn cell(&self) -> Option<String> {
        (!self.is_empty()).then(|| self.to_json())
    }

    fn has_key(&self, key: &str) -> bool {
        self.fields.iter().any(|(k, _)| k == key)
    }

    fn write_object(&self, out: &mut String) {
        out.push('{');
        for (i, (key, value)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(out, key);
            out.push(':');
            value.write(out);
        }
        out.push('}');
    }
}

impl Value<'_> {
    fn into_owned(self) -> Value<'static> {
        match self {
            Value::Json(text) => Value::Json(Cow::Owned(text.into_owned())),
            Value::Nested(inner) => Value::Nested(inner.into_owned()),
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Value::Json(text) => out.push_str(text),
            Value::Nested(inner) => inner.write_object(out),
        }
    }
}

/// One level of a row: its name (used to qualify a key an inner level also has) and its
/// unmapped fields.
pub type Level<'l, 'a> = (&'static str, &'l Unmapped<'a>);

/// Writes the merged `extra` object of a row built from `levels` (outermost first) into `out`
/// (cleared first); `false`, with `out` empty, when no level has an unmapped field.
pub fn merge_levels(levels: &[Level<'_, '_>], out: &mut String) -> bool {
    out.clear();
    if levels.iter().all(|(_, u)| u.is_empty()) {
        return false;
    }
    out.push('{');
    let mut first = true;
    for (i, (name, level)) in levels.iter().enumerate() {
        let inner = &levels[i + 1..];
        for (key, value) in &level.fields {
            if !first {
                out.push(',');
            }
            first = false;
            if inner.iter().any(|(_, u)| u.has_key(key)) {
                push_json_string(out, &format!("{name}.{key}"));
            } else {
                push_json_string(out, key);
            }
            out.push(':');
            value.write(out);
        }
    }
    out.push('}');
    true
}

/// Builds the `extra` column of a batch, one cell per row.
pub struct ExtraColumn {
    builder: StringBuilder,
    scratch: String,
}

impl Default for ExtraColumn {
    fn default() -> Self {
        ExtraColumn {
            builder: StringBuilder::new(),
            scratch: String::new(),
        }
    }
}

impl fmt::Debug for ExtraColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExtraColumn")
    }
}

impl ExtraColumn {
    /// Appends the cell of a row built from `levels` (outermost first): the merged object, or
    /// null when no level has an unmapped field.
    pub fn append(&mut self, levels: &[Level<'_, '_>]) {
        if merge_levels(levels, &mut self.scratch) {
            self.builder.append_value(&self.scratch);
        } else {
            self.builder.append_null();
        }
    }

    /// Appends a cell rendered before (`None`: null).
    pub fn append_cell(&mut self, cell: Option<&str>) {
        self.builder.append_option(cell);
    }

    /// The cells appended since the last call; the builder starts empty again.
    pub fn finish(&mut self) -> ArrayRef {
        Arc::new(self.builder.finish())
    }
}

/// Occurrences of unmapped fields by name (a nested one as `parent.key`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnmappedCounts(BTreeMap<String, u64>);

impl UnmappedCounts {
    /// Counts each unmapped field of one record once.
    pub fn add(&mut self, record: &Unmapped<'_>) {
        self.add_prefixed(&mut String::new(), record);
    }

    /// Counts `record`'s fields under `prefix` (a nested group's path and a dot; empty at the
    /// top). A top-level name is looked up as it is; a nested one is spelled in `prefix`, one
    /// buffer extended and cut back. A name seen before costs no allocation.
    fn add_prefixed(&mut self, prefix: &mut String, record: &Unmapped<'_>) {
        let depth = prefix.len();
        for (key, value) in &record.fields {
            match value {
                Value::Json(_) if depth == 0 => self.bump(key),
                Value::Json(_) => {
                    prefix.push_str(key);
                    self.bump(prefix);
                }
                Value::Nested(inner) => {
                    prefix.push_str(key);
                    prefix.push('.');
                    self.add_prefixed(prefix, inner);
                }
            }
            prefix.truncate(depth);
        }
    }

    /// Counts the top-level keys of a rendered one-level `extra` cell (a record without nested
    /// groups); a cell that is not a JSON object counts nothing.
    pub fn add_cell(&mut self, cell: &str) {
        if let Ok(pairs) = serde_json::from_str::<PairsOf<'_>>(cell) {
            for (key, _) in pairs.0 {
                self.bump(&key);
            }
        }
    }

    fn bump(&mut self, name: &str) {
        match self.0.get_mut(name) {
            Some(n) => *n += 1,
            None => {
                self.0.insert(name.to_string(), 1);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Occurrences over every name.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// The counts by name; this value starts empty again.
    pub fn take(&mut self) -> BTreeMap<String, u64> {
        std::mem::take(&mut self.0)
    }

    pub fn as_map(&self) -> &BTreeMap<String, u64> {
        &self.0
    }

    /// Drops the counts of `names`: documented keys a dataset keeps in `extra` on purpose, which
    /// are no news to warn about.
    pub fn forget(&mut self, names: &[&str]) {
        for name in names {
            self.0.remove(*name);
        }
    }
}

/// Logs once what a run of `dataset` met: the names of the unmapped fields and their
/// occurrences (nothing when there were none). The caller merges its units' counts first, so a
/// run logs one line however many units it exported.
pub fn log_unmapped(dataset: &str, counts: &BTreeMap<String, u64>) {
    if counts.is_empty() {
        return;
    }
    let fields = counts
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let occurrences: u64 = counts.values().sum();
    tracing::warn!(
        dataset,
        fields = %fields,
        occurrences,
        "The API sent fields no column maps; they are kept in the extra column (see README \"When the API changes\")."
    );
}

/// Logs the unmapped keys of a response envelope that no row of its page carries (a page with
/// no record kept: an empty day, records of another day): they are counted with the rest
/// ([`UnmappedCounts`]), but no `extra` cell keeps their values, so this line shows them.
/// Nothing when the envelope has none or `rows` of the page carry them.
pub fn log_envelope_without_rows(
    dataset: &str,
    unit: &dyn fmt::Display,
    envelope: &Unmapped<'_>,
    rows: usize,
) {
    if rows > 0 || envelope.is_empty() {
        return;
    }
    tracing::warn!(
        dataset,
        unit = %unit,
        fields = %envelope.to_json(),
        "A response envelope sent fields no column maps on a page without rows to keep them; they are counted as unmapped and shown here."
    );
}

/// A JSON object's members in order, repeated keys kept, each value as its exact text: how a
/// decoder of flat records (every member a scalar it reads or keeps in [`Unmapped`]) reads one
/// record without re-serializing anything.
pub(crate) struct PairsOf<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for PairsOf<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = PairsOf<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<super::wire::Key<'de>>()? {
                    out.push((key.0, map.next_value()?));
                }
                Ok(PairsOf(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;

    fn raw(json: &str) -> &RawValue {
        serde_json::from_str(json).expect("test JSON")
    }

    fn unmapped<'a>(pairs: &[(&'a str, &'a RawValue)]) -> Unmapped<'a> {
        let mut u = Unmapped::default();
        for (k, v) in pairs {
            u.push(Cow::Borrowed(k), v);
        }
        u
    }

    #[test]
    fn texts_mut_reaches_every_key_and_value_nested_ones_too() {
        let mut inner = Unmapped::default();
        inner.push_json(Cow::Borrowed("tier"), "2");
        let mut u = Unmapped::default();
        u.push_json(Cow::Borrowed("surprise"), "[1, 2]");
        u.push_nested(Cow::Borrowed("customerinfo"), inner);
        u.push_json(Cow::Owned("desk".to_owned()), r#""7""#);
        let mut seen = Vec::new();
        u.texts_mut(&mut |s| {
            seen.push(s.to_string());
            *s = Cow::Owned(s.to_uppercase());
        });
        assert_eq!(
            seen,
            [
                "surprise",
                "[1, 2]",
                "customerinfo",
                "tier",
                "2",
                "desk",
                "\"7\""
            ]
        );
        assert_eq!(
            u.to_json(),
            r#"{"SURPRISE":[1, 2],"CUSTOMERINFO":{"TIER":2},"DESK":"7"}"#
        );
    }

    #[test]
    fn values_keep_their_exact_text() {
        let (n, s, o) = (
            raw("-1.250E+3"),
            raw(r#""tab\t\u00e9 \/ \ud83d\ude00""#),
            raw(r#"{ "a" : [1, 2.0] }"#),
        );
        let u = unmapped(&[
            ("score", n),
            ("label", s),
            ("meta", o),
            ("gone", raw("null")),
        ]);
        assert_eq!(
            u.to_json(),
            r#"{"score":-1.250E+3,"label":"tab\t\u00e9 \/ \ud83d\ude00","meta":{ "a" : [1, 2.0] },"gone":null}"#
        );
        assert_eq!(u.clone().into_owned(), u);
    }

    #[test]
    fn an_empty_record_is_a_null_cell() {
        let mut out = String::from("stale");
        assert!(!merge_levels(&[("a", &Unmapped::default())], &mut out));
        assert_eq!(out, "");
        assert_eq!(Unmapped::default().cell(), None);
        let mut col = ExtraColumn::default();
        col.append(&[
            ("agent", &Unmapped::default()),
            ("span", &Unmapped::default()),
        ]);
        let u = unmapped(&[("x", raw("1"))]);
        col.append(&[("agent", &Unmapped::default()), ("span", &u)]);
        let a = col.finish();
        let a = a
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .expect("utf8");
        assert!(a.is_null(0));
        assert_eq!(a.value(1), r#"{"x":1}"#);
    }

    #[test]
    fn levels_merge_outermost_first_and_the_inner_level_keeps_a_shared_key() {
        let agent = unmapped(&[("note", raw(r#""a""#)), ("tier", raw("2"))]);
        let bucket = unmapped(&[("note", raw(r#""b""#))]);
        let entry = unmapped(&[("note", raw(r#""c""#)), ("flag", raw("true"))]);
        let mut out = String::new();
        assert!(merge_levels(
            &[("agent", &agent), ("bucket", &bucket), ("status", &entry)],
            &mut out
        ));
        assert_eq!(
            out,
            r#"{"agent.note":"a","tier":2,"bucket.note":"b","note":"c","flag":true}"#
        );
        // Without the collision every key stays plain.
        assert!(merge_levels(
            &[("agent", &agent), ("bucket", &Unmapped::default())],
            &mut out
        ));
        assert_eq!(out, r#"{"note":"a","tier":2}"#);
    }

    #[test]
    fn nested_groups_render_as_objects_and_count_by_path() {
        let mut session = unmapped(&[("hold", raw("0"))]);
        session.push_nested(
            Cow::Borrowed("customerinfo"),
            unmapped(&[("Age", raw("42"))]),
        );
        session.push_nested(Cow::Borrowed("campaigninfo"), Unmapped::default());
        assert_eq!(session.to_json(), r#"{"hold":0,"customerinfo":{"Age":42}}"#);
        let mut counts = UnmappedCounts::default();
        counts.add(&session);
        counts.add(&session);
        let want: BTreeMap<String, u64> = [("customerinfo.Age".to_string(), 2), ("hold".into(), 2)]
            .into_iter()
            .collect();
        assert_eq!(counts.as_map(), &want);
        assert_eq!(counts.total(), 4);
        // Two levels deep, with keys after each group: every path spelled from its own parents.
        let mut deep = unmapped(&[("a", raw("1"))]);
        let mut mid = unmapped(&[("b", raw("2"))]);
        mid.push_nested(Cow::Borrowed("inner"), unmapped(&[("c", raw("3"))]));
        mid.push_json(Cow::Borrowed("d"), "4");
        deep.push_nested(Cow::Borrowed("outer"), mid);
        deep.push_json(Cow::Borrowed("e"), "5");
        let mut paths = UnmappedCounts::default();
        paths.add(&deep);
        let names: Vec<&str> = paths.as_map().keys().map(String::as_str).collect();
        assert_eq!(names, ["a", "e", "outer.b", "outer.d", "outer.inner.c"]);
        assert_eq!(counts.take(), want);
        assert!(counts.is_empty());
    }

    #[test]
    fn a_rendered_cell_counts_its_top_level_keys() {
        let mut counts = UnmappedCounts::default();
        counts.add_cell(r#"{"a":{"b":1},"c":null,"a":2}"#);
        counts.add_cell("not json");
        counts.add_cell("[1]");
        let want: BTreeMap<String, u64> = [("a".to_string(), 2), ("c".into(), 1)]
            .into_iter()
            .collect();
        assert_eq!(counts.as_map(), &want);
    }
}
