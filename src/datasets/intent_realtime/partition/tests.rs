//! The partition protocol on `InMemory` and on local disk. Sessions are hand-built from a
//! number `k` (id `s-<k>`, ending `k` minutes into the day), so the expected ids of every
//! scenario are plain ranges of `k`.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{NaiveDate, TimeDelta, TimeZone};

use super::*;
use crate::config::OutputLocation;
use crate::datasets::intent_realtime::TABLE;
use crate::sink::Output;

fn key() -> PartitionKey {
    PartitionKey {
        table: &TABLE,
        account_id: "acct".into(),
        bot_id: Some("bot".into()),
        dt: NaiveDate::from_ymd_opt(2024, 5, 1).expect("date"),
    }
}

fn session(k: u32) -> IntentSession {
    let day = Utc
        .with_ymd_and_hms(2024, 5, 1, 0, 0, 0)
        .single()
        .expect("t");
    IntentSession {
        session_id: format!("s-{k:05}"),
        user_id: Some(format!("u-{}", k % 7)),
        channel: Some("rtm".into()),
        ani: None,
        dni: None,
        intents: vec!["Book a Flight".into()],
        start_time: None,
        end_time: day + TimeDelta::minutes(i64::from(k)),
        status: Some("completed".into()),
        time_handled: None,
        time_handled_seconds: None,
        deflected_to: None,
        extra: None,
    }
}

fn sessions(ks: impl IntoIterator<Item = u32>) -> Vec<IntentSession> {
    ks.into_iter().map(session).collect()
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 23, 0, 0)
        .single()
        .expect("t")
}

fn memory_output() -> Output {
    Output::with_store(
        Arc::new(object_store::memory::InMemory::new()),
        object_store::path::Path::from("lake"),
    )
}

/// Every session id in the partition's visible files, duplicates kept, sorted.
async fn stored_ids(out: &Output) -> Vec<String> {
    let mut ids = ids_of(&out.sink.read_partition(&key()).await.expect("read"));
    ids.sort();
    ids
}

fn expected(ks: impl IntoIterator<Item = u32>) -> Vec<String> {
    let set: BTreeSet<u32> = ks.into_iter().collect();
    set.into_iter().map(|k| format!("s-{k:05}")).collect()
}

async fn index(out: &Output) -> PartitionIndex {
    state::load(&out.state, &index_name(&key()))
        .await
        .expect("load")
        .expect("index exists")
}

