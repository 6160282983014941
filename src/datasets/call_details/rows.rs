//! The two Call Details tables: their Arrow schemas (owned here; both partitioned by
//! `account_id` and `dt`, the local date of `session_start_time`) and the normalizer that turns
//! [`CallRecord`]s into one `call_details` row per session and one `call_segments` row per leg,
//! so handle time per agent or queue is a plain `GROUP BY`.
//!
//! The caller makes one [`CallDetailsNormalizer`] per local day, pushes every record with the
//! day's claim (records starting outside it are skipped), pushes the rejects, and takes both
//! batches. Times are UTC milliseconds; durations are whole seconds; `time_zone_offset` keeps
//! the offset the zone-less times were read at.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Int32Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};

use super::record::{AgentLeg, CallRecord, Segment, StrList};
use crate::schema::{constant_timestamp, constant_utf8, timestamp_builder, timestamp_type};
use crate::sources::extra::{extra_field, ExtraColumn, UnmappedCounts};
use crate::sources::Reject;

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}
fn ts(name: &str) -> Field {
    Field::new(name, timestamp_type(), true)
}
fn int64(name: &str) -> Field {
    Field::new(name, DataType::Int64, true)
}
fn boolean(name: &str) -> Field {
    Field::new(name, DataType::Boolean, true)
}
fn list(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        true,
    )
}
fn required(f: Field) -> Field {
    f.with_nullable(false)
}

/// One row per session. JSON-text columns hold values whose shape is undocumented or free-form
/// (`skills`, the tag lists, `metaInfo`), exactly as received.
pub fn details_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        required(utf8("account_id")),
        required(utf8("session_id")),
        utf8("conversation_id"),
        utf8("channel"),
        utf8("bot_id"),
        utf8("user_id"),
        utf8("channel_specific_user_id"),
        utf8("org_id"),
        required(ts("session_start_time")),
        ts("session_end_time"),
        required(Field::new("time_zone_offset", DataType::Int32, true)),
        utf8("final_status"),
        utf8("smart_status"),
        utf8("reason"),
        utf8("disconnecting_event"),
        utf8("error_details"),
        utf8("direction"),
        boolean("is_voicemail"),
        utf8("skills"),
        list("dispositions"),
        list("disposition_remarks"),
        utf8("survey_type"),
        int64("csat_score"),
        utf8("csat_feedback"),
        int64("nps_score"),
        int64("like_dislike_score"),
        utf8("customer_phone"),
        utf8("center_phone"),
        utf8("customer_first_name"),
        utf8("customer_last_name"),
        utf8("customer_email"),
        utf8("user_level_tags"),
        utf8("session_level_tags"),
        utf8("campaign_id"),
        utf8("campaign_name"),
        utf8("campaign_instance_id"),
        utf8("campaign_dialing_list_id"),
        int64("campaign_attempt"),
        utf8("campaign_contact_status"),
        ts("campaign_run_date"),
        list("campaign_contact_list_names"),
        list("automation_bot_ids"),
        utf8("meta_info"),
        Field::new("segment_count", DataType::Int32, false),
        required(ts("exported_at")),
        extra_field(),
    ]))
}

/// One row per agent or queue leg (see [`Segment`] for the walk), in the same `dt` as its
/// session.
pub fn segments_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        required(utf8("account_id")),
        required(utf8("session_id")),
        required(Field::new("segment_index", DataType::Int32, true)),
        required(utf8("destination_type")),
        utf8("queue_id"),
        utf8("queue_name"),
        ts("enter_time"),
        boolean("callback_opted"),
        ts("callback_opted_time"),
        ts("user_callback_accept_time"),
        utf8("agent_id"),
        utf8("agent_email"),
        utf8("agent_name"),
        boolean("responding"),
        utf8("status"),
        utf8("non_response_event"),
        ts("assigned_at"),
        ts("accepted_time"),
        ts("first_response_time"),
        int64("first_response_seconds"),
        ts("interaction_end_time"),
        int64("interaction_seconds"),
        ts("after_call_work_end_time"),
        int64("after_call_work_seconds"),
        list("agent_notes"),
        utf8("consulting_agents"),
        required(ts("session_start_time")),
        required(Field::new("time_zone_offset", DataType::Int32, true)),
        required(ts("exported_at")),
        extra_field(),
    ]))
}

/// The two batches of one take.
#[derive(Debug, Clone)]
pub struct CallBatches {
    /// [`details_schema`].
    pub details: RecordBatch,
    /// [`segments_schema`].
    pub segments: RecordBatch,
}

fn tsb() -> TimestampMillisecondBuilder {
    timestamp_builder(0)
}

fn ms(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp_millis())
}

