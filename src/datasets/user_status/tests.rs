//! Tests of the UserStatus export against the built-in simulator.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::app::App;
use crate::datasets::Dataset;
use crate::metrics::Metrics;

fn config(out: &Path) -> Config {
    let text = format!(
        r#"
[api]
base_url = "simulator"
account_id = "acct-gate"
iid = "st-gate"
client_id = "cs-gate"
requests_per_minute = 100000
[output]
url = "{}"
[user_status]
granularity = "PT15M"
timezone = "UTC"
[intent_realtime]
enabled = false
"#,
        out.display()
    );
    crate::datasets::config_from_toml(
        &text,
        Path::new("gate.toml"),
        Some("gate-test-secret".into()),
    )
    .expect("valid test config")
}

/// A UserStatus page is read only with a permit of the page gate: while the test holds the
/// whole gate, the day's response arrives and waits at the gate (an event the gate counts),
/// nothing is written; once the permit is released the day completes with its rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_body_is_read_only_with_a_memory_permit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = App::start(config(dir.path()), CancellationToken::new(), Metrics::new())
        .await
        .expect("app with the built-in simulator");
    let Some(Dataset::History(user_status)) = app.datasets().first().cloned() else {
        panic!("user_status is the first enabled dataset");
    };
    let cx = &app.cx;
    assert!(cx.page_gate.is_idle());
    let held = cx.page_gate.acquire().await.expect("the whole gate");
    let day = NaiveDate::from_ymd_opt(2024, 1, 1).expect("valid date");
    let key = UserStatus::key(&cx.account_id, day);
    let unit = crate::datasets::DayUnit::day(day);
    let mut export = Box::pin(user_status.export_day(cx, &unit, Utc::now()));
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(2));
    loop {
        tokio::select! {
            biased;
            r = &mut export => panic!("the day finished without waiting for a page permit: {r:?}"),
            _ = ticks.tick() => if cx.page_gate.waiting() == 1 { break },
        }
    }
    assert!(
        !cx.sink.partition_exists(&key).await.expect("list"),
        "nothing may be written while the page waits at the gate"
    );
    drop(held);
    let report = export
        .await
        .expect("the day completes once the permit is free");

    assert!(report.rows > 0);
    assert_eq!(report.requests, 1);
    assert!(cx.sink.partition_exists(&key).await.expect("list"));
    assert!(cx.page_gate.is_idle());
    app.shutdown().await;
}
