//! The set of what one local day of Agent Activity has already kept: every row's whole tuple
//! (agent, instant, activity, reason code) and every reject's raw JSON, so that an update
//! served by two windows (an inclusive `toTimeStamp`) is written, or rejected, once.
//!
//! Keys are stored end to end in one byte arena with a table of their hashes (open addressing,
//! linear probing), so a row costs no allocation of its own and the day's set is freed in three
//! deallocations. Before, a `HashSet` of `(String, i64, String, Option<String>)` allocated three
//! strings per row and freed them one by one when the day ended: with its inserts, a third of a
//! day's export CPU in a profile of `cargo bench --bench datasets`.

/// Keys seen so far (see the module docs).
#[derive(Default)]
pub(super) struct Seen {
    /// Every key's bytes, end to end.
    arena: Vec<u8>,
    /// Per key: its hash and its bytes' range in `arena`.
    keys: Vec<(u64, usize, usize)>,
    /// Open-addressing table: per slot, index + 1 into `keys` in the low 32 bits (0: empty)
    /// and the key's hash's high 32 bits above, so a probe reads `keys` only on a likely
    /// match; its length is a power of two at least twice `keys.len()`, or zero before the
    /// first insert.
    slots: Vec<u64>,
    /// Seeded per set at random, so keys the API sends cannot be chosen to collide; aHash
    /// rather than the standard library's SipHash, which took 2.8% of a day's export CPU
    /// hashing keys of about 80 bytes.
    hasher: ahash::RandomState,
    /// The key being built (reused).
    scratch: Vec<u8>,
}

/// About the size of a row's key (an agent id, an activity, a short reason code).
const USUAL_KEY_BYTES: usize = 80;

/// What a key is: a row's tuple or a reject's raw JSON (never equal to each other).
const ROW: u8 = 0;
const REJECT: u8 = 1;

impl Seen {
    /// Keeps the row tuple; `false` when it was kept before.
    pub fn insert_row(
        &mut self,
        agent_id: &str,
        at_ms: i64,
        activity: &str,
        reason_code: Option<&str>,
    ) -> bool {
        let mut key = std::mem::take(&mut self.scratch);
        key.clear();
        key.push(ROW);
        push_str(&mut key, agent_id);
        key.extend_from_slice(&at_ms.to_le_bytes());
        push_str(&mut key, activity);
        match reason_code {
            None => key.push(0),
            Some(r) => {
                key.push(1);
                push_str(&mut key, r);
            }
        }
        let new = self.insert(&key);
        self.scratch = key;
        new
    }

    /// Keeps a reject's raw JSON; `false` when it was kept before.
    pub fn insert_reject(&mut self, raw_json: &str) -> bool {
        let mut key = std::mem::take(&mut self.scratch);
        key.clear();
        key.push(REJECT);
        key.extend_from_slice(raw_json.as_bytes());
        let new = self.insert(&key);
        self.scratch = key;
        new
    }

    /// Room for `more` keys without growing the table (nor, for keys of a usual size, the
    /// arena).
    pub fn reserve(&mut self, more: usize) {
        self.keys.reserve(more);
        self.arena.reserve(more.saturating_mul(USUAL_KEY_BYTES));
        let want = (self.keys.len() + more)
            .saturating_mul(2)
            .next_power_of_two();
        if want > self.slots.len() {
            self.rebuild(want);
        }
    }

    fn insert(&mut self, key: &[u8]) -> bool {
        if (self.keys.len() + 1) * 2 > self.slots.len() {
            self.rebuild((self.slots.len() * 2).max(64));
        }
        let hash = self.hasher.hash_one(key);
        let mask = self.slots.len() - 1;
        // The table is never more than half full, so the probe ends at an empty slot.
        let tag = hash & !u64::from(u32::MAX);
        let mut i = hash as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                break;
            }
            if slot & !u64::from(u32::MAX) == tag {
                let (h, start, end) = self.keys[(slot as u32) as usize - 1];
                if h == hash && self.arena[start..end] == *key {
                    return false;
                }
            }
            i = (i + 1) & mask;
        }
        let start = self.arena.len();
        self.arena.extend_from_slice(key);
        self.keys.push((hash, start, self.arena.len()));
        self.slots[i] = slot_of(hash, self.keys.len());
        true
    }

    /// Re-seats every key in a table of `len` slots (a power of two), by its stored hash.
    fn rebuild(&mut self, len: usize) {
        self.slots = vec![0; len];
        let mask = len - 1;
        for (k, &(hash, _, _)) in self.keys.iter().enumerate() {
            let mut i = hash as usize & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot_of(hash, k + 1);
        }
    }
}

/// The slot of the key numbered `number` (its index + 1) with `hash`. At most `u32::MAX` keys:
/// a day of updates is far below (the table alone would need 64 GiB).
fn slot_of(hash: u64, number: usize) -> u64 {
    (hash & !u64::from(u32::MAX)) | u64::from(u32::try_from(number).unwrap_or(u32::MAX))
}

/// `s` with its length first, so that two fields can never run into each other.
fn push_str(key: &mut Vec<u8>, s: &str) {
    key.extend_from_slice(&(s.len() as u64).to_le_bytes());
    key.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_is_kept_once_and_fields_do_not_run_together() {
        let mut seen = Seen::default();
        assert!(seen.insert_row("a", 1, "ready", None));
        assert!(!seen.insert_row("a", 1, "ready", None));
        assert!(seen.insert_row("a", 1, "ready", Some("")));
        assert!(!seen.insert_row("a", 1, "ready", Some("")));
        assert!(seen.insert_row("ab", 1, "ready", None));
        assert!(seen.insert_row("a", 1, "bready", None));
        assert!(seen.insert_row("a", 2, "ready", None));
        assert!(seen.insert_reject("{}"));
        assert!(!seen.insert_reject("{}"));
        assert!(seen.insert_reject("a"));
    }

    #[test]
    fn many_keys_survive_growth() {
        let mut seen = Seen::default();
        seen.reserve(10);
        for round in 0..2 {
            for i in 0..5_000 {
                let id = format!("agent-{}", i % 97);
                assert_eq!(seen.insert_row(&id, i, "busy", None), round == 0, "{i}");
            }
        }
    }
}
