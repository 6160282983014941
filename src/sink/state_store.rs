//! The store of small versioned objects under `_state/` (watermarks, poll states, partition
//! indexes, leases): named reads and writes, and the compare-and-swap that every
//! read-modify-write of them goes through ([`StateStore::get_versioned`],
//! [`StateStore::put_if`]; the mechanism is `versioned.rs`). It owns no format: what the
//! objects hold, their names and the corruption policy are [`crate::state`]'s. The caller
//! must write state only after the data it describes is durable.
//!
//! Opened together with the [`Sink`](super::Sink) of the same output ([`super::Output`]), and
//! kept apart from it the way a table format keeps its commit log apart from its data files:
//! the sink writes large files once per partition and unit of work, this store small objects
//! that several processes update in place.

use bytes::Bytes;

use super::store::Store;
use super::{layout, Conflict, SinkError, Version, STATE_DIR};

/// The `_state/` objects of one output. Cheap to clone; clones share the store.
#[derive(Clone, Debug)]
pub struct StateStore {
    pub(super) store: Store,
}

impl StateStore {
    /// `_state/<name>` after checking that `name` is a valid state name.
    fn relative(name: &str) -> Result<String, SinkError> {
        layout::validate_state_name(name)?;
        Ok(format!("{STATE_DIR}/{name}"))
    }

    /// Reads the state object `_state/<name>`, `None` when absent.
    pub async fn get(&self, name: &str) -> Result<Option<Bytes>, SinkError> {
        let path = self.store.object_path(&Self::relative(name)?);
        Ok(self
            .store
            .get_if_exists(&path)
            .await?
            .map(|(bytes, _)| bytes))
    }

    /// Atomically replaces the state object `_state/<name>` (names like
    /// `user_status/account_id=A.json`) whatever it holds: a blind write, for tools and tests.
    /// Read-modify-write goes through [`StateStore::put_if`].
    pub async fn put(&self, name: &str, value: Bytes) -> Result<(), SinkError> {
        self.store.put_whole(&Self::relative(name)?, value).await
    }

    /// Reads the state object `_state/<name>` with its version; `None` when absent.
    pub async fn get_versioned(&self, name: &str) -> Result<Option<(Bytes, Version)>, SinkError> {
        self.store.get_versioned(&Self::relative(name)?).await
    }

    /// Writes `bytes` to the state object `_state/<name>` only if it still has the version
    /// `expected` (`None`: only if it does not exist). Returns the new version, or
    /// [`Conflict`]: then re-read, re-apply the change, and try again.
    pub async fn put_if(
        &self,
        name: &str,
        bytes: Bytes,
        expected: Option<&Version>,
    ) -> Result<Result<Version, Conflict>, SinkError> {
        self.store
            .put_if(&Self::relative(name)?, bytes, expected)
            .await
    }

