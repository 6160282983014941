//! Writer leases: at most one scheduled writer (`run` or `run --once`) per dataset and account
//! on one output. Two of them would be safe for the data (every read-modify-write is a
//! compare-and-swap and history days are replaced whole), but each would spend the account's
//! request budget on the same work, so the second is refused at start with a message naming the
//! holder.
//!
//! One more lease, [`BUDGET`], is held by whoever spends the account's request budget on this
//! output: `run`, `run --once` and a standalone `backfill`. A daemon's record of it names its
//! hand-over endpoint, so a `backfill` or `run --once` beside it hands its work over instead
//! of spending a second budget ([`crate::handover`]); a holder without one is
//! [`LeaseError::BudgetHeld`].
//!
//! A lease is the state object `_state/lease/<dataset>/account_id=A.json` (a [`Holder`]),
//! taken and renewed by compare-and-swap. It expires [`LEASE_TTL`] after its last renewal, so
//! a holder that died blocks nobody for longer; the holder renews it every [`RENEW_EVERY`] and
//! marks it released on a clean exit. A lease that is neither released nor expired (by our
//! wall clock: the writers' clocks must agree within the TTL) is judged by what this process
//! can know about its holder (the private `identity` module):
//! - in our PID namespace (same host name, boot id and PID-namespace inode, all three known):
//!   its process exists (`kill(pid, 0)` does not say ESRCH, so a process of another user hidden
//!   by `hidepid` counts as alive) → refused at once; it does not (e.g. a systemd restart), or
//!   its pid is ours and no lease of this process has that id (we are its successor, which
//!   reused the pid) → taken over at once;
//! - anywhere else, or unknown (another machine, a container restarted in a new PID namespace,
//!   `/proc` partly hidden, a lease written before these were recorded): watched. A renewal
//!   seen within one TTL proves the holder alive → refused (whatever expiry its clock wrote);
//!   none, by our own monotonic clock → taken over. A live holder renews every
//!   [`RENEW_EVERY`], so the refusal comes within about that; a dead one is replaced after at
//!   most one TTL, without a restart loop.
//!
//! Every lease of an acquisition is judged first (watches side by side) and all are taken only
//! then, so no lease of ours waits unrenewed; one refusal takes none. A holder that finds its
//! lease taken by another (it could not renew for longer than the TTL) has lost it and must
//! stop; its other leases are released. So has one whose renewals fail until its next try would
//! come after the lease expires: it stops before another writer may take the lease over. A
//! renewal whose answer was lost but which landed is recognised by the holder id and kept.
//!
//! The caller acquires with [`Leases::acquire`], keeps them renewed with [`Leases::keep`], and
//! calls [`KeptLeases::release`] when it stops (that expires them, so a restart is not kept
//! waiting). Taking a lease also tells until when its previous holder held it ([`Before`]):
//! the holder of [`BUDGET`] counts the account's requests of the last minute from that. The
//! holder of [`BUDGET`] also writes its budget's real grants of the last window into its
//! record at each renewal and at its release ([`Holder::grants_ms`]); a released record hands
//! them to the next holder, which counts exactly those ([`KeptLeases::tell_budget`]).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

mod holder;
mod identity;

pub use holder::{Before, Holder};
use identity::{forget, liveness, remember, Liveness};
pub use identity::{host_name, Identity};

use crate::client::Budget;
use crate::handover::HandoverEndpoint;
use crate::sink::{StateStore, Version};
use crate::state::{self, StateError, MAX_UPDATE_ATTEMPTS};

/// The pseudo-dataset whose lease is the account's request budget (see the module docs).
pub const BUDGET: &str = "_request_budget";

/// A lease not renewed for this long is free.
pub const LEASE_TTL: Duration = Duration::from_secs(60);
/// How often a holder renews its leases.
pub const RENEW_EVERY: Duration = Duration::from_secs(15);

