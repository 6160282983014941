//! A fault-injecting HTTP/1.1 proxy for S3 tests ([`S3FaultProxy`]): it listens on loopback,
//! relays every request to an upstream S3 endpoint (moto) and, following a seeded
//! [`FaultPlan`], answers a fraction of the requests of chosen operations with a 500
//! InternalError or 503 SlowDown (S3 XML error bodies), drops the connection half-way through
//! the request body or after the whole request (before anything reaches upstream), delays the
//! upstream's answer, or (only when asked for by name) loses the answer of a request that took
//! effect. It counts what it injected per kind, and the requests it saw per
//! operation, so tests can assert that the faults really happened.
//!
//! Decisions are deterministic: a request's fate depends only on the seed, its operation, its
//! path, its part number and how many times that same request was seen before, not on the
//! arrival order of concurrent requests. [`FaultPlan::max_consecutive`] bounds how many times
//! in a row one request can be failed, so a client retrying more often always gets through.
//!
//! The relay is minimal HTTP/1.1: heads are forwarded verbatim (so signatures stay valid),
//! bodies are streamed with their own framing (Content-Length or chunked; `aws-chunked` uploads
//! are Content-Length framed at the HTTP level, so they stream too), interim 1xx answers are
//! passed on, and each client connection gets its own upstream connection. Requests must be
//! path-style (`/bucket/key`); `Expect: 100-continue` is not supported (object_store does not
//! send it).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// An S3 operation, as told by method, path shape and query parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum S3Op {
    CreateBucket,
    ListObjects,
    ListMultipartUploads,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    /// `POST /bucket?delete`: object_store deletes even a single object this way.
    DeleteObjects,
    CreateMultipartUpload,
    UploadPart,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    Other,
}

impl S3Op {
    /// Classifies a path-style request (`/bucket` or `/bucket/key?query`).
    pub fn classify(method: &str, target: &str, copy_source: bool) -> S3Op {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let has = |name: &str| {
            query
                .split('&')
                .any(|kv| kv.split('=').next() == Some(name))
        };
        let is_object = path
            .trim_start_matches('/')
            .split_once('/')
            .is_some_and(|(_, key)| !key.is_empty());
        match (method, is_object) {
            ("PUT", false) => S3Op::CreateBucket,
            ("GET", false) if has("uploads") => S3Op::ListMultipartUploads,
            ("GET", false) => S3Op::ListObjects,
            ("PUT", true) if has("partNumber") && has("uploadId") => S3Op::UploadPart,
            ("PUT", true) if copy_source => S3Op::CopyObject,
            ("PUT", true) => S3Op::PutObject,
            ("POST", false) if has("delete") => S3Op::DeleteObjects,
            ("POST", true) if has("uploads") => S3Op::CreateMultipartUpload,
            ("POST", true) if has("uploadId") => S3Op::CompleteMultipartUpload,
            ("DELETE", true) if has("uploadId") => S3Op::AbortMultipartUpload,
            ("DELETE", true) => S3Op::DeleteObject,
            ("GET", true) => S3Op::GetObject,
            ("HEAD", true) => S3Op::HeadObject,
            _ => S3Op::Other,
        }
    }
}

