//! All persisted state, in the output itself under `_state/` (through the [`StateStore`]'s
//! [`get_versioned`](StateStore::get_versioned)/[`put_if`](StateStore::put_if)), in one
//! versioned JSON format with one corruption policy, plus the pure planning of what one
//! scheduled run of a history dataset exports.
//!
//! Objects:
//! - [`Watermark`] of a history dataset: `_state/<dataset>/account_id=A.json`; for a dataset
//!   whose days have one unit per entity, one per entity
//!   (`_state/<dataset>/account_id=A/watermark/bot_id=B.json`, [`entity_watermark_name`]),
//!   the dataset-level object kept as the one they started from ([`DatasetMark`]).
//! - The writer lease of an account ([`crate::lease`]): `_state/lease/account_id=A.json`.
//! - A dataset's own objects, declared in the dataset's module by implementing [`StateObject`]
//!   (where it lives under `_state/<dataset>/account_id=A/`): e.g. a snapshot dataset's poll
//!   state per bot (`bot_id=B.json`), a partition index (`bot_id=B/dt=D.json`), a history
//!   dataset's request-planning hint (`density.json`). This module stores them like every
//!   other object; it never names their types.
//!
//! Every object carries `"version"` ([`STATE_VERSION`]; files written before the field existed
//! read as version 1) and a fresh `"write_id"`. An object that cannot be read — not JSON, the
//! wrong shape, or a version newer than this build knows — is an error naming the object and
//! how to recover; it is never silently reset, because a reset watermark would skip the days
//! between it and today. Deleting such an object is safe (see [`StateError::Corrupt`]).
//!
//! Every write is a compare-and-swap ([`update`], [`store_if`]): several processes may share an
//! output (a backfill beside the daemon), and a read-modify-write must never overwrite an update
//! it did not see. [`update`] re-reads and re-applies the caller's change on a conflict. The
//! write id makes each body unique, so a conditional put whose answer was lost is recognised as
//! the caller's own write (see [`crate::sink::Version`]).
//!
//! Callers must write state only after every partition it describes is committed, so a crash
//! between the two re-does work instead of skipping it. Backfills never touch watermarks (so they
//! can never move them backwards); the schedule re-exports from the watermark minus
//! `lookback_days` on every run. A dataset's own objects follow the dataset's rules (a planning
//! hint may be stored by a backfill; a snapshot dataset's exactly-once guarantee comes from its
//! partition index, not from its poll state).

use bytes::Bytes;
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::sink::{Conflict, SinkError, StateStore, Version, STATE_DIR};

/// Version of the state objects' format written by this build. 2: `intent_realtime` partitions
/// hold several files listed by a partition index; a version-1 build would rewrite such a
/// partition as one file and duplicate sessions, so it must refuse this output.
pub const STATE_VERSION: u32 = 2;

/// Conditional writes [`update`] tries before giving up (each conflict means another writer
/// made progress on the same object).
pub const MAX_UPDATE_ATTEMPTS: u32 = 64;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot access state object {STATE_DIR}/{name}")]
    Store {
        name: String,
        #[source]
        source: Box<SinkError>,
    },
    /// Not a fresh start: starting over silently could skip data. Deleting the object is safe: a
    /// history dataset then re-exports from today minus `lookback_days` (use `backfill` for the
    /// days in between), a snapshot poll treats the returned records as new (each is still
    /// written once, because the partitions are merged by key).
    #[error(
        "state object {STATE_DIR}/{name} is not valid state of version {STATE_VERSION}; fix it, or delete it \
         to start over (history datasets then resume from today minus lookback_days: backfill the \
         days in between; snapshot polls lose nothing)"
    )]
    Corrupt {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "state object {STATE_DIR}/{name} has version {found}, newer than this build's \
         {STATE_VERSION}: run the newer smartassist-export that wrote it"
    )]
    NewerVersion { name: String, found: u32 },
    #[error("cannot serialize state object {STATE_DIR}/{name}")]
    Encode {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    /// Other writers kept changing an object (`object`: its path under the output): every
    /// one of `attempts` conditional writes found a newer version.
    #[error(
        "{object} kept changing under {attempts} conditional writes; another writer is \
         updating it continuously"
    )]
    Contended { object: String, attempts: u32 },
}

/// How far the scheduled export of a history dataset has got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// The latest local day exported by a scheduled run (possibly while it was still running).
    pub through_day: NaiveDate,
    /// Data up to this instant was available when `through_day` was last exported:
    /// `min(end of through_day, exported_at)`. `now - covered_until` is the watermark lag.
    pub covered_until: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A persisted object a dataset keeps for itself, declared in the dataset's module: its type