    /// Removes staging leftovers (a conditional or blind write killed between its staging file
    /// and the rename) older than the staging grace under a dataset's state and lease prefixes
    /// (`_state/<dataset>/`, `_state/lease/<dataset>/`; state is kept per dataset, not per
    /// table). Returns how many were removed.
    pub async fn cleanup_staging(&self, dataset: &str) -> Result<usize, SinkError> {
        let mut removed = 0;
        for prefix in [
            format!("{STATE_DIR}/{dataset}"),
            format!("{STATE_DIR}/lease/{dataset}"),
        ] {
            removed += self
                .store
                .remove_staging_in(&prefix, true, self.store.staging_grace)
                .await?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use object_store::memory::InMemory;
    use object_store::path::Path;

    use super::*;
    use crate::config::OutputLocation;
    use crate::datasets::user_status;
    use crate::sink::Output;

    fn local() -> (tempfile::TempDir, StateStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Output::open(&OutputLocation::Local(dir.path().join("out"))).expect("open");
        (dir, out.state)
    }

    fn file_names(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn state_round_trips_on_disk_and_in_memory() {
        let (tmp, local) = local();
        let memory = Output::with_store(Arc::new(InMemory::new()), Path::from("prefix")).state;
        for state in [&local, &memory] {
            let name = "user_status/account_id=A.json";
            assert_eq!(state.get(name).await.expect("get"), None);
            state
                .put(name, Bytes::from_static(br#"{"v":1}"#))
                .await
                .expect("put");
            state
                .put(name, Bytes::from_static(br#"{"v":2}"#))
                .await
                .expect("put again");
            assert_eq!(
                state.get(name).await.expect("get"),
                Some(Bytes::from_static(br#"{"v":2}"#))
            );
            assert!(matches!(
                state.put("../escape.json", Bytes::new()).await,
                Err(SinkError::InvalidStateName { .. })
            ));
            assert!(matches!(
                state.put_if("a//b.json", Bytes::new(), None).await,
                Err(SinkError::InvalidStateName { .. })
            ));
        }
        let state_dir = tmp.path().join("out/_state/user_status");
        assert_eq!(file_names(&state_dir), ["account_id=A.json"]);
    }

    #[tokio::test]
    async fn versioned_writes_address_the_named_object_under_the_state_prefix() {
        let objects = Arc::new(InMemory::new());
        let state = Output::with_store(objects.clone(), Path::from("lake")).state;
        let v1 = state
            .put_if("x/y.json", Bytes::from_static(b"one"), None)
            .await
            .expect("put")
            .expect("created");
        let (body, read) = state
            .get_versioned("x/y.json")
            .await
            .expect("get")
            .expect("exists");
        assert_eq!((&body[..], &read), (&b"one"[..], &v1));
        let raw =
            object_store::ObjectStoreExt::get(objects.as_ref(), &"lake/_state/x/y.json".into())
                .await
                .expect("object at the exact key")
                .bytes()
                .await
                .expect("bytes");
        assert_eq!(&raw[..], b"one");
        assert_eq!(
            state
                .put_if("x/y.json", Bytes::from_static(b"two"), None)
                .await
                .expect("put"),
            Err(Conflict)
        );
    }

    /// A state file that cannot be written (here its directory is a regular file) fails with an
    /// error naming the state file's absolute path, and leaves no staging file behind.
    #[tokio::test]
    async fn a_failed_state_write_names_the_state_file() {
        let (tmp, state) = local();
        let dir = tmp.path().join("out/_state");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("blocked"), b"a file, not a directory").expect("blocker");
        let err = state
            .put("blocked/x.json", Bytes::from_static(b"{}"))
            .await
            .expect_err("cannot write under a file");
        assert_eq!(
            err.to_string(),
            format!("cannot write {}", dir.join("blocked/x.json").display())
        );
        assert_eq!(file_names(&dir), ["blocked"]);
    }

    #[tokio::test]
    async fn cleanup_removes_old_staging_files_of_the_tables_state_and_lease_only() {
        let (tmp, state) = local();
        let root = tmp.path().join("out/_state");
        let own = root.join("user_status/account_id=A");
        let lease = root.join("lease/user_status");
        let other = root.join("intent_realtime/account_id=A");
        for d in [&own, &lease, &other] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        let stale = [
            own.join(".tmp-1.density.json"),
            lease.join(".tmp-2.account_id=A.json"),
        ];
        let kept = [own.join("density.json"), other.join(".tmp-3.bot_id=b.json")];
        for f in stale.iter().chain(&kept) {
            std::fs::write(f, b"{}").expect("fake file");
            let old = std::time::SystemTime::now() - Duration::from_secs(3600);
            std::fs::File::options()
                .write(true)
                .open(f)
                .and_then(|file| file.set_modified(old))
                .expect("age");
        }
        let fresh = own.join(".tmp-4.account_id=A.json");
        std::fs::write(&fresh, b"{}").expect("fresh");

        let removed = state
            .cleanup_staging(user_status::TABLE.name)
            .await
            .expect("cleanup");
        assert_eq!(removed, 2);
        assert!(stale.iter().all(|f| !f.exists()));
        assert!(kept.iter().all(|f| f.exists()), "other files untouched");
        assert!(fresh.exists(), "a write in progress keeps its staging file");
    }
}
