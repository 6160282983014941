//! The whole config file loaded with every registered dataset's section: the shared rules of
//! [`crate::config::section`] (the account zone, `[api]` aliases), problems across sections,
//! the shipped `config.toml`, and the documented defaults of every section (the README's rows
//! for the shared sections, each dataset's page `docs/datasets/<name>.md` for its own section,
//! `config.toml` comments, and that each documented value is the one the code uses).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono_tz::Tz;

use super::agent_status_details::AgentStatusDetailsConfig;
use super::call_details::CallDetailsConfig;
use super::intent_realtime::IntentConfig;
use super::user_status::UserStatusConfig;
use super::{config_from_toml, load_config, REGISTRY};
use crate::config::{defaults, BaseUrl, Config, ConfigError, ConfigProblem};
use crate::model::Granularity;

const MINIMAL: &str = r#"
[api]
base_url = "https://platform.kore.ai"
account_id = "acct-1"
iid = "st-1"
client_id = "cs-1"
[output]
url = "file:///tmp/out"
"#;

fn load(text: &str) -> Result<Config, ConfigError> {
    config_from_toml(text, Path::new("/etc/x/config.toml"), Some("s3cr3t".into()))
}

fn problems(text: &str) -> Vec<ConfigProblem> {
    match load(text) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected validation problems, got {other:?}"),
    }
}

fn keys(text: &str) -> Vec<String> {
    problems(text).into_iter().map(|p| p.key).collect()
}

fn section<S: crate::config::DatasetSection + Clone>(c: &Config) -> S {
    c.section::<S>().cloned().expect("section loaded")
}

#[test]
fn minimal_config_gets_every_dataset_section_with_its_defaults() {
    let c = load(MINIMAL).expect("valid");
    let names: Vec<&str> = c.datasets.names().collect();
    let mut expected = super::names();
    expected.sort_unstable();
    assert_eq!(names, expected);
    let us: UserStatusConfig = section(&c);
    assert_eq!(us.granularity, Granularity::PT30M);
    assert_eq!(us.keys.timezone, Tz::UTC);
    assert_eq!(
        us.path,
        "/agentassist/api/public/analytics/account/acct-1/userstatus"
    );
    assert!(!section::<IntentConfig>(&c).enabled);
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let text = r#"
[api]
base_url = "ftp://x"
iid = "st-1"
client_id = "cs-1"
[output]
url = "gs://bucket"
[user_status]
granularity = "PT5M"
schedule = "*/5 * * * *"
timezone = "Mars/Olympus"
"#;
    let keys = keys(text);
    for key in [
        "api.base_url",
        "api.account_id",
        "output.url",
        "user_status.granularity",
        "user_status.schedule",
        "user_status.timezone",
    ] {
        assert!(
            keys.contains(&key.to_string()),
            "{key} missing from {keys:?}"
        );
    }
}

#[test]
fn path_traversal_ids_are_rejected() {
    let text = MINIMAL.replace("acct-1", "../etc")
        + "\n[intent_realtime]\nbot_ids = [\"a/b\", \"..\", \"\"]\n";
    let keys = keys(&text);
    for key in [
        "api.account_id",
        "intent_realtime.bot_ids[0]",
        "intent_realtime.bot_ids[1]",
        "intent_realtime.bot_ids[2]",
    ] {
        assert!(keys.contains(&key.to_string()), "{key} missing: {keys:?}");
    }
}