/// (serde) and where it lives. Stored in the one versioned format, with the one corruption
/// policy, by compare-and-swap ([`load_object`], [`update_object`], or [`load`]/[`update`] with
/// [`object_name`]).
pub trait StateObject: Serialize + DeserializeOwned + Send + Sync {
    /// What tells one object of this kind from another within a dataset and account: a bot id,
    /// a partition, or `()` for one object per dataset and account.
    type Key: ?Sized;
    /// Its path under `_state/<dataset>/account_id=A/`, e.g. `density.json`, `bot_id=B.json`.
    fn file_name(key: &Self::Key) -> String;
}

/// The name (under `_state/`) of `dataset`'s object `T` of `account_id` for `key`.
pub fn object_name<T: StateObject>(dataset: &str, account_id: &str, key: &T::Key) -> String {
    format!("{dataset}/account_id={account_id}/{}", T::file_name(key))
}

/// Reads `dataset`'s object `T` for `key`; `None` when it does not exist.
pub async fn load_object<T: StateObject>(
    store: &StateStore,
    dataset: &str,
    account_id: &str,
    key: &T::Key,
) -> Result<Option<T>, StateError> {
    load(store, &object_name::<T>(dataset, account_id, key)).await
}

/// [`update`] of `dataset`'s object `T` for `key`.
pub async fn update_object<T, F>(
    store: &StateStore,
    dataset: &str,
    account_id: &str,
    key: &T::Key,
    change: F,
) -> Result<Option<T>, StateError>
where
    T: StateObject,
    F: FnMut(Option<T>) -> Option<T>,
{
    update(store, &object_name::<T>(dataset, account_id, key), change).await
}

/// Name of a history dataset's watermark (a dataset without entities; for one with entities,
/// the watermark its entities started from when they got their own, see [`DatasetMark`]).
pub fn watermark_name(dataset: &str, account_id: &str) -> String {
    format!("{dataset}/account_id={account_id}.json")
}

/// Name of one entity's watermark, for a history dataset whose day has one unit per entity
/// (`bot_sessions/account_id=A/watermark/bot_id=B.json`): each entity plans its days from it.
pub fn entity_watermark_name(dataset: &str, account_id: &str, kind: &str, entity: &str) -> String {
    format!("{dataset}/account_id={account_id}/watermark/{kind}_id={entity}.json")
}

/// The dataset-level watermark object as read by a dataset with entities: the [`Watermark`]
/// all its entities shared before each had its own, and whether they have taken it over. Until
/// they have, an entity without a watermark of its own starts from this one (an upgrade
/// neither re-exports nor skips days); once every configured entity has stored its own, the
/// object is marked `entities_took_over` and a newly configured entity starts like a first run.
/// The field is ignored by builds that do not know it (they read a plain [`Watermark`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetMark {
    #[serde(flatten)]
    pub mark: Watermark,
    #[serde(default)]
    pub entities_took_over: bool,
}

fn version_one() -> u32 {
    1
}

#[derive(Deserialize)]
struct VersionOnly {
    #[serde(default = "version_one")]
    version: u32,
}

#[derive(Serialize)]
struct Versioned<'a, T> {
    version: u32,
    /// Unique per write: tells a lost-answer retry of our own write from someone else's.
    write_id: String,
    #[serde(flatten)]
    state: &'a T,
}

/// A state object as read: its value (`None` when absent) and the version a conditional write
/// must name to replace it.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    pub state: Option<T>,
    pub version: Option<Version>,
}

/// Reads the state object `name`; `None` when it does not exist.
pub async fn load<T: DeserializeOwned>(
    store: &StateStore,
    name: &str,
) -> Result<Option<T>, StateError> {
    Ok(load_versioned(store, name).await?.state)
}

fn store_err(name: &str) -> impl FnOnce(SinkError) -> StateError + '_ {
    move |source| StateError::Store {
        name: name.to_string(),
        source: Box::new(source),
    }
}

/// Reads the state object `name` with its version.
pub async fn load_versioned<T: DeserializeOwned>(
    store: &StateStore,
    name: &str,
) -> Result<Loaded<T>, StateError> {
    match store.get_versioned(name).await.map_err(store_err(name))? {
        None => Ok(Loaded {
            state: None,
            version: None,
        }),
        Some((bytes, version)) => Ok(Loaded {
            state: Some(decode(name, &bytes)?),
            version: Some(version),
        }),
    }
}

