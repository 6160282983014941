//! S3 helpers: moto's S3 server started on a loopback port ([`MotoServer`]), an object_store
//! client built independently of the exporter's, and a fault-injecting proxy in front of moto.

use arrow::array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::process::Command;

use super::{free_addr, http_get, opted_out, python, PORT_ATTEMPTS, SKIP_S3_ENV};

/// moto's S3 server on a loopback port, killed on drop.
pub struct MotoServer {
    child: std::process::Child,
    pub port: u16,
}

impl MotoServer {
    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Start `python -m moto.server` (the pinned interpreter of [`python()`]) on a free port
    /// and return once it serves HTTP. moto reports its bind on stderr: " * Running on ..."
    /// once the port is its own, "Address already in use" when another process took the port
    /// first, in which case it is started again on a fresh one. Panics when moto cannot start:
    /// tests that need it must fail, not skip, unless the developer opted out.
    pub fn start() -> MotoServer {
        let limit = std::time::Duration::from_secs(60);
        for _ in 0..PORT_ATTEMPTS {
            let port = free_addr().port();
            let mut child = Command::new(python())
                .args([
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start moto: {e}"));
            let verdict = moto_bind_verdict(child.stderr.take().expect("piped stderr"));
            match verdict.recv_timeout(limit) {
                Ok(Ok(())) => {}
                Ok(Err(output)) if output.contains("Address already in use") => {
                    let _ = child.wait();
                    eprintln!(
                        "NOTE: port {port} was taken before moto bound it; retrying on another."
                    );
                    continue;
                }
                Ok(Err(output)) => {
                    let status = child.wait().expect("wait");
                    panic!("moto exited at startup with {status} (set {SKIP_S3_ENV}=1 to skip the S3 tests):\n{output}");
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("moto did not report listening within {limit:?}");
                }
            }
            let server = MotoServer { child, port };
            let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
            let deadline = std::time::Instant::now() + limit;
            while http_get(addr, "/").is_none() {
                if std::time::Instant::now() > deadline {
                    panic!("moto did not answer on {addr} within {limit:?}");
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            return server;
        }
        panic!("every one of {PORT_ATTEMPTS} free ports was taken before moto bound it");
    }

    /// Create a bucket (path-style `PUT /bucket`; moto does not check signatures).
    pub async fn create_bucket(&self, bucket: &str) {
        let resp = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint()))
            .send()
            .await
            .expect("PUT bucket");
        assert!(
            resp.status().is_success(),
            "create bucket: {}",
            resp.status()
        );
    }

    /// Keys of the multipart uploads still in progress in `bucket`.
    pub async fn open_multipart_uploads(&self, bucket: &str) -> Vec<String> {
        let body = reqwest::Client::new()
            .get(format!("{}/{bucket}?uploads", self.endpoint()))
            .send()
            .await
            .expect("ListMultipartUploads")
            .text()
            .await
            .expect("body");
        body.split("<Upload>")
            .skip(1)
            .filter_map(|u| {
                let start = u.find("<Key>")? + 5;
                let end = u.find("</Key>")?;
                Some(u[start..end].to_string())
            })
            .collect()
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads moto's stderr on a thread: sends `Ok(())` on werkzeug's " * Running on" line (the
/// socket is bound), or `Err(everything printed)` if stderr closes first (moto exited). Keeps
/// draining afterwards, since moto logs every request there and a full pipe would stall it.
fn moto_bind_verdict(
    stderr: std::process::ChildStderr,
) -> std::sync::mpsc::Receiver<Result<(), String>> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        let mut reported = false;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !reported {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains("Running on http://") {
                    let _ = tx.send(Ok(()));
                    reported = true;
                }
            }
        }
        if !reported {
            let _ = tx.send(Err(seen));
        }
    });
    rx
}

/// moto, or `None` when the developer set `SMARTASSIST_SKIP_S3=1`.
pub fn moto_or_skip() -> Option<MotoServer> {
    if opted_out(SKIP_S3_ENV, "the S3 tests against moto") {
        return None;
    }
    Some(MotoServer::start())
}

/// An object_store client for `bucket` at `endpoint` with moto's dummy credentials, built
/// independently of the exporter's `Output::open`.
pub fn s3_client(endpoint: &str, bucket: &str) -> std::sync::Arc<dyn object_store::ObjectStore> {
    std::sync::Arc::new(
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .with_virtual_hosted_style_request(false)
            .build()
            .expect("S3 client"),
    )
}

/// Every object key under `prefix`, sorted.
pub async fn s3_keys(store: &dyn object_store::ObjectStore, prefix: &str) -> Vec<String> {
    use futures::TryStreamExt;
    let prefix = object_store::path::Path::from(prefix);
    let mut keys: Vec<String> = store
        .list(Some(&prefix))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list");
    keys.sort();
    keys
}

/// Every `.parquet` object under `prefix`: its key and its bytes, sorted by key.
pub async fn s3_parquet_objects(
    store: &dyn object_store::ObjectStore,
    prefix: &str,
) -> Vec<(String, bytes::Bytes)> {
    use object_store::ObjectStoreExt;
    let mut out = Vec::new();
    for key in s3_keys(store, prefix).await {
        if !key.ends_with(".parquet") {
            continue;
        }
        let bytes = store
            .get(&object_store::path::Path::from(key.as_str()))
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        out.push((key, bytes));
    }
    out
}

/// Read every Parquet object of `dataset` under `prefix`; returns (path relative to the
/// dataset, batches), like [`read_dataset`].
pub async fn read_s3_dataset(
    store: &dyn object_store::ObjectStore,
    prefix: &str,
    dataset: &str,
) -> Vec<(String, Vec<RecordBatch>)> {
    let base = format!("{prefix}/{dataset}/");
    let mut out = Vec::new();
    for (key, bytes) in s3_parquet_objects(store, &format!("{prefix}/{dataset}")).await {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("parquet footer")
            .build()
            .expect("reader");
        let rel = key.strip_prefix(&base).expect("under dataset").to_string();
        out.push((rel, reader.map(|b| b.expect("batch")).collect()));
    }
    out
}

/// A fault the [`FaultProxy`] injects: the matching requests get a non-retryable S3 error
/// (400) after their body has been read; everything else is forwarded to moto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Every PUT (PutObject or UploadPart) whose path contains this string.
    PutPathContains(String),
    /// UploadPart requests with this `partNumber`.
    UploadPart(u32),
    /// UploadPart requests with this `partNumber` get no answer until [`FaultProxy::release`],
    /// then a 400; [`FaultProxy::stalled`] resolves once one arrived.
    StallUploadPart(u32),
    /// Every PUT whose path contains this string gets no answer until
    /// [`FaultProxy::release`], then a 400; [`FaultProxy::stalled`] resolves once one arrived
    /// (e.g. a state object's write, to kill the writer just before it commits).
    StallPutPathContains(String),
}