#[tokio::test]
async fn each_poll_adds_one_file_with_only_the_sessions_no_file_holds() {
    let out = memory_output();
    let a = add_sessions(&out.sink, &out.state, &key(), sessions(0..25), at())
        .await
        .expect("add");
    assert_eq!((a.fresh.len(), a.file_rows), (25, vec![25]));
    let b = add_sessions(&out.sink, &out.state, &key(), sessions(10..35), at())
        .await
        .expect("add");
    assert_eq!((b.fresh.len(), b.file_rows), (10, vec![25, 10]));
    let c = add_sessions(&out.sink, &out.state, &key(), sessions(0..35), at())
        .await
        .expect("add");
    assert_eq!(
        (c.fresh.len(), c.written.files),
        (0, 0),
        "nothing new, nothing written"
    );
    assert_eq!(stored_ids(&out).await, expected(0..35));
    let idx = index(&out).await;
    assert_eq!(
        idx.files.iter().map(|f| f.rows).collect::<Vec<_>>(),
        [25, 10]
    );
    assert!(idx.pending.is_empty());
    assert_eq!(
        out.sink
            .partition_file_names(&key())
            .await
            .expect("ls")
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_local_disk_store_every_session_exactly_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let location = OutputLocation::Local(tmp.path().to_path_buf());
    let mut tasks = Vec::new();
    for w in 0..4u32 {
        let out = Output::open(&location).expect("open");
        tasks.push(tokio::spawn(async move {
            for round in 0..12u32 {
                // Overlapping windows, like pollers of one bot at different moments.
                let lo = round * 10 + w * 3;
                add_sessions(&out.sink, &out.state, &key(), sessions(lo..lo + 25), at())
                    .await
                    .expect("add");
                if round % 5 == 4 {
                    let policy = Policy {
                        max_files: 4,
                        fan_in: 3,
                        ..Policy::default()
                    };
                    compact(&out.sink, &out.state, &key(), Merge::Bounded(policy))
                        .await
                        .expect("compact");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let out = Output::open(&location).expect("open");
    assert_eq!(stored_ids(&out).await, expected(0..(11 * 10 + 9 + 25)));
    let idx = index(&out).await;
    assert!(
        idx.pending.is_empty() && idx.compaction.is_none(),
        "{idx:?}"
    );
    let listed = out.sink.partition_file_names(&key()).await.expect("ls");
    let indexed: BTreeSet<String> = idx.files.iter().map(|f| f.name.clone()).collect();
    assert_eq!(listed.into_iter().collect::<BTreeSet<_>>(), indexed);
}

#[tokio::test]
async fn a_claim_whose_writer_died_before_publishing_is_published_by_the_next_writer() {
    let out = memory_output();
    let claim = PendingFile {
        file: entry_for("part-0000000000000001.parquet".into(), &sessions(0..5)),
        exported_at: at(),
        records: sessions(0..5),
    };
    let idx = PartitionIndex {
        pending: vec![claim],
        ..PartitionIndex::default()
    };
    state::store_if(&out.state, &index_name(&key()), &idx, None)
        .await
        .expect("store")
        .expect("new");
    assert!(stored_ids(&out).await.is_empty(), "claimed, not published");
    let added = add_sessions(&out.sink, &out.state, &key(), sessions(3..8), at())
        .await
        .expect("add");
    assert_eq!(added.fresh.len(), 3, "0..5 are taken by the claim");
    assert_eq!(stored_ids(&out).await, expected(0..8));
    assert!(index(&out).await.pending.is_empty());
}

#[tokio::test]
async fn closing_merges_every_file_into_one_sorted_by_end_time() {
    let out = memory_output();
    for lo in [40, 0, 20] {
        add_sessions(&out.sink, &out.state, &key(), sessions(lo..lo + 20), at())
            .await
            .expect("add");
    }
    let merged = compact(&out.sink, &out.state, &key(), Merge::All)
        .await
        .expect("compact");
    assert_eq!((merged.files, merged.written.files), (1, 1));
    let names = out.sink.partition_file_names(&key()).await.expect("ls");
    assert_eq!(names.len(), 1);
    let batches = out
        .sink
        .read_partition_file(&key(), &names[0], None)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        ids_of(&batches),
        expected(0..60),
        "one file, in end-time order"
    );
    let idx = index(&out).await;
    assert_eq!(idx.files.len(), 1);
    assert_eq!(idx.files[0].rows, 60);
    // Merging a day that is already one file writes nothing.
    let again = compact(&out.sink, &out.state, &key(), Merge::All)
        .await
        .expect("compact");
    assert_eq!((again.files, again.written.files), (1, 0));
}

#[tokio::test]
async fn bounded_compaction_merges_neighbouring_small_files_beyond_the_limit() {
    let out = memory_output();
    let policy = Policy {
        max_files: 2,
        fan_in: 2,
        frozen_rows: 40,
        ..Policy::default()
    };
    add_sessions(&out.sink, &out.state, &key(), sessions(0..50), at())
        .await
        .expect("add");
    for lo in [50, 55, 60] {
        let added = add_sessions(&out.sink, &out.state, &key(), sessions(lo..lo + 5), at())
            .await
            .expect("add");
        assert_eq!(policy.wants_merge(&added.file_rows), lo == 60, "{lo}");
    }
    let merged = compact(&out.sink, &out.state, &key(), Merge::Bounded(policy))
        .await
        .expect("compact");
    assert_eq!(merged.files, 3);
    let mut rows: Vec<u64> = index(&out).await.files.iter().map(|f| f.rows).collect();
    rows.sort_unstable();
    assert_eq!(
        rows,
        [5, 10, 50],
        "the earliest two neighbours merged; the frozen file untouched"
    );
    assert_eq!(stored_ids(&out).await, expected(0..65));
    // Small files of a frozen-sized total are not merged again before the day closes.
    let frozen = Policy {
        frozen_rows: 5,
        ..policy
    };
    let idle = compact(&out.sink, &out.state, &key(), Merge::Bounded(frozen))
        .await
        .expect("compact");
    assert_eq!((idle.files, idle.written.files), (3, 0));
}

#[tokio::test]
async fn a_partition_from_an_earlier_version_is_adopted_without_duplicates() {
    let out = memory_output();
    let old = sessions_to_batch("acct", "bot", &sessions(0..30), at());
    out.sink
        .write_partition(&key(), vec![old])
        .await
        .expect("legacy file");
    let added = add_sessions(&out.sink, &out.state, &key(), sessions(20..40), at())
        .await
        .expect("add");
    assert_eq!(added.fresh.len(), 10);
    assert_eq!(stored_ids(&out).await, expected(0..40));
    let idx = index(&out).await;
    assert_eq!(idx.files[0].name, "part-00000.parquet");
    assert_eq!(idx.files[0].rows, 30);
}

#[tokio::test]
async fn a_file_the_index_does_not_list_is_removed_by_the_next_compaction() {
    let out = memory_output();
    add_sessions(&out.sink, &out.state, &key(), sessions(0..10), at())
        .await
        .expect("add");
    add_sessions(&out.sink, &out.state, &key(), sessions(10..20), at())
        .await
        .expect("add");
    let before: BTreeSet<String> = out
        .sink
        .partition_file_names(&key())
        .await
        .expect("ls")
        .into_iter()
        .collect();
    compact(&out.sink, &out.state, &key(), Merge::All)
        .await
        .expect("compact");
    // A writer that published one of the merged files late re-creates it.
    let late = before.iter().next().expect("a file").clone();
    let batch = sessions_to_batch("acct", "bot", &sessions(0..10), at());
    out.sink
        .write_partition_file(&key(), &late, &[batch], ROW_GROUP_ROWS)
        .await
        .expect("late write");
    assert_eq!(
        stored_ids(&out).await.len(),
        30,
        "duplicates while it exists"
    );
    compact(&out.sink, &out.state, &key(), Merge::All)
        .await
        .expect("compact");
    assert_eq!(stored_ids(&out).await, expected(0..20));
}

#[tokio::test]
async fn a_merge_left_half_done_is_finished_by_the_next_compaction() {
    let out = memory_output();
    for lo in [0, 10, 20] {
        add_sessions(&out.sink, &out.state, &key(), sessions(lo..lo + 10), at())
            .await
            .expect("add");
    }
    let name = index_name(&key());
    let loaded = state::load_versioned::<PartitionIndex>(&out.state, &name)
        .await
        .expect("load");
    let mut idx = loaded.state.expect("index");
    let inputs: Vec<FileEntry> = idx.files.clone();
    let c = Compaction {
        output: FileEntry {
            name: "part-00000000000000aa.parquet".into(),
            rows: 30,
            min_end: inputs.iter().filter_map(|f| f.min_end).min(),
            max_end: inputs.iter().filter_map(|f| f.max_end).max(),
        },
        inputs: inputs.iter().map(|f| f.name.clone()).collect(),
    };
    idx.compaction = Some(c);
    state::store_if(&out.state, &name, &idx, loaded.version.as_ref())
        .await
        .expect("store")
        .expect("current");
    // Sessions keep arriving while the merge is recorded: still exactly once.
    let added = add_sessions(&out.sink, &out.state, &key(), sessions(25..35), at())
        .await
        .expect("add");
    assert_eq!(added.fresh.len(), 5);
    let done = compact(&out.sink, &out.state, &key(), Merge::All)
        .await
        .expect("compact");
    assert_eq!(done.files, 1);
    assert_eq!(stored_ids(&out).await, expected(0..35));
    assert!(index(&out).await.compaction.is_none());
}

/// Session `s-<k>` ending `secs` seconds into the day.
fn session_ending(k: u32, secs: i64) -> IntentSession {
    let day = Utc
        .with_ymd_and_hms(2024, 5, 1, 0, 0, 0)
        .single()
        .expect("t");
    IntentSession {
        end_time: day + TimeDelta::seconds(secs),
        ..session(k)
    }
}

#[tokio::test]
async fn sessions_ending_on_a_row_group_boundary_are_stored_exactly_once() {
    let out = memory_output();
    let r = ROW_GROUP_ROWS as u32;
    // Sessions r-5 .. r+5 share one end time, so after the merge (rows in end-time order) it
    // is the last end time of the first row group and the first of the second.
    let t = i64::from(r) - 5;
    let end_of = |k: u32| {
        if (r - 5..r + 5).contains(&k) {
            t
        } else {
            i64::from(k)
        }
    };
    let all: Vec<IntentSession> = (0..2 * r + 100)
        .map(|k| session_ending(k, end_of(k)))
        .collect();
    let (a, b) = all.split_at(r as usize);
    for part in [a, b] {
        add_sessions(&out.sink, &out.state, &key(), part.to_vec(), at())
            .await
            .expect("add");
    }
    compact(&out.sink, &out.state, &key(), Merge::All)
        .await
        .expect("compact");
    assert_eq!(index(&out).await.files.len(), 1, "one merged file");
    // Seen again: one from each side of the boundary; and a late one ending there too.
    let candidates = vec![
        session_ending(r - 3, t),
        session_ending(r + 3, t),
        session_ending(99_999, t),
    ];
    let added = add_sessions(&out.sink, &out.state, &key(), candidates.clone(), at())
        .await
        .expect("add");
    let fresh: Vec<&str> = added.fresh.iter().map(|s| s.session_id.as_str()).collect();
    assert_eq!(fresh, ["s-99999"]);
    let again = add_sessions(&out.sink, &out.state, &key(), candidates, at())
        .await
        .expect("add");
    assert!(again.fresh.is_empty());
    assert_eq!(
        stored_ids(&out).await,
        expected((0..2 * r + 100).chain([99_999]))
    );
}

fn entry(name: &str, rows: u64, min_minute: i64, max_minute: i64) -> FileEntry {
    let day = Utc
        .with_ymd_and_hms(2024, 5, 1, 0, 0, 0)
        .single()
        .expect("t");
    FileEntry {
        name: name.into(),
        rows,
        min_end: Some(day + TimeDelta::minutes(min_minute)),
        max_end: Some(day + TimeDelta::minutes(max_minute)),
    }
}

#[test]
fn a_bounded_merge_takes_neighbours_in_end_time_order_whose_largest_file_is_smallest() {
    let policy = Policy {
        max_files: 3,
        fan_in: 2,
        frozen_rows: 100,
        ..Policy::default()
    };
    // Listed out of time order; by min_end: c(0) b(10) e(20) a(30) d(40), f frozen.
    let files = [
        entry("a", 5, 30, 35),
        entry("b", 4, 10, 15),
        entry("c", 50, 0, 5),
        entry("d", 1, 40, 45),
        entry("e", 9, 20, 25),
        entry("f", 500, 0, 45),
    ];
    // Neighbour pairs (largest file, sessions): c+b (50, 54), b+e (9, 13), e+a (9, 14),
    // a+d (5, 6); the two smallest files (d, b) are not neighbours.
    let names: Vec<&str> = policy
        .mergeable(&files)
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names, ["a", "d"]);
    // Not more than max_files small files: nothing is due.
    assert!(policy.mergeable(&files[..3]).is_empty());
}