/// Decodes a state object's bytes (see the module docs for the policy).
pub fn decode<T: DeserializeOwned>(name: &str, bytes: &[u8]) -> Result<T, StateError> {
    let corrupt = |source| StateError::Corrupt {
        name: name.to_string(),
        source,
    };
    let header: VersionOnly = serde_json::from_slice(bytes).map_err(corrupt)?;
    if header.version > STATE_VERSION {
        return Err(StateError::NewerVersion {
            name: name.to_string(),
            found: header.version,
        });
    }
    serde_json::from_slice(bytes).map_err(corrupt)
}

/// The bytes of `state` as stored: current version, a fresh write id.
pub fn encode<T: Serialize>(name: &str, state: &T) -> Result<Bytes, StateError> {
    serde_json::to_vec_pretty(&Versioned {
        version: STATE_VERSION,
        write_id: uuid::Uuid::new_v4().simple().to_string(),
        state,
    })
    .map(Bytes::from)
    .map_err(|source| StateError::Encode {
        name: name.to_string(),
        source,
    })
}

/// Writes the state object `name` only if it still has the version `expected` (`None`: only if
/// it does not exist). Returns the new version, or [`Conflict`].
pub async fn store_if<T: Serialize>(
    store: &StateStore,
    name: &str,
    state: &T,
    expected: Option<&Version>,
) -> Result<Result<Version, Conflict>, StateError> {
    let body = encode(name, state)?;
    store
        .put_if(name, body, expected)
        .await
        .map_err(store_err(name))
}

/// Read-modify-write of the state object `name` that loses no concurrent update: `change` gets
/// the current value and returns the value to store (`None`: leave the object as it is); on a
/// conflict the object is read again and `change` applied again, at most
/// [`MAX_UPDATE_ATTEMPTS`] times with a short random pause. Returns what was stored (or left).
pub async fn update<T, F>(
    store: &StateStore,
    name: &str,
    mut change: F,
) -> Result<Option<T>, StateError>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(Option<T>) -> Option<T>,
{
    for attempt in 0..MAX_UPDATE_ATTEMPTS {
        if attempt > 0 {
            conflict_pause(attempt).await;
        }
        let loaded = load_versioned::<T>(store, name).await?;
        let Some(next) = change(loaded.state) else {
            return Ok(None);
        };
        if store_if(store, name, &next, loaded.version.as_ref())
            .await?
            .is_ok()
        {
            return Ok(Some(next));
        }
    }
    Err(StateError::Contended {
        object: format!("{STATE_DIR}/{name}"),
        attempts: MAX_UPDATE_ATTEMPTS,
    })
}