/// Where the holder of [`BUDGET`] reads the grants it writes into its record (set by
/// [`KeptLeases::tell_budget`]).
type GrantsSource = Arc<OnceLock<Arc<Budget>>>;

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
        "the request budget of account {account_id} on this output is in use by {holder}, which \
         takes no work handed over; a second process with a budget of its own would exceed \
         api.requests_per_minute. Wait for it to end (if it died, its lease expires at the \
         time shown)"
    )]
    BudgetHeld {
        account_id: String,
        holder: Box<Holder>,
    },
    #[error(
        "lost the lease of {dataset} (account {account_id}) to {taken_by}: it could not be \
         renewed in time; stopping so that one writer remains"
    )]
    Lost {
        dataset: String,
        account_id: String,
        /// The new holder, or what happened to the lease object.
        taken_by: String,
    },
    #[error("the task renewing the leases failed: {0}")]
    Task(String),
    #[error(transparent)]
    State(#[from] StateError),
}

impl LeaseError {
    /// The live holder that refused the lease, if that is the error.
    pub fn holder(&self) -> Option<&Holder> {
        match self {
            LeaseError::Held { holder, .. } | LeaseError::BudgetHeld { holder, .. } => Some(holder),
            _ => None,
        }
    }
}

/// Name of the lease of `dataset` for `account_id`.
pub fn lease_name(dataset: &str, account_id: &str) -> String {
    format!("lease/{dataset}/account_id={account_id}.json")
}

/// How often a watched lease is read again.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// What watching a lease showed.
enum Watched {
    /// Renewed by its holder: alive.
    Held(Holder),
    /// Taken by someone else meanwhile: judge the new holder.
    Changed,
    /// Released, deleted, or not renewed for a whole TTL: free to take at this version.
    Free(Option<Version>),
}

