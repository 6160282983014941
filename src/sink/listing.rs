//! What a table holds, read from the store itself: every partition of a table (or of its
//! rejects) with its visible Parquet files, and the row count of a file from its footer. Used
//! to rebuild the coverage record ([`crate::coverage::rebuild`]); nothing here writes.

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use object_store::path::Path;

use super::{is_staging_name, ranged, SinkError, StoreOp, REJECTS_DIR};
use crate::schema::Table;

/// One visible data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub path: Path,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
}

/// One partition of a table as found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPartition {
    /// Its `bot_id`, when the table's layout has one.
    pub bot_id: Option<String>,
    /// Its date column's value.
    pub day: NaiveDate,
    pub files: Vec<StoredFile>,
}

impl super::Sink {
    /// Every partition of `table` of `account_id` holding a visible Parquet file, sorted by
    /// day then bot.
    pub async fn stored_partitions(
        &self,
        table: &Table,
        account_id: &str,
    ) -> Result<Vec<StoredPartition>, SinkError> {
        self.partitions_under(table, &format!("{}/account_id={account_id}", table.name))
            .await
    }

    /// Every partition of `table`'s rejects (`_rejects/<table>/...`) of `account_id`.
    pub async fn stored_rejects(
        &self,
        table: &Table,
        account_id: &str,
    ) -> Result<Vec<StoredPartition>, SinkError> {
        let dir = format!("{REJECTS_DIR}/{}/account_id={account_id}", table.name);
        self.partitions_under(table, &dir).await
    }

    /// Rows of the Parquet file at `path`, read from its footer (one ranged read); `None`
    /// when the file is gone.
    pub async fn file_rows(&self, path: &Path) -> Result<Option<u64>, SinkError> {
        ranged::footer_rows(self.store.objects.clone(), path).await
    }

    async fn partitions_under(
        &self,
        table: &Table,
        dir: &str,
    ) -> Result<Vec<StoredPartition>, SinkError> {
        let prefix = self.store.object_path(dir);
        let listed: Vec<object_store::ObjectMeta> =
            match self.store.objects.list(Some(&prefix)).try_collect().await {
                Ok(listed) => listed,
                Err(object_store::Error::NotFound { .. }) => Vec::new(),
                Err(source) => {
                    return Err(SinkError::Store {
                        op: StoreOp::List,
                        path: prefix,
                        source,
                    })
                }
            };
        let date_column = table.layout.date_column();
        let mut partitions: Vec<StoredPartition> = Vec::new();
        for meta in listed {
            let Some(rel) = meta
                .location
                .as_ref()
                .strip_prefix(prefix.as_ref())
                .map(|r| r.trim_start_matches('/').to_string())
            else {
                continue;
            };
            let Some((bot_id, day)) = partition_of(&rel, date_column) else {
                continue;
            };
            let file = StoredFile {
                path: meta.location,
                size: meta.size,
                last_modified: meta.last_modified,
            };
            match partitions
                .iter_mut()
                .find(|p| p.day == day && p.bot_id == bot_id)
            {
                Some(p) => p.files.push(file),
                None => partitions.push(StoredPartition {
                    bot_id,
                    day,
                    files: vec![file],
                }),
            }
        }
        partitions.sort_by(|a, b| (a.day, &a.bot_id).cmp(&(b.day, &b.bot_id)));
        Ok(partitions)
    }
}

/// The partition of a path relative to a table's account folder: `[bot_id=B/]<date>=D/file`
/// with a visible `.parquet` file name; `None` for anything else (staging files, hidden
/// files, other layouts).
fn partition_of(rel: &str, date_column: &str) -> Option<(Option<String>, NaiveDate)> {
    let parts: Vec<&str> = rel.split('/').collect();
    let (file, dirs) = parts.split_last()?;
    let visible = !file.starts_with('.') && !file.starts_with('_') && !is_staging_name(file);
    if !visible || !file.ends_with(".parquet") {
        return None;
    }
    let (bot_id, date_dir) = match dirs {
        [date] => (None, *date),
        [bot, date] => (Some(bot.strip_prefix("bot_id=")?.to_string()), *date),
        _ => return None,
    };
    let day = date_dir
        .strip_prefix(date_column)?
        .strip_prefix('=')?
        .parse()
        .ok()?;
    Some((bot_id, day))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_read_from_hive_paths_and_hidden_files_skipped() {
        let d = |s: &str| s.parse::<NaiveDate>().expect("date");
        assert_eq!(
            partition_of("dt=2024-05-01/part-00000.parquet", "dt"),
            Some((None, d("2024-05-01")))
        );
        assert_eq!(
            partition_of("bot_id=st-1/dt=2024-05-01/part-1a2b.parquet", "dt"),
            Some((Some("st-1".into()), d("2024-05-01")))
        );
        assert_eq!(
            partition_of(
                "snapshot_date=2024-05-01/part-00000.parquet",
                "snapshot_date"
            ),
            Some((None, d("2024-05-01")))
        );
        for skipped in [
            "dt=2024-05-01/.tmp-1.part-00000.parquet",
            "dt=2024-05-01/_index.parquet",
            "dt=2024-05-01/part-00000.parquet#3",
            "dt=2024-05-01/notes.txt",
            "dt=2024-13-01/part-00000.parquet",
            "day=2024-05-01/part-00000.parquet",
            "x=1/dt=2024-05-01/part-00000.parquet",
        ] {
            assert_eq!(partition_of(skipped, "dt"), None, "{skipped}");
        }
    }
}
