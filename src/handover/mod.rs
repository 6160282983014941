//! Hand-over: one request budget per account across processes. The daemon (`run`) owns the
//! account's budget; a `backfill` or `run --once` started beside it does not add a budget of
//! its own but hands its work to the daemon over the daemon's HTTP server, which runs it at
//! catch-up (backfill) or its usual priorities (`run --once`) through the same budget, and
//! streams progress, the command's output lines and its exit code back. Ctrl-C in the CLI
//! cancels the handed-over job.
//!
//! Who owns the budget is recorded in the output store, as the lease
//! [`crate::lease::BUDGET`] (`_state/lease/_request_budget/account_id=A.json`): `run`,
//! `run --once` and a standalone `backfill` take it for as long as they send requests, so no
//! two processes of an account on one output ever spend a budget each. A daemon's lease also
//! names its hand-over endpoint ([`HandoverEndpoint`]: its `[server] listen` address and a
//! random key per start); a CLI that finds the budget held by a daemon hands over, one that
//! finds it held by another CLI, or by a daemon it cannot reach, refuses (exit 1) naming the
//! holder. Without a holder the CLI takes the lease and runs alone, as before.
//!
//! The protocol: `POST /handover/jobs` with a [`JobRequest`] as JSON and the key in the
//! [`KEY_HEADER`] header, accepted only from this host (a loopback peer, or the address the
//! daemon listens on); the answer is a stream of [`Event`]s, one JSON object per line (NDJSON):
//! `accepted` (with the job id), `progress` every second, `line`s of output, and `finished`
//! with the exit code. `DELETE /handover/jobs/{id}` (same key) cancels a job; so does closing
//! the stream. [`daemon`] serves it, [`cli`] uses it.

pub mod cli;
pub mod daemon;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::client::LimiterUsage;
use crate::lease::Holder;
use crate::progress::ProgressSnapshot;

/// Path of the jobs resource.
pub const JOBS_PATH: &str = "/handover/jobs";
/// Header carrying the daemon's hand-over key.
pub const KEY_HEADER: &str = "x-smartassist-handover-key";
/// How often a running job reports progress (also the heartbeat that notices a CLI gone).
pub const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The random key of one daemon start: only a process that can read the daemon's lease in
/// the output store may hand work over. Never printed (its `Debug` is redacted).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HandoverKey(String);

impl HandoverKey {
    /// A fresh key (122 random bits).
    pub fn generate() -> HandoverKey {
        HandoverKey(uuid::Uuid::new_v4().simple().to_string())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `offered` is this key, compared in time independent of where they differ.
    pub fn matches(&self, offered: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), offered.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for HandoverKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HandoverKey(<redacted>)")
    }
}

/// Where a daemon accepts hand-overs: recorded in its budget lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverEndpoint {
    /// The daemon's `[server] listen` address.
    pub addr: SocketAddr,
    pub key: HandoverKey,
}

impl HandoverEndpoint {
    /// The address to connect to from the daemon's host: an unspecified listen address
    /// (`0.0.0.0`, `[::]`) is reached on loopback.
    pub fn connect_addr(&self) -> SocketAddr {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        addr
    }
}

/// Why work could not be handed over, or how a handed-over job failed.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error(
        "{holder} owns the request budget of this account and output, but its hand-over \
         endpoint http://{addr} cannot be reached from here ({reason}). Run this command where \
         that address is reachable (the daemon's host or container), or stop the daemon: \
         running alone would spend a second budget and exceed api.requests_per_minute"
    )]
    Unreachable {
        holder: Box<Holder>,
        addr: SocketAddr,
        reason: String,
    },
    /// The daemon refused the job (HTTP `status`).
    #[error("the daemon refused the work: {message}")]
    Refused { status: u16, message: String },
    /// The job ran and failed; the CLI exits with the daemon's code.
    #[error("{message}")]
    Failed { exit_code: i32, message: String },
    #[error(
        "the daemon stopped answering before the job finished ({reason}); what it finished is \
         kept: run the command again (backfill --skip-existing skips the finished days)"
    )]
    Lost { reason: String },
}

impl HandoverError {
    /// Exit code of the CLI: the daemon's for a failed job, 2 for work the daemon cannot do
    /// (a dataset it does not export, a request it cannot read), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            HandoverError::Failed { exit_code, .. } => *exit_code,
            HandoverError::Refused {
                status: 400 | 409 | 422,
                ..
            } => 2,
            _ => 1,
        }
    }
}