fn append_list(b: &mut ListBuilder<StringBuilder>, v: Option<&StrList<'_>>) {
    match v {
        None => b.append_null(),
        Some(items) => {
            for s in items.iter() {
                b.values().append_value(s);
            }
            b.append(true);
        }
    }
}

/// Builders of the non-constant `call_details` columns, in schema order.
struct DetailsBuilders {
    s: [StringBuilder; 29],
    start: TimestampMillisecondBuilder,
    end: TimestampMillisecondBuilder,
    run_date: TimestampMillisecondBuilder,
    offset: Int32Builder,
    segment_count: Int32Builder,
    voicemail: BooleanBuilder,
    ints: [Int64Builder; 4],
    lists: [ListBuilder<StringBuilder>; 4],
    extra: ExtraColumn,
}

impl DetailsBuilders {
    fn new() -> Self {
        DetailsBuilders {
            s: std::array::from_fn(|_| StringBuilder::new()),
            start: tsb(),
            end: tsb(),
            run_date: tsb(),
            offset: Int32Builder::new(),
            segment_count: Int32Builder::new(),
            voicemail: BooleanBuilder::new(),
            ints: std::array::from_fn(|_| Int64Builder::new()),
            lists: std::array::from_fn(|_| ListBuilder::new(StringBuilder::new())),
            extra: ExtraColumn::default(),
        }
    }

    fn push(&mut self, r: &CallRecord<'_>) {
        let c = &r.customer;
        let k = &r.campaign;
        let strings: [Option<&str>; 29] = [
            Some(r.session_id.as_ref()),
            r.conversation_id.as_deref(),
            r.channel.as_deref(),
            r.bot_id.as_deref(),
            r.user_id.as_deref(),
            r.channel_specific_user_id.as_deref(),
            r.org_id.as_deref(),
            r.final_status.as_deref(),
            r.smart_status.as_deref(),
            r.reason.as_deref(),
            r.disconnecting_event.as_deref(),
            r.error_details.as_deref(),
            r.direction.as_deref(),
            r.skills.as_deref(),
            r.survey_type.as_deref(),
            r.csat_feedback.as_deref(),
            c.phone.as_deref(),
            c.center_phone.as_deref(),
            c.first_name.as_deref(),
            c.last_name.as_deref(),
            c.email.as_deref(),
            r.user_level_tags.as_deref(),
            r.session_level_tags.as_deref(),
            k.id.as_deref(),
            k.name.as_deref(),
            k.instance_id.as_deref(),
            k.dialing_list_id.as_deref(),
            k.contact_status.as_deref(),
            r.meta_info.as_deref(),
        ];
        for (b, v) in self.s.iter_mut().zip(strings) {
            b.append_option(v);
        }
        self.start
            .append_value(r.session_start_time.timestamp_millis());
        self.end.append_option(ms(r.session_end_time));
        self.run_date.append_option(ms(k.run_date));
        self.offset.append_value(r.time_zone_offset);
        // A session has far fewer than 2^31 legs; saturate rather than wrap.
        self.segment_count
            .append_value(i32::try_from(r.segments.len()).unwrap_or(i32::MAX));
        self.voicemail.append_option(r.is_voicemail);
        let ints = [r.csat_score, r.nps_score, r.like_dislike_score, k.attempt];
        for (b, v) in self.ints.iter_mut().zip(ints) {
            b.append_option(v);
        }
        let lists = [
            r.dispositions.as_ref(),
            r.disposition_remarks.as_ref(),
            k.contact_list_names.as_ref(),
            r.automation_bot_ids.as_ref(),
        ];
        for (b, v) in self.lists.iter_mut().zip(lists) {
            append_list(b, v);
        }
        self.extra.append(&[("session", &r.extra)]);
    }