#[test]
fn daemon_keys_have_documented_defaults_and_are_validated() {
    let c = load(MINIMAL).expect("valid");
    let us: UserStatusConfig = section(&c);
    let intent: IntentConfig = section(&c);
    assert_eq!(us.keys.schedule_timezone, Tz::UTC);
    assert_eq!(us.keys.max_days_per_run, 7);
    assert_eq!(intent.schedule_timezone, Tz::UTC);
    assert_eq!(intent.gap_poll_interval, Some(Duration::from_secs(10)));
    let text = format!(
        "{MINIMAL}\n[user_status]\nlookback_days = 3\nmax_days_per_run = 3\nschedule_timezone = \"Europe/Berlin\"\n\
         [intent_realtime]\ngap_poll_interval_seconds = 0\n[server]\nunhealthy_after_intervals = 0\n"
    );
    assert_eq!(
        keys(&text),
        [
            "server.unhealthy_after_intervals",
            "user_status.max_days_per_run"
        ]
    );
    let text = format!(
        "{MINIMAL}\n[user_status]\nschedule_timezone = \"Europe/Berlin\"\n[intent_realtime]\ngap_poll_interval_seconds = 0\n"
    );
    let c = load(&text).expect("valid");
    assert_eq!(
        section::<UserStatusConfig>(&c).keys.schedule_timezone,
        chrono_tz::Europe::Berlin
    );
    assert_eq!(section::<IntentConfig>(&c).gap_poll_interval, None);
}

#[test]
fn mistakes_in_several_sections_are_all_reported_without_noise() {
    let text = format!(
        "{MINIMAL}\n[server]\nport = 3\n[user_status]\nlookback_days = \"one\"\n[bogus]\nx = 1\n"
    );
    let p = problems(&text);
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        ["server.port", "bogus", "user_status.lookback_days"],
        "{p:?}"
    );
    assert!(p[0].message.contains("port"), "{}", p[0].message);
}

#[test]
fn an_unknown_key_is_named_itself_wherever_it_sorts() {
    // Sections are re-serialized with their keys sorted: the key named must be the one on
    // the error's line, not its neighbour.
    let text = MINIMAL.replace("[api]", "[api]\nzzz = 1");
    assert_eq!(keys(&text), ["api.zzz"]);
    let text = format!("{MINIMAL}\n[user_status]\nlookback_days = 3\nschedul = \"x\"\n");
    assert_eq!(keys(&text), ["user_status.schedul"]);
    // A valid alias beside a typo in its dataset's section is kept, the typo named once.
    let text = format!(
        "{}\n[user_status]\nschedul = \"x\"\n",
        MINIMAL.replace(
            "[api]",
            "[api]\nuser_status_path = \"/a/{account_id}/userstatus\""
        )
    );
    assert_eq!(keys(&text), ["user_status.schedul"]);
}

#[test]
fn api_path_keys_are_aliases_of_the_dataset_paths() {
    let text = MINIMAL.replace(
        "[api]",
        "[api]\nuser_status_path = \"/agentassist/api/public/analytics/1.1/account/{account_id}/userstatus\"\nintent_path = \"/api/1.1/public/bot/{bot_id}/intentrealtimedata\"",
    );
    let c = load(&text).expect("valid");
    assert_eq!(
        section::<UserStatusConfig>(&c).path,
        "/agentassist/api/public/analytics/1.1/account/acct-1/userstatus"
    );
    assert_eq!(
        section::<IntentConfig>(&c).path,
        "/api/1.1/public/bot/{bot_id}/intentrealtimedata"
    );
    // A bad value is named by the key as written.
    let text = MINIMAL.replace("[api]", "[api]\nuser_status_path = \"userstatus\"");
    assert_eq!(keys(&text), ["api.user_status_path"]);
    let text = MINIMAL.replace("[api]", "[api]\nintent_path = \"/no-placeholder\"");
    assert_eq!(keys(&text), ["api.intent_path"]);
    // Both spellings at once is a mistake, whatever the values.
    let text = format!(
        "{}\n[user_status]\npath = \"/a/{{account_id}}/userstatus\"\n",
        MINIMAL.replace(
            "[api]",
            "[api]\nuser_status_path = \"/a/{account_id}/userstatus\""
        )
    );
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "api.user_status_path");
    assert!(
        p[0].message.contains("user_status.path"),
        "{}",
        p[0].message
    );
}

#[test]
fn an_alias_of_the_wrong_type_hides_no_other_problem_of_its_section() {
    let text = format!(
        "{}\n[user_status]\nlookback_days = 400\n",
        MINIMAL.replace("[api]", "[api]\nuser_status_path = 5")
    );
    assert_eq!(
        keys(&text),
        [
            "api.user_status_path",
            "user_status.lookback_days",
            "user_status.max_days_per_run"
        ]
    );
}

