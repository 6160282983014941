//! Lease tests: the liveness rule on made-up identities, and acquisition on an in-memory store
//! with tokio's paused clock for the watched cases (a lease of a holder this host cannot see).

use std::sync::Arc;

use super::identity::pid_exists;
use super::*;

pub(super) fn store() -> StateStore {
    crate::sink::Output::with_store(
        Arc::new(object_store::memory::InMemory::new()),
        object_store::path::Path::from("lake"),
    )
    .state
}

/// A process whose boot and PID namespace are unknown (as off Linux).
pub(super) fn who(host: &str, pid: u32) -> Identity {
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

pub(super) fn other_holder(expires_in: TimeDelta) -> Holder {
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
        released: false,
        handover: None,
        grants_ms: None,
    }
}

/// Asserts that `f` finished without any (virtual) time passing: decided at once, not watched.
async fn at_once<T>(f: impl std::future::Future<Output = T>) -> T {
    let started = tokio::time::Instant::now();
    let out = f.await;
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "decided without watching"
    );
    out
}

pub(super) async fn put(store: &StateStore, name: &str, h: &Holder) {
    state::update(store, name, |_| Some(h.clone()))
        .await
        .expect("store");
}

pub(super) async fn acquire(
    store: &StateStore,
    me: &Identity,
    dataset: &str,
) -> Result<Leases, LeaseError> {
    Leases::acquire(store, me, "acct", &[dataset], "run", LEASE_TTL).await
}

/// Renews `name` as its holder would, every `every`, until dropped.
fn renewing(
    store: &StateStore,
    name: &str,
    h: &Holder,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    let (store, name, h) = (store.clone(), name.to_string(), h.clone());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let now = Utc::now();
            let next = Holder {
                renewed_at: now,
                expires_at: now + TimeDelta::seconds(60),
                ..h.clone()
            };
            put(&store, &name, &next).await;
        }
    })
}

/// Puts `h` as the lease of `user_status`, has it renewed every `every` as its live holder
/// would, and asserts that `me` is refused.
async fn assert_refused_while_renewed(me: &Identity, h: &Holder, every: Duration) {
    let store = store();
    let name = lease_name("user_status", "acct");
    put(&store, &name, h).await;
    let renewer = renewing(&store, &name, h, every);
    let err = acquire(&store, me, "user_status")
        .await
        .err()
        .expect("held");
    assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
    renewer.abort();
}

#[tokio::test(start_paused = true)]
async fn a_live_lease_of_another_host_refuses_a_second_writer_naming_the_holder_once_renewed() {
    let store = store();
    let (a, b) = (who("host-a", 100), who("host-b", 200));
    let first = acquire(&store, &a, "user_status")
        .await
        .expect("free")
        .keep(RENEW_EVERY);
    let started = tokio::time::Instant::now();
    let err = Leases::acquire(
        &store,
        &b,
        "acct",
        &["user_status"],
        "run --once",
        LEASE_TTL,
    )
    .await
    .err()
    .expect("held");
    assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("`run` (pid 100 on host host-a"),
        "the holder is named: {text}"
    );
    // Refused on the holder's first renewal, not after the TTL.
    assert!(
        started.elapsed() <= RENEW_EVERY + WATCH_EVERY,
        "{:?}",
        started.elapsed()
    );
    // Another dataset or another account is another lease.
    acquire(&store, &b, "intent_realtime")
        .await
        .expect("other dataset");
    Leases::acquire(&store, &b, "other", &["user_status"], "run", LEASE_TTL)
        .await
        .expect("other account");
    first.release().await.expect("released");
}

