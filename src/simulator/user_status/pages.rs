//! The UserStatus response bodies the simulator would serve, produced without a server: for
//! benchmarks (realistic payloads for the decode → normalize → encode path) and for tools that
//! want the exact JSON of a day. The bytes are the ones the simulator serves for the same
//! config, day, offset, granularity and page size.

use chrono::NaiveDate;

use super::generator;
use super::render::{BucketGrid, UserStatusRender};
use crate::model::Granularity;
use crate::simulator::{self, SimulatorConfig};

/// Every page (in `offset` order) of the UserStatus response for local `day` at the JS-style
/// `tz_offset_minutes` (IST = -330), `page_size` agents per page, all of `cfg.agents` selected.
/// Empty when the day is out of range or `page_size` is 0.
pub fn user_status_pages(
    cfg: &SimulatorConfig,
    day: NaiveDate,
    tz_offset_minutes: i64,
    granularity: Granularity,
    page_size: usize,
) -> Vec<String> {
    let Some(window) = generator::request_window(day, day, tz_offset_minutes) else {
        return Vec::new();
    };
    if page_size == 0 {
        return Vec::new();
    }
    let agents: Vec<_> = (0..cfg.agents)
        .map(|i| simulator::generator::agent(cfg.seed, i))
        .collect();
    let selected: Vec<usize> = (0..agents.len()).collect();
    let grid = BucketGrid::new(window, granularity);
    let render = UserStatusRender {
        seed: cfg.seed,
        granularity,
        malformed_every: cfg.malformed_every,
        unknown_fields: cfg.unknown_fields,
        grid: &grid,
    };
    selected
        .chunks(page_size)
        .enumerate()
        .map(|(n, page)| {
            let offset = n * page_size;
            let has_more = offset + page.len() < selected.len();
            render.page(&agents, page, has_more, page_size, offset)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_agent_once_and_chain_has_more() {
        let cfg = SimulatorConfig {
            agents: 5,
            ..SimulatorConfig::default()
        };
        let day = NaiveDate::from_ymd_opt(2024, 5, 1).expect("date");
        let pages = user_status_pages(&cfg, day, 0, Granularity::PT1H, 2);
        assert_eq!(pages.len(), 3);
        let mut users = Vec::new();
        for (i, p) in pages.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(p).expect("JSON");
            assert_eq!(v["hasMore"], serde_json::json!(i < 2));
            assert_eq!(v["offset"], serde_json::json!(i * 2));
            for a in v["data"].as_array().expect("data") {
                users.push(a["userId"].as_str().expect("userId").to_string());
            }
        }
        let expected: Vec<String> = (0..5)
            .map(|i| simulator::generator::agent(cfg.seed, i).user_id)
            .collect();
        assert_eq!(users, expected);
    }
}