#[test]
fn every_section_zone_defaults_to_the_account_zone() {
    // Legacy rule: `[user_status] timezone` stands for the account zone.
    let text = format!("{MINIMAL}\n[user_status]\ntimezone = \"America/New_York\"\n");
    let c = load(&text).expect("valid");
    let ny = chrono_tz::America::New_York;
    assert_eq!(c.api.timezone, ny);
    assert_eq!(section::<IntentConfig>(&c).timezone, ny);
    assert_eq!(section::<AgentStatusDetailsConfig>(&c).keys.timezone, ny);
    assert_eq!(section::<CallDetailsConfig>(&c).keys.timezone, ny);
    // `[api] timezone` wins over the legacy rule; a section's own zone wins over both.
    let text = format!(
        "{}\n[user_status]\ntimezone = \"America/New_York\"\n[call_details]\ntimezone = \"Asia/Kolkata\"\n",
        MINIMAL.replace("[api]", "[api]\ntimezone = \"Europe/Berlin\"")
    );
    let c = load(&text).expect("valid");
    assert_eq!(c.api.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(section::<UserStatusConfig>(&c).keys.timezone, ny);
    assert_eq!(
        section::<AgentStatusDetailsConfig>(&c).keys.timezone,
        chrono_tz::Europe::Berlin
    );
    assert_eq!(
        section::<CallDetailsConfig>(&c).keys.timezone,
        chrono_tz::Asia::Kolkata
    );
}

#[test]
fn shipped_config_parses_and_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let c = load_config(&path, None).expect("shipped config.toml is valid");
    assert_eq!(c.api.base_url, BaseUrl::Simulator);
    assert!(section::<UserStatusConfig>(&c).keys.enabled);
}

/// `(full key, documented default)` of every shared and dataset section.
fn documented_defaults() -> Vec<(String, &'static str)> {
    let shared = defaults::TABLE.iter().map(|(k, v)| (k.to_string(), *v));
    let own = REGISTRY.iter().flat_map(|d| d.config.full_defaults());
    shared.chain(own).collect()
}

#[test]
fn writing_every_documented_default_validates_as_leaving_it_out() {
    // Keys some defaults depend on: S3 output (the S3 client keys) and a JWE key (the JWE keys).
    let jwk = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwe/public.jwk.json");
    let mut base: BTreeMap<String, Vec<String>> = BTreeMap::new();
    base.insert(
        "api".into(),
        MINIMAL
            .lines()
            .skip(2)
            .take(4)
            .map(str::to_string)
            .collect(),
    );
    base.insert("output".into(), vec!["url = \"s3://bucket/lake\"".into()]);
    base.insert(
        "auth".into(),
        vec![format!(
            "jwe_public_key_file = {:?}",
            jwk.display().to_string()
        )],
    );
    let render = |sections: &BTreeMap<String, Vec<String>>| {
        sections
            .iter()
            .map(|(name, lines)| format!("[{name}]\n{}\n", lines.join("\n")))
            .collect::<String>()
    };
    let mut explicit = base.clone();
    for (key, value) in documented_defaults() {
        let (section, name) = key.split_once('.').expect("section.key");
        explicit
            .entry(section.to_string())
            .or_default()
            .push(format!("{name} = {value}"));
    }
    let implicit = load(&render(&base)).expect("base config");
    let explicit = render(&explicit);
    let written = load(&explicit).unwrap_or_else(|e| panic!("{e}\n{explicit}"));
    assert_eq!(
        format!("{written:?}"),
        format!("{implicit:?}"),
        "a documented default is not the code's default"
    );
}

/// The text of the `heading` section of `markdown` (up to the next heading of its level).
fn markdown_section<'a>(markdown: &'a str, heading: &str) -> Option<&'a str> {
    let level = heading.split(' ').next().unwrap_or_default();
    let start = markdown.find(&format!("{heading}\n"))?;
    let section = &markdown[start..];
    let next = format!("\n{level} ");
    let end = section[heading.len()..]
        .find(&next)
        .map_or(section.len(), |i| i + heading.len());
    Some(&section[..end])
}

