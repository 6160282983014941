//! Compare-and-swap of one small object, the primitive under every read-modify-write of the
//! output: [`StateStore::get_versioned`](super::StateStore::get_versioned) and
//! [`StateStore::put_if`](super::StateStore::put_if) for `_state/` objects, and the rejects
//! merge of a partition ([`Sink::put_rejects_if`](super::Sink::put_rejects_if)). A read returns
//! the object with its [`Version`]; a conditional write replaces it only if it still has that
//! version (or creates it only if it is still absent), so two processes doing read-modify-write
//! on the same object cannot lose each other's update. The caller must, on [`Conflict`],
//! re-read, re-apply its change to what it read, and try again.
//!
//! Object stores use conditional PutObject: `PutMode::Create` (`If-None-Match: *`) for an
//! absent object, `PutMode::Update` (`If-Match: <ETag>`) otherwise. The body is one in-memory
//! put (multipart uploads cannot be conditional), so this is for state and other small objects.
//! A conditional put whose answer was lost is retried by object_store and then reports a
//! conflict for the caller's own write; so every conflict is confirmed by re-reading the object:
//! when it holds exactly the bytes we wrote, the write was ours. Callers make that unambiguous
//! by putting a unique write id in every body (see [`crate::state`]).
//!
//! LocalFileSystem has no conditional update, so on local disk the write takes an exclusive
//! `flock` on a lock file (`_locks/<object path>.lock` under the output directory, skipped by
//! table readers) around "compare the current content's SHA-256 with the expected version →
//! write a hidden staging file → fsync → rename over the object → fsync the directory". The
//! lock is released when the file handle closes, also when the process dies, so a crash never
//! blocks another writer. The holder deletes the lock file before releasing it, so lock files
//! do not pile up (one per partition index and day otherwise); a waiter that then gets the lock
//! of the deleted file sees that the path no longer names it and starts over ([`LockFile`]).
//! Readers need no lock: the rename is atomic.

use std::io::Write as _;
use std::path::{Path as FsPath, PathBuf};

use bytes::Bytes;
use object_store::{PutMode, PutOptions, PutPayload, UpdateVersion};
use sha2::{Digest, Sha256};

use super::store::{Publish, Store};
use super::{layout, SinkError};

/// Top-level folder of the lock files local conditional writes use (leading `_`: table readers
/// skip it).
pub const LOCKS_DIR: &str = "_locks";

/// The version of an object as a versioned read returned it; a conditional write names it to
/// replace exactly that content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(Tag);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tag {
    /// What an object store reports (S3: the ETag, and the version id on versioned buckets).
    Store {
        e_tag: Option<String>,
        version: Option<String>,
    },
    /// Local disk: the SHA-256 of the content.
    Digest([u8; 32]),
}

/// A conditional write found another version than the one it expected: someone else wrote the
/// object since it was read (or created it, when it was expected to be absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the object changed since it was read")]
pub struct Conflict;

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Store {
    /// Reads the object at the relative path `relative` with its version; `None` when absent.
    pub(super) async fn get_versioned(
        &self,
        relative: &str,
    ) -> Result<Option<(Bytes, Version)>, SinkError> {
        let path = self.object_path(relative);
        let Some((bytes, meta)) = self.get_if_exists(&path).await? else {
            return Ok(None);
        };
        let (e_tag, version) = (meta.e_tag, meta.version);
        let tag = match self.publish {
            Publish::StagedRename { .. } => Tag::Digest(digest(&bytes)),
            Publish::DirectPut => Tag::Store { e_tag, version },
        };
        Ok(Some((bytes, Version(tag))))
    }

    /// Writes `bytes` to `relative` only if the object still has the version `expected`
    /// (`None`: only if it does not exist). Returns the new version, or [`Conflict`].
    pub(super) async fn put_if(
        &self,
        relative: &str,
        bytes: Bytes,
        expected: Option<&Version>,
    ) -> Result<Result<Version, Conflict>, SinkError> {
        match &self.publish {
            Publish::StagedRename { dir } => {
                let (dir, relative_owned) = (dir.clone(), relative.to_string());
                let expected = expected.cloned();
                let destination = self.describe(relative);
                tokio::task::spawn_blocking(move || {
                    local_put_if(&dir, &relative_owned, &bytes, expected.as_ref()).map_err(
                        |source| SinkError::Write {
                            path: destination,
                            source,
                        },
                    )
                })
                .await
                .map_err(|source| SinkError::UploadTask {
                    path: self.object_path(relative),
                    source,
                })?
            }
            Publish::DirectPut => self.store_put_if(relative, bytes, expected).await,
        }
    }

    async fn store_put_if(
        &self,
        relative: &str,
        bytes: Bytes,
        expected: Option<&Version>,
    ) -> Result<Result<Version, Conflict>, SinkError> {
        let mode = match expected {
            None => PutMode::Create,
            Some(Version(Tag::Store { e_tag, version })) => PutMode::Update(UpdateVersion {
                e_tag: e_tag.clone(),
                version: version.clone(),
            }),
            // A version read from local output cannot describe an object of this store.
            Some(Version(Tag::Digest(_))) => return Ok(Err(Conflict)),
        };
        let path = self.object_path(relative);
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match self
            .objects
            .put_opts(&path, PutPayload::from(bytes.clone()), opts)
            .await
        {
            Ok(result) => Ok(Ok(Version(Tag::Store {
                e_tag: result.e_tag,
                version: result.version,
            }))),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => {
                // Possibly our own write, retried after its answer was lost: look.
                match self.get_versioned(relative).await? {
                    Some((current, version)) if current == bytes => Ok(Ok(version)),
                    _ => Ok(Err(Conflict)),
                }
            }
            Err(source) => Err(SinkError::Write {
                path: self.describe(relative),
                source: source.into(),
            }),
        }
    }
}

