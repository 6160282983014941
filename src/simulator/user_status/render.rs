//! UserStatus response bodies, written straight into a `String` (no `serde_json::Value` trees)
//! because its pages get large. Inputs come from the generator; the quirks of the real API
//! (blank names, extra unknown fields, idle buckets) are decided here, deterministically, and
//! never change the rows an exporter should produce.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::generator::{bucket_starts, listed_buckets, RequestWindow};
use crate::model::Granularity;
use crate::simulator::generator::{quirk, GeneratedAgent};
use crate::simulator::render::push_json_str;

/// The bucket bounds of one request, formatted once and shared by every agent on the page.
pub(crate) struct BucketGrid {
    pub starts: Vec<DateTime<Utc>>,
    /// `"startTime":"…Z","endTime":"…Z"` for each bucket.
    bounds: Vec<String>,
}

impl BucketGrid {
    pub(crate) fn new(window: RequestWindow, granularity: Granularity) -> Self {
        let starts = bucket_starts(window, granularity);
        let bounds = starts
            .iter()
            .map(|s| {
                let e = *s + granularity.duration();
                format!(
                    "\"startTime\":\"{}\",\"endTime\":\"{}\"",
                    s.format("%Y-%m-%dT%H:%M:%SZ"),
                    e.format("%Y-%m-%dT%H:%M:%SZ")
                )
            })
            .collect();
        BucketGrid { starts, bounds }
    }
}

/// What varies per UserStatus request besides the agents on the page.
pub(crate) struct UserStatusRender<'a> {
    pub seed: u64,
    pub granularity: Granularity,
    pub malformed_every: Option<u64>,
    pub grid: &'a BucketGrid,
}

impl UserStatusRender<'_> {
    /// Appends `"timeInterval":[…]` for one agent.
    fn push_time_interval(&self, out: &mut String, agent_idx: usize) {
        out.push_str("\"timeInterval\":[");
        let listed = listed_buckets(
            self.seed,
            agent_idx,
            &self.grid.starts,
            self.granularity,
            self.malformed_every,
        );
        for (n, (i, statuses)) in listed.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push('{');
            out.push_str(&self.grid.bounds[*i]);
            let start = self.grid.starts[*i].timestamp() as u64;
            if quirk(self.seed, &[2, agent_idx as u64, start], 40) {
                out.push_str(",\"timezone\":\"UTC\"");
            }
            out.push_str(",\"status\":[");
            for (j, st) in statuses.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":\"");
                out.push_str(st.metric);
                out.push_str("\",\"value\":\"");
                out.push_str(st.value);
                out.push_str("\",\"stats\":{\"sum\":");
                st.write_sum_json(out);
                out.push_str("}}");
            }
            out.push_str("]}");
        }
        out.push(']');
    }

    /// The Gen B/C envelope for the agents at `page` (indexes into the generated agents).
    pub(crate) fn page(
        &self,
        agents: &[GeneratedAgent],
        page: &[usize],
        has_more: bool,
        limit: usize,
        offset: usize,
    ) -> String {
        let per_agent = 64 + self.grid.starts.len() * 220;
        let mut out = String::with_capacity(64 + page.len() * per_agent);
        let _ = write!(
            out,
            "{{\"hasMore\":{has_more},\"limit\":{limit},\"offset\":{offset},\"data\":["
        );
        for (n, &idx) in page.iter().enumerate() {
            let a = &agents[idx];
            if n > 0 {
                out.push(',');
            }
            out.push_str("{\"userId\":");
            push_json_str(&mut out, &a.user_id);
            out.push_str(",\"firstName\":");
            push_json_str(&mut out, &a.first_name);
            out.push_str(",\"lastName\":");
            push_json_str(&mut out, &a.last_name);
            out.push_str(",\"email\":");
            push_json_str(&mut out, &a.email);
            out.push_str(",\"customId\":");
            push_json_str(&mut out, &a.custom_id);
            if quirk(self.seed, &[1, idx as u64], 6) {
                out.push_str(",\"isSupervisor\":false");
            }
            out.push(',');
            self.push_time_interval(&mut out, idx);
            out.push('}');
        }
        out.push_str("]}");
        out
    }

    /// The legacy (Gen A) body: an object keyed by userId, every selected agent, no envelope.
    pub(crate) fn legacy(&self, agents: &[GeneratedAgent], selected: &[usize]) -> String {
        let mut out =
            String::with_capacity(2 + selected.len() * (64 + self.grid.starts.len() * 220));
        out.push('{');
        for (n, &idx) in selected.iter().enumerate() {
            let a = &agents[idx];
            if n > 0 {
                out.push(',');
            }
            push_json_str(&mut out, &a.user_id);
            out.push_str(":{\"emailId\":");
            push_json_str(&mut out, &a.email);
            out.push_str(",\"firstName\":");
            push_json_str(&mut out, &a.first_name);
            out.push(',');
            self.push_time_interval(&mut out, idx);
            out.push('}');
        }
        out.push('}');
        out
    }
}
