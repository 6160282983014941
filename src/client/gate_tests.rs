//! The page gate through the client, over HTTP: bodies are weighted by their size, so two pages
//! are decoded at once when they fit `api.page_memory_bytes` and one after the other when they
//! do not; a body of unknown length keeps only the bytes it read. A loopback server sends pages
//! of a known size (with `Content-Length`, or chunked without it); decoders that report entering
//! and then wait for the test's word make "held at once" an observable state of the gate.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

use axum::body::Body;
use axum::routing::post;
use axum::Router;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::app::App;
use crate::metrics::Metrics;

/// How long a test waits for an event a broken gate would never produce.
const DEADLOCK_GUARD: std::time::Duration = std::time::Duration::from_secs(60);

/// Bytes of every page the server sends: `{"pad":"xxx…"}`.
const PAGE_BYTES: usize = 10_000;

fn page() -> String {
    let pad = "x".repeat(PAGE_BYTES - r#"{"pad":""}"#.len());
    format!(r#"{{"pad":"{pad}"}}"#)
}

/// Serves `POST /page` (with `Content-Length`) and `POST /chunked` (the same bytes in chunks,
/// without it) on loopback; returns the base URL.
async fn serve_pages() -> String {
    let app = Router::new()
        .route("/page", post(|| async { page() }))
        .route(
            "/chunked",
            post(|| async {
                let body = page().into_bytes();
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                    body.chunks(1000).map(|c| Ok(c.to_vec())).collect();
                Body::from_stream(futures::stream::iter(chunks))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// An app whose client talks to `base` with a page gate of `bound` bytes.
async fn app(base: &str, out: &Path, bound: usize) -> App {
    let text = format!(
        r#"
[api]
base_url = "{base}"
account_id = "acct-gate"
iid = "st-gate"
client_id = "cs-gate"
requests_per_minute = 100000
page_memory_bytes = {bound}
[output]
url = "{out}"
[user_status]
timezone = "UTC"
[intent_realtime]
enabled = false
"#,
        out = out.display()
    );
    let config = crate::datasets::config_from_toml(
        &text,
        Path::new("gate.toml"),
        Some("gate-test-secret".into()),
    )
    .expect("valid test config");
    App::start(config, CancellationToken::new(), Metrics::new())
        .await
        .expect("app")
}

/// A decoder that says when it started (with the gate's free bytes at that moment) and then
/// waits until the test opens its latch.
#[derive(Clone)]
struct HeldDecoder {
    entered: mpsc::UnboundedSender<usize>,
    gate: Arc<MemoryGate>,
    latch: Arc<(Mutex<bool>, Condvar)>,
}

impl HeldDecoder {
    fn new(gate: &Arc<MemoryGate>) -> (HeldDecoder, mpsc::UnboundedReceiver<usize>) {
        let (entered, rx) = mpsc::unbounded_channel();
        let decoder = HeldDecoder {
            entered,
            gate: Arc::clone(gate),
            latch: Arc::new((Mutex::new(false), Condvar::new())),
        };
        (decoder, rx)
    }

    fn decode(&self, body: &[u8]) -> Result<usize, DecodeError> {
        let _ = self.entered.send(self.gate.available());
        let (open, changed) = &*self.latch;
        let mut open = open.lock().expect("latch");
        while !*open {
            open = changed.wait(open).expect("latch");
        }
        Ok(body.len())
    }

    fn open(&self) {
        let (open, changed) = &*self.latch;
        *open.lock().expect("latch") = true;
        changed.notify_all();
    }

    /// Opens the latch when dropped, so a failing test does not leave decoders waiting (the
    /// runtime waits for blocking tasks when it shuts down).
    fn open_on_drop(&self) -> OpenOnDrop {
        OpenOnDrop(self.clone())
    }
}

struct OpenOnDrop(HeldDecoder);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// Sends `POST {path}` through the gate, decoding on the blocking pool with `decoder`.
fn request(
    cx: &crate::datasets::Context,
    path: &'static str,
    decoder: &HeldDecoder,
) -> tokio::task::JoinHandle<Result<usize, ClientError>> {
    let (client, gate, decoder) = (
        cx.client.clone(),
        Arc::clone(&cx.page_gate),
        decoder.clone(),
    );
    tokio::spawn(async move {
        let body = serde_json::json!({});
        client
            .post_json_gated_blocking("page", path, &[], &body, Some(&gate), move |b| {
                decoder.decode(b)
            })
            .await
            .map(|(bytes, _permit)| bytes)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pages_that_fit_the_bound_are_decoded_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bound = 3 * PAGE_BYTES;
    let app = app(&serve_pages().await, dir.path(), bound).await;
    let cx = &app.cx;
    let (decoder, mut entered) = HeldDecoder::new(&cx.page_gate);
    let _open = decoder.open_on_drop();
    let first = request(cx, "/page", &decoder);
    let second = request(cx, "/page", &decoder);
    let a = entered.recv().await.expect("a decoder started");
    // A gate that lets one page in at a time never lets the second decoder start while the
    // first waits for the latch: the guard turns that deadlock into a failure (it measures
    // nothing; a correct gate answers at once).
    let b = tokio::time::timeout(DEADLOCK_GUARD, entered.recv())
        .await
        .expect("the second page was held back by the gate while the first decodes")
        .expect("the other started while the first still decodes");
    assert_eq!(
        a.min(b),
        bound - 2 * PAGE_BYTES,
        "both pages held at once, each weighing its Content-Length"
    );
    decoder.open();
    for r in [first, second] {
        assert_eq!(r.await.expect("task").expect("decoded"), PAGE_BYTES);
    }
    assert!(cx.page_gate.is_idle());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_does_not_fit_waits_until_the_first_is_decoded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bound = PAGE_BYTES * 3 / 2;
    let app = app(&serve_pages().await, dir.path(), bound).await;
    let cx = &app.cx;
    let mut waiting = cx.page_gate.watch_waiting();
    let (decoder, mut entered) = HeldDecoder::new(&cx.page_gate);
    let _open = decoder.open_on_drop();
    let first = request(cx, "/page", &decoder);
    let second = request(cx, "/page", &decoder);
    // What the gate has free now depends on whether the second body is already in line: the
    // gate sets freed bytes aside for the body first in line.
    entered.recv().await.expect("one decoder started");
    tokio::time::timeout(DEADLOCK_GUARD, waiting.wait_for(|n| *n == 1))
        .await
        .expect("the other response never waited at the gate")
        .expect("the other response waits at the gate");
    assert!(
        entered.try_recv().is_err(),
        "the second page is not read while the first is held"
    );
    decoder.open();
    assert_eq!(
        entered.recv().await.expect("the second decoder started"),
        bound - PAGE_BYTES,
        "the first page's bytes are back"
    );
    for r in [first, second] {
        assert_eq!(r.await.expect("task").expect("decoded"), PAGE_BYTES);
    }
    assert!(cx.page_gate.is_idle());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_unknown_length_is_read_alone_then_weighs_what_was_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bound = 5 * PAGE_BYTES;
    let app = app(&serve_pages().await, dir.path(), bound).await;
    let cx = &app.cx;
    let (decoder, mut entered) = HeldDecoder::new(&cx.page_gate);
    let _open = decoder.open_on_drop();
    let chunked = request(cx, "/chunked", &decoder);
    assert_eq!(
        entered.recv().await.expect("decoder started"),
        bound - PAGE_BYTES,
        "once read, the chunked body holds its own bytes, not the whole gate"
    );
    let sized = request(cx, "/page", &decoder);
    let beside = tokio::time::timeout(DEADLOCK_GUARD, entered.recv())
        .await
        .expect("the chunked body kept the whole gate after it was read");
    assert_eq!(
        beside.expect("a sized page fits beside it"),
        bound - 2 * PAGE_BYTES
    );
    decoder.open();
    for r in [chunked, sized] {
        assert_eq!(r.await.expect("task").expect("decoded"), PAGE_BYTES);
    }
    assert!(cx.page_gate.is_idle());
    app.shutdown().await;
}
