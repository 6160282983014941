//! Lease tests of the budget lease: the account's last grants handed from one holder to the
//! next (in-memory store, tokio's paused clock), and a holder that cannot renew stopping
//! before its lease expires.

use super::tests::{acquire, other_holder, put, store, who};
use super::*;

/// Grants of `priority` `budget` gives at once (without any time passing), up to `most`.
fn granted_at_once(budget: &Budget, most: usize) -> usize {
    use futures::FutureExt;
    (0..most)
        .take_while(|_| {
            budget
                .acquire(crate::client::Priority::Realtime)
                .now_or_never()
                .is_some()
        })
        .count()
}

#[tokio::test(start_paused = true)]
async fn the_budget_lease_hands_its_real_grants_to_the_next_holder_only_when_released() {
    let store = store();
    let me = who("host-a", 100);
    let kept = acquire(&store, &me, BUDGET)
        .await
        .expect("free")
        .keep(RENEW_EVERY);
    let budget = Arc::new(Budget::new("account", 60, 15));
    kept.tell_budget(&budget);
    // Nobody before: the first 20 polls go out at once.
    assert_eq!(granted_at_once(&budget, 20), 20);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let released_at = Utc::now();
    kept.release().await.expect("released");
    let name = lease_name(BUDGET, "acct");
    let record: Holder = state::load(&store, &name)
        .await
        .expect("load")
        .expect("kept");
    let grants = record
        .grants_ms
        .clone()
        .expect("the grants are in the record");
    assert_eq!(grants.len(), 20);
    // Made about 1 s (virtual) before the release, by the wall clock of the release.
    let expected = (released_at - TimeDelta::seconds(1)).timestamp_millis();
    assert!(
        grants.iter().all(|g| (g - expected).abs() < 500),
        "{grants:?}"
    );
    // The next holder counts exactly those: 40 places left at once, not 60.
    let next = acquire(&store, &me, BUDGET)
        .await
        .expect("free again")
        .keep(RENEW_EVERY);
    let told = next.before(BUDGET).and_then(|b| b.grants_ago(Utc::now()));
    assert_eq!(told.map(|g| g.len()), Some(20));
    let budget = Arc::new(Budget::new("account", 60, 15));
    next.tell_budget(&budget);
    assert_eq!(granted_at_once(&budget, 60), 40);
    next.release().await.expect("released");
    // A holder that stopped without releasing may have granted more after its last renewal:
    // its grants are not taken as the whole truth.
    let died = Holder {
        grants_ms: Some(vec![Utc::now().timestamp_millis()]),
        ..other_holder(TimeDelta::seconds(-5))
    };
    put(&store, &name, &died).await;
    let after = acquire(&store, &me, BUDGET).await.expect("expired");
    assert!(matches!(
        after.before(BUDGET),
        Some(Before::HeldUntil { grants: None, .. })
    ));
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

/// A holder that releases the budget lease before it told any budget (the daemon's port was
/// taken, `run --once`'s start failed, an acquisition conflict let its leases go again) made
/// no request: the grants it was handed are still the account's last minute and must reach
/// the next holder, not be dropped from the record.
#[tokio::test(start_paused = true)]
async fn a_holder_that_never_told_its_budget_hands_the_grants_it_was_handed_on() {
    let store = store();
    let me = who("host-a", 100);
    let name = lease_name(BUDGET, "acct");
    let burst_ms = (Utc::now() - TimeDelta::seconds(2)).timestamp_millis();
    let released = Holder {
        released: true,
        grants_ms: Some(vec![burst_ms; 20]),
        ..other_holder(TimeDelta::seconds(-1))
    };
    put(&store, &name, &released).await;
    let kept = acquire(&store, &me, BUDGET)
        .await
        .expect("released")
        .keep(RENEW_EVERY);
    let handed = kept.before(BUDGET).and_then(|b| b.grants_ago(Utc::now()));
    assert_eq!(handed.map(|g| g.len()), Some(20));
    // Released without a budget told: no request of ours.
    kept.release().await.expect("released");
    let next = acquire(&store, &me, BUDGET).await.expect("free again");
    let told = next.before(BUDGET).and_then(|b| b.grants_ago(Utc::now()));
    assert_eq!(
        told.map(|g| g.len()),
        Some(20),
        "the previous holder's burst 2 s ago is still in the window"
    );
}