    /// Columns in [`details_schema`] order, given the constant columns.
    fn finish(&mut self, account: ArrayRef, exported_at: ArrayRef) -> Vec<ArrayRef> {
        let mut s: Vec<ArrayRef> = self
            .s
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let mut ints: Vec<ArrayRef> = self
            .ints
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let mut lists: Vec<ArrayRef> = self
            .lists
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        // Drain in the order the push arrays list them.
        let next = |v: &mut Vec<ArrayRef>| v.remove(0);
        vec![
            account,
            next(&mut s), // session_id
            next(&mut s), // conversation_id
            next(&mut s), // channel
            next(&mut s), // bot_id
            next(&mut s), // user_id
            next(&mut s), // channel_specific_user_id
            next(&mut s), // org_id
            Arc::new(self.start.finish()),
            Arc::new(self.end.finish()),
            Arc::new(self.offset.finish()),
            next(&mut s), // final_status
            next(&mut s), // smart_status
            next(&mut s), // reason
            next(&mut s), // disconnecting_event
            next(&mut s), // error_details
            next(&mut s), // direction
            Arc::new(self.voicemail.finish()),
            next(&mut s),     // skills
            next(&mut lists), // dispositions
            next(&mut lists), // disposition_remarks
            next(&mut s),     // survey_type
            next(&mut ints),  // csat_score
            next(&mut s),     // csat_feedback
            next(&mut ints),  // nps_score
            next(&mut ints),  // like_dislike_score
            next(&mut s),     // customer_phone
            next(&mut s),     // center_phone
            next(&mut s),     // customer_first_name
            next(&mut s),     // customer_last_name
            next(&mut s),     // customer_email
            next(&mut s),     // user_level_tags
            next(&mut s),     // session_level_tags
            next(&mut s),     // campaign_id
            next(&mut s),     // campaign_name
            next(&mut s),     // campaign_instance_id
            next(&mut s),     // campaign_dialing_list_id
            next(&mut ints),  // campaign_attempt
            next(&mut s),     // campaign_contact_status
            Arc::new(self.run_date.finish()),
            next(&mut lists), // campaign_contact_list_names
            next(&mut lists), // automation_bot_ids
            next(&mut s),     // meta_info
            Arc::new(self.segment_count.finish()),
            exported_at,
            self.extra.finish(),
        ]
    }
}

/// Builders of the non-constant `call_segments` columns.
struct SegmentBuilders {
    session_id: StringBuilder,
    index: Int32Builder,
    s: [StringBuilder; 9],
    ts: [TimestampMillisecondBuilder; 9],
    bools: [BooleanBuilder; 2],
    ints: [Int64Builder; 3],
    notes: ListBuilder<StringBuilder>,
    offset: Int32Builder,
    extra: ExtraColumn,
}

impl SegmentBuilders {
    fn new() -> Self {
        SegmentBuilders {
            session_id: StringBuilder::new(),
            index: Int32Builder::new(),
            s: std::array::from_fn(|_| StringBuilder::new()),
            ts: std::array::from_fn(|_| tsb()),
            bools: std::array::from_fn(|_| BooleanBuilder::new()),
            ints: std::array::from_fn(|_| Int64Builder::new()),
            notes: ListBuilder::new(StringBuilder::new()),
            offset: Int32Builder::new(),
            extra: ExtraColumn::default(),
        }
    }

    fn push(&mut self, r: &CallRecord<'_>, index: usize, seg: &Segment<'_>) {
        let none = AgentLeg::default();
        let a = seg.agent.as_ref().unwrap_or(&none);
        self.session_id.append_value(&r.session_id);
        // Bounded by the number of legs in one record; saturate rather than wrap.
        self.index
            .append_value(i32::try_from(index).unwrap_or(i32::MAX));
        let strings: [Option<&str>; 9] = [
            Some(seg.kind.as_str()),
            seg.queue_id.as_deref(),
            seg.queue_name.as_deref(),
            a.agent_id.as_deref(),
            a.email.as_deref(),
            a.name.as_deref(),
            a.status.as_deref(),
            a.non_response_event.as_deref(),
            a.consulting_agents.as_deref(),
        ];
        for (b, v) in self.s.iter_mut().zip(strings) {
            b.append_option(v);
        }
        let times = [
            seg.enter_time,
            seg.callback_opted_time,
            seg.user_callback_accept_time,
            a.assigned_at,
            a.accepted_time,
            a.first_response_time,
            a.interaction_end_time,
            a.after_call_work_end_time,
            Some(r.session_start_time),
        ];
        for (b, v) in self.ts.iter_mut().zip(times) {
            b.append_option(ms(v));
        }
        self.bools[0].append_option(seg.callback_opted);
        self.bools[1].append_option(seg.responding);
        let ints = [
            a.first_response_seconds,
            a.interaction_seconds,
            a.after_call_work_seconds,
        ];
        for (b, v) in self.ints.iter_mut().zip(ints) {
            b.append_option(v);
        }
        append_list(&mut self.notes, a.agent_notes.as_ref());
        self.offset.append_value(r.time_zone_offset);
        self.extra.append(&[
            ("session", &r.extra),
            ("destination", &seg.queue_extra),
            ("agent", &a.extra),
        ]);
    }