/// `root` joined with the `/`-separated `relative`.
fn join(root: &FsPath, relative: &str) -> PathBuf {
    relative
        .split('/')
        .filter(|s| !s.is_empty())
        .fold(root.to_path_buf(), |p, seg| p.join(seg))
}

/// Adds what failed on which local path to `e` (keeping its kind): the caller's error names the
/// object, but a lock file or a directory on the way can be what a full disk or a permission
/// stopped. Writing the object's own (hidden) staging file needs no more than the object's name.
fn at<'a>(what: &'a str, path: &'a FsPath) -> impl FnOnce(std::io::Error) -> std::io::Error + 'a {
    move |e| std::io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
}

/// An exclusive `flock` on a lock file that the path still names. Dropping it deletes the file,
/// then releases the lock (a crash releases it too, leaving an empty file the next holder
/// deletes).
struct LockFile {
    path: PathBuf,
    file: std::fs::File,
}

impl LockFile {
    /// Blocks until this process holds the lock of `path`. A file deleted by the holder we
    /// waited for is locked by nobody else any more: then the path is opened again.
    fn acquire(path: PathBuf) -> std::io::Result<LockFile> {
        loop {
            if let Some(held) = LockFile::lock_if_current(LockFile::open(&path)?, &path)? {
                return Ok(held);
            }
        }
    }

