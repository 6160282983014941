//! Lease tests: the liveness rule on made-up identities, and acquisition on an in-memory store
//! with tokio's paused clock for the watched cases (a lease of a holder this host cannot see).

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

/// Renews `name` as its holder would, every `every`, until dropped.
fn renewing(sink: &Sink, name: &str, h: &Holder, every: Duration) -> tokio::task::JoinHandle<()> {
    let (sink, name, h) = (sink.clone(), name.to_string(), h.clone());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let now = Utc::now();
            let next = Holder {
                renewed_at: now,
                expires_at: now + TimeDelta::seconds(60),
                ..h.clone()
            };
            put(&sink, &name, &next).await;
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_live_lease_of_another_host_refuses_a_second_writer_naming_the_holder_once_renewed() {
    let sink = sink();
    let (a, b) = (who("host-a", 100), who("host-b", 200));
    let first = acquire(&sink, &a, "user_status")
        .await
        .expect("free")
        .keep(RENEW_EVERY);
    let started = tokio::time::Instant::now();
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
    // Refused on the holder's first renewal, not after the TTL.
    assert!(
        started.elapsed() <= RENEW_EVERY + WATCH_EVERY,
        "{:?}",
        started.elapsed()
    );
    // Another dataset or another account is another lease.
    acquire(&sink, &b, "intent_realtime")
        .await
        .expect("other dataset");
    Leases::acquire(&sink, &b, "other", &["user_status"], "run", LEASE_TTL)
        .await
        .expect("other account");
    first.release().await.expect("released");
}

#[tokio::test(start_paused = true)]
async fn a_lease_of_another_host_not_renewed_for_a_ttl_is_taken_over_and_its_holder_loses_it() {
    let sink = sink();
    let me = who("host-a", 100);
    let name = lease_name("user_status", "acct");
    // Its wall-clock expiry is an hour away (a holder clock running ahead): our own clock
    // still decides after one TTL without a renewal.
    put(&sink, &name, &other_holder(TimeDelta::hours(1))).await;
    let started = tokio::time::Instant::now();
    let mut ours = acquire(&sink, &me, "user_status")
        .await
        .expect("a holder silent for a TTL is taken over");
    assert!(started.elapsed() >= LEASE_TTL, "{:?}", started.elapsed());
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

#[tokio::test(start_paused = true)]
async fn a_watched_holder_that_renews_late_in_its_term_is_still_alive() {
    let sink = sink();
    let name = lease_name("user_status", "acct");
    let h = other_holder(TimeDelta::seconds(60));
    put(&sink, &name, &h).await;
    let renewer = renewing(&sink, &name, &h, Duration::from_secs(50));
    let err = acquire(&sink, &who("host-a", 1), "user_status")
        .await
        .err()
        .expect("held");
    assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
    renewer.abort();
}

#[tokio::test(start_paused = true)]
async fn a_holder_whose_clock_runs_behind_ours_is_not_taken_over_before_its_next_renewal() {
    let sink = sink();
    let name = lease_name("user_status", "acct");
    // 5 s left by our wall clock, yet the holder renews on its schedule, 15 s from now.
    let h = other_holder(TimeDelta::seconds(5));
    put(&sink, &name, &h).await;
    let renewer = renewing(&sink, &name, &h, RENEW_EVERY);
    let err = acquire(&sink, &who("host-a", 1), "user_status")
        .await
        .err()
        .expect("held");
    assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
    renewer.abort();
}

#[tokio::test]
async fn an_expired_or_released_lease_is_taken_at_once() {
    let sink = sink();
    let name = lease_name("user_status", "acct");
    put(&sink, &name, &other_holder(TimeDelta::seconds(-1))).await;
    acquire(&sink, &who("host-a", 100), "user_status")
        .await
        .expect("expired");
}

#[tokio::test]
async fn a_lease_of_our_pid_in_our_pid_namespace_is_taken_at_once_and_release_frees_it() {
    let sink = sink();
    let name = lease_name("user_status", "acct");
    let me = local(100);
    // Our own pid in our namespace, not a lease of this process: a previous incarnation.
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

#[tokio::test]
async fn a_second_writer_in_this_very_process_is_refused_at_once() {
    let sink = sink();
    let me = Identity::current();
    let first = acquire(&sink, &me, "user_status").await.expect("free");
    let err = acquire(&sink, &me, "user_status")
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
#[tokio::test]
async fn a_live_holder_in_our_pid_namespace_is_refused_at_once() {
    let me = Identity::current();
    let mut child = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .expect("spawn sleep");
    let holder = held_in(&me, child.id());
    let seen = liveness(&holder, &me);
    let sink = sink();
    put(&sink, &lease_name("user_status", "acct"), &holder).await;
    // Not watched: a watch would take the silent lease over after a TTL.
    let result =
        tokio::time::timeout(Duration::from_secs(20), acquire(&sink, &me, "user_status")).await;
    child.kill().expect("kill");
    child.wait().expect("reap");
    assert_eq!(seen, Liveness::Alive, "a running process holds the lease");
    let err = result
        .expect("refused without waiting")
        .err()
        .expect("held");
    assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_process_exists_even_when_we_may_not_signal_it() {
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
    let sink = sink();
    let name = lease_name("user_status", "acct");
    put(&sink, &name, &old).await;
    let renewer = renewing(&sink, &name, &old, RENEW_EVERY);
    let err = acquire(&sink, &me, "user_status")
        .await
        .err()
        .expect("held");
    assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
    renewer.abort();
}
