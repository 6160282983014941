//! Writer leases: at most one scheduled writer (`run` or `run --once`) per dataset and account
//! on one output. Two of them would be safe for the data (every read-modify-write is a
//! compare-and-swap and history days are replaced whole), but each would spend the account's
//! request budget on the same work, so the second is refused at start with a message naming the
//! holder. `backfill` takes no lease and always runs beside a daemon.
//!
//! A lease is the state object `_state/lease/<dataset>/account_id=A.json` (a [`Holder`]),
//! taken and renewed by compare-and-swap. It expires [`LEASE_TTL`] after its last renewal, so
//! a holder that died blocks nobody for longer; the holder renews it every [`RENEW_EVERY`].
//! A holder known to be dead is replaced at once: it ran in our PID namespace (same host name,
//! boot id and PID-namespace inode, all three known) and its process no longer exists (e.g. a
//! systemd restart) or its pid is ours (we are its successor, which reused the pid). A holder in
//! another PID namespace or boot, or one whose namespace is unknown (another machine, a
//! container restarted in a new namespace, a lease written before these were recorded), keeps
//! its lease until it expires. A holder that finds its lease taken by another (it could not
//! renew for longer than the TTL) has lost it and must stop.
//!
//! The caller acquires with [`Leases::acquire`], keeps them renewed with [`Leases::keep`], and
//! calls [`KeptLeases::release`] when it stops (that expires them, so a restart is not kept
//! waiting).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::sink::{Sink, Version};
use crate::state::{self, StateError, MAX_UPDATE_ATTEMPTS};

/// A lease not renewed for this long is free.
pub const LEASE_TTL: Duration = Duration::from_secs(60);
/// How often a holder renews its leases.
pub const RENEW_EVERY: Duration = Duration::from_secs(15);

