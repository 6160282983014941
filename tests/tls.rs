//! `api.ca_bundle_file` end to end: a TLS server on 127.0.0.1 presents a certificate issued by a
//! private CA generated in the test. The exporter reaches it only when the CA is configured, and
//! refuses the connection otherwise (no silent fallback to plain HTTP or to skipping checks).

mod common;

use std::sync::Arc;

use common::BIN;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

struct Pki {
    ca_pem: String,
    server_cert: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
}

fn make_pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "smartassist-export test CA");
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf_params = CertificateParams::new(vec!["localhost".to_string()]).expect("leaf params");
    let leaf = leaf_params.signed_by(&leaf_key, &ca).expect("leaf cert");
    Pki {
        ca_pem: ca.pem(),
        server_cert: leaf.der().clone(),
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

/// Serve `[]` (an empty IntentRealtimeData snapshot) over TLS to every connection.
async fn serve_tls(pki: &Pki) -> u16 {
    let _ = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![pki.server_cert.clone()], pki.server_key.clone_key())
        .expect("server config");
    // Offer HTTP/2 first, as real API front ends do. The exporter must not take it (see
    // ApiClient::new): a client that negotiated h2 would send the h2 preface to this HTTP/1
    // responder and the check below would fail.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 16 * 1024];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n[]")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn check(
    dir: &std::path::Path,
    port: u16,
    ca_file: Option<&std::path::Path>,
) -> std::process::Output {
    let ca_line = ca_file
        .map(|p| format!("ca_bundle_file = {:?}\n", p.display().to_string()))
        .unwrap_or_default();
    let config = format!(
        "[api]\nbase_url = \"https://localhost:{port}\"\naccount_id = \"acct\"\niid = \"st-1\"\nclient_id = \"cs-1\"\nmax_retries = 0\ntimeout_seconds = 5\n{ca_line}\n[output]\nurl = {out:?}\n[user_status]\nenabled = false\n[intent_realtime]\nbot_ids = [\"st-bot\"]\n",
        out = dir.join("out").display().to_string()
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).expect("write config");
    std::process::Command::new(BIN)
        .arg("-c")
        .arg(&path)
        .arg("check")
        .env("SMARTASSIST_CLIENT_SECRET", "a-secret-for-the-tls-test")
        .output()
        .expect("runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_ca_is_trusted_only_through_ca_bundle_file() {
    let pki = make_pki();
    let port = serve_tls(&pki).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let ca_file = tmp.path().join("corp-ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).expect("write ca");

    let trusted = check(tmp.path(), port, Some(&ca_file));
    let stdout = String::from_utf8_lossy(&trusted.stdout);
    assert!(
        trusted.status.success()
            && stdout.contains("intent_realtime bot st-bot: OK (0 session(s))"),
        "with the CA bundle: {stdout}\n{}",
        String::from_utf8_lossy(&trusted.stderr)
    );

    let untrusted = check(tmp.path(), port, None);
    let stdout = String::from_utf8_lossy(&untrusted.stdout);
    assert_eq!(untrusted.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("intent_realtime bot st-bot: FAILED"),
        "{stdout}"
    );
}
