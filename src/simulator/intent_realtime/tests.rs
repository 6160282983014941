//! HTTP-level test of the IntentRealtimeData model: the latest sessions newest first, both
//! methods and URL spellings, unknown bots and missing headers. Expected values come from the
//! pure generator.

use chrono::{TimeZone, Utc};

use super::*;
use crate::simulator::tests::{send, sim, token, utc};
use crate::simulator::SimulatorConfig;

#[tokio::test]
async fn intent_returns_the_latest_25_newest_first() {
    let epoch = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let now = utc("2024-01-01T01:40:30Z");
    let cfg = SimulatorConfig {
        intent_epoch: epoch,
        frozen_now: Some(now),
        bots: vec!["st-bot-a".into(), "st-bot-b".into()],
        ..SimulatorConfig::default()
    };
    let feed = feed(&cfg, "st-bot-b");
    let s = sim(cfg).await;
    let c = reqwest::Client::new();
    let base = s.base_url();
    for req in [
        c.post(format!("{base}/api/public/bot/st-bot-b/intentrealtimedata")),
        c.get(format!(
            "{base}/api/public/bot/st-bot-b//intentrealtimedata"
        )),
    ] {
        let r = send(
            req.header("auth", token())
                .header("accountId", "demo-account"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), 25);
        // 100.5 minutes after the epoch: sessions 100 down to 76.
        let ids: Vec<&str> = arr
            .iter()
            .map(|x| x["sessionId"].as_str().unwrap())
            .collect();
        let want: Vec<String> = (76..=100)
            .rev()
            .map(|k| session(&feed, k).session_id)
            .collect();
        assert_eq!(ids, want);
        assert_eq!(
            utc(arr[0]["endTime"].as_str().unwrap()),
            utc("2024-01-01T01:40:00Z")
        );
        for x in arr {
            let end = utc(x["endTime"].as_str().unwrap());
            let start = utc(x["startTime"].as_str().unwrap());
            assert!(end <= now);
            assert!(x["intent"].is_array());
            let secs = (end - start).num_seconds();
            let th = x["timeHandled"].as_str().unwrap();
            assert_eq!(th, format_time_handled(secs));
            assert!(matches!(
                x["status"].as_str(),
                Some("completed" | "Dropoff")
            ));
            assert!(x["deflectedTo"].is_null() || x["deflectedTo"].is_string());
            for key in ["userId", "channel", "ANI", "DNI"] {
                assert!(x[key].is_string(), "{key}");
            }
        }
    }
    let unknown = c
        .post(format!("{base}/api/public/bot/st-nope/intentrealtimedata"))
        .header("auth", token())
        .header("accountId", "demo-account");
    let r = send(unknown).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["errors"].is_array());
    let no_account = c
        .post(format!("{base}/api/public/bot/st-bot-a/intentrealtimedata"))
        .header("auth", token());
    assert_eq!(send(no_account).await.status, 400);
    s.shutdown().await;
}
