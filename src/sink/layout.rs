//! Pure naming rules of the output tree: the Hive partition directory of a [`PartitionKey`], the
//! one deterministic data file name per partition, the rejects and state prefixes, and the names
//! of staging artifacts (ours and object_store's) that cleanup may delete. No I/O here; the
//! caller must validate partition values with [`PartitionKey::validate`] before building paths.

use super::{PartitionKey, SinkError};

/// The single data file of a partition. A pure constant, so a rerun overwrites instead of
/// duplicating.
pub const PART_FILE_NAME: &str = "part-00000.parquet";
/// Top-level folder of the rejects dataset (leading `_`: Hive/Athena/Spark skip it).
pub const REJECTS_DIR: &str = "_rejects";
/// Top-level folder of small state objects (leading `_`: skipped by table readers).
pub const STATE_DIR: &str = "_state";
/// Prefix of our hidden staging files; a leading `.` hides them from table readers and globs.
pub const STAGING_PREFIX: &str = ".tmp-";

impl PartitionKey {
    /// The key of `account_id`'s day `dt` in a table laid out by account and day (no bot).
    pub fn account_day(
        table: &'static crate::schema::Table,
        account_id: &str,
        dt: chrono::NaiveDate,
    ) -> PartitionKey {
        PartitionKey {
            table,
            account_id: account_id.to_string(),
            bot_id: None,
            dt,
        }
    }

    /// `user_status/account_id=A/dt=2024-05-01` or
    /// `intent_realtime/account_id=A/bot_id=B/dt=2024-05-01` (the date column is the layout's,
    /// e.g. `agents/account_id=A/snapshot_date=2024-05-01`).
    pub fn relative_dir(&self) -> String {
        let date = self.table.layout.date_column();
        let dt = self.dt.format("%Y-%m-%d");
        match &self.bot_id {
            Some(bot) => format!(
                "{}/account_id={}/bot_id={}/{date}={}",
                self.table.name, self.account_id, bot, dt
            ),
            None => format!(
                "{}/account_id={}/{date}={}",
                self.table.name, self.account_id, dt
            ),
        }
    }

    /// `relative_dir()` plus the partition's one data file name.
    pub fn relative_file(&self) -> String {
        format!("{}/{}", self.relative_dir(), PART_FILE_NAME)
    }

    /// `_rejects/<relative_dir()>`: where this partition's rejected records go.
    pub fn rejects_relative_dir(&self) -> String {
        format!("{}/{}", REJECTS_DIR, self.relative_dir())
    }

    /// Checks that the partition values can be used verbatim as path segments: non-empty and made
    /// only of ASCII letters, digits, `.`, `_` and `-` (no `/`, `=`, `%` or `#`, which would need
    /// escaping that readers disagree on). `bot_id` must be set exactly when the table's layout
    /// has that column.
    pub fn validate(&self) -> Result<(), SinkError> {
        check_value("account_id", &self.account_id)?;
        match (&self.bot_id, self.table.layout.has_bot()) {
            (Some(bot), true) => check_value("bot_id", bot),
            (None, false) => Ok(()),
            _ => Err(SinkError::BotIdMismatch {
                table: self.table.name,
            }),
        }
    }
}

fn check_value(column: &'static str, value: &str) -> Result<(), SinkError> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(SinkError::InvalidPartitionValue {
            column,
            value: value.to_string(),
        })
    }
}

/// Hidden staging name for `final_name` in the same directory: `.tmp-<uuid>.<final_name>`.
pub fn staging_name(final_name: &str) -> String {
    format!(
        "{STAGING_PREFIX}{}.{final_name}",
        uuid::Uuid::new_v4().simple()
    )
}

/// Whether a file name is a staging artifact that cleanup may delete: our `.tmp-*` files, or an
/// object_store LocalFileSystem upload in progress (`<name>#<digits>`).
pub fn is_staging_name(name: &str) -> bool {
    if name.starts_with(STAGING_PREFIX) {
        return true;
    }
    match name.rsplit_once('#') {
        Some((_, suffix)) => !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// A state object name such as `user_status/account_id=A.json`: relative, `/`-separated, each
/// segment non-empty, not `.`/`..`, not hidden and not a staging name.
pub fn validate_state_name(name: &str) -> Result<(), SinkError> {
    let ok = !name.is_empty()
        && name.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && !is_staging_name(seg)
                && !seg.contains('\\')
                && !seg.chars().any(char::is_control)
        });
    if ok {
        Ok(())
    } else {
        Err(SinkError::InvalidStateName {
            name: name.to_string(),
        })
    }
}

