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

/// The pinned interpreter (with jwcrypto) of `common::python()`, or `None` when the developer
/// opted out with SMARTASSIST_SKIP_PY=1. It fails the test otherwise when it cannot be built.
fn python_with_jwcrypto() -> Option<&'static Path> {
    if opted_out(SKIP_PY_ENV, "the jwcrypto interoperability check") {
        return None;
    }
    Some(python())
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
                .expect("python runs");
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

/// Faults before authentication (5xx, drops, throttling) and after it: a truncated 200 body
/// means the simulator has already accepted and remembered the token's jti, so a retry that
/// reused the token would be caught as a replay.
fn faults() -> FaultPlan {
    FaultPlan {
        next: vec![
            FaultKind::Status5xx(503),
            FaultKind::TruncatedJson,
            FaultKind::DropConnection,
            FaultKind::TruncatedJson,
            FaultKind::Status429 {
                retry_after: Some("1".into()),
            },
            FaultKind::TruncatedJson,
            FaultKind::RateLimitBody400,
        ],
        every_nth: Some(EveryNth {
            n: 3,
            kind: FaultKind::TruncatedJson,
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
    eprintln!("simulator stats (jwe = {jwe:?}): {stats:?}");
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

/// A tiny HTTP/1.1 server on loopback that records every `auth` header and answers with a
/// rotating set of failures: a JTI replay 401, a 503, and a 200 with an undecodable body.
struct AuthRecorder {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl AuthRecorder {
    fn start() -> AuthRecorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for (i, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { return };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(p);
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let mut content_length = 0usize;
                for line in head.lines() {
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("auth") {
                            log.lock().expect("lock").push(v.trim().to_string());
                        }
                        if k.eq_ignore_ascii_case("content-length") {
                            content_length = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                while buf.len() < head_end + 4 + content_length {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let (status, body) = match i % 3 {
                    0 => (
                        "401 Unauthorized",
                        r#"{"errors":[{"msg":"error verifying the jwt: possibly a replay","code":401}]}"#,
                    ),
                    1 => (
                        "503 Service Unavailable",
                        r#"{"errors":[{"msg":"down","code":503}]}"#,
                    ),
                    _ => ("200 OK", r#"{"data": [ {"#),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        AuthRecorder { addr, seen }
    }

    fn tokens(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

/// Run the binary at the most verbose log level, dependencies (HTTP, TLS) included, with the
/// secret in a file. (`--log-level trace` would raise only the exporter's own level.)
fn run_traced(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("-c")
        .arg(config)
        .args(args)
        .env_remove("SMARTASSIST_CLIENT_SECRET")
        .env("RUST_LOG", "trace")
        .output()
        .expect("binary runs")
}

#[test]
fn neither_the_secret_nor_any_token_appears_in_trace_output() {
    const SECRET: &str = "Sup3r-S3cret-value-that-must-never-be-logged-0123456789";
    let tmp = tempfile::tempdir().expect("tmp");
    let secret_file = tmp.path().join("client_secret");
    std::fs::write(&secret_file, SECRET).expect("write secret");
    // World-readable on purpose: the exporter must warn, naming the file but not the secret.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    let closed_port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let recorder = AuthRecorder::start();
    let decrypter = smartassist_export::simulator::jwe::JweDecrypter::new(
        smartassist_export::simulator::jwe::parse_private_key(&private_key_text()).expect("key"),
    );

    let mut outputs = Vec::new();
    let targets = [
        format!("http://{}", recorder.addr),
        format!("http://127.0.0.1:{closed_port}"),
    ];
    for (i, base) in targets.iter().enumerate() {
        for jwe in [None, Some(("RSA-OAEP", "A256GCM"))] {
            let dir = tmp.path().join(format!("run-{i}-{}", jwe.is_some()));
            std::fs::create_dir_all(&dir).expect("mkdir");
            let sections = format!(
                "{}\n[intent_realtime]\nbot_ids = [\"st-bot-1\"]\n",
                auth_section(true, jwe)
            );
            let config = write_config(&dir, base, &dir.join("out"), &sections);
            let text = std::fs::read_to_string(&config).expect("config");
            let text = text.replace(
                "[api]\n",
                &format!(
                    "[api]\nclient_secret_file = {:?}\nmax_retries = 3\n",
                    secret_file.display().to_string()
                ),
            );
            std::fs::write(&config, text).expect("config");
            for args in [
                &["backfill", "--from", "2026-06-01", "--to", "2026-06-01"][..],
                &["check"][..],
            ] {
                let out = run_traced(&config, args);
                assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
                outputs.push(all_output(&out));
            }
        }
    }

    let mut tokens = recorder.tokens();
    assert!(
        tokens.len() >= 8,
        "the recorder saw {} requests",
        tokens.len()
    );
    // A JTI replay 401 was retried once with a fresh token: tokens are all distinct.
    let distinct: HashSet<_> = tokens.iter().collect();
    assert_eq!(distinct.len(), tokens.len(), "a token was reused");
    // For JWE runs, also look for the JWT inside each JWE.
    let inner: Vec<String> = tokens
        .iter()
        .filter(|t| t.split('.').count() == 5)
        .map(|t| String::from_utf8(decrypter.decrypt(t).expect("decrypts").1).expect("utf8"))
        .collect();
    assert!(!inner.is_empty(), "JWE runs reached the recorder");
    tokens.extend(inner);

    let all = outputs.join("\n");
    assert!(
        all.contains("TRACE") || all.contains("DEBUG"),
        "trace level is on"
    );
    assert!(
        all.contains("client secret file") && all.contains(&secret_file.display().to_string()),
        "the permission warning names the file"
    );
    assert!(!all.contains(SECRET), "the client secret leaked");
    for t in &tokens {
        // Each token part long enough to be unambiguous (signatures, encrypted keys, payloads).
        for part in t.split('.').filter(|p| p.len() >= 16) {
            assert!(!all.contains(part), "a token fragment leaked: {part}");
        }
    }
}

fn config_problem(api_extra: &str, sections: &str, key: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    let config = write_config(
        tmp.path(),
        "https://platform.kore.ai",
        &tmp.path().join("out"),
        sections,
    );
    let text = std::fs::read_to_string(&config).expect("config");
    // Later keys in [api] win over nothing: replace the defaults written by write_config.
    let mut text = text.replace("[api]\n", &format!("[api]\n{api_extra}\n"));
    if api_extra.contains("account_id") {
        text = text.replacen(
            &format!(
                "account_id = \"{}\"\n",
                SimulatorConfig::default().account_id
            ),
            "",
            1,
        );
    }
    if api_extra.contains("base_url") {
        text = text.replacen("base_url = \"https://platform.kore.ai\"\n", "", 1);
    }
    std::fs::write(&config, text).expect("config");
    for args in [
        &["backfill", "--from", "2026-06-01", "--to", "2026-06-01"][..],
        &["token"][..],
    ] {
        let out = run_bin(&config, args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{api_extra}: {}",
            all_output(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{api_extra}: {key} not in {stderr}");
    }
    assert!(
        !tmp.path().join("out").exists(),
        "nothing is written on a config error"
    );
}

#[test]
fn path_traversal_ids_are_config_errors_naming_the_key() {
    for account in ["../../etc", "a/b", "..", "", "a\\\\b", "x y", "%2e%2e"] {
        config_problem(&format!("account_id = \"{account}\""), "", "api.account_id");
    }
    for bot in ["../x", "a/b", "..", ""] {
        config_problem(
            "",
            &format!("[intent_realtime]\nbot_ids = [\"ok-bot\", \"{bot}\"]\n"),
            "intent_realtime.bot_ids[1]",
        );
    }
}

#[test]
fn plain_http_to_a_remote_host_is_a_config_error() {
    config_problem("base_url = \"http://platform.kore.ai\"", "", "api.base_url");
    config_problem(
        "",
        &format!(
            "[auth]\njwe_public_key_file = {:?}\n",
            fixture("public.pem").display().to_string()
        ),
        "auth.jwe_kid",
    );
}

/// Answers every connection on loopback with the same raw HTTP response.
fn serve_raw(response: Vec<u8>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 8192];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(&response);
        }
    });
    addr
}

#[test]
fn oversized_responses_fail_with_a_clear_error() {
    let big = format!("[{}]", vec!["{\"sessionId\":\"x\"}"; 20_000].join(","));
    let with_length = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{big}",
        big.len()
    );
    // Without Content-Length the cap must hold while streaming.
    let chunked = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    for response in [with_length, chunked] {
        let addr = serve_raw(response.into_bytes());
        let tmp = tempfile::tempdir().expect("tmp");
        let config = write_config(
            tmp.path(),
            &format!("http://{addr}"),
            &tmp.path().join("out"),
            "[user_status]\nenabled = false\n[intent_realtime]\nbot_ids = [\"st-bot-1\"]\n",
        );
        let text = std::fs::read_to_string(&config).expect("config");
        std::fs::write(
            &config,
            text.replace("[api]\n", "[api]\nmax_response_bytes = 4096\n"),
        )
        .expect("config");
        let out = run_bin(&config, &["check"]);
        assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
        assert!(
            all_output(&out).contains("larger than the 4096-byte cap (api.max_response_bytes)"),
            "{}",
            all_output(&out)
        );
    }
}

#[test]
fn env_proxy_and_no_proxy_are_honoured() {
    // The "proxy" is the loopback recorder; the target host does not exist, so a request can
    // only reach the recorder through the proxy setting.
    let recorder = AuthRecorder::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let config = write_config(
        tmp.path(),
        "http://kore.invalid",
        &tmp.path().join("out"),
        "[user_status]\nenabled = false\n[intent_realtime]\nbot_ids = [\"st-bot-1\"]\n",
    );
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace(
            "[api]\n",
            "[api]\nallow_insecure_http = true\nmax_retries = 0\n",
        ),
    )
    .expect("config");
    let proxy = format!("http://{}", recorder.addr);
    let run = |no_proxy: &str| {
        Command::new(BIN)
            .arg("-c")
            .arg(&config)
            .arg("check")
            .env("SMARTASSIST_CLIENT_SECRET", "s")
            .env("HTTP_PROXY", &proxy)
            .env("http_proxy", &proxy)
            .env("NO_PROXY", no_proxy)
            .env("no_proxy", no_proxy)
            .output()
            .expect("binary runs")
    };
    let before = recorder.tokens().len();
    let _ = run("");
    assert_eq!(
        recorder.tokens().len(),
        before + 1,
        "the request went through HTTP_PROXY"
    );
    let _ = run("kore.invalid");
    assert_eq!(
        recorder.tokens().len(),
        before + 1,
        "NO_PROXY bypassed the proxy"
    );
}
