//! A set of byte-string keys stored end to end in one arena ([`KeySet`]): what a decoder uses
//! to keep a record served twice (by two overlapping request windows) once. A key costs no
//! allocation of its own, and a day's set is freed in three deallocations.
//!
//! Before, Agent Activity, Call Details and the offset-paged datasets (`datasets::paging`)
//! each kept a `HashSet` of owned strings: a `malloc` per key and a `free` per key when the
//! window or day ended, on the one malloc arena every thread shares (`src/memory.rs`), plus a
//! rehash into freshly mapped memory as the table grew.

use std::fmt;

/// Keys inserted so far (see the module docs).
#[derive(Default)]
pub struct KeySet {
    /// Every key's bytes, end to end.
    arena: Vec<u8>,
    /// Per key: its hash and its bytes' range in `arena`.
    keys: Vec<(u64, usize, usize)>,
    /// Open-addressing table (linear probing): per slot, index + 1 into `keys` in the low 32
    /// bits (0: empty) and the key's hash's high 32 bits above, so a probe reads `keys` only on
    /// a likely match; its length is a power of two at least twice `keys.len()`, or zero
    /// before the first insert.
    slots: Vec<u64>,
    /// Seeded per set at random, so keys the API sends cannot be chosen to collide; aHash
    /// rather than the standard library's SipHash, which took 2.8% of an Agent Activity day's
    /// export CPU hashing keys of about 80 bytes.
    hasher: ahash::RandomState,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl KeySet {
    /// Keeps `key`; `false` when it was kept before.
    pub fn insert(&mut self, key: &[u8]) -> bool {
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

    /// Room for `more` keys of about `key_bytes` each without growing the table or the arena.
    pub fn reserve(&mut self, more: usize, key_bytes: usize) {
        self.keys.reserve(more);
        self.arena.reserve(more.saturating_mul(key_bytes));
        let want = (self.keys.len() + more)
            .saturating_mul(2)
            .next_power_of_two();
        if want > self.slots.len() {
            self.rebuild(want);
        }
    }

    /// How many keys the set holds.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key was inserted.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
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
/// a day of records is far below (the table alone would need 64 GiB).
fn slot_of(hash: u64, number: usize) -> u64 {
    (hash & !u64::from(u32::MAX)) | u64::from(u32::try_from(number).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_is_kept_once() {
        let mut set = KeySet::default();
        assert!(set.is_empty());
        assert!(set.insert(b"a"));
        assert!(!set.insert(b"a"));
        assert!(set.insert(b""));
        assert!(!set.insert(b""));
        assert!(set.insert(b"ab"));
        assert!(set.insert(b"ba"));
        assert_eq!(set.len(), 4);
    }

    #[test]
    fn many_keys_survive_growth() {
        let mut set = KeySet::default();
        set.reserve(10, 8);
        for round in 0..2 {
            for i in 0..5_000 {
                let key = format!("session-{i}");
                assert_eq!(set.insert(key.as_bytes()), round == 0, "{key}");
            }
        }
        assert_eq!(set.len(), 5_000);
    }
}