/// A data file name inside a partition directory: ends in `.parquet`, is visible to table
/// readers (no leading `.` or `_`, not a staging name) and is made only of ASCII letters,
/// digits, `.`, `_` and `-`.
pub fn validate_file_name(name: &str) -> Result<(), SinkError> {
    let ok = name.len() > ".parquet".len()
        && name.ends_with(".parquet")
        && !name.starts_with('.')
        && !name.starts_with('_')
        && !is_staging_name(name)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(SinkError::InvalidFileName {
            name: name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::datasets::{intent_realtime, user_status};

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    #[test]
    fn user_status_dir_is_exact() {
        let key = PartitionKey {
            table: &user_status::TABLE,
            account_id: "6063b4b6c1f1".into(),
            bot_id: None,
            dt: date(2024, 5, 1),
        };
        assert_eq!(
            key.relative_dir(),
            "user_status/account_id=6063b4b6c1f1/dt=2024-05-01"
        );
        assert_eq!(
            key.relative_file(),
            "user_status/account_id=6063b4b6c1f1/dt=2024-05-01/part-00000.parquet"
        );
        assert_eq!(
            key.rejects_relative_dir(),
            "_rejects/user_status/account_id=6063b4b6c1f1/dt=2024-05-01"
        );
        assert!(key.validate().is_ok());
    }

    #[test]
    fn intent_dir_is_exact_and_zero_pads_dates() {
        let key = PartitionKey {
            table: &intent_realtime::TABLE,
            account_id: "A".into(),
            bot_id: Some("st-1a2b-3c".into()),
            dt: date(2023, 12, 9),
        };
        assert_eq!(
            key.relative_dir(),
            "intent_realtime/account_id=A/bot_id=st-1a2b-3c/dt=2023-12-09"
        );
        assert!(key.validate().is_ok());
    }

    #[test]
    fn unsafe_partition_values_are_rejected() {
        for bad in ["", "a/b", "a=b", "a%2F", "x#1", "a b"] {
            let key = PartitionKey {
                table: &user_status::TABLE,
                account_id: bad.into(),
                bot_id: None,
                dt: date(2024, 1, 1),
            };
            assert!(
                matches!(
                    key.validate(),
                    Err(SinkError::InvalidPartitionValue {
                        column: "account_id",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        let missing_bot = PartitionKey {
            table: &intent_realtime::TABLE,
            account_id: "A".into(),
            bot_id: None,
            dt: date(2024, 1, 1),
        };
        assert!(matches!(
            missing_bot.validate(),
            Err(SinkError::BotIdMismatch { .. })
        ));
    }

    #[test]
    fn staging_names_are_recognised() {
        assert!(is_staging_name(".tmp-abc.part-00000.parquet"));
        assert!(is_staging_name("part-00000.parquet#3"));
        assert!(is_staging_name(".tmp-abc.part-00000.parquet#12"));
        assert!(!is_staging_name("part-00000.parquet"));
        assert!(!is_staging_name("part-00000.parquet#"));
        assert!(!is_staging_name("a#b1"));
        let s = staging_name(PART_FILE_NAME);
        assert!(
            s.starts_with(".tmp-") && s.ends_with(".part-00000.parquet"),
            "{s}"
        );
        assert_ne!(s, staging_name(PART_FILE_NAME));
    }

    #[test]
    fn data_file_names_are_checked() {
        assert!(validate_file_name("part-00000.parquet").is_ok());
        assert!(validate_file_name("part-0a1b2c3d4e5f6a7b.parquet").is_ok());
        for bad in [
            "",
            ".parquet",
            "a/b.parquet",
            ".tmp-x.parquet",
            "_x.parquet",
            "x.json",
        ] {
            assert!(validate_file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn state_names_are_checked() {
        assert!(validate_state_name("user_status/account_id=A.json").is_ok());
        for bad in ["", "/x", "a//b", "../x", "a/.hidden", "x.json#2", "a\\b"] {
            assert!(validate_state_name(bad).is_err(), "{bad:?}");
        }
    }
}
