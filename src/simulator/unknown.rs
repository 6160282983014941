//! Fields the exporter does not know, as an API that grew new fields would send them: with
//! [`super::SimulatorConfig::unknown_fields`] set, every model adds [`fields`] to every level of
//! its records (an agent, its bucket and status entry; a session, its queue entry and agent
//! leg; nested objects such as `customerinfo` too). The values cover every JSON type, written
//! in forms a re-serialization would change (escapes, an exponent, trailing zeros, a number no
//! integer or float type holds, spaces inside an object), so a row's `extra` matches them only
//! if it keeps them exactly as sent. One key, `apiRevision`, is sent at every level, so rows
//! built from several levels exercise the exporter's rule for a key two levels share. Models
//! whose records sit in a response envelope whose other keys the exporter keeps
//! (`contact_volume`, `agent_performance`) add [`envelope_fields`] to it, level `response`.
//!
//! The truth of each model states the `extra` each expected row must hold
//! ([`super::truth::ExpectedRow::extra`]) with [`expected_extra`], from the same fields plus the
//! model's own untyped fields (e.g. UserStatus' `isSupervisor`), merged by the exporter's
//! documented rule (README "When the API changes").

use serde_json::{Map, Value};

use super::truth::ExpectedExtra;

/// The key every level carries (see the module docs).
pub const SHARED_KEY: &str = "apiRevision";

/// Values whose text a re-serialization would change, by suffix of their key.
const EXOTIC: [(&str, &str); 5] = [
    (
        "Label",
        r#""tab\there \"quoted\" back\\slash \u00e9 \ud83d\ude00 \/""#,
    ),
    ("Score", "-1.250E+3"),
    ("Big", "123456789012345678901234567890"),
    (
        "Meta",
        r#"{ "depth": {"items": [1, 2.50, "x"]}, "on" : false }"#,
    ),
    ("Tags", r#"[ "a", 1, null, true ]"#),
];

/// The unknown fields of the record at `level` (a lower-camel level name of the model, e.g.
/// `agent`) identified by `id`, in the order they are sent: `(key, exact JSON text)`.
pub fn fields(level: &str, id: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = EXOTIC
        .iter()
        .map(|(suffix, json)| (format!("{level}{suffix}"), (*json).to_string()))
        .collect();
    out.push((format!("{level}Gone"), "null".into()));
    out.push((format!("{level}Flag"), "true".into()));
    out.push((format!("{level}Ref"), json_str(id)));
    out.push((SHARED_KEY.to_string(), json_str(level)));
    out
}

/// The unknown fields of the response envelope of `api` (level `response`): the same on every
/// page, so every row of a day carries them whichever page it came on.
pub fn envelope_fields(api: &str) -> Vec<(String, String)> {
    fields("response", api)
}

fn json_str(s: &str) -> String {
    let mut out = String::new();
    super::render::push_json_str(&mut out, s);
    out
}

/// Appends `,"key":value` for every field of `fields` (for renderers writing JSON text).
pub(crate) fn push_members(out: &mut String, fields: &[(String, String)]) {
    for (key, json) in fields {
        out.push(',');
        super::render::push_json_str(out, key);
        out.push(':');
        out.push_str(json);
    }
}

/// Marks a value [`splice`] replaces by its exact text: serde_json escapes the NUL, so the
/// marker never occurs in a rendered string otherwise.
const MARK: &str = "\u{0}unknown:";

/// Inserts `fields` into `map` (for renderers building `serde_json` values): the values
/// serde_json would write differently are inserted as markers that [`splice`] replaces in the
/// rendered text.
pub(crate) fn insert(map: &mut Map<String, Value>, fields: &[(String, String)]) {
    for (key, json) in fields {
        let value = match EXOTIC.iter().position(|(_, text)| text == json) {
            Some(i) => Value::String(format!("{MARK}{i}")),
            // Plain strings, null and booleans render exactly as given.
            None => serde_json::from_str(json).unwrap_or(Value::Null),
        };
        map.insert(key.clone(), value);
    }
}

/// Replaces the markers [`insert`] left in a rendered body by their exact text.
pub(crate) fn splice(body: String) -> String {
    if !body.contains("\\u0000unknown:") {
        return body;
    }
    let mut out = body;
    for (i, (_, json)) in EXOTIC.iter().enumerate() {
        out = out.replace(&format!("\"\\u0000unknown:{i}\""), json);
    }
    out
}

/// The unmapped fields of one level of an expected row, as the truth states them.
#[derive(Debug, Clone, Default)]
pub struct LevelFields {
    /// The exporter's name of the level (qualifies a key an inner level also has).
    pub name: &'static str,
    /// Top-level fields: `(key, exact JSON text)`.
    pub fields: Vec<(String, String)>,
    /// Fields of mapped objects, nested under the object's key.
    pub nested: Vec<(String, Vec<(String, String)>)>,
}

impl LevelFields {
    pub fn new(name: &'static str) -> LevelFields {
        LevelFields {
            name,
            ..LevelFields::default()
        }
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        self.fields
            .iter()
            .map(|(k, _)| k.as_str())
            .chain(self.nested.iter().map(|(k, _)| k.as_str()))
    }
}

/// The `extra` a row built from `levels` (outermost first) holds: every field by its path,
/// a key that an inner level also has qualified as `<level>.<key>`.
pub fn expected_extra(levels: &[LevelFields]) -> ExpectedExtra {
    let mut out = ExpectedExtra::new();
    for (i, level) in levels.iter().enumerate() {
        let shadowed = |key: &str| levels[i + 1..].iter().any(|l| l.keys().any(|k| k == key));
        let name = |key: &str| {
            if shadowed(key) {
                format!("{}.{key}", level.name)
            } else {
                key.to_string()
            }
        };
        for (key, json) in &level.fields {
            out.insert(vec![name(key)], json.clone());
        }
        for (group, fields) in &level.nested {
            for (key, json) in fields {
                out.insert(vec![name(group), key.clone()], json.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_json_and_markers_splice_back_to_the_exact_text() {
        let f = fields("agent", "u-\"1\"");
        for (_, json) in &f {
            serde_json::from_str::<serde_json::Value>(json).expect(json);
        }
        let mut map = Map::new();
        insert(&mut map, &f);
        let body = splice(Value::Object(map).to_string());
        let mut parsed: Vec<(String, String)> = serde_json::from_str::<
            std::collections::BTreeMap<String, &serde_json::value::RawValue>,
        >(&body)
        .expect("object")
        .into_iter()
        .map(|(k, v)| (k, v.get().to_string()))
        .collect();
        parsed.sort();
        let mut want = f.clone();
        want.sort();
        assert_eq!(parsed, want);
        let mut text = String::from("{\"a\":1");
        push_members(&mut text, &f);
        text.push('}');
        serde_json::from_str::<serde_json::Value>(&text).expect("members");
    }

    #[test]
    fn a_shared_key_is_qualified_on_every_level_but_the_innermost() {
        let mut outer = LevelFields::new("session");
        outer.fields = vec![("a".into(), "1".into()), ("k".into(), "2".into())];
        outer.nested = vec![("customerinfo".into(), vec![("k".into(), "3".into())])];
        let mut inner = LevelFields::new("agent");
        inner.fields = vec![("k".into(), "4".into())];
        let got = expected_extra(&[outer, LevelFields::new("destination"), inner]);
        let want: ExpectedExtra = [
            (vec!["a".to_string()], "1".to_string()),
            (vec!["session.k".into()], "2".into()),
            (vec!["customerinfo".into(), "k".into()], "3".into()),
            (vec!["k".into()], "4".into()),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want);
    }
}
