//! UserStatus (STUB).

use std::ops::Range;

use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};

use super::window::DayWindow;
use super::{DecodeError, Reject};
use crate::model::Granularity;

/// The JSON body of one UserStatus request.
pub fn request_body(
    _agents: &[String],
    _window: &DayWindow,
    _granularity: Granularity,
) -> serde_json::Value {
    todo!()
}

/// One agent record of a page, decoded or rejected.
#[derive(Debug, Clone)]
pub struct AgentRecord {}

/// A decoded page.
#[derive(Debug, Clone)]
pub struct UserStatusPage {
    pub has_more: bool,
    /// Agents on this page, counted for `offset` advancement (including rejected ones).
    pub record_count: usize,
    pub agents: Vec<Result<AgentRecord, Reject>>,
}

impl AgentRecord {
    pub fn user_id(&self) -> &str {
        todo!()
    }
}

pub fn decode_page(_body: &[u8]) -> Result<UserStatusPage, DecodeError> {
    todo!()
}

/// Accumulates rows of one local day.
pub struct UserStatusNormalizer {}

impl UserStatusNormalizer {
    pub fn new(_account_id: &str, _granularity: Granularity, _exported_at: DateTime<Utc>) -> Self {
        todo!()
    }
    pub fn push_agent(&mut self, _agent: &AgentRecord, _claim: &Range<DateTime<Utc>>) {
        todo!()
    }
    pub fn push_reject(&mut self, _reject: Reject) {
        todo!()
    }
    pub fn rows(&self) -> usize {
        todo!()
    }
    pub fn finish(self) -> (RecordBatch, Vec<Reject>) {
        todo!()
    }
}