/// A random pause after the `attempt`-th conflict (1 ms up to about 50 ms), so writers that
/// collided do not collide again in lockstep.
pub async fn conflict_pause(attempt: u32) {
    let ceiling = 2u64.saturating_pow(attempt.min(6)).min(50);
    let ms = fastrand::u64(1..=ceiling.max(1));
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// The local days one scheduled run exports, in ascending order.
///
/// Without a watermark the run starts `lookback_days` before today (history is what `backfill`
/// is for). With one, it starts `lookback_days` before the watermark day, so the watermark day
/// itself (possibly exported while incomplete) and late corrections are re-exported. At most
/// `max_days` days are planned; the next run resumes from the advanced watermark. A watermark
/// in the future (clock moved back) plans from `today - lookback_days`.
pub fn plan_days(
    watermark: Option<NaiveDate>,
    today: NaiveDate,
    lookback_days: u32,
    max_days: u32,
) -> Vec<NaiveDate> {
    let anchor = watermark.map_or(today, |w| w.min(today));
    let start = anchor
        .checked_sub_days(Days::new(u64::from(lookback_days)))
        .unwrap_or(anchor);
    start
        .iter_days()
        .take_while(|d| *d <= today)
        .take(max_days.max(1) as usize)
        .collect()
}

/// The watermark after a run: the last day of the contiguous prefix of `planned` that was
/// committed, never earlier than `previous`. `committed[i]` says whether `planned[i]` was.
pub fn advance_through_day(
    previous: Option<NaiveDate>,
    planned: &[NaiveDate],
    committed: &[bool],
) -> Option<NaiveDate> {
    let prefix_end = planned
        .iter()
        .zip(committed)
        .take_while(|(_, ok)| **ok)
        .map(|(d, _)| *d)
        .last();
    match (previous, prefix_end) {
        (Some(p), Some(e)) => Some(p.max(e)),
        (p, e) => p.or(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Output;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn days(list: &[&str]) -> Vec<NaiveDate> {
        list.iter().map(|s| d(s)).collect()
    }

    #[test]
    fn first_run_exports_lookback_days_up_to_today() {
        assert_eq!(
            plan_days(None, d("2024-05-10"), 1, 7),
            days(&["2024-05-09", "2024-05-10"])
        );
        assert_eq!(
            plan_days(None, d("2024-05-10"), 0, 7),
            days(&["2024-05-10"])
        );
    }

    #[test]
    fn steady_state_reexports_the_watermark_day_and_lookback() {
        // Same day: yesterday (lookback) and today, rewritten as today fills in.
        assert_eq!(
            plan_days(Some(d("2024-05-10")), d("2024-05-10"), 1, 7),
            days(&["2024-05-09", "2024-05-10"])
        );
        // After midnight: the finished day is exported once more, complete.
        assert_eq!(
            plan_days(Some(d("2024-05-10")), d("2024-05-11"), 0, 7),
            days(&["2024-05-10", "2024-05-11"])
        );
    }

    #[test]
    fn catch_up_after_downtime_is_bounded_and_resumes() {
        let today = d("2024-05-31");
        let first = plan_days(Some(d("2024-05-10")), today, 1, 7);
        assert_eq!(first.first(), Some(&d("2024-05-09")));
        assert_eq!(first.last(), Some(&d("2024-05-15")));
        let mark = advance_through_day(Some(d("2024-05-10")), &first, &[true; 7]);
        assert_eq!(mark, Some(d("2024-05-15")));
        let second = plan_days(mark, today, 1, 7);
        assert_eq!(second.first(), Some(&d("2024-05-14")));
        assert_eq!(second.last(), Some(&d("2024-05-20")));
        // Progress per run is max_days - lookback_days - 0 = 6 days; it always reaches today.
        let mut mark = mark;
        for _ in 0..10 {
            let plan = plan_days(mark, today, 1, 7);
            mark = advance_through_day(mark, &plan, &vec![true; plan.len()]);
        }
        assert_eq!(mark, Some(today));
    }

    #[test]
    fn watermark_in_the_future_is_clamped_to_today() {
        assert_eq!(
            plan_days(Some(d("2024-06-01")), d("2024-05-10"), 1, 7),
            days(&["2024-05-09", "2024-05-10"])
        );
    }

    #[test]
    fn watermark_only_covers_the_committed_prefix_and_never_moves_back() {
        let plan = days(&["2024-05-09", "2024-05-10", "2024-05-11"]);
        assert_eq!(
            advance_through_day(Some(d("2024-05-09")), &plan, &[true, false, true]),
            Some(d("2024-05-09"))
        );
        assert_eq!(
            advance_through_day(Some(d("2024-05-10")), &plan, &[false, true, true]),
            Some(d("2024-05-10"))
        );
        assert_eq!(
            advance_through_day(None, &plan, &[true, true, false]),
            Some(d("2024-05-10"))
        );
        assert_eq!(advance_through_day(None, &plan, &[false, true, true]), None);
        // A run that re-exported older days (lookback) does not move it backwards.
        assert_eq!(
            advance_through_day(Some(d("2024-05-20")), &plan, &[true, true, true]),
            Some(d("2024-05-20"))
        );
    }

    #[tokio::test]
    async fn watermark_round_trips_through_the_state_store_and_corruption_is_an_error() {
        let memory = std::sync::Arc::new(object_store::memory::InMemory::new());
        let store = Output::with_store(memory, object_store::path::Path::from("lake")).state;
        let name = watermark_name("user_status", "acct");
        assert_eq!(name, "user_status/account_id=acct.json");
        assert_eq!(load::<Watermark>(&store, &name).await.expect("load"), None);
        let mark = Watermark {
            through_day: d("2024-05-10"),
            covered_until: "2024-05-10T12:00:00Z".parse().expect("ts"),
            updated_at: "2024-05-10T12:00:05Z".parse().expect("ts"),
        };
        update(&store, &name, |_| Some(mark.clone()))
            .await
            .expect("store");
        assert_eq!(
            load::<Watermark>(&store, &name).await.expect("load"),
            Some(mark)
        );
        store.put(&name, Bytes::from("{nope")).await.expect("put");
        assert!(matches!(
            load::<Watermark>(&store, &name).await,
            Err(StateError::Corrupt { .. })
        ));
    }

    /// A dataset's own object, as a dataset module declares one.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    struct PollCount {
        polls: u64,
        #[serde(default)]
        recent_keys: Vec<String>,
    }

    impl StateObject for PollCount {
        type Key = str;
        fn file_name(bot_id: &str) -> String {
            format!("bot_id={bot_id}.json")
        }
    }

    fn memory_store() -> StateStore {
        let memory = std::sync::Arc::new(object_store::memory::InMemory::new());
        Output::with_store(memory, object_store::path::Path::from("lake")).state
    }

    #[test]
    fn files_without_a_version_read_as_version_one_and_newer_versions_are_refused() {
        let old = br#"{"polls":3}"#;
        let state: PollCount = decode("x.json", old).expect("pre-version file");
        assert_eq!(state.polls, 3);
        let v1 = br#"{"version":1,"polls":4}"#;
        let state: PollCount = decode("x.json", v1).expect("version 1 file");
        assert_eq!((state.polls, state.recent_keys.len()), (4, 0));
        let newer = br#"{"version":3,"polls":3}"#;
        assert!(matches!(
            decode::<PollCount>("x.json", newer),
            Err(StateError::NewerVersion { found: 3, .. })
        ));
    }

    #[test]
    fn a_corrupt_dataset_object_is_an_error_like_a_corrupt_watermark() {
        // One policy for every object: none is silently reset.
        let err = decode::<PollCount>("intent_realtime/a.json", b"[1,2]").expect_err("corrupt");
        assert!(matches!(err, StateError::Corrupt { .. }));
        assert!(
            err.to_string().contains("_state/intent_realtime/a.json"),
            "{err}"
        );
        assert!(err.to_string().contains("delete it"), "{err}");
        let err = decode::<Watermark>("user_status/a.json", b"{}").expect_err("corrupt");
        assert!(matches!(err, StateError::Corrupt { .. }));
    }

    #[tokio::test]
    async fn a_dataset_object_round_trips_under_its_declared_name() {
        let store = memory_store();
        let name = object_name::<PollCount>("intent_realtime", "acct", "st-1");
        assert_eq!(name, "intent_realtime/account_id=acct/bot_id=st-1.json");
        let stored =
            update_object::<PollCount, _>(&store, "intent_realtime", "acct", "st-1", |_| {
                Some(PollCount {
                    polls: 2,
                    recent_keys: vec!["s-1".into()],
                })
            })
            .await
            .expect("store");
        assert_eq!(
            load_object::<PollCount>(&store, "intent_realtime", "acct", "st-1")
                .await
                .expect("load"),
            stored
        );
        store
            .put(&name, Bytes::from(r#"{"version":1,"polls":"x"}"#))
            .await
            .expect("put");
        assert!(matches!(
            load_object::<PollCount>(&store, "intent_realtime", "acct", "st-1").await,
            Err(StateError::Corrupt { .. })
        ));
    }

    #[tokio::test]
    async fn stored_state_carries_the_version() {
        let store = memory_store();
        let name = object_name::<PollCount>("intent_realtime", "a", "b");
        update(&store, &name, |_| Some(PollCount::default()))
            .await
            .expect("store");
        let raw = store.get(&name).await.expect("get").expect("some");
        let v: serde_json::Value = serde_json::from_slice(&raw).expect("json");
        assert_eq!(v["version"], serde_json::json!(2));
        assert_eq!(v["write_id"].as_str().map(str::len), Some(32));
    }

    #[tokio::test]
    async fn a_write_from_a_stale_read_is_refused_and_update_reapplies_the_change() {
        let store = memory_store();
        let name = object_name::<PollCount>("intent_realtime", "a", "b");
        let bump = |s: Option<PollCount>| {
            let mut s = s.unwrap_or_default();
            s.polls += 1;
            Some(s)
        };
        update(&store, &name, bump).await.expect("first");
        let a = load_versioned::<PollCount>(&store, &name).await.expect("a");
        let b = load_versioned::<PollCount>(&store, &name).await.expect("b");
        let next = PollCount {
            polls: 10,
            ..PollCount::default()
        };
        store_if(&store, &name, &next, a.version.as_ref())
            .await
            .expect("store")
            .expect("a's version is current");
        // b read the same version as a: its write would overwrite a's unseen update.
        assert_eq!(
            store_if(&store, &name, &PollCount::default(), b.version.as_ref())
                .await
                .expect("store"),
            Err(Conflict)
        );
        let stored = update(&store, &name, bump).await.expect("update");
        assert_eq!(stored.map(|s| s.polls), Some(11), "applied to a's value");
    }
}