/// What the proxy does to a request chosen by the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Reads the request, answers `500 InternalError`.
    InternalError,
    /// Reads the request, answers `503 SlowDown`.
    SlowDown,
    /// Reads half of the request body (none when empty), then closes the connection.
    DropMidRequest,
    /// Reads the whole request, then closes the connection without answering; nothing reached
    /// upstream.
    DropBeforeResponse,
    /// Relays the request, then waits [`FaultPlan::delay`] before relaying the answer.
    SlowResponse,
    /// Relays the request (it takes effect upstream), then closes the connection instead of
    /// relaying the answer: a lost response. Not in [`FaultKind::ALL`], because even an
    /// idempotent client cannot always recover (a lost CreateMultipartUpload answer leaves an
    /// upload nobody knows about).
    DropResponse,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::InternalError,
        FaultKind::SlowDown,
        FaultKind::DropMidRequest,
        FaultKind::DropBeforeResponse,
        FaultKind::SlowResponse,
    ];

    fn index(self) -> usize {
        match self {
            FaultKind::InternalError => 0,
            FaultKind::SlowDown => 1,
            FaultKind::DropMidRequest => 2,
            FaultKind::DropBeforeResponse => 3,
            FaultKind::SlowResponse => 4,
            FaultKind::DropResponse => 5,
        }
    }

    /// The number of kinds, for counters.
    const COUNT: usize = 6;

    /// Whether the client sees this attempt fail (everything but a slow response).
    pub fn fails(self) -> bool {
        self != FaultKind::SlowResponse
    }
}

/// Which requests get which faults.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    pub seed: u64,
    /// Operations the plan applies to; empty means every operation.
    pub ops: Vec<S3Op>,
    /// Share of the matching requests that get a fault, `0.0..=1.0`.
    pub fraction: f64,
    /// The kinds a chosen request gets, picked by the same seeded hash.
    pub kinds: Vec<FaultKind>,
    /// A request already faulted this many times in a row passes untouched (and the count
    /// restarts); `u32::MAX` makes faults permanent.
    pub max_consecutive: u32,
    /// The delay of [`FaultKind::SlowResponse`].
    pub delay: Duration,
}

impl FaultPlan {
    /// Every kind, on a `fraction` of every operation's requests, at most `max_consecutive`
    /// times in a row per request, slow answers delayed by 20 ms.
    pub fn random(seed: u64, fraction: f64, max_consecutive: u32) -> FaultPlan {
        FaultPlan {
            seed,
            ops: Vec::new(),
            fraction,
            kinds: FaultKind::ALL.to_vec(),
            max_consecutive,
            delay: Duration::from_millis(20),
        }
    }

    /// `kind` on every request of `ops`, for ever.
    pub fn permanent(kind: FaultKind, ops: &[S3Op]) -> FaultPlan {
        FaultPlan {
            seed: 0,
            ops: ops.to_vec(),
            fraction: 1.0,
            kinds: vec![kind],
            max_consecutive: u32::MAX,
            delay: Duration::from_millis(20),
        }
    }

    /// Restricts the plan to `ops`.
    pub fn only(mut self, ops: &[S3Op]) -> FaultPlan {
        self.ops = ops.to_vec();
        self
    }

    /// Restricts the plan to `kinds`.
    pub fn with_kinds(mut self, kinds: &[FaultKind]) -> FaultPlan {
        self.kinds = kinds.to_vec();
        self
    }
}

/// How many faults of each kind the proxy injected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub internal_error: u64,
    pub slow_down: u64,
    pub drop_mid_request: u64,
    pub drop_before_response: u64,
    pub slow_response: u64,
    pub drop_response: u64,
}

impl FaultCounts {
    pub fn get(&self, kind: FaultKind) -> u64 {
        match kind {
            FaultKind::InternalError => self.internal_error,
            FaultKind::SlowDown => self.slow_down,
            FaultKind::DropMidRequest => self.drop_mid_request,
            FaultKind::DropBeforeResponse => self.drop_before_response,
            FaultKind::SlowResponse => self.slow_response,
            FaultKind::DropResponse => self.drop_response,
        }
    }

    /// Injected faults that made the attempt fail (all but slow responses).
    pub fn failures(&self) -> u64 {
        self.internal_error
            + self.slow_down
            + self.drop_mid_request
            + self.drop_before_response
            + self.drop_response
    }
}

/// Per request identity: attempts seen, faults in a row.
type Attempts = HashMap<String, (u64, u32)>;