#[tokio::test(start_paused = true)]
async fn a_lease_of_another_host_not_renewed_for_a_ttl_is_taken_over_and_its_holder_loses_it() {
    let store = store();
    let me = who("host-a", 100);
    let name = lease_name("user_status", "acct");
    // Its wall-clock expiry is an hour away (a holder clock running ahead): our own clock
    // still decides after one TTL without a renewal.
    put(&store, &name, &other_holder(TimeDelta::hours(1))).await;
    let started = tokio::time::Instant::now();
    let mut ours = acquire(&store, &me, "user_status")
        .await
        .expect("a holder silent for a TTL is taken over");
    assert!(started.elapsed() >= LEASE_TTL, "{:?}", started.elapsed());
    ours.renew().await.expect("still ours");
    // Someone takes it over (as if we had not renewed in time): our renewal is refused.
    put(&store, &name, &other_holder(TimeDelta::seconds(60))).await;
    let err = ours.renew().await.expect_err("lost");
    assert!(matches!(err, LeaseError::Lost { .. }), "{err:?}");
    assert!(
        err.to_string().contains("pid 4242 on host other-host"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_watched_holder_that_renews_late_in_its_term_is_still_alive() {
    let h = other_holder(TimeDelta::seconds(60));
    assert_refused_while_renewed(&who("host-a", 1), &h, Duration::from_secs(50)).await;
}

#[tokio::test(start_paused = true)]
async fn a_holder_whose_clock_runs_behind_ours_is_not_taken_over_before_its_next_renewal() {
    // 5 s left by our wall clock, yet the holder renews on its schedule, 15 s from now.
    let h = other_holder(TimeDelta::seconds(5));
    assert_refused_while_renewed(&who("host-a", 1), &h, RENEW_EVERY).await;
}

#[tokio::test(start_paused = true)]
async fn an_expired_or_released_lease_is_taken_at_once() {
    let store = store();
    let name = lease_name("user_status", "acct");
    put(&store, &name, &other_holder(TimeDelta::seconds(-1))).await;
    at_once(acquire(&store, &who("host-a", 100), "user_status"))
        .await
        .expect("expired");
    // Released by a clean exit, although its clock wrote an expiry an hour ahead.
    let released = Holder {
        released: true,
        ..other_holder(TimeDelta::hours(1))
    };
    let name = lease_name("intent_realtime", "acct");
    put(&store, &name, &released).await;
    at_once(acquire(&store, &who("host-a", 100), "intent_realtime"))
        .await
        .expect("released");
}

#[tokio::test(start_paused = true)]
async fn a_lease_of_our_pid_in_our_pid_namespace_is_taken_at_once_and_release_frees_it() {
    let store = store();
    let name = lease_name("user_status", "acct");
    let me = local(100);
    // Our own pid in our namespace, not a lease of this process: a previous incarnation.
    put(&store, &name, &held_in(&me, 100)).await;
    let kept = at_once(acquire(&store, &me, "user_status"))
        .await
        .expect("taken over")
        .keep(RENEW_EVERY);
    kept.release().await.expect("released");
    let after: Holder = state::load(&store, &name)
        .await
        .expect("load")
        .expect("kept");
    assert!(after.released, "a clean exit releases the lease");
    at_once(acquire(&store, &who("host-b", 1), "user_status"))
        .await
        .expect("free again");
}

#[cfg(target_os = "linux")]
#[tokio::test(start_paused = true)]
async fn a_second_writer_in_this_very_process_is_refused_at_once() {
    let store = store();
    let me = Identity::current();
    let first = acquire(&store, &me, "user_status").await.expect("free");
    let err = at_once(acquire(&store, &me, "user_status"))
        .await
        .err()
        .expect("held by us");
    assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
    drop(first);
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

#[test]
fn a_holder_outside_our_pid_namespace_or_boot_cannot_be_judged_from_here() {
    // Two containers of one host name, each pid 1 in a namespace of its own.
    let me = local(1);
    let other_container = Identity {
        pid_ns: Some("pid:[4026532999]".into()),
        ..local(1)
    };
    assert_eq!(
        liveness(&held_in(&other_container, 1), &me),
        Liveness::Unknown
    );
    let before_reboot = Identity {
        boot_id: Some("boot-0".into()),
        ..local(100)
    };
    assert_eq!(
        liveness(&held_in(&before_reboot, 100), &local(100)),
        Liveness::Unknown
    );
    // Unknown namespaces on either side are no evidence either.
    assert_eq!(
        liveness(&held_in(&who("host-a", 1), 1), &who("host-a", 1)),
        Liveness::Unknown
    );
    assert_eq!(
        liveness(&held_in(&who("host-a", 1), 1), &me),
        Liveness::Unknown
    );
    assert_eq!(
        liveness(&held_in(&me, 1), &who("host-a", 1)),
        Liveness::Unknown
    );
    if cfg!(target_os = "linux") {
        let free_pid = impossible_pid();
        assert_eq!(
            liveness(&held_in(&before_reboot, free_pid), &me),
            Liveness::Unknown
        );
        assert_eq!(
            liveness(&held_in(&me, free_pid), &me),
            Liveness::Gone,
            "the control case"
        );
    }
}

#[cfg(target_os = "linux")]
#[tokio::test(start_paused = true)]
async fn a_holder_in_our_pid_namespace_whose_pid_does_not_exist_is_taken_over_at_once() {
    let me = Identity::current();
    let store = store();
    let name = lease_name("user_status", "acct");
    put(&store, &name, &held_in(&me, impossible_pid())).await;
    at_once(acquire(&store, &me, "user_status"))
        .await
        .expect("dead holder");
}

#[cfg(target_os = "linux")]
#[tokio::test(start_paused = true)]
async fn a_live_holder_in_our_pid_namespace_is_refused_at_once() {
    let me = Identity::current();
    let mut child = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .expect("spawn sleep");
    let holder = held_in(&me, child.id());
    let seen = liveness(&holder, &me);
    let store = store();
    put(&store, &lease_name("user_status", "acct"), &holder).await;
    let result = at_once(acquire(&store, &me, "user_status")).await;
    child.kill().expect("kill");
    child.wait().expect("reap");
    assert_eq!(seen, Liveness::Alive, "a running process holds the lease");
    let err = result.err().expect("held");
    assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_process_exists_when_signal_0_finds_it_and_pids_out_of_range_do_not() {
    assert!(pid_exists(std::process::id()));
    assert!(pid_exists(1), "init (or the container's first process)");
    assert!(!pid_exists(impossible_pid()));
    assert!(!pid_exists(0) && !pid_exists(u32::MAX));
}

#[tokio::test(start_paused = true)]
async fn a_lease_of_an_older_release_loads_and_is_watched_like_any_unknown_holder() {
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
    assert_eq!(liveness(&old, &me), Liveness::Unknown);
    assert_refused_while_renewed(&me, &old, RENEW_EVERY).await;
}

#[cfg(target_os = "linux")]
#[tokio::test(start_paused = true)]
async fn when_one_lease_is_refused_none_is_taken() {
    let me = Identity::current();
    let mut child = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .expect("spawn sleep");
    let store = store();
    put(&store, &lease_name("b", "acct"), &held_in(&me, child.id())).await;
    let result = Leases::acquire(&store, &me, "acct", &["a", "b"], "run", LEASE_TTL).await;
    child.kill().expect("kill");
    child.wait().expect("reap");
    assert!(matches!(result, Err(LeaseError::Held { .. })));
    let a: Option<Holder> = state::load(&store, &lease_name("a", "acct"))
        .await
        .expect("load");
    assert_eq!(a, None, "the free lease was judged, not taken");
}

#[tokio::test(start_paused = true)]
async fn a_watched_lease_released_by_its_holder_is_taken_before_the_ttl_ends() {
    let store = store();
    let name = lease_name("user_status", "acct");
    let h = other_holder(TimeDelta::seconds(60));
    put(&store, &name, &h).await;
    let releaser = {
        let (store, name, h) = (store.clone(), name.clone(), h.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let released = Holder {
                released: true,
                ..h
            };
            put(&store, &name, &released).await;
        })
    };
    let started = tokio::time::Instant::now();
    acquire(&store, &who("host-a", 1), "user_status")
        .await
        .expect("released");
    assert!(started.elapsed() < LEASE_TTL, "{:?}", started.elapsed());
    releaser.await.expect("releaser");
}

#[tokio::test(start_paused = true)]
async fn a_lease_taken_by_a_third_writer_during_the_watch_is_judged_again() {
    let store = store();
    let name = lease_name("user_status", "acct");
    put(&store, &name, &other_holder(TimeDelta::seconds(60))).await;
    let third = Holder {
        id: "third".into(),
        host: "third-host".into(),
        ..other_holder(TimeDelta::seconds(60))
    };
    let taker = {
        let (store, name, third) = (store.clone(), name.clone(), third.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(20)).await;
            put(&store, &name, &third).await;
        })
    };
    // The third writer then renews like a live one (its first renewal 15 s after taking).
    let renewer = {
        let (store, name, third) = (store.clone(), name.clone(), third.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(20)).await;
            renewing(&store, &name, &third, RENEW_EVERY)
                .await
                .expect("renewer");
        })
    };
    let err = acquire(&store, &who("host-a", 1), "user_status")
        .await
        .err()
        .expect("held");
    assert!(err.to_string().contains("on host third-host"), "{err}");
    taker.await.expect("taker");
    renewer.abort();
}

