//! Lease tests of the budget lease: the account's last grants handed from one holder to the
//! next (in-memory store, tokio's paused clock).

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