    /// Opens (creates) the lock file at `path`, and its directories.
    fn open(path: &FsPath) -> std::io::Result<std::fs::File> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(at("create directory", parent))?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(at("open lock file", path))
    }

    /// Locks `file` (opened at `path`, blocking while another holds it); `None`, unlocked, when
    /// `path` no longer names it (its holder deleted it meanwhile).
    fn lock_if_current(file: std::fs::File, path: &FsPath) -> std::io::Result<Option<LockFile>> {
        use std::os::unix::fs::MetadataExt as _;
        file.lock().map_err(at("lock", path))?;
        let held = file.metadata().map_err(at("inspect lock file", path))?;
        match std::fs::metadata(path) {
            Ok(now) if (now.dev(), now.ino()) == (held.dev(), held.ino()) => Ok(Some(LockFile {
                path: path.to_path_buf(),
                file,
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(at("inspect lock file", path)(e)),
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Still holding the lock: nobody can have replaced the file. If it cannot be deleted
        // (a read-only directory), it stays, which is harmless.
        let _ = std::fs::remove_file(&self.path);
        // `self.file` closes after this body, which releases the lock.
        let _ = &self.file;
    }
}

/// The local conditional write (see the module docs), on a blocking thread.
fn local_put_if(
    root: &FsPath,
    relative: &str,
    bytes: &[u8],
    expected: Option<&Version>,
) -> std::io::Result<Result<Version, Conflict>> {
    let lock = LockFile::acquire(join(&root.join(LOCKS_DIR), &format!("{relative}.lock")))?;
    let target = join(root, relative);
    let current = match std::fs::read(&target) {
        Ok(content) => Some(digest(&content)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(at("read", &target)(e)),
    };
    let wanted = match expected {
        None => None,
        Some(Version(Tag::Digest(d))) => Some(*d),
        // A version read from an object store cannot describe a local file.
        Some(Version(Tag::Store { .. })) => return Ok(Err(Conflict)),
    };
    if current != wanted {
        return Ok(Err(Conflict));
    }
    let parent = target.parent().unwrap_or(root).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(at("create directory", &parent))?;
    let file_name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("object");
    let staging = parent.join(layout::staging_name(file_name));
    let written = (|| {
        let mut f = std::fs::File::create(&staging)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&staging, &target)?;
        std::fs::File::open(&parent)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    written?;
    drop(lock);
    Ok(Ok(Version(Tag::Digest(digest(bytes)))))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::aws::AmazonS3Builder;
    use object_store::path::Path;

    use super::*;
    use crate::config::OutputLocation;

    async fn stale_versions_are_refused(store: &Store) {
        let name = "x/obj.json";
        assert!(store.get_versioned(name).await.expect("get").is_none());
        let v1 = store
            .put_if(name, Bytes::from_static(b"one"), None)
            .await
            .expect("put")
            .expect("created while absent");
        assert_eq!(
            store
                .put_if(name, Bytes::from_static(b"again"), None)
                .await
                .expect("put"),
            Err(Conflict),
            "create of an existing object"
        );
        let (body, read) = store.get_versioned(name).await.expect("get").expect("some");
        assert_eq!(&body[..], b"one");
        let v2 = store
            .put_if(name, Bytes::from_static(b"two"), Some(&read))
            .await
            .expect("put")
            .expect("current version");
        assert_ne!(v1, v2);
        assert_eq!(
            store
                .put_if(name, Bytes::from_static(b"three"), Some(&v1))
                .await
                .expect("put"),
            Err(Conflict),
            "stale version"
        );
        let (body, now) = store.get_versioned(name).await.expect("get").expect("some");
        assert_eq!((&body[..], now), (&b"two"[..], v2));
    }

    #[tokio::test]
    async fn a_stale_version_is_refused_in_memory() {
        let store = Store::over(
            Arc::new(object_store::memory::InMemory::new()),
            Path::from("lake"),
        );
        stale_versions_are_refused(&store).await;
    }

    #[tokio::test]
    async fn a_stale_version_is_refused_on_local_disk_and_leaves_no_lock_or_staging_file() {
        let tmp = tempfile::tempdir().expect("tmp");
        let location = OutputLocation::Local(tmp.path().join("out"));
        let store = Store::open(&location, None, AmazonS3Builder::new).expect("open");
        stale_versions_are_refused(&store).await;
        let out = tmp.path().join("out");
        assert!(
            !out.join("_locks/x/obj.json.lock").exists(),
            "the holder deletes its lock file"
        );
        let names: Vec<String> = std::fs::read_dir(out.join("x"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["obj.json"], "no staging file left");
    }

    #[test]
    fn a_waiter_whose_lock_file_was_deleted_by_the_holder_opens_the_path_again() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("_locks/obj.json.lock");
        let holder = LockFile::acquire(path.clone()).expect("first holder");
        // A waiter opened the file while the holder had it...
        let waiting = LockFile::open(&path).expect("open");
        // ...the holder deletes it and lets go...
        drop(holder);
        assert!(!path.exists(), "the holder deletes its lock file");
        // ...so what the waiter then locks is a file nobody else will ever lock: not a lock.
        assert!(LockFile::lock_if_current(waiting, &path)
            .expect("lock")
            .is_none());
        // Acquiring opens the path again; while held, nobody else gets it.
        let held = LockFile::acquire(path.clone()).expect("acquire");
        let other = std::fs::File::open(&path).expect("the held file is at the path");
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(held);
        assert!(!path.exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_increments_on_local_disk_lose_nothing() {
        let tmp = tempfile::tempdir().expect("tmp");
        let location = OutputLocation::Local(tmp.path().to_path_buf());
        let mut tasks = Vec::new();
        for _ in 0..4 {
            // One store per task, like separate processes sharing the directory.
            let store = Store::open(&location, None, AmazonS3Builder::new).expect("open");
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    loop {
                        let current = store.get_versioned("n").await.expect("get");
                        let (n, version) = match &current {
                            Some((b, v)) => (
                                std::str::from_utf8(b)
                                    .expect("utf8")
                                    .parse::<u32>()
                                    .expect("n"),
                                Some(v),
                            ),
                            None => (0, None),
                        };
                        let next = Bytes::from((n + 1).to_string());
                        if store.put_if("n", next, version).await.expect("put").is_ok() {
                            break;
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let body = std::fs::read_to_string(tmp.path().join("n")).expect("n");
        assert_eq!(body, "100");
    }
}