#[tokio::test(start_paused = true)]
async fn two_newcomers_watching_one_silent_lease_one_takes_it_and_the_other_is_refused() {
    let store = store();
    let name = lease_name("user_status", "acct");
    put(&store, &name, &other_holder(TimeDelta::seconds(60))).await;
    let newcomer = |host: &'static str| {
        let store = store.clone();
        tokio::spawn(async move {
            acquire(&store, &who(host, 1), "user_status")
                .await
                .map(|l| l.keep(RENEW_EVERY))
        })
    };
    let (a, b) = (newcomer("host-a"), newcomer("host-b"));
    let (a, b) = (a.await.expect("a"), b.await.expect("b"));
    let (won, refused) = match (a, b) {
        (Ok(w), Err(e)) | (Err(e), Ok(w)) => (w, e),
        (a, b) => panic!("exactly one must win: {:?} / {:?}", a.is_ok(), b.is_ok()),
    };
    assert!(matches!(refused, LeaseError::Held { .. }), "{refused:?}");
    won.release().await.expect("released");
}

#[tokio::test(start_paused = true)]
async fn a_renewal_of_ours_that_landed_unseen_is_kept_not_reported_lost() {
    let store = store();
    let name = lease_name("user_status", "acct");
    let mut ours = acquire(&store, &who("host-a", 1), "user_status")
        .await
        .expect("free");
    // Our renewal took effect but its answer was lost: the store holds a newer version of us.
    let mut landed: Holder = state::load(&store, &name)
        .await
        .expect("load")
        .expect("ours");
    landed.renewed_at += TimeDelta::seconds(15);
    put(&store, &name, &landed).await;
    ours.renew().await.expect("still ours");
    ours.renew()
        .await
        .expect("and renewable from the adopted version");
}