    fn finish(&mut self, account: ArrayRef, exported_at: ArrayRef) -> Vec<ArrayRef> {
        let s: Vec<ArrayRef> = self
            .s
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let t: Vec<ArrayRef> = self
            .ts
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let i: Vec<ArrayRef> = self
            .ints
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        vec![
            account,
            Arc::new(self.session_id.finish()),
            Arc::new(self.index.finish()),
            s[0].clone(), // destination_type
            s[1].clone(), // queue_id
            s[2].clone(), // queue_name
            t[0].clone(), // enter_time
            Arc::new(self.bools[0].finish()),
            t[1].clone(), // callback_opted_time
            t[2].clone(), // user_callback_accept_time
            s[3].clone(), // agent_id
            s[4].clone(), // agent_email
            s[5].clone(), // agent_name
            Arc::new(self.bools[1].finish()),
            s[6].clone(), // status
            s[7].clone(), // non_response_event
            t[3].clone(), // assigned_at
            t[4].clone(), // accepted_time
            t[5].clone(), // first_response_time
            i[0].clone(), // first_response_seconds
            t[6].clone(), // interaction_end_time
            i[1].clone(), // interaction_seconds
            t[7].clone(), // after_call_work_end_time
            i[2].clone(), // after_call_work_seconds
            Arc::new(self.notes.finish()),
            s[8].clone(), // consulting_agents
            t[8].clone(), // session_start_time
            Arc::new(self.offset.finish()),
            exported_at,
            self.extra.finish(),
        ]
    }
}

/// Accumulates the rows of one local day (one `dt` partition of both tables) and its rejects.
pub struct CallDetailsNormalizer {
    account_id: String,
    exported_at_ms: i64,
    details: DetailsBuilders,
    segments: SegmentBuilders,
    sessions: usize,
    segment_rows: usize,
    total_sessions: usize,
    total_segments: usize,
    unmapped: UnmappedCounts,
    rejects: Vec<Reject>,
}

impl fmt::Debug for CallDetailsNormalizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallDetailsNormalizer")
            .field("account_id", &self.account_id)
            .field("sessions", &self.total_sessions)
            .field("segments", &self.total_segments)
            .field("rejects", &self.rejects.len())
            .finish()
    }
}

impl CallDetailsNormalizer {
    pub fn new(account_id: &str, exported_at: DateTime<Utc>) -> Self {
        CallDetailsNormalizer {
            account_id: account_id.to_owned(),
            exported_at_ms: exported_at.timestamp_millis(),
            details: DetailsBuilders::new(),
            segments: SegmentBuilders::new(),
            sessions: 0,
            segment_rows: 0,
            total_sessions: 0,
            total_segments: 0,
            unmapped: UnmappedCounts::default(),
            rejects: Vec::new(),
        }
    }

    /// Appends the session and its legs if its start lies in `claim` (`[start, end)`);
    /// returns whether it did. The caller dedupes by `session_id` (see
    /// [`fetch_day`](super::fetch_day), which already does).
    pub fn push(&mut self, record: &CallRecord<'_>, claim: &Range<DateTime<Utc>>) -> bool {
        if !claim.contains(&record.session_start_time) {
            return false;
        }
        self.details.push(record);
        for (i, seg) in record.segments.iter().enumerate() {
            self.segments.push(record, i, seg);
        }
        self.sessions += 1;
        self.segment_rows += record.segments.len();
        self.total_sessions += 1;
        self.total_segments += record.segments.len();
        record.count_unmapped(&mut self.unmapped);
        true
    }

    /// Records a reject (a record the decoder refused).
    pub fn push_reject(&mut self, reject: Reject) {
        self.rejects.push(reject);
    }

    /// Sessions and legs appended since construction.
    pub fn counts(&self) -> (usize, usize) {
        (self.total_sessions, self.total_segments)
    }

    pub fn rejects(&self) -> &[Reject] {
        &self.rejects
    }

    /// The rows pushed since the last take, as one batch per table; the builders start empty.
    pub fn take_batches(&mut self) -> CallBatches {
        let n = std::mem::take(&mut self.sessions);
        let m = std::mem::take(&mut self.segment_rows);
        let (account, exported) = (self.account_id.as_str(), self.exported_at_ms);
        let details = self
            .details
            .finish(constant_utf8(account, n), constant_timestamp(exported, n));
        let segments = self
            .segments
            .finish(constant_utf8(account, m), constant_timestamp(exported, m));
        // Cannot fail: every column has the row count of its table, the types are the schemas'
        // (timestamps built with the "UTC" zone, lists with nullable "item" fields) and the
        // non-nullable columns only ever receive values.
        CallBatches {
            details: RecordBatch::try_new(details_schema(), details)
                .expect("columns match details_schema by construction"),
            segments: RecordBatch::try_new(segments_schema(), segments)
                .expect("columns match segments_schema by construction"),
        }
    }

    /// Occurrences of unmapped fields in the sessions pushed since the last call.
    pub fn take_unmapped(&mut self) -> UnmappedCounts {
        std::mem::take(&mut self.unmapped)
    }

    /// The rejects collected since the last call.
    pub fn take_rejects(&mut self) -> Vec<Reject> {
        std::mem::take(&mut self.rejects)
    }

    /// The remaining rows and every uncollected reject.
    pub fn finish(mut self) -> (CallBatches, Vec<Reject>) {
        let batches = self.take_batches();
        (batches, self.rejects)
    }
}
