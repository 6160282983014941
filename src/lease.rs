//! Writer leases: at most one scheduled writer (`run` or `run --once`) per dataset and account
//! on one output. Two of them would be safe for the data (every read-modify-write is a
//! compare-and-swap and history days are replaced whole), but each would spend the account's
//! request budget on the same work, so the second is refused at start with a message naming the
//! holder. `backfill` takes no lease and always runs beside a daemon.
//!
//! A lease is the state object `_state/lease/<dataset>/account_id=A.json` (a [`Holder`]),
//! taken and renewed by compare-and-swap. It expires [`LEASE_TTL`] after its last renewal, so
//! a holder that died blocks nobody for longer; the holder renews it every [`RENEW_EVERY`].
//! A lease that has not expired is judged by what this process can know about its holder
//! ([`liveness`]):
//! - in our PID namespace (same host name, boot id and PID-namespace inode, all three known):
//!   its process exists (`kill(pid, 0)` does not say ESRCH, so a process of another user hidden
//!   by `hidepid` counts as alive) → refused at once; it does not (e.g. a systemd restart), or
//!   its pid is ours and no lease of this process has that id (we are its successor, which
//!   reused the pid) → taken over at once;
//! - anywhere else, or unknown (another machine, a container restarted in a new PID namespace,
//!   `/proc` partly hidden, a lease written before these were recorded): watched. A renewal
//!   seen within one TTL proves the holder alive → refused; none (by our own monotonic clock,
//!   whatever the holder's wall clock says) → taken over. A live holder renews every
//!   [`RENEW_EVERY`], so the refusal comes within about that; a dead one is replaced after at
//!   most one TTL, without a restart loop.
//!
//! A holder that finds its lease taken by another (it could not renew for longer than the TTL)
//! has lost it and must stop.
//!
//! The caller acquires with [`Leases::acquire`], keeps them renewed with [`Leases::keep`], and
//! calls [`KeptLeases::release`] when it stops (that expires them, so a restart is not kept
//! waiting).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

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

/// What this process can know about a holder of an unexpired lease (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Liveness {
    /// Certainly running: refuse.
    Alive,
    /// Certainly not running: take over.
    Gone,
    /// Not visible from here: watch for a renewal.
    Unknown,
}

/// Ids of the leases this process holds: a holder with our pid is one of ours only if listed.
static OURS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn ours() -> std::sync::MutexGuard<'static, Vec<String>> {
    // A panic while holding this lock cannot leave the list inconsistent (push/retain only).
    OURS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// [`Liveness`] of `holder` as seen by `me`.
fn liveness(holder: &Holder, me: &Identity) -> Liveness {
    if !same_pid_namespace(holder, me) {
        return Liveness::Unknown;
    }
    if holder.pid == me.pid {
        // We hold that pid: the holder is a previous process, or a lease of ours.
        return match ours().contains(&holder.id) {
            true => Liveness::Alive,
            false => Liveness::Gone,
        };
    }
    match pid_exists(holder.pid) {
        true => Liveness::Alive,
        false => Liveness::Gone,
    }
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
/// `kill(pid, 0)` sends nothing; only ESRCH means no such process (EPERM: another user's).
fn pid_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 performs only the existence and permission checks.
    let answer = unsafe { libc::kill(pid, 0) };
    answer == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// How often a watched lease is read again.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// What watching a lease showed.
enum Watched {
    /// Renewed or taken by someone: alive.
    Held(Holder),
    /// Released, or not renewed for a whole TTL: free to take at this version.
    Free(Option<Version>),
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
        let held = |h: Holder| LeaseError::Held {
            dataset: dataset.to_string(),
            account_id: self.account_id.clone(),
            holder: Box::new(h),
        };
        for attempt in 0..MAX_UPDATE_ATTEMPTS {
            if attempt > 0 {
                state::conflict_pause(attempt).await;
            }
            let loaded = state::load_versioned::<Holder>(&self.sink, &name).await?;
            let mut version = loaded.version;
            if let Some(h) = loaded.state.filter(|h| h.expires_at > Utc::now()) {
                match liveness(&h, &self.me) {
                    Liveness::Alive => return Err(held(h)),
                    Liveness::Gone => {}
                    Liveness::Unknown => match self.watch(&name, h).await? {
                        Watched::Held(h) => return Err(held(h)),
                        Watched::Free(v) => version = v,
                    },
                }
            }
            let holder = self.new_holder(id, command, Utc::now());
            if let Ok(version) =
                state::store_if(&self.sink, &name, &holder, version.as_ref()).await?
            {
                ours().push(id.to_string());
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

    /// Reads the lease `name` held by `h` every [`WATCH_EVERY`] until it is renewed or taken
    /// (alive), released, or not renewed for one TTL by our monotonic clock: a live holder
    /// renews several times per TTL, and the holder's wall clock (ahead or behind ours) does
    /// not shorten or lengthen the wait.
    async fn watch(&self, name: &str, h: Holder) -> Result<Watched, LeaseError> {
        let deadline = tokio::time::Instant::now() + self.ttl;
        info!(lease = %name, holder = %h, "The lease is held by a process this host cannot see; waiting for its renewal (then refusing) or its expiry (then taking it over).");
        loop {
            tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + WATCH_EVERY)).await;
            let current = state::load_versioned::<Holder>(&self.sink, name).await?;
            let Some(c) = current.state else {
                return Ok(Watched::Free(None));
            };
            let renewed = c.id != h.id || c.renewed_at != h.renewed_at;
            if renewed && c.expires_at > Utc::now() {
                return Ok(Watched::Held(c));
            }
            if renewed || c.expires_at != h.expires_at || tokio::time::Instant::now() >= deadline {
                return Ok(Watched::Free(current.version));
            }
        }
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
            ours().retain(|id| *id != lease.holder.id);
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
mod tests;
