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
use crate::simulator::truth::instant_key;
use crate::simulator::unknown;

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
    /// Add [`unknown::fields`] to every agent, bucket, status entry and `stats` object.
    pub unknown_fields: bool,
    pub grid: &'a BucketGrid,
}

/// Whether agent `idx` carries `"isSupervisor":false` (a field the API sends that no column
/// maps; never in the legacy shape).
pub(crate) fn is_supervisor_listed(seed: u64, idx: usize) -> bool {
    quirk(seed, &[1, idx as u64], 6)
}

/// Whether the bucket of agent `idx` starting at `start` carries `"timezone":"UTC"` (a field
/// no column maps).
pub(crate) fn bucket_timezone_listed(seed: u64, idx: usize, start: DateTime<Utc>) -> bool {
    quirk(seed, &[2, idx as u64, start.timestamp() as u64], 40)
}

/// The identity [`unknown::fields`] of a bucket and of a status entry carry.
pub(crate) fn bucket_ref(user_id: &str, start: DateTime<Utc>) -> String {
    format!("{user_id}|{}", instant_key(start))
}

impl UserStatusRender<'_> {
    /// Appends [`unknown::fields`] of `level` when they are on.
    fn push_unknown(&self, out: &mut String, level: &str, id: &str) {
        if self.unknown_fields {
            unknown::push_members(out, &unknown::fields(level, id));
        }
    }

    /// Appends `"timeInterval":[…]` for one agent.
    fn push_time_interval(&self, out: &mut String, agent_idx: usize, user_id: &str) {
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
            let start = self.grid.starts[*i];
            if bucket_timezone_listed(self.seed, agent_idx, start) {
                out.push_str(",\"timezone\":\"UTC\"");
            }
            let bucket = bucket_ref(user_id, start);
            self.push_unknown(out, "bucket", &bucket);
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
                let entry = format!("{bucket}|{}|{}", st.metric, st.value);
                self.push_unknown(out, "stats", &entry);
                out.push('}');
                self.push_unknown(out, "status", &entry);
                out.push('}');
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
            if is_supervisor_listed(self.seed, idx) {
                out.push_str(",\"isSupervisor\":false");
            }
            self.push_unknown(&mut out, "agent", &a.user_id);
            out.push(',');
            self.push_time_interval(&mut out, idx, &a.user_id);
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
            self.push_unknown(&mut out, "agent", &a.user_id);
            out.push(',');
            self.push_time_interval(&mut out, idx, &a.user_id);
            out.push('}');
        }
        out.push('}');
        out
    }
}