/// `now` plus `ttl`, saturating.
fn expiry(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(ttl)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A lease this process holds.
struct Lease {
    dataset: String,
    name: String,
    holder: Holder,
    version: Version,
    before: Before,
}

/// The leases of one process (one per dataset it schedules), all under one holder id.
pub struct Leases {
    state: StateStore,
    me: Identity,
    account_id: String,
    ttl: Duration,
    id: String,
    held: Vec<Lease>,
    handover: Option<HandoverEndpoint>,
    grants_from: GrantsSource,
}

impl Leases {
    /// Takes the lease of every dataset in `datasets` for `command`, or none: a lease held by
    /// a live process is [`LeaseError::Held`]. Every lease is judged first (watches run side
    /// by side, up to one TTL), and all are taken only then, so no lease of ours waits
    /// unrenewed while another is watched.
    pub async fn acquire(
        state: &StateStore,
        me: &Identity,
        account_id: &str,
        datasets: &[&str],
        command: &str,
        ttl: Duration,
    ) -> Result<Leases, LeaseError> {
        Leases::acquire_serving(state, me, account_id, datasets, command, ttl, None).await
    }

    /// [`Leases::acquire`] by a process that accepts work handed over at `handover`
    /// (recorded in every lease it takes).
    pub async fn acquire_serving(
        state: &StateStore,
        me: &Identity,
        account_id: &str,
        datasets: &[&str],
        command: &str,
        ttl: Duration,
        handover: Option<HandoverEndpoint>,
    ) -> Result<Leases, LeaseError> {
        let mut leases = Leases {
            state: state.clone(),
            me: me.clone(),
            account_id: account_id.to_string(),
            ttl,
            id: uuid::Uuid::new_v4().simple().to_string(),
            held: Vec::new(),
            handover,
            grants_from: GrantsSource::default(),
        };
        // Known as ours before any lease names it: another acquire in this process then sees
        // a holder with our pid as alive.
        remember(&leases.id);
        match leases.take_all(datasets, command).await {
            Ok(()) => Ok(leases),
            Err(e) => {
                leases.release_all().await;
                forget(&leases.id);
                Err(e)
            }
        }
    }

    /// Judges every lease, then takes them all by compare-and-swap at the versions judged; a
    /// conflict (someone changed a lease meanwhile) releases what was taken and starts over.
    async fn take_all(&mut self, datasets: &[&str], command: &str) -> Result<(), LeaseError> {
        for attempt in 0..MAX_UPDATE_ATTEMPTS {
            if attempt > 0 {
                state::conflict_pause(attempt).await;
            }
            let judged =
                futures::future::try_join_all(datasets.iter().map(|d| self.judge(d))).await?;
            let now = Utc::now();
            let mut conflict = false;
            for (dataset, (version, before)) in datasets.iter().zip(judged) {
                let name = lease_name(dataset, &self.account_id);
                let holder = self.new_holder(command, now);
                match state::store_if(&self.state, &name, &holder, version.as_ref()).await? {
                    Ok(version) => self.held.push(Lease {
                        dataset: dataset.to_string(),
                        name,
                        holder,
                        version,
                        before,
                    }),
                    Err(_) => {
                        conflict = true;
                        break;
                    }
                }
            }
            if !conflict {
                return Ok(());
            }
            self.release_all().await;
        }
        Err(StateError::Contended {
            object: format!("lease/*/account_id={}", self.account_id),
            attempts: MAX_UPDATE_ATTEMPTS,
        }
        .into())
    }

    /// The version at which the lease of `dataset` may be taken and what its record says of
    /// the previous holder, or [`LeaseError::Held`] (see the module docs for how a holder is
    /// judged).
    async fn judge(&self, dataset: &str) -> Result<(Option<Version>, Before), LeaseError> {
        let name = lease_name(dataset, &self.account_id);
        let held = |h: Holder| match dataset {
            BUDGET => LeaseError::BudgetHeld {
                account_id: self.account_id.clone(),
                holder: Box::new(h),
            },
            _ => LeaseError::Held {
                dataset: dataset.to_string(),
                account_id: self.account_id.clone(),
                holder: Box::new(h),
            },
        };
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let loaded = state::load_versioned::<Holder>(&self.state, &name).await?;
            let now = Utc::now();
            let h = match loaded.state {
                None => return Ok((loaded.version, Before::Nobody)),
                Some(h) if h.is_free(now) => return Ok((loaded.version, Before::of_free(&h, now))),
                Some(h) => h,
            };
            match liveness(&h, &self.me) {
                Liveness::Alive => return Err(held(h)),
                Liveness::Gone => {
                    warn!(lease = %name, holder = %h, "Taking over the lease of a process that no longer exists.");
                    let before = Before::HeldUntil {
                        until: now,
                        grants: None,
                    };
                    return Ok((loaded.version, before));
                }
                Liveness::Unknown => match self.watch(&name, &h).await? {
                    Watched::Held(c) => return Err(held(c)),
                    Watched::Changed => continue,
                    Watched::Free(version) => {
                        warn!(lease = %name, holder = %h, "Taking over a lease its holder did not renew for a whole TTL.");
                        let before = Before::HeldUntil {
                            until: Utc::now(),
                            grants: None,
                        };
                        return Ok((version, before));
                    }
                },
            }
        }
        Err(StateError::Contended {
            object: name,
            attempts: MAX_UPDATE_ATTEMPTS,
        }
        .into())
    }

    /// Reads the lease `name` held by `h` every [`WATCH_EVERY`] until it is renewed (alive,
    /// whatever its clock wrote), taken by someone else, released or deleted, or not renewed
    /// for one TTL by our monotonic clock: a live holder renews several times per TTL.
    async fn watch(&self, name: &str, h: &Holder) -> Result<Watched, LeaseError> {
        let deadline = tokio::time::Instant::now() + self.ttl;
        info!(lease = %name, holder = %h, "The lease is held by a process this host cannot see; waiting for its renewal (then refusing) or one TTL without one (then taking it over).");
        loop {
            tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + WATCH_EVERY)).await;
            let current = state::load_versioned::<Holder>(&self.state, name).await?;
            let Some(c) = current.state else {
                return Ok(Watched::Free(None));
            };
            if c.id != h.id {
                return Ok(Watched::Changed);
            }
            if c.released {
                return Ok(Watched::Free(current.version));
            }
            if c.renewed_at != h.renewed_at {
                return Ok(Watched::Held(c));
            }
            // An older release marks a release by moving only the expiry back to its exit.
            if c.expires_at < h.expires_at {
                return Ok(Watched::Free(current.version));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Watched::Free(current.version));
            }
        }
    }

    /// Us as the holder of a lease taken at `now`.
    fn new_holder(&self, command: &str, now: DateTime<Utc>) -> Holder {
        Holder {
            id: self.id.clone(),
            host: self.me.host.clone(),
            pid: self.me.pid,
            boot_id: self.me.boot_id.clone(),
            pid_ns: self.me.pid_ns.clone(),
            command: command.to_string(),
            started_at: now,
            renewed_at: now,
            expires_at: expiry(now, self.ttl),
            released: false,
            handover: self.handover.clone(),
            grants_ms: None,
        }
    }

    /// The budget's grants of its last window as Unix milliseconds at `now`, for the record of
    /// `lease` (only [`BUDGET`]'s). Before its budget is known (a holder letting the lease go
    /// before its first request: its port taken, its start failed, an acquisition conflict),
    /// the grants it was handed that are still in the window: it added none, and dropping them
    /// would leave the next holder the even assumption after a clean release.
    fn grants_ms(&self, lease: &Lease, now: DateTime<Utc>) -> Option<Vec<i64>> {
        if lease.dataset != BUDGET {
            return None;
        }
        let Some(budget) = self.grants_from.get() else {
            return lease
                .before
                .grants_within(now, crate::client::budget::WINDOW);
        };
        let ms = budget
            .recent_grants()
            .into_iter()
            .filter_map(|ago| TimeDelta::from_std(ago).ok())
            .map(|ago| (now - ago).timestamp_millis())
            .collect();
        Some(ms)
    }

    /// Renews every lease for another TTL. A lease someone else took (or deleted) meanwhile
    /// is [`LeaseError::Lost`] and no longer held; a renewal of ours that landed although its
    /// answer was lost is recognised by our holder id and kept.
    pub async fn renew(&mut self) -> Result<(), LeaseError> {
        for i in 0..self.held.len() {
            let lease = &self.held[i];
            let now = Utc::now();
            let next = Holder {
                renewed_at: now,
                expires_at: expiry(now, self.ttl),
                grants_ms: self.grants_ms(lease, now),
                ..lease.holder.clone()
            };
            let stored =
                state::store_if(&self.state, &lease.name, &next, Some(&lease.version)).await?;
            let (holder, version) = match stored {
                Ok(version) => (next, Some(version)),
                Err(_) => {
                    let current = state::load_versioned::<Holder>(&self.state, &lease.name).await?;
                    match current.state {
                        Some(c) if c.id == self.id && !c.released => (c, current.version),
                        other => {
                            let lost = self.held.remove(i);
                            return Err(LeaseError::Lost {
                                dataset: lost.dataset,
                                account_id: self.account_id.clone(),
                                taken_by: other.map_or_else(
                                    || "nobody (its lease object was deleted)".to_string(),
                                    |c| c.to_string(),
                                ),
                            });
                        }
                    }
                }
            };
            if let Some(version) = version {
                let lease = &mut self.held[i];
                lease.holder = holder;
                lease.version = version;
            }
        }
        Ok(())
    }

    /// The [`LeaseError::Lost`] of a holder whose leases expire before it can try to renew
    /// them again, `unrenewed` after its last renewal (`why`: the last try's error).
    fn expiring(&self, unrenewed: Duration, why: &str) -> LeaseError {
        LeaseError::Lost {
            dataset: self
                .held
                .iter()
                .map(|l| l.dataset.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            account_id: self.account_id.clone(),
            taken_by: format!(
                "nobody yet: it could not be renewed for {} s and expires ({} s after its last \
                 renewal) before the next try ({why})",
                unrenewed.as_secs(),
                self.ttl.as_secs()
            ),
        }
    }

    /// Marks every lease still held as released (best effort: failures are logged; the lease
    /// then expires on its own).
    async fn release_all(&mut self) {
        let held = std::mem::take(&mut self.held);
        for lease in held {
            let now = Utc::now();
            let released = Holder {
                expires_at: now,
                released: true,
                grants_ms: self.grants_ms(&lease, now),
                ..lease.holder.clone()
            };
            let result =
                state::store_if(&self.state, &lease.name, &released, Some(&lease.version)).await;
            if let Err(e) = result {
                warn!(lease = %lease.name, error = %crate::error_chain::error_chain(&e), "Could not release the lease; it expires on its own.");
            }
        }
    }

    /// What the record of `dataset`'s lease said of its previous holder when we took it
    /// (`None`: not a lease of ours).
    pub fn before(&self, dataset: &str) -> Option<Before> {
        self.held
            .iter()
            .find(|l| l.dataset == dataset)
            .map(|l| l.before.clone())
    }

    /// Keeps the leases renewed on a task of their own until [`KeptLeases::release`]. If the
    /// task ends any other way (a lease lost, a panic), [`KeptLeases::lost`] is cancelled.
    pub fn keep(mut self, every: Duration) -> KeptLeases {
        let befores: Vec<(String, Before)> = self
            .held
            .iter()
            .map(|l| (l.dataset.clone(), l.before.clone()))
            .collect();
        let grants_from = self.grants_from.clone();
        let stop = CancellationToken::new();
        let lost = CancellationToken::new();
        let (stop2, lost2) = (stop.clone(), lost.clone());
        let task = tokio::spawn(async move {
            let on_abnormal_end = lost2.clone().drop_guard();
            let mut result = Ok(());
            let mut renewed = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    _ = stop2.cancelled() => break,
                    _ = tokio::time::sleep(every) => {}
                }
                let attempt = tokio::time::Instant::now();
                match self.renew().await {
                    Ok(()) => renewed = attempt,
                    Err(e @ LeaseError::Lost { .. }) => {
                        error!(error = %e, "Lease lost.");
                        result = Err(e);
                        lost2.cancel();
                        break;
                    }
                    // Storage trouble: try again while the lease lasts; once the next try
                    // would come after it expired (another writer may take it then), stop.
                    Err(e) if renewed + self.ttl <= tokio::time::Instant::now() + every => {
                        let e =
                            self.expiring(renewed.elapsed(), &crate::error_chain::error_chain(&e));
                        error!(error = %e, "Lease lost.");
                        result = Err(e);
                        lost2.cancel();
                        break;
                    }
                    Err(e) => {
                        warn!(error = %crate::error_chain::error_chain(&e), "Could not renew the lease; retrying.")
                    }
                }
            }
            self.release_all().await;
            forget(&self.id);
            on_abnormal_end.disarm();
            result
        });
        KeptLeases {
            stop,
            lost,
            task,
            befores,
            grants_from,
        }
    }
}