/// `%XX` escapes decoded (object_store percent-encodes `=` in keys); invalid escapes kept.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP proxy on loopback in front of moto that fails chosen requests, so uploads break
/// mid-way without stopping moto (whose in-memory state would be lost on restart).
pub struct FaultProxy {
    pub addr: std::net::SocketAddr,
    fault: std::sync::Arc<std::sync::Mutex<Option<Fault>>>,
    injected: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stalled: std::sync::Arc<tokio::sync::Notify>,
    release: std::sync::Arc<tokio::sync::Notify>,
    puts: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: String) -> FaultProxy {
        use axum::body::Body;
        use axum::extract::{Request, State};
        use axum::response::Response;

        #[derive(Clone)]
        struct Shared {
            upstream: String,
            client: reqwest::Client,
            fault: std::sync::Arc<std::sync::Mutex<Option<Fault>>>,
            injected: std::sync::Arc<std::sync::atomic::AtomicUsize>,
            stalled: std::sync::Arc<tokio::sync::Notify>,
            release: std::sync::Arc<tokio::sync::Notify>,
            puts: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
        }

        async fn handle(State(s): State<Shared>, req: Request) -> Response {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX)
                .await
                .expect("request body");
            let path_and_query = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".into());
            let is_put = parts.method == axum::http::Method::PUT;
            let is_part = |n: &u32| {
                is_put
                    && parts
                        .uri
                        .query()
                        .is_some_and(|q| q.split('&').any(|kv| kv == format!("partNumber={n}")))
            };
            let fault = s.fault.lock().expect("lock").clone();
            if is_put {
                let path = percent_decode(parts.uri.path());
                s.puts.lock().expect("lock").push(path);
            }
            let fail = match &fault {
                Some(Fault::PutPathContains(needle)) => {
                    is_put && percent_decode(parts.uri.path()).contains(needle.as_str())
                }
                Some(Fault::UploadPart(n)) => is_part(n),
                Some(Fault::StallUploadPart(n)) if is_part(n) => {
                    s.injected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let released = s.release.notified();
                    s.stalled.notify_waiters();
                    released.await;
                    true
                }
                Some(Fault::StallPutPathContains(needle))
                    if is_put && percent_decode(parts.uri.path()).contains(needle.as_str()) =>
                {
                    s.injected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let released = s.release.notified();
                    s.stalled.notify_waiters();
                    released.await;
                    true
                }
                Some(Fault::StallUploadPart(_) | Fault::StallPutPathContains(_)) => false,
                None => false,
            };
            if fail {
                s.injected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return Response::builder()
                    .status(400)
                    .header("content-type", "application/xml")
                    .body(Body::from(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidRequest</Code><Message>injected fault</Message></Error>",
                    ))
                    .expect("response");
            }
            let mut fwd = s
                .client
                .request(
                    parts.method.clone(),
                    format!("{}{path_and_query}", s.upstream),
                )
                .body(body);
            for (name, value) in &parts.headers {
                if name != axum::http::header::CONTENT_LENGTH
                    && name != axum::http::header::TRANSFER_ENCODING
                    && name != axum::http::header::CONNECTION
                {
                    fwd = fwd.header(name, value);
                }
            }
            let resp = fwd.send().await.expect("forward to moto");
            let mut builder = Response::builder().status(resp.status());
            for (name, value) in resp.headers() {
                if name != axum::http::header::CONTENT_LENGTH
                    && name != axum::http::header::TRANSFER_ENCODING
                    && name != axum::http::header::CONNECTION
                {
                    builder = builder.header(name, value);
                }
            }
            let bytes = resp.bytes().await.expect("moto body");
            builder.body(Body::from(bytes)).expect("response")
        }

        let fault = std::sync::Arc::new(std::sync::Mutex::new(None));
        let injected = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stalled = std::sync::Arc::new(tokio::sync::Notify::new());
        let release = std::sync::Arc::new(tokio::sync::Notify::new());
        let puts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let shared = Shared {
            upstream,
            client: reqwest::Client::new(),
            fault: fault.clone(),
            injected: injected.clone(),
            stalled: stalled.clone(),
            release: release.clone(),
            puts: puts.clone(),
        };
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FaultProxy {
            addr,
            fault,
            injected,
            stalled,
            release,
            puts,
            task,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Set (or clear with `None`) the fault.
    pub fn set_fault(&self, fault: Option<Fault>) {
        *self.fault.lock().expect("lock") = fault;
    }

    /// A future that resolves when the next stalled request arrives (create it before the
    /// request can be sent).
    pub fn stalled(&self) -> impl std::future::Future<Output = ()> + '_ {
        self.stalled.notified()
    }

    /// Lets every stalled request go on (with its 400).
    pub fn release(&self) {
        self.release.notify_waiters();
    }

    /// The path (`/bucket/key`, decoded) of every PUT the proxy received, in arrival order.
    pub fn puts(&self) -> Vec<String> {
        self.puts.lock().expect("lock").clone()
    }

    /// How many requests were failed (or stalled) so far.
    pub fn injected(&self) -> usize {
        self.injected.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