/// `| \`key\` | \`default\` | meaning |` rows of a configuration table.
fn documented_rows(section: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 5 || !cells[1].starts_with('`') {
            continue;
        }
        out.insert(
            cells[1].trim_matches('`').to_string(),
            cells[2].trim_matches('`').to_string(),
        );
    }
    out
}

/// The rows of the README's configuration reference: the shared sections' keys.
fn readme_rows() -> BTreeMap<String, String> {
    let readme = include_str!("../../README.md");
    let section = markdown_section(readme, "## Configuration reference")
        .expect("README has a configuration reference");
    documented_rows(section)
}

/// A dataset's page, `docs/datasets/<name>.md`, found by the dataset's name at run time, so a
/// new dataset needs no edit here.
fn dataset_page(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("docs/datasets/{name}.md"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("[{name}] has no page {}: {e}", path.display()))
}

/// The rows of the configuration table on a dataset's page (`## Configuration: \`[name]\``).
fn page_rows(name: &str) -> BTreeMap<String, String> {
    let page = dataset_page(name);
    let heading = format!("## Configuration: `[{name}]`");
    let section = markdown_section(&page, &heading)
        .unwrap_or_else(|| panic!("docs/datasets/{name}.md has no \"{heading}\" section"));
    documented_rows(section)
}

fn assert_shown(rows: &BTreeMap<String, String>, key: &str, value: &str, place: &str) {
    let shown = rows
        .get(key)
        .unwrap_or_else(|| panic!("{place}: the configuration table lacks {key}"));
    // The docs show strings without TOML quotes.
    assert_eq!(shown, value.trim_matches('"'), "{place}: default of {key}");
}

#[test]
fn the_docs_show_every_default() {
    let readme = readme_rows();
    for (key, value) in defaults::TABLE {
        assert_shown(&readme, key, value, "README");
    }
    for d in REGISTRY {
        let page = page_rows(d.name);
        let place = format!("docs/datasets/{}.md", d.name);
        for (key, value) in d.config.full_defaults() {
            assert_shown(&page, &key, value, &place);
        }
        for key in page.keys() {
            assert!(
                key.starts_with(&format!("{}.", d.name)),
                "{place}: {key} is not a key of [{}]",
                d.name
            );
        }
    }
}

#[test]
fn dataset_keys_are_documented_on_their_page_only() {
    for key in readme_rows().keys() {
        if let Some(d) = REGISTRY
            .iter()
            .find(|d| key.starts_with(&format!("{}.", d.name)))
        {
            panic!(
                "README documents {key}: a dataset's keys belong on docs/datasets/{}.md",
                d.name
            );
        }
    }
}

#[test]
fn commented_defaults_in_the_shipped_config_match() {
    let text = include_str!("../../config.toml");
    let table = documented_defaults();
    let mut section = "";
    let mut checked = 0;
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name;
            continue;
        }
        // `# key = value` lines show a default the file leaves unset.
        let Some((key, value)) = line.strip_prefix("# ").and_then(|l| l.split_once(" = ")) else {
            continue;
        };
        let full = format!("{section}.{key}");
        if let Some((_, default)) = table.iter().find(|(k, _)| *k == full) {
            assert_eq!(
                value, *default,
                "config.toml shows a wrong default for {full}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "config.toml shows no commented default");
}

#[test]
fn every_registered_section_is_on_its_page_and_in_the_shipped_config() {
    let shipped = include_str!("../../config.toml");
    for d in REGISTRY {
        let name = d.config.name;
        assert_eq!(name, d.name, "a dataset reads the section of its name");
        assert!(
            !page_rows(name).is_empty(),
            "docs/datasets/{name}.md documents no key of [{name}]"
        );
        assert!(
            shipped.contains(&format!("[{name}]")),
            "config.toml has no [{name}] section"
        );
    }
}
