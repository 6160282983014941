//! Property tests: the decoder and normalizer never panic on arbitrary bytes, and a span whose
//! start lies in the claim is either a row or a reject whatever its other leaves hold.

use serde_json::json;

use super::tests::{assert_valid_json, at, d, ms, page_of, ts_col, window};
use super::*;

fn exercise(body: &[u8]) {
    let w = window(
        d(2024, 5, 1),
        -330,
        "2024-04-30T18:30:00Z",
        "2024-05-01T18:30:00Z",
    );
    if let Ok(page) = decode_page(body) {
        let mut n = Normalizer::new("acc-1", at("2024-05-02T00:00:00Z"));
        for agent in page.agents {
            match agent {
                Ok(a) => n.push_agent(&a, &w),
                Err(r) => n.push_reject(r),
            }
        }
        let rows = n.rows();
        assert_eq!(n.finish().0.num_rows(), rows);
    }
}

fn hostile_leaf() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    prop_oneof![
        Just(json!(null)),
        Just(json!("-")),
        Just(json!("")),
        Just(json!([])),
        Just(json!({})),
        Just(json!("2024-05-01T12:00:00")),
        Just(json!("99:59:59")),
        any::<i64>().prop_map(|n| json!(n)),
        any::<bool>().prop_map(|b| json!(b)),
        "\\PC{0,24}".prop_map(|s| json!(s)),
        "[0-9]{1,3}:[0-9]{1,2}:[0-9]{1,2}".prop_map(|s| json!(s)),
        "20[0-9]{2}-[01][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,3})?Z?"
            .prop_map(|s| json!(s)),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        exercise(&body);
    }

    /// A span whose start lies in the claim is either a row or a reject, whatever its other
    /// leaves hold: nothing is dropped silently.
    #[test]
    fn a_claimed_span_is_a_row_or_a_reject(
        primary in hostile_leaf(), secondary in hostile_leaf(), end in hostile_leaf(),
        duration in hostile_leaf(), custom in hostile_leaf(), start in hostile_leaf(),
    ) {
        let claimed = json!({"primaryStatus": primary, "secondaryStatus": secondary,
            "startTime": "2024-05-01T12:00:00", "endTime": end, "duration": duration});
        let other = json!({"primaryStatus": "A", "startTime": start, "endTime": "-", "duration": "-"});
        let body = page_of(json!([
            {"userId": "u-1", "customId": custom, "status": [claimed]},
            {"userId": "u-2", "status": [other]}
        ]));
        exercise(body.as_bytes());
        let page = decode_page(body.as_bytes()).expect("a valid envelope decodes");
        if let Some(Ok(agent)) = page.agents.first() {
            let w = window(d(2024, 5, 1), -330, "2024-04-30T18:30:00Z", "2024-05-01T18:30:00Z");
            let mut n = Normalizer::new("acc-1", at("2024-05-02T00:00:00Z"));
            n.push_agent(agent, &w);
            let (batch, rejects) = n.finish();
            if batch.num_rows() == 1 {
                proptest::prop_assert_eq!(ts_col(&batch, "start_time"), vec![Some(ms("2024-05-01T06:30:00Z"))]);
            }
            proptest::prop_assert_eq!(batch.num_rows() + rejects.len(), 1, "{:?}", rejects);
            for r in &rejects {
                assert_valid_json(&r.raw_json);
            }
        }
    }
}
