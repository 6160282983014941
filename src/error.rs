//! The crate error: module errors converge here into a few actionable kinds (config, usage,
//! auth, upstream, storage, state, startup, partial failure), each with an exit code: 2 for
//! anything the user must fix in the config or command line, 1 for runtime failures. How an
//! error reads on one line is [`crate::error_chain`]'s job.

use chrono::NaiveDate;

use crate::auth::AuthError;
use crate::client::ClientError;
use crate::config::ConfigError;
use crate::handover::HandoverError;
use crate::lease::LeaseError;
use crate::sink::SinkError;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Upstream(#[from] ClientError),
    #[error(transparent)]
    Storage(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
    /// A dataset's own failure that is none of the kinds above (e.g. a Call Details window
    /// that holds more sessions than the API's caps can page through); the dataset says
    /// whether a later run may succeed.
    #[error("{dataset}")]
    Dataset {
        dataset: &'static str,
        retryable: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Lease(#[from] LeaseError),
    /// Work handed over to the daemon that owns the account's request budget.
    #[error(transparent)]
    Handover(#[from] HandoverError),
    #[error("{failed} of {total} units failed: {}", .units.join(", "))]
    Partial {
        failed: usize,
        total: usize,
        units: Vec<String>,
    },
    #[error("{context}")]
    Arrow {
        context: String,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error("unhealthy: {0}")]
    Unhealthy(String),
    /// A part of the process could not start (the built-in simulator, the cron ticker).
    #[error("cannot start {what}")]
    Startup {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A schema has a column type the DDL generator cannot map (a defect, not a usage error).
    #[error("cannot generate DDL")]
    Ddl(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A local day for which no request window could be planned (pathological zone rules).
    #[error("{dataset}: no request window covers {day}")]
    NoWindow {
        dataset: &'static str,
        day: NaiveDate,
    },
    /// A per-entity unit of a table whose partitions have no `bot_id`: every entity's day would
    /// replace the same partition (a defect of the dataset's declaration).
    #[error("{table}: a unit of entity {entity} cannot be written, its layout has no bot_id")]
    EntityWithoutPartition { table: &'static str, entity: String },
    /// A dataset wrote rows of a table it does not declare (a defect).
    #[error("rows for table {table}, which the dataset does not declare")]
    UnknownTable { table: &'static str },
    #[error("I/O error: {context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Usage(_) => 2,
            Error::Handover(e) => e.exit_code(),
            _ => 1,
        }
    }

    /// Whether a later run may succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Upstream(e) => e.is_retryable(),
            Error::Dataset { retryable, .. } => *retryable,
            Error::Storage(_) | Error::State(_) | Error::Partial { .. } | Error::Io { .. } => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_chain::error_chain;

    #[test]
    fn config_and_usage_errors_exit_2_runtime_errors_exit_1() {
        assert_eq!(Error::Usage("bad".into()).exit_code(), 2);
        let partial = Error::Partial {
            failed: 1,
            total: 3,
            units: vec!["2024-01-02".into()],
        };
        assert_eq!(partial.exit_code(), 1);
        assert_eq!(partial.to_string(), "1 of 3 units failed: 2024-01-02");
        let startup = Error::Startup {
            what: "the cron scheduler",
            source: "boom".into(),
        };
        assert_eq!(startup.exit_code(), 1);
        assert_eq!(
            error_chain(&startup),
            "cannot start the cron scheduler: boom"
        );
    }
}
