//! Tests of the Contact Volume model: the generator's intervals and plausibility, the rendered
//! envelope, key casings and units, and the body checks. The dataset's export from this model
//! is tested in `datasets/contact_volume/tests.rs` and the compliance suite.

use serde_json::Value;

use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("test instant")
}

#[test]
fn intervals_are_aligned_ended_and_plausible_in_seconds() {
    let range = utc("2024-03-10T05:00:00Z")..utc("2024-03-11T04:00:00Z");
    let now = utc("2024-03-10T20:07:00Z");
    let all = volumes(42, range.clone(), now, None);
    assert_eq!(all, volumes(42, range.clone(), now, None));
    assert!(all.len() > 100, "{}", all.len());
    for v in &all {
        assert!(range.contains(&v.start) && v.end <= now, "{v:?}");
        assert_eq!(v.start.timestamp() % 900, 0);
        let contacts = *v.measures.counts.iter().max().expect("counts");
        for d in v.measures.durations_s {
            assert!(d <= 900 * contacts.max(1), "{v:?}");
        }
        let [offered, answered, abandoned, completed] = v.measures.counts;
        assert_eq!(offered, answered + abandoned);
        assert!(completed <= answered);
    }
    assert!(all.iter().any(|v| v.upper_q) && all.iter().any(|v| !v.upper_q));
    assert!(all.iter().any(|v| v.skills.len() == 2));
    let malformed = volumes(42, range, now, Some(7));
    assert!(malformed.iter().any(|v| v.malformed));
}

#[test]
fn pages_carry_the_envelope_both_casings_and_the_configured_units() {
    let cfg = SimulatorConfig::default();
    let range = utc("2024-06-01T00:00:00Z")..utc("2024-06-02T00:00:00Z");
    let all = volumes(cfg.seed, range, utc("2024-07-01T00:00:00Z"), None);
    let sim = ContactVolumeSim {
        record_unit: SimUnit::Milliseconds,
        skill_unit: SimUnit::Seconds,
        exclusive_end: false,
    };
    let body: Value =
        serde_json::from_str(&render_page(&cfg, &sim, &all, "o-1", 10, 20, true)).expect("JSON");
    assert_eq!(body["hasMore"], true);
    assert_eq!(body["totalCount"], all.len());
    let records = body["CallVolumeUpdate"].as_array().expect("records");
    assert_eq!(records.len(), 20);
    for (r, v) in records.iter().zip(&all[10..]) {
        assert_eq!(r["orgId"], "o-1");
        assert_eq!(r["queueId"], v.queue.id.as_str());
        let (present, absent) = if v.upper_q {
            ("maxQueueHoldTimeAbandoned", "maxqueueHoldTimeAbandoned")
        } else {
            ("maxqueueHoldTimeAbandoned", "maxQueueHoldTimeAbandoned")
        };
        assert_eq!(r[present], v.measures.durations_s[3] * 1000);
        assert!(r.get(absent).is_none());
        assert_eq!(r["acwDuration"], v.measures.durations_s[4] * 1000);
        let skills = r["skillBreakdown"].as_array().expect("skills");
        assert_eq!(skills.len(), v.skills.len());
        for (s, g) in skills.iter().zip(&v.skills) {
            assert_eq!(s["conversationTalkTime"], g.measures.durations_s[6]);
        }
    }
    let last: Value = serde_json::from_str(&render_page(
        &cfg,
        &sim,
        &all,
        "o-1",
        all.len() - 1,
        20,
        false,
    ))
    .expect("JSON");
    assert_eq!(last["hasMore"], false);
    assert!(last["CallVolumeUpdate"][0].get("skillBreakdown").is_none());
}

#[test]
fn org_and_end_are_required_and_the_rest_has_defaults() {
    let status = |body: &str| parse_body(body.as_bytes()).err().map(|r| r.status);
    assert_eq!(
        status(r#"{"toTimeStamp":"2024-01-01T00:00:00Z"}"#),
        Some(StatusCode::BAD_REQUEST)
    );
    assert_eq!(status(r#"{"orgId":"o-1"}"#), Some(StatusCode::BAD_REQUEST));
    assert_eq!(
        status(r#"{"orgId":"o-1","toTimeStamp":"yesterday"}"#),
        Some(StatusCode::BAD_REQUEST)
    );
    let q = parse_body(br#"{"orgId":"o-1","toTimeStamp":"2024-01-01T00:00:00Z"}"#)
        .unwrap_or_else(|_| panic!("valid"));
    assert_eq!(q.from, utc("2023-12-01T00:00:00Z"));
    assert_eq!((q.skip, q.limit, q.skills), (0, None, false));
}
