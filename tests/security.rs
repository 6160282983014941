//! Security options end to end through the built binary: JWE tokens checked by an independent
//! JOSE implementation (Python jwcrypto), backfills against the simulator in JTI and JWE modes
//! under injected faults, secrets and tokens never reaching the output, path-traversal ids and
//! plain-http URLs refused as config errors, and proxies honoured.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono_tz::Tz;
use common::*;
use smartassist_export::model::Granularity;
use smartassist_export::simulator::faults::{EveryNth, FaultKind, FaultPlan};
use smartassist_export::simulator::jwe::SimJwe;
use smartassist_export::simulator::SimulatorConfig;

const NY: Tz = chrono_tz::America::New_York;
const KID: &str = "k-test-fixture-0001";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwe")
        .join(name)
}

fn private_key_text() -> String {
    std::fs::read_to_string(fixture("private.pem")).expect("fixture key")
}

fn auth_section(enforce_jti: bool, jwe: Option<(&str, &str)>) -> String {
    let mut s = format!("[auth]\nenforce_jti = {enforce_jti}\n");
    if let Some((alg, enc)) = jwe {
        s += &format!(
            "jwe_public_key_file = {:?}\njwe_alg = {alg:?}\njwe_enc = {enc:?}\n",
            fixture("public.jwk.json").display().to_string()
        );
    }
    s
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn all_output(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `python3` with jwcrypto, or `None` when the developer opted out with SMARTASSIST_SKIP_PY=1.
/// Missing tools fail the test otherwise (CI installs them in .ci/run).
fn python_with_jwcrypto() -> Option<&'static str> {
    if std::env::var("SMARTASSIST_SKIP_PY").is_ok_and(|v| v == "1") {
        eprintln!("SMARTASSIST_SKIP_PY=1: skipping the jwcrypto interoperability check");
        return None;
    }
    let ok = Command::new("python3")
        .args(["-c", "import jwcrypto"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 with jwcrypto is required (pip install jwcrypto), or set SMARTASSIST_SKIP_PY=1"
    );
    Some("python3")
}

#[test]
fn jwe_tokens_decrypt_and_verify_with_jwcrypto() {
    let Some(python) = python_with_jwcrypto() else {
        return;
    };
    // jwcrypto enforces RFC 7518's minimum HS256 key length (256 bits), as platform-generated
    // secrets satisfy; the simulator's short demo secret would not.
    let secret = "interop-secret-0123456789-abcdefghijklmnop";
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/jwe_decrypt.py");
    let tmp = tempfile::tempdir().expect("tmp");
    for alg in ["RSA-OAEP", "RSA1_5"] {
        for enc in ["A128CBC-HS256", "A128GCM", "A256GCM"] {
            let config = write_config(
                tmp.path(),
                "https://platform.kore.ai",
                &tmp.path().join("out"),
                &auth_section(true, Some((alg, enc))),
            );
            let tokens: Vec<String> = (0..3)
                .map(|_| {
                    let out = Command::new(BIN)
                        .arg("-c")
                        .arg(&config)
                        .arg("token")
                        .env("SMARTASSIST_CLIENT_SECRET", secret)
                        .output()
                        .expect("binary runs");
                    assert_success(&out);
                    stdout_of(&out).trim().to_string()
                })
                .collect();
            let mut child = Command::new(python)
                .arg(&script)
                .arg(fixture("private.pem"))
                .arg(secret)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("python3 runs");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(tokens.join("\n").as_bytes())
                .expect("write tokens");
            let out = child.wait_with_output().expect("python finishes");
            assert!(
                out.status.success(),
                "jwcrypto refused a {alg}/{enc} token:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let mut jtis = HashSet::new();
            let lines: Vec<serde_json::Value> = stdout_of(&out)
                .lines()
                .map(|l| serde_json::from_str(l).expect("json line"))
                .collect();
            assert_eq!(lines.len(), 3, "{alg}/{enc}");
            for v in lines {
                let h = &v["header"];
                assert_eq!(h["alg"], alg);
                assert_eq!(h["enc"], enc);
                assert_eq!(h["kid"], KID);
                assert_eq!(h["typ"], "JWT");
                assert_eq!(h["cty"], "JWT");
                assert_eq!(v["jws_header"]["alg"], "HS256");
                let c = &v["claims"];
                assert_eq!(c["appId"], SimulatorConfig::default().client_id);
                let (iat, exp) = (
                    c["iat"].as_i64().expect("iat"),
                    c["exp"].as_i64().expect("exp"),
                );
                assert!(exp > iat && exp - iat <= 3600, "exp bound: {c}");
                let jti = c["jti"].as_str().expect("jti").to_string();
                assert!(uuid::Uuid::parse_str(&jti).is_ok(), "{jti}");
                assert!(jtis.insert(jti), "jti reused");
            }
        }
    }
}

fn faults() -> FaultPlan {
    FaultPlan {
        next: vec![
            FaultKind::Status5xx(503),
            FaultKind::DropConnection,
            FaultKind::Status429 {
                retry_after: Some("1".into()),
            },
            FaultKind::TruncatedJson,
            FaultKind::RateLimitBody400,
        ],
        every_nth: Some(EveryNth {
            n: 3,
            kind: FaultKind::Status5xx(502),
        }),
    }
}

const US_SECTION: &str = r#"
[user_status]
granularity = "PT30M"
timezone = "America/New_York"
page_size = 3
"#;

/// A multi-day backfill with every request and retry through the JTI (and optionally JWE)
/// checks of the simulator, under injected faults: exact data, zero auth rejections.
async fn backfill_under_faults(jwe: Option<(&str, &str)>) {
    let cfg = SimulatorConfig {
        seed: 11,
        agents: 5,
        max_page_size: 3,
        enforce_jti: true,
        jwe: jwe.map(|_| {
            SimJwe::from_key_text(&private_key_text(), Some(KID.into())).expect("sim key")
        }),
        faults: faults(),
        ..SimulatorConfig::default()
    };
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let sections = format!("{US_SECTION}\n{}", auth_section(true, jwe));
    let config = write_config(tmp.path(), &sim.base_url(), &out, &sections);
    let run = run_bin(
        &config,
        &[
            "backfill",
            "--from",
            "2026-03-06",
            "--to",
            "2026-03-10",
            "--concurrency",
            "3",
        ],
    );
    assert_success(&run);
    let stats = sim.stats();
    assert!(stats.faults_injected >= 5, "{stats:?}");
    assert_eq!(stats.jti_replays_rejected, 0, "{stats:?}");
    assert_eq!(stats.jti_expiry_rejected, 0, "{stats:?}");
    assert_eq!(stats.jwe_rejected, 0, "{stats:?}");
    assert_eq!(
        stats.by_status.get(&401).copied().unwrap_or(0),
        0,
        "{stats:?}"
    );

    // 2026-03-08 is the 23-hour spring-forward day in New York.
    let days: Vec<_> = [
        "2026-03-06",
        "2026-03-07",
        "2026-03-08",
        "2026-03-09",
        "2026-03-10",
    ]
    .into_iter()
    .map(date)
    .collect();
    let expected = expected_user_status(cfg.seed, cfg.agents, NY, &days, Granularity::PT30M, None);
    let actual = actual_per_day(&user_status_rows(&out));
    assert_eq!(actual.len(), days.len());
    for (day, (rows, sum, _)) in &expected {
        assert_eq!(actual.get(day), Some(&(*rows, *sum)), "day {day}");
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jti_backfill_under_faults_has_zero_replay_or_expiry_rejections() {
    backfill_under_faults(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwe_and_jti_backfill_under_faults_decrypts_every_request() {
    backfill_under_faults(Some(("RSA-OAEP", "A128CBC-HS256"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_jwt_is_refused_by_the_jwe_simulator_without_a_retry_storm() {
    let cfg = SimulatorConfig {
        agents: 3,
        jwe: Some(SimJwe::from_key_text(&private_key_text(), Some(KID.into())).expect("key")),
        ..SimulatorConfig::default()
    };
    let sim = start_sim(cfg).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let config = write_config(
        tmp.path(),
        &sim.base_url(),
        &tmp.path().join("out"),
        US_SECTION,
    );
    let run = run_bin(
        &config,
        &["backfill", "--from", "2026-06-01", "--to", "2026-06-02"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", all_output(&run));
    assert!(
        all_output(&run).contains("Invalid SDK credentials"),
        "{}",
        all_output(&run)
    );
    let stats = sim.stats();
    assert!(stats.jwe_rejected >= 1, "{stats:?}");
    // A non-JTI 401 is not retried: one request per day, plus the one end-of-run retry per day.
    assert!(stats.total_requests <= 4, "{stats:?}");
    sim.shutdown().await;
}