#[tokio::test(start_paused = true)]
async fn a_lost_lease_stops_the_holder_and_releases_its_other_leases() {
    let store = store();
    let me = who("host-a", 1);
    let kept = Leases::acquire(&store, &me, "acct", &["a", "b"], "run", LEASE_TTL)
        .await
        .expect("free")
        .keep(RENEW_EVERY);
    put(
        &store,
        &lease_name("a", "acct"),
        &other_holder(TimeDelta::seconds(60)),
    )
    .await;
    kept.lost().cancelled().await;
    let err = kept.release().await.expect_err("lost");
    assert!(
        err.to_string().contains("pid 4242 on host other-host"),
        "{err}"
    );
    let b: Holder = state::load(&store, &lease_name("b", "acct"))
        .await
        .expect("load")
        .expect("b");
    assert!(b.released, "the lease not lost is released");
}

#[tokio::test(start_paused = true)]
async fn a_renewal_seen_during_the_watch_refuses_whatever_expiry_the_holders_clock_wrote() {
    let store = store();
    let name = lease_name("user_status", "acct");
    let h = other_holder(TimeDelta::seconds(60));
    put(&store, &name, &h).await;
    let renewer = {
        let (store, name, h) = (store.clone(), name.clone(), h.clone());
        tokio::spawn(async move {
            tokio::time::sleep(RENEW_EVERY).await;
            // A holder clock two minutes behind ours: its expiry is already in our past.
            let behind = Holder {
                renewed_at: Utc::now() + TimeDelta::seconds(1),
                expires_at: Utc::now() - TimeDelta::minutes(2),
                ..h
            };
            put(&store, &name, &behind).await;
        })
    };
    let err = acquire(&store, &who("host-a", 1), "user_status")
        .await
        .err()
        .expect("held");
    assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
    renewer.await.expect("renewer");
}