struct Shared {
    upstream: SocketAddr,
    plan: Mutex<Option<FaultPlan>>,
    /// Requests whose path contains one of these never get a fault.
    spared: Mutex<Vec<String>>,
    attempts: Mutex<Attempts>,
    injected: [AtomicU64; FaultKind::COUNT],
    seen: Mutex<HashMap<(S3Op, Option<FaultKind>), u64>>,
}

impl Shared {
    /// The fault for this request, if any; counts the request and the fault.
    fn decide(&self, op: S3Op, target: &str) -> Option<(FaultKind, Duration)> {
        let decision = self.plan_decision(op, target);
        let kind = decision.map(|(k, _)| k);
        if let Some(k) = kind {
            self.injected[k.index()].fetch_add(1, Ordering::SeqCst);
        }
        *lock(&self.seen).entry((op, kind)).or_default() += 1;
        decision
    }

    fn plan_decision(&self, op: S3Op, target: &str) -> Option<(FaultKind, Duration)> {
        let plan = lock(&self.plan).clone()?;
        if plan.kinds.is_empty() || !(plan.ops.is_empty() || plan.ops.contains(&op)) {
            return None;
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if lock(&self.spared).iter().any(|s| path.contains(s.as_str())) {
            return None;
        }
        let part = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("partNumber="))
            .unwrap_or("");
        let identity = format!("{op:?} {path} {part}");
        let mut attempts = lock(&self.attempts);
        let (seen, in_a_row) = attempts.entry(identity.clone()).or_default();
        let attempt = *seen;
        *seen += 1;
        if *in_a_row >= plan.max_consecutive {
            *in_a_row = 0;
            return None;
        }
        let h = mix(plan.seed, identity.as_bytes(), attempt);
        // The top 53 bits as a uniform number in [0, 1).
        let draw = (h >> 11) as f64 / (1u64 << 53) as f64;
        if draw >= plan.fraction {
            *in_a_row = 0;
            return None;
        }
        *in_a_row += 1;
        let kind = plan.kinds[(h % plan.kinds.len() as u64) as usize];
        Some((kind, plan.delay))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The SplitMix64 finaliser.
fn fmix(mut h: u64) -> u64 {
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A hash of the seed, the bytes and the attempt with every byte fully mixed in (so requests
/// whose paths differ in one character get unrelated draws), stable across Rust releases,
/// unlike `DefaultHasher`.
fn mix(seed: u64, bytes: &[u8], attempt: u64) -> u64 {
    const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
    let h = bytes
        .iter()
        .fold(fmix(seed ^ GOLDEN), |h, b| fmix(h ^ u64::from(*b)));
    fmix(h ^ attempt.wrapping_mul(GOLDEN))
}

/// The proxy; stops (with all its connections) on drop.
pub struct S3FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl S3FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:PORT`), injecting per `plan`.
    pub async fn start(upstream: &str, plan: Option<FaultPlan>) -> S3FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("upstream is http://IP:PORT");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let shared = Arc::new(Shared {
            upstream,
            plan: Mutex::new(plan),
            spared: Mutex::default(),
            attempts: Mutex::default(),
            injected: Default::default(),
            seen: Mutex::default(),
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        S3FaultProxy { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests whose path contains `part` pass untouched from now on, whatever the plan.
    pub fn spare(&self, part: &str) {
        lock(&self.shared.spared).push(part.to_string());
    }

    /// Replaces the plan (`None`: relay everything untouched).
    pub fn set_plan(&self, plan: Option<FaultPlan>) {
        *lock(&self.shared.plan) = plan;
    }

    /// The faults injected so far.
    pub fn injected(&self) -> FaultCounts {
        let n = |k: FaultKind| self.shared.injected[k.index()].load(Ordering::SeqCst);
        FaultCounts {
            internal_error: n(FaultKind::InternalError),
            slow_down: n(FaultKind::SlowDown),
            drop_mid_request: n(FaultKind::DropMidRequest),
            drop_before_response: n(FaultKind::DropBeforeResponse),
            slow_response: n(FaultKind::SlowResponse),
            drop_response: n(FaultKind::DropResponse),
        }
    }

    /// Requests of `op` seen so far (faulted or not).
    pub fn requests(&self, op: S3Op) -> u64 {
        lock(&self.shared.seen)
            .iter()
            .filter(|((o, _), _)| *o == op)
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests of `op` that got `kind`.
    pub fn injected_into(&self, op: S3Op, kind: FaultKind) -> u64 {
        lock(&self.shared.seen)
            .get(&(op, Some(kind)))
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for S3FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Owned here, so aborting this task drops (and aborts) every connection task.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(serve(Arc::clone(&shared), stream));
                    }
                    // Out of descriptors, say: do not spin.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A message head: the raw bytes plus what the relay needs from them.
struct Head {
    raw: Vec<u8>,
    /// Request: method, target. Response: version, status code.
    first: (String, String),
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.header(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    /// Body framing of a request, or of a response when `response_to` is the request method.
    fn framing(&self, response_to: Option<&str>) -> Framing {
        if let Some(method) = response_to {
            let status: u16 = self.first.1.parse().unwrap_or(0);
            if method == "HEAD" || status == 204 || status == 304 || status < 200 {
                return Framing::Empty;
            }
        }
        if self.has_token("transfer-encoding", "chunked") {
            return Framing::Chunked;
        }
        match self
            .header("content-length")
            .and_then(|v| v.trim().parse().ok())
        {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None if response_to.is_some() => Framing::UntilClose,
            None => Framing::Empty,
        }
    }

    /// Whether the connection ends after this message.
    fn closes(&self) -> bool {
        let http10 = self.first.0 == "HTTP/1.0" || self.raw.starts_with(b"HTTP/1.0");
        self.has_token("connection", "close")
            || (http10 && !self.has_token("connection", "keep-alive"))
    }
}

const MAX_HEAD: usize = 64 * 1024;

/// Reads one message head; `None` on a clean end of stream before it.
async fn read_head<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> std::io::Result<Option<Head>> {
    let mut raw = Vec::new();
    loop {
        let before = raw.len();
        let n = r.read_until(b'\n', &mut raw).await?;
        if n == 0 {
            return if raw.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        if raw.len() > MAX_HEAD {
            return Err(std::io::Error::other("message head too large"));
        }
        let line = &raw[before..];
        if line == b"\r\n" || line == b"\n" {
            if before == 0 {
                // Tolerate a stray empty line between messages.
                raw.clear();
                continue;
            }
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let mut lines = text.lines();
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let first = (
        first.next().unwrap_or_default().to_string(),
        first.next().unwrap_or_default().to_string(),
    );
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Some(Head {
        raw,
        first,
        headers,
    }))
}

/// Copies exactly `n` bytes.
async fn copy_exact<R, W>(r: &mut BufReader<R>, w: &mut W, n: u64) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let copied = tokio::io::copy(&mut r.take(n), w).await?;
    if copied < n {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Copies one body, framing included (chunk sizes, extensions and trailers verbatim).
async fn copy_body<R, W>(r: &mut BufReader<R>, w: &mut W, framing: Framing) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match framing {
        Framing::Empty => Ok(()),
        Framing::Length(n) => copy_exact(r, w, n).await,
        Framing::UntilClose => tokio::io::copy(r, w).await.map(|_| ()),
        Framing::Chunked => loop {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            w.write_all(&line).await?;
            let size_text = String::from_utf8_lossy(&line);
            let size_hex = size_text.split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size_hex, 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size {size_hex:?}")))?;
            if size > 0 {
                copy_exact(r, w, size + 2).await?; // data + CRLF
                continue;
            }
            // Last chunk: trailer lines up to an empty line.
            loop {
                let mut trailer = Vec::new();
                if r.read_until(b'\n', &mut trailer).await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                w.write_all(&trailer).await?;
                if trailer == b"\r\n" || trailer == b"\n" {
                    return Ok(());
                }
            }
        },
    }
}

/// An S3 error answer for `kind` (500 or 503), with an XML body unless the request was HEAD.
fn error_answer(kind: FaultKind, request: &Head) -> Vec<u8> {
    let (status, code, message) = match kind {
        FaultKind::SlowDown => (
            "503 Slow Down",
            "SlowDown",
            "Please reduce your request rate.",
        ),
        _ => (
            "500 Internal Server Error",
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
    };
    let resource = request
        .first
        .1
        .split('?')
        .next()
        .unwrap_or_default()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><Resource>{resource}</Resource><RequestId>injected-fault</RequestId></Error>"
    );
    let body = if request.first.0 == "HEAD" {
        String::new()
    } else {
        body
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nx-amz-request-id: injected-fault\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

type Upstream = (BufReader<OwnedReadHalf>, OwnedWriteHalf);

/// Serves one client connection until either side closes it or a fault drops it.
async fn serve(shared: Arc<Shared>, client: TcpStream) -> std::io::Result<()> {
    let (client_r, mut client_w) = client.into_split();
    let mut client_r = BufReader::new(client_r);
    let mut upstream: Option<Upstream> = None;
    while let Some(request) = read_head(&mut client_r).await? {
        let (method, target) = (request.first.0.clone(), request.first.1.clone());
        let op = S3Op::classify(
            &method,
            &target,
            request.header("x-amz-copy-source").is_some(),
        );
        let framing = request.framing(None);
        let mut delay = None;
        let mut lose_response = false;
        match shared.decide(op, &target) {
            Some((FaultKind::DropMidRequest, _)) => {
                let half = match framing {
                    Framing::Length(n) => n / 2,
                    Framing::Chunked => 1024,
                    Framing::Empty | Framing::UntilClose => 0,
                };
                let _ = copy_exact(&mut client_r, &mut tokio::io::sink(), half).await;
                return Ok(());
            }
            Some((FaultKind::DropBeforeResponse, _)) => {
                copy_body(&mut client_r, &mut tokio::io::sink(), framing).await?;
                return Ok(());
            }
            Some((kind @ (FaultKind::InternalError | FaultKind::SlowDown), _)) => {
                copy_body(&mut client_r, &mut tokio::io::sink(), framing).await?;
                client_w.write_all(&error_answer(kind, &request)).await?;
                client_w.flush().await?;
                if request.closes() {
                    return Ok(());
                }
                continue;
            }
            Some((FaultKind::SlowResponse, d)) => delay = Some(d),
            Some((FaultKind::DropResponse, _)) => lose_response = true,
            None => {}
        }
        if upstream.is_none() {
            let (r, w) = TcpStream::connect(shared.upstream).await?.into_split();
            upstream = Some((BufReader::new(r), w));
        }
        let Some((up_r, up_w)) = upstream.as_mut() else {
            unreachable!("connected just above")
        };
        up_w.write_all(&request.raw).await?;
        copy_body(&mut client_r, up_w, framing).await?;
        up_w.flush().await?;
        let response = loop {
            let head = read_head(up_r)
                .await?
                .ok_or(std::io::ErrorKind::UnexpectedEof)?;
            let status: u16 = head.first.1.parse().unwrap_or(0);
            if (100..200).contains(&status) && status != 101 {
                client_w.write_all(&head.raw).await?;
                continue;
            }
            break head;
        };
        let response_framing = response.framing(Some(&method));
        if lose_response {
            // Let upstream finish its answer, then hang up on the client.
            copy_body(up_r, &mut tokio::io::sink(), response_framing).await?;
            return Ok(());
        }
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        client_w.write_all(&response.raw).await?;
        copy_body(up_r, &mut client_w, response_framing).await?;
        client_w.flush().await?;
        if response_framing == Framing::UntilClose || response.closes() || request.closes() {
            return Ok(());
        }
    }
    Ok(())
}
