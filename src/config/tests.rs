//! Tests of the shared sections' parsing and validation: defaults, every problem at once with
//! its key, secrets, files. The loader is given no dataset section here; loading with every
//! registered section (aliases, the account zone, the shipped config, the documented defaults)
//! is tested in `datasets::config_tests`.

use std::time::Duration;

use chrono_tz::Tz;

use super::*;
use crate::auth::jwe::{ContentEncryption, KeyAlgorithm};

const MINIMAL: &str = r#"
[api]
base_url = "https://platform.kore.ai"
account_id = "acct-1"
iid = "st-1"
client_id = "cs-1"
[output]
url = "file:///tmp/out"
"#;

fn load(text: &str, secret: Option<&str>) -> Result<Config, ConfigError> {
    Config::from_toml(
        text,
        Path::new("/etc/x/config.toml"),
        secret.map(String::from),
        &[],
    )
}

fn problems(text: &str) -> Vec<ConfigProblem> {
    match load(text, Some("s3cr3t")) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected validation problems, got {other:?}"),
    }
}

#[test]
fn minimal_config_gets_documented_defaults() {
    let c = load(MINIMAL, Some("s3cr3t")).expect("valid");
    assert_eq!(c.api.requests_per_minute, 60);
    assert_eq!(c.api.timezone, Tz::UTC);
    assert_eq!(c.datasets.names().count(), 0);
    assert_eq!(c.output, OutputLocation::Local(PathBuf::from("/tmp/out")));
    assert_eq!(
        c.api
            .client_secret
            .as_ref()
            .map(Secret::expose)
            .unwrap_or_default(),
        "s3cr3t"
    );
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
[server]
listen = "nowhere"
"#;
    let keys: Vec<String> = problems(text).into_iter().map(|p| p.key).collect();
    for key in [
        "api.base_url",
        "api.account_id",
        "output.url",
        "server.listen",
    ] {
        assert!(
            keys.contains(&key.to_string()),
            "{key} missing from {keys:?}"
        );
    }
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let text = format!("{MINIMAL}\n[server]\nlisten = \"127.0.0.1:1\"\nport = 3\n");
    let err = load(&text, Some("x")).expect_err("unknown key");
    let msg = err.to_string();
    assert!(msg.contains("port"), "{msg}");
}

#[test]
fn inline_secret_is_refused_with_guidance() {
    let text = MINIMAL.replace(
        "client_id = \"cs-1\"",
        "client_id = \"cs-1\"\nclient_secret = \"hunter2\"",
    );
    let p = problems(&text);
    let msg = &p
        .iter()
        .find(|p| p.key == "api.client_secret")
        .expect("problem")
        .message;
    assert!(msg.contains("client_secret_file") && msg.contains(SECRET_ENV));
    assert!(!msg.contains("hunter2"));
}

#[test]
fn env_secret_wins_over_file_and_file_is_read_relative_to_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("secret.txt"), "from-file\n").expect("write");
    let text = MINIMAL.replace(
        "client_id = \"cs-1\"",
        "client_id = \"cs-1\"\nclient_secret_file = \"secret.txt\"",
    );
    let path = dir.path().join("config.toml");
    let c = Config::from_toml(&text, &path, None, &[]).expect("valid");
    assert_eq!(
        c.api
            .client_secret
            .as_ref()
            .map(Secret::expose)
            .unwrap_or_default(),
        "from-file"
    );
    let c = Config::from_toml(&text, &path, Some("from-env".into()), &[]).expect("valid");
    assert_eq!(
        c.api
            .client_secret
            .as_ref()
            .map(Secret::expose)
            .unwrap_or_default(),
        "from-env"
    );
}

#[test]
fn missing_secret_is_an_error_except_for_the_simulator() {
    let p = match load(MINIMAL, None) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected problems, got {other:?}"),
    };
    assert_eq!(p[0].key, "api.client_secret_file");
    let sim = MINIMAL.replace("https://platform.kore.ai", "simulator");
    let c = load(&sim, None).expect("simulator needs no secret");
    assert_eq!(c.api.base_url, BaseUrl::Simulator);
}

#[test]
fn s3_url_is_split_into_bucket_and_prefix() {
    let text = MINIMAL.replace("file:///tmp/out", "s3://my-bucket/lake/kore/");
    let c = load(&text, Some("x")).expect("valid");
    assert_eq!(
        c.output,
        OutputLocation::S3 {
            bucket: "my-bucket".into(),
            prefix: "lake/kore".into(),
            endpoint: None,
            region: None,
            allow_http: false,
            tuning: crate::config::StoreTuning::default(),
        }
    );
}

#[test]
fn jti_requires_ttl_within_an_hour() {
    let text = format!("{MINIMAL}\n[auth]\nenforce_jti = true\ntoken_ttl_seconds = 7200\n");
    assert_eq!(problems(&text)[0].key, "auth.token_ttl_seconds");
}

#[test]
fn secret_debug_and_display_are_redacted() {
    let s = Secret::new("hunter2");
    assert!(!format!("{s:?}").contains("hunter2"));
    assert!(!format!("{s}").contains("hunter2"));
    let c = load(MINIMAL, Some("hunter2")).expect("valid");
    assert!(!format!("{c:?}").contains("hunter2"));
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwe")
        .join(name)
}