/// Who holds a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Unique per acquisition.
    pub id: String,
    pub host: String,
    pub pid: u32,
    /// The holder's boot (`/proc/sys/kernel/random/boot_id`); absent in leases of older
    /// releases and off Linux.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// The holder's PID namespace (`/proc/self/ns/pid`, e.g. `pid:[4026531836]`); absent in
    /// leases of older releases and off Linux.
    #[serde(default)]
    pub pid_ns: Option<String>,
    /// `run` or `run --once`.
    pub command: String,
    pub started_at: DateTime<Utc>,
    pub renewed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` (pid {} on host {}, started {}, lease valid until {})",
            self.command,
            self.pid,
            self.host,
            self.started_at.format("%Y-%m-%dT%H:%M:%SZ"),
            self.expires_at.format("%Y-%m-%dT%H:%M:%SZ")
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "{dataset} of account {account_id} is already exported to this output by {holder}; \
         stop that process first (if it died, its lease expires at the time shown; `backfill` \
         may run beside it)"
    )]
    Held {
        dataset: String,
        account_id: String,
        holder: Box<Holder>,
    },
    #[error(
        "lost the lease of {dataset} (account {account_id}) to {holder}: it could not be renewed \
         in time; stopping so that one writer remains"
    )]
    Lost {
        dataset: String,
        account_id: String,
        holder: Box<Holder>,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

/// Name of the lease of `dataset` for `account_id`.
pub fn lease_name(dataset: &str, account_id: &str) -> String {
    format!("lease/{dataset}/account_id={account_id}.json")
}

/// Who is asking for a lease: this host and process ([`Identity::current`]). The boot id and
/// PID namespace tell whether a holder's pid can be looked up in our `/proc` (see [`gone`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub host: String,
    pub pid: u32,
    /// `None` when unreadable (not Linux).
    pub boot_id: Option<String>,
    /// `None` when unreadable (not Linux).
    pub pid_ns: Option<String>,
}

impl Identity {
    /// This host, boot, PID namespace and process.
    pub fn current() -> Identity {
        Identity {
            host: host_name(),
            pid: std::process::id(),
            boot_id: boot_id(),
            pid_ns: pid_namespace(),
        }
    }
}

/// This machine's host name (for messages naming a holder).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_string())
}

/// This boot of the kernel (random per boot, shared by all containers of the machine).
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Our PID namespace as the kernel names it, e.g. `pid:[4026531836]`.
fn pid_namespace() -> Option<String> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    link.to_str().map(str::to_string)
}

/// Whether a live-looking holder is certainly gone: it ran in our PID namespace, and its pid is
/// ours (we are its restarted successor; we hold that pid, so it cannot) or no longer exists.
fn gone(holder: &Holder, me: &Identity) -> bool {
    same_pid_namespace(holder, me) && (holder.pid == me.pid || !pid_exists(holder.pid))
}

/// Whether the holder's pid means the same process in our `/proc`: same host name, and boot id
/// and PID namespace both known and equal to ours. Should the kernel have reused the inode of
/// the holder's destroyed namespace for ours, every process of that namespace is dead, so
/// treating the holder as gone is still right.
fn same_pid_namespace(holder: &Holder, me: &Identity) -> bool {
    let known_equal =
        |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a == b);
    holder.host == me.host
        && known_equal(&holder.boot_id, &me.boot_id)
        && known_equal(&holder.pid_ns, &me.pid_ns)
}

/// Whether a process with this pid exists in our PID namespace (a zombie counts as existing).
fn pid_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn ttl_delta(ttl: Duration) -> TimeDelta {
    TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX)
}

struct Lease {
    dataset: String,
    name: String,
    holder: Holder,
    version: Version,
}

/// The leases of one process (one per dataset it schedules).
pub struct Leases {
    sink: Sink,
    me: Identity,
    account_id: String,
    ttl: Duration,
    held: Vec<Lease>,
}

impl Leases {
    /// Takes the lease of every dataset in `datasets` for `command`, or none: a lease held by
    /// a live process is [`LeaseError::Held`] (leases taken before are released).
    pub async fn acquire(
        sink: &Sink,
        me: &Identity,
        account_id: &str,
        datasets: &[&str],
        command: &str,
        ttl: Duration,
    ) -> Result<Leases, LeaseError> {
        let mut leases = Leases {
            sink: sink.clone(),
            me: me.clone(),
            account_id: account_id.to_string(),
            ttl,
            held: Vec::new(),
        };
        let holder_id = uuid::Uuid::new_v4().simple().to_string();
        for dataset in datasets {
            match leases.take(dataset, &holder_id, command).await {
                Ok(lease) => leases.held.push(lease),
                Err(e) => {
                    leases.release_all().await;
                    return Err(e);
                }
            }
        }
        Ok(leases)
    }

    async fn take(&self, dataset: &str, id: &str, command: &str) -> Result<Lease, LeaseError> {
        let name = lease_name(dataset, &self.account_id);
        for attempt in 0..MAX_UPDATE_ATTEMPTS {
            if attempt > 0 {
                state::conflict_pause(attempt).await;
            }
            let now = Utc::now();
            let loaded = state::load_versioned::<Holder>(&self.sink, &name).await?;
            if let Some(h) = loaded.state {
                if h.expires_at > now && !gone(&h, &self.me) {
                    return Err(LeaseError::Held {
                        dataset: dataset.to_string(),
                        account_id: self.account_id.clone(),
                        holder: Box::new(h),
                    });
                }
            }
            let holder = self.new_holder(id, command, now);
            if let Ok(version) =
                state::store_if(&self.sink, &name, &holder, loaded.version.as_ref()).await?
            {
                return Ok(Lease {
                    dataset: dataset.to_string(),
                    name,
                    holder,
                    version,
                });
            }
        }
        Err(StateError::Contended {
            object: name,
            attempts: MAX_UPDATE_ATTEMPTS,
        }
        .into())
    }

    /// Us as the holder of a lease taken at `now`.
    fn new_holder(&self, id: &str, command: &str, now: DateTime<Utc>) -> Holder {
        Holder {
            id: id.to_string(),
            host: self.me.host.clone(),
            pid: self.me.pid,
            boot_id: self.me.boot_id.clone(),
            pid_ns: self.me.pid_ns.clone(),
            command: command.to_string(),
            started_at: now,
            renewed_at: now,
            expires_at: now + ttl_delta(self.ttl),
        }
    }

    /// Renews every lease for another TTL. A lease someone else took meanwhile is
    /// [`LeaseError::Lost`].
    pub async fn renew(&mut self) -> Result<(), LeaseError> {
        for lease in &mut self.held {
            let now = Utc::now();
            let next = Holder {
                renewed_at: now,
                expires_at: now + ttl_delta(self.ttl),
                ..lease.holder.clone()
            };
            match state::store_if(&self.sink, &lease.name, &next, Some(&lease.version)).await? {
                Ok(version) => {
                    lease.version = version;
                    lease.holder = next;
                }
                Err(_) => {
                    let current = state::load::<Holder>(&self.sink, &lease.name).await?;
                    return Err(LeaseError::Lost {
                        dataset: lease.dataset.clone(),
                        account_id: self.account_id.clone(),
                        holder: Box::new(current.unwrap_or(next)),
                    });
                }
            }
        }
        Ok(())
    }

    /// Expires every lease still ours (best effort: failures are logged; the lease then
    /// expires on its own).
    async fn release_all(&mut self) {
        for lease in self.held.drain(..) {
            let expired = Holder {
                expires_at: Utc::now(),
                ..lease.holder.clone()
            };
            let result =
                state::store_if(&self.sink, &lease.name, &expired, Some(&lease.version)).await;
            if let Err(e) = result {
                warn!(lease = %lease.name, error = %crate::error::error_chain(&e), "Could not release the lease; it expires on its own.");
            }
        }
    }

    /// Keeps the leases renewed on a task of their own until [`KeptLeases::release`].
    pub fn keep(mut self, every: Duration) -> KeptLeases {
        let stop = CancellationToken::new();
        let lost = CancellationToken::new();
        let (stop2, lost2) = (stop.clone(), lost.clone());
        let task = tokio::spawn(async move {
            let mut result = Ok(());
            loop {
                tokio::select! {
                    _ = stop2.cancelled() => break,
                    _ = tokio::time::sleep(every) => {}
                }
                match self.renew().await {
                    Ok(()) => {}
                    Err(e @ LeaseError::Lost { .. }) => {
                        error!(error = %e, "Lease lost.");
                        result = Err(e);
                        lost2.cancel();
                        self.held.clear();
                        break;
                    }
                    // Storage trouble: try again; the lease lasts a few renewals.
                    Err(e) => {
                        warn!(error = %crate::error::error_chain(&e), "Could not renew the lease; retrying.")
                    }
                }
            }
            self.release_all().await;
            result
        });
        KeptLeases { stop, lost, task }
    }
}

/// Leases being renewed (see [`Leases::keep`]).
pub struct KeptLeases {
    stop: CancellationToken,
    lost: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), LeaseError>>,
}

impl KeptLeases {
    /// Cancelled when a lease was lost: the holder must stop.
    pub fn lost(&self) -> &CancellationToken {
        &self.lost
    }

    /// Stops renewing and releases the leases; a lease lost meanwhile is the error.
    pub async fn release(self) -> Result<(), LeaseError> {
        self.stop.cancel();
        match self.task.await {
            Ok(result) => result,
            Err(e) => {
                warn!(error = %e, "The lease task ended abnormally; the leases expire on their own.");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn sink() -> Sink {
        Sink::with_store(
            Arc::new(object_store::memory::InMemory::new()),
            object_store::path::Path::from("lake"),
        )
    }

    /// A process whose boot and PID namespace are unknown (as off Linux).
    fn who(host: &str, pid: u32) -> Identity {
        Identity {
            host: host.into(),
            pid,
            boot_id: None,
            pid_ns: None,
        }
    }

    /// A process of `host-a`, boot `boot-1`, in PID namespace `pid:[4026531836]`.
    fn local(pid: u32) -> Identity {
        Identity {
            boot_id: Some("boot-1".into()),
            pid_ns: Some("pid:[4026531836]".into()),
            ..who("host-a", pid)
        }
    }

    /// A live-looking lease (60 s left) held by `pid` in the place `of` describes.
    fn held_in(of: &Identity, pid: u32) -> Holder {
        Holder {
            host: of.host.clone(),
            pid,
            boot_id: of.boot_id.clone(),
            pid_ns: of.pid_ns.clone(),
            ..other_holder(TimeDelta::seconds(60))
        }
    }

    /// A pid no process can have: pids stay below `pid_max`.
    fn impossible_pid() -> u32 {
        let text = std::fs::read_to_string("/proc/sys/kernel/pid_max").expect("pid_max");
        text.trim().parse().expect("a number")
    }

    fn other_holder(expires_in: TimeDelta) -> Holder {
        let now = Utc::now();
        Holder {
            id: "other".into(),
            host: "other-host".into(),
            pid: 4242,
            boot_id: None,
            pid_ns: None,
            command: "run".into(),
            started_at: now - TimeDelta::hours(1),
            renewed_at: now,
            expires_at: now + expires_in,
        }
    }

    async fn put(sink: &Sink, name: &str, h: &Holder) {
        state::update(sink, name, |_| Some(h.clone()))
            .await
            .expect("store");
    }

    async fn acquire(sink: &Sink, me: &Identity, dataset: &str) -> Result<Leases, LeaseError> {
        Leases::acquire(sink, me, "acct", &[dataset], "run", LEASE_TTL).await
    }

    #[tokio::test]
    async fn a_live_lease_refuses_a_second_writer_naming_the_holder() {
        let sink = sink();
        let (a, b) = (who("host-a", 100), who("host-b", 200));
        let _first = acquire(&sink, &a, "user_status").await.expect("free");
        let err = Leases::acquire(&sink, &b, "acct", &["user_status"], "run --once", LEASE_TTL)
            .await
            .err()
            .expect("held");
        assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("`run` (pid 100 on host host-a"),
            "the holder is named: {text}"
        );
        // Another dataset or another account is another lease.
        acquire(&sink, &b, "intent_realtime")
            .await
            .expect("other dataset");
        Leases::acquire(&sink, &b, "other", &["user_status"], "run", LEASE_TTL)
            .await
            .expect("other account");
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_and_its_old_holder_loses_it() {
        let sink = sink();
        let me = who("host-a", 100);
        let name = lease_name("user_status", "acct");
        put(&sink, &name, &other_holder(TimeDelta::seconds(30))).await;
        assert!(acquire(&sink, &me, "user_status").await.is_err());
        put(&sink, &name, &other_holder(TimeDelta::seconds(-1))).await;
        let mut ours = acquire(&sink, &me, "user_status")
            .await
            .expect("expired lease taken over");
        ours.renew().await.expect("still ours");
        // Someone takes it over (as if we had not renewed in time): our renewal is refused.
        put(&sink, &name, &other_holder(TimeDelta::seconds(60))).await;
        let err = ours.renew().await.expect_err("lost");
        assert!(matches!(err, LeaseError::Lost { .. }), "{err:?}");
        assert!(
            err.to_string().contains("pid 4242 on host other-host"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_lease_of_our_pid_in_our_pid_namespace_is_taken_at_once_and_release_frees_it() {
        let sink = sink();
        let name = lease_name("user_status", "acct");
        let me = local(100);
        // Our own pid in our namespace: a previous incarnation (a systemd restart).
        put(&sink, &name, &held_in(&me, 100)).await;
        let kept = acquire(&sink, &me, "user_status")
            .await
            .expect("taken over")
            .keep(RENEW_EVERY);
        kept.release().await.expect("released");
        let after: Holder = state::load(&sink, &name)
            .await
            .expect("load")
            .expect("kept");
        assert!(
            after.expires_at <= Utc::now(),
            "a released lease is expired"
        );
        acquire(&sink, &who("host-b", 1), "user_status")
            .await
            .expect("free again");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_linux_process_knows_its_boot_and_pid_namespace() {
        let me = Identity::current();
        let boot = me.boot_id.expect("boot id");
        let dashes: Vec<usize> = boot.match_indices('-').map(|(i, _)| i).collect();
        assert_eq!(
            (boot.len(), dashes),
            (36, vec![8, 13, 18, 23]),
            "a UUID: {boot}"
        );
        let ns = me.pid_ns.expect("pid namespace");
        let inode = ns
            .strip_prefix("pid:[")
            .and_then(|rest| rest.strip_suffix(']'))
            .unwrap_or_else(|| panic!("pid:[inode], got {ns}"));
        assert!(inode.parse::<u64>().is_ok(), "{ns}");
    }

    #[tokio::test]
    async fn a_holder_with_our_pid_in_another_pid_namespace_is_alive() {
        // Two containers of one host name, each pid 1 in a namespace of its own.
        let me = local(1);
        let other_container = Identity {
            pid_ns: Some("pid:[4026532999]".into()),
            ..local(1)
        };
        let holder = held_in(&other_container, 1);
        assert!(!gone(&holder, &me));
        let sink = sink();
        put(&sink, &lease_name("user_status", "acct"), &holder).await;
        let err = acquire(&sink, &me, "user_status")
            .await
            .err()
            .expect("held");
        assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
        // Neither side knowing its namespace is no evidence either.
        assert!(!gone(&held_in(&who("host-a", 1), 1), &who("host-a", 1)));
        assert!(!gone(&held_in(&who("host-a", 1), 1), &me));
        assert!(!gone(&held_in(&me, 1), &who("host-a", 1)));
    }

    #[test]
    fn a_holder_of_another_boot_is_alive_whatever_its_pid() {
        let me = local(100);
        let before_reboot = Identity {
            boot_id: Some("boot-0".into()),
            ..local(100)
        };
        assert!(!gone(&held_in(&before_reboot, 100), &me));
        if cfg!(target_os = "linux") {
            let free_pid = impossible_pid();
            assert!(!gone(&held_in(&before_reboot, free_pid), &me));
            assert!(gone(&held_in(&me, free_pid), &me), "the control case");
        }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_holder_in_our_pid_namespace_whose_pid_does_not_exist_is_taken_over_at_once() {
        let me = Identity::current();
        let sink = sink();
        let name = lease_name("user_status", "acct");
        put(&sink, &name, &held_in(&me, impossible_pid())).await;
        acquire(&sink, &me, "user_status")
            .await
            .expect("dead holder");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_live_holder_in_our_pid_namespace_is_not_gone() {
        let me = Identity::current();
        let mut child = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .expect("spawn sleep");
        let alive = gone(&held_in(&me, child.id()), &me);
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert!(!alive, "a running process holds the lease");
    }

    #[tokio::test]
    async fn a_lease_of_an_older_release_loads_and_waits_for_its_expiry() {
        // Written before boot ids and PID namespaces were recorded, by our host and pid.
        let me = Identity::current();
        let expires = Utc::now() + TimeDelta::seconds(60);
        let json = format!(
            r#"{{"id": "old", "host": "{}", "pid": {}, "command": "run",
                "started_at": "2026-01-01T00:00:00Z", "renewed_at": "2026-01-01T00:00:00Z",
                "expires_at": "{}"}}"#,
            me.host,
            me.pid,
            expires.to_rfc3339()
        );
        let old: Holder = serde_json::from_str(&json).expect("an old lease loads");
        assert_eq!((&old.boot_id, &old.pid_ns), (&None, &None));
        assert!(!gone(&old, &me));
        let sink = sink();
        put(&sink, &lease_name("user_status", "acct"), &old).await;
        let err = acquire(&sink, &me, "user_status")
            .await
            .err()
            .expect("held");
        assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
    }
}