/// The work a CLI hands over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum JobRequest {
    /// `backfill --from --to [--dataset ...] [--concurrency] [--skip-existing]`.
    Backfill {
        from: NaiveDate,
        to: NaiveDate,
        /// Dataset names, each enabled in the daemon.
        datasets: Vec<String>,
        concurrency: usize,
        skip_existing: bool,
        /// `--missing`: only the holes of the coverage record.
        #[serde(default, skip_serializing_if = "is_false")]
        missing: bool,
        /// `--provisional` (with `--missing`).
        #[serde(default, skip_serializing_if = "is_false")]
        provisional: bool,
    },
    /// `run --once` of these datasets (the CLI's enabled ones).
    RunOnce { datasets: Vec<String> },
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl JobRequest {
    pub fn datasets(&self) -> &[String] {
        match self {
            JobRequest::Backfill { datasets, .. } | JobRequest::RunOnce { datasets } => datasets,
        }
    }

    /// `backfill 2024-05-01..2024-05-31 of user_status, call_details`, for logs.
    pub fn describe(&self) -> String {
        match self {
            JobRequest::Backfill {
                from, to, datasets, ..
            } => {
                format!("backfill {from}..{to} of {}", datasets.join(", "))
            }
            JobRequest::RunOnce { datasets } => format!("run --once of {}", datasets.join(", ")),
        }
    }
}

/// One line of a job's answer stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The daemon runs the job; `job` names it for `DELETE`.
    Accepted { job: String },
    /// Progress of the dataset a backfill is on (also sent as a heartbeat).
    Progress(Progress),
    /// A line the command prints on stdout.
    Line { text: String },
    /// Sent when nothing else was for a while: a CLI that went away is noticed.
    Alive,
    /// The job ended: the CLI exits with `exit_code`, printing `error` when there is one.
    Finished {
        exit_code: i32,
        error: Option<String>,
    },
}

/// Backfill progress on the wire (see [`ProgressSnapshot`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub dataset: String,
    pub days_total: u64,
    pub days_done: u64,
    pub days_failed: u64,
    pub rows: u64,
    pub requests: u64,
    pub waits: u64,
    pub waited_seconds: f64,
    pub throttled: u64,
    pub elapsed_seconds: f64,
}

impl Progress {
    pub fn of(dataset: &str, s: &ProgressSnapshot) -> Progress {
        Progress {
            dataset: dataset.to_string(),
            days_total: s.days_total,
            days_done: s.days_done,
            days_failed: s.days_failed,
            rows: s.rows,
            requests: s.limiter.granted,
            waits: s.limiter.waits,
            waited_seconds: s.limiter.waited.as_secs_f64(),
            throttled: s.limiter.throttled,
            elapsed_seconds: s.elapsed.as_secs_f64(),
        }
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        let secs = |s: f64| Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::ZERO);
        ProgressSnapshot {
            days_total: self.days_total,
            days_done: self.days_done,
            days_failed: self.days_failed,
            rows: self.rows,
            limiter: LimiterUsage {
                granted: self.requests,
                waits: self.waits,
                waited: secs(self.waited_seconds),
                throttled: self.throttled,
            },
            elapsed: secs(self.elapsed_seconds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_exactly_and_never_print() {
        let key = HandoverKey::generate();
        assert!(key.matches(key.expose()));
        assert!(!key.matches(""));
        assert!(!key.matches(&format!("{}0", key.expose())));
        assert_ne!(HandoverKey::generate(), key);
        let endpoint = HandoverEndpoint {
            addr: "0.0.0.0:9464".parse().expect("addr"),
            key: key.clone(),
        };
        assert!(!format!("{endpoint:?}").contains(key.expose()));
        assert_eq!(endpoint.connect_addr().to_string(), "127.0.0.1:9464");
        let v6 = HandoverEndpoint {
            addr: "[::]:9464".parse().expect("addr"),
            key,
        };
        assert_eq!(v6.connect_addr().to_string(), "[::1]:9464");
    }

    #[test]
    fn requests_and_events_have_a_stable_wire_form() {
        let req = JobRequest::Backfill {
            from: "2024-05-01".parse().expect("date"),
            to: "2024-05-31".parse().expect("date"),
            datasets: vec!["user_status".into()],
            concurrency: 4,
            skip_existing: false,
            missing: false,
            provisional: false,
        };
        assert_eq!(
            serde_json::to_string(&req).expect("json"),
            r#"{"command":"backfill","from":"2024-05-01","to":"2024-05-31","datasets":["user_status"],"concurrency":4,"skip_existing":false}"#
        );
        let missing: JobRequest = serde_json::from_str(
            r#"{"command":"backfill","from":"2024-05-01","to":"2024-05-31","datasets":["user_status"],"concurrency":4,"skip_existing":false,"missing":true}"#,
        )
        .expect("backfill --missing");
        assert!(matches!(
            missing,
            JobRequest::Backfill {
                missing: true,
                provisional: false,
                ..
            }
        ));
        let finished = Event::Finished {
            exit_code: 1,
            error: Some("1 of 2 units failed: 2024-05-02".into()),
        };
        assert_eq!(
            serde_json::to_string(&finished).expect("json"),
            r#"{"event":"finished","exit_code":1,"error":"1 of 2 units failed: 2024-05-02"}"#
        );
        let line: Event = serde_json::from_str(r#"{"event":"line","text":"hello"}"#).expect("line");
        assert_eq!(
            line,
            Event::Line {
                text: "hello".into()
            }
        );
    }
}