/// Leases being renewed (see [`Leases::keep`]).
pub struct KeptLeases {
    stop: CancellationToken,
    lost: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), LeaseError>>,
    /// [`Leases::before`] of each lease, as taken.
    befores: Vec<(String, Before)>,
    grants_from: GrantsSource,
}

impl KeptLeases {
    /// What the record of `dataset`'s lease said of its previous holder when it was taken.
    pub fn before(&self, dataset: &str) -> Option<Before> {
        self.befores
            .iter()
            .find(|(d, _)| d == dataset)
            .map(|(_, b)| b.clone())
    }

    /// Tells `budget` what the budget lease's record said of the account's requests before
    /// it: their real grants when the record has them ([`Budget::previous_grants`]), else when
    /// they ended ([`Budget::previous_use_ended`]: the window is counted as used evenly up to
    /// then, or empty when nobody held it). From then on the budget's own grants go into the
    /// record at each renewal and at the release, for the next holder. Without the budget
    /// lease, nothing is said (the budget keeps its default).
    pub fn tell_budget(&self, budget: &Arc<Budget>) {
        let Some(before) = self.before(BUDGET) else {
            return;
        };
        let now = Utc::now();
        budget.previous_use_ended(before.ago(now));
        if let Some(grants) = before.grants_ago(now) {
            budget.previous_grants(&grants);
        }
        // Set once: a second call keeps the first budget, the one of this process.
        let _ = self.grants_from.set(Arc::clone(budget));
    }

    /// Cancelled when a lease was lost: the holder must stop.
    pub fn lost(&self) -> &CancellationToken {
        &self.lost
    }

    /// Stops renewing and releases the leases; a lease lost meanwhile is the error.
    pub async fn release(self) -> Result<(), LeaseError> {
        self.stop.cancel();
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(LeaseError::Task(e.to_string())),
        }
    }
}

#[cfg(test)]
mod budget_tests;
#[cfg(test)]
mod tests;