#[tokio::test(start_paused = true)]
async fn taking_a_lease_tells_until_when_its_previous_holder_held_it() {
    let store = store();
    let me = who("host-a", 100);
    // No record: nobody held it.
    let first = acquire(&store, &me, BUDGET).await.expect("free");
    assert_eq!(first.before(BUDGET), Some(Before::Nobody));
    assert_eq!(first.before("user_status"), None, "not a lease taken");
    assert_eq!(Before::Nobody.ago(Utc::now()), None);
    // Released by a clean exit: held until the release.
    let kept = first.keep(RENEW_EVERY);
    kept.release().await.expect("released");
    let name = lease_name(BUDGET, "acct");
    let released: Holder = state::load(&store, &name)
        .await
        .expect("load")
        .expect("kept");
    let second = acquire(&store, &me, BUDGET).await.expect("free again");
    assert_eq!(
        second.before(BUDGET),
        Some(Before::HeldUntil {
            until: released.expires_at,
            grants: None,
        })
    );
    // Expired: held until its expiry.
    let expired = other_holder(TimeDelta::seconds(-30));
    put(&store, &lease_name("user_status", "acct"), &expired).await;
    let third = acquire(&store, &me, "user_status").await.expect("expired");
    let kept = third.keep(RENEW_EVERY);
    assert_eq!(
        kept.before("user_status"),
        Some(Before::HeldUntil {
            until: expired.expires_at,
            grants: None,
        })
    );
    let ago = Before::HeldUntil {
        until: expired.expires_at,
        grants: None,
    }
    .ago(expired.expires_at + TimeDelta::seconds(30))
    .expect("held");
    assert_eq!(ago, Duration::from_secs(30));
    kept.release().await.expect("released");
}

/// A holder whose store fails stops before its lease expires (a newcomer may take an expired
/// lease, and two holders would then send requests and write): the renewal task gives up once
/// its next try would come after the expiry, and says so. Real time, on local disk: the lease's
/// folder becomes a file, so every write and read of it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_cannot_renew_stops_before_its_lease_expires() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = crate::sink::Output::open(&crate::config::OutputLocation::Local(
        dir.path().join("out"),
    ))
    .expect("open");
    let (ttl, every) = (Duration::from_millis(600), Duration::from_millis(100));
    let kept = Leases::acquire(&out.state, &who("host-a", 1), "acct", &["a"], "run", ttl)
        .await
        .expect("free")
        .keep(every);
    let folder = dir.path().join("out/_state/lease/a");
    assert!(
        folder.is_dir(),
        "the lease is stored under {}",
        folder.display()
    );
    std::fs::remove_dir_all(&folder).expect("remove");
    std::fs::write(&folder, b"not a folder").expect("write");
    tokio::time::timeout(Duration::from_secs(30), kept.lost().cancelled())
        .await
        .expect("the holder stops instead of renewing forever");
    let err = kept.release().await.expect_err("lost").to_string();
    assert!(
        err.contains("lost the lease of a (account acct) to nobody yet: it could not be renewed"),
        "{err}"
    );
}
