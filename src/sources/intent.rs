//! IntentRealtimeData (STUB).

use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};

use super::{DecodeError, Reject};

#[derive(Debug, Clone, PartialEq)]
pub struct IntentSession {
    pub session_id: String,
    pub user_id: Option<String>,
    pub channel: Option<String>,
    pub ani: Option<String>,
    pub dni: Option<String>,
    pub intents: Vec<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: DateTime<Utc>,
    pub status: Option<String>,
    pub time_handled: Option<String>,
    pub time_handled_seconds: Option<i64>,
    pub deflected_to: Option<String>,
}

pub fn decode_sessions(_body: &[u8]) -> Result<Vec<Result<IntentSession, Reject>>, DecodeError> {
    todo!()
}

pub fn sessions_to_batch(
    _account_id: &str,
    _bot_id: &str,
    _sessions: &[IntentSession],
    _exported_at: DateTime<Utc>,
) -> RecordBatch {
    todo!()
}

/// `session_id` values of a batch with the intent schema.
pub fn session_ids(_batch: &RecordBatch) -> Vec<String> {
    todo!()
}