#[test]
fn jwe_keys_are_validated_and_default_to_rsa_oaep_a128cbc_hs256() {
    let jwk = fixture("public.jwk.json");
    let text = format!(
        "{MINIMAL}\n[auth]\njwe_public_key_file = {:?}\n",
        jwk.display().to_string()
    );
    let c = load(&text, Some("x")).expect("valid");
    let jwe = c.auth.jwe.expect("jwe on");
    assert_eq!(jwe.alg, KeyAlgorithm::RsaOaep);
    assert_eq!(jwe.enc, ContentEncryption::A128CbcHs256);
    assert_eq!(jwe.recipient.kid, "k-test-fixture-0001");

    let pem = fixture("public.pem");
    let text = format!(
        "{MINIMAL}\n[auth]\njwe_public_key_file = {:?}\njwe_alg = \"RSA1_5\"\njwe_enc = \"A256GCM\"\njwe_kid = \"k-1\"\n",
        pem.display().to_string()
    );
    let jwe = load(&text, Some("x")).expect("valid").auth.jwe.expect("on");
    assert_eq!(
        (jwe.alg, jwe.enc, jwe.recipient.kid.as_str()),
        (KeyAlgorithm::Rsa1_5, ContentEncryption::A256Gcm, "k-1")
    );

    // PEM without a kid, an unknown alg and enc: every problem named.
    let text = format!(
        "{MINIMAL}\n[auth]\njwe_public_key_file = {:?}\njwe_alg = \"RSA-OAEP-256\"\njwe_enc = \"A192GCM\"\n",
        pem.display().to_string()
    );
    let keys: Vec<String> = problems(&text).into_iter().map(|p| p.key).collect();
    assert_eq!(keys, ["auth.jwe_alg", "auth.jwe_enc", "auth.jwe_kid"]);
    // Parameters without a key file are a mistake, not silently ignored.
    let text = format!("{MINIMAL}\n[auth]\njwe_enc = \"A128GCM\"\n");
    assert_eq!(problems(&text)[0].key, "auth.jwe_public_key_file");
    let text = format!("{MINIMAL}\n[auth]\njwe_public_key_file = \"/nonexistent/k.json\"\n");
    assert_eq!(problems(&text)[0].key, "auth.jwe_public_key_file");
}

#[test]
fn plain_http_is_refused_except_loopback_or_explicit_opt_in() {
    for url in [
        "http://127.0.0.1:8900",
        "http://127.1.2.3",
        "http://localhost:1",
        "http://[::1]:80",
        "https://platform.kore.ai",
    ] {
        let text = MINIMAL.replace("https://platform.kore.ai", url);
        assert!(load(&text, Some("x")).is_ok(), "{url}");
    }
    for url in [
        "http://platform.kore.ai",
        "http://10.0.0.1",
        "http://localhost.evil.com",
    ] {
        let text = MINIMAL.replace("https://platform.kore.ai", url);
        let p = problems(&text);
        assert_eq!(p[0].key, "api.base_url", "{url}");
        assert!(
            p[0].message.contains("allow_insecure_http"),
            "{}",
            p[0].message
        );
        let text = text.replace("[api]", "[api]\nallow_insecure_http = true");
        assert!(load(&text, Some("x")).is_ok(), "{url} with opt-in");
    }
}

#[test]
fn ca_bundle_must_hold_pem_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").expect("write");
    let text = MINIMAL.replace(
        "[api]",
        &format!("[api]\nca_bundle_file = {:?}", bad.display().to_string()),
    );
    assert_eq!(problems(&text)[0].key, "api.ca_bundle_file");
    let text = MINIMAL.replace("[api]", "[api]\nca_bundle_file = \"/nonexistent/ca.pem\"");
    assert_eq!(problems(&text)[0].key, "api.ca_bundle_file");
}

#[test]
fn server_keys_have_documented_defaults_and_are_validated() {
    let c = load(MINIMAL, Some("x")).expect("valid");
    assert_eq!(c.server.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(c.server.unhealthy_after_intervals, 3);
    let text = format!(
        "{MINIMAL}\n[server]\nunhealthy_after_intervals = 0\nshutdown_timeout_seconds = 0\n"
    );
    let keys: Vec<String> = problems(&text).into_iter().map(|p| p.key).collect();
    assert_eq!(
        keys,
        vec![
            "server.shutdown_timeout_seconds",
            "server.unhealthy_after_intervals"
        ]
    );
}

#[test]
fn a_dataset_section_without_its_spec_is_an_unknown_section() {
    let text = format!("{MINIMAL}\n[user_status]\nenabled = true\n");
    let p = problems(&text);
    assert_eq!(p[0].key, "user_status");
    assert!(p[0].message.contains("unknown section"), "{}", p[0].message);
}

#[test]
fn the_account_zone_is_api_timezone_and_is_validated() {
    let text = MINIMAL.replace("[api]", "[api]\ntimezone = \"Asia/Kolkata\"");
    let c = load(&text, Some("x")).expect("valid");
    assert_eq!(c.api.timezone, chrono_tz::Asia::Kolkata);
    let text = MINIMAL.replace("[api]", "[api]\ntimezone = \"Mars/Olympus\"");
    assert_eq!(problems(&text)[0].key, "api.timezone");
}

#[test]
fn the_page_gate_bound_is_bytes_between_one_kib_and_four_gib() {
    let with = |value: &str| {
        MINIMAL.replace(
            "cs-1\"\n",
            &format!("cs-1\"\npage_memory_bytes = {value}\n"),
        )
    };
    assert_eq!(
        load(MINIMAL, Some("s3cr3t"))
            .expect("valid")
            .api
            .page_memory_bytes,
        1024 * 1024
    );
    assert_eq!(
        load(&with("1024"), Some("s3cr3t"))
            .expect("valid")
            .api
            .page_memory_bytes,
        1024
    );
    assert_eq!(
        load(&with("4294967295"), Some("s3cr3t"))
            .expect("valid")
            .api
            .page_memory_bytes,
        u32::MAX
    );
    for bad in ["0", "1023", "4294967296"] {
        let keys: Vec<String> = problems(&with(bad)).into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["api.page_memory_bytes"], "{bad}");
    }
}
