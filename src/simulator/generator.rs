//! The deterministic building blocks every API model's generator uses: the hash ([`mix`],
//! [`hash`], [`hash_str`]), the render-quirk decision, uuid-like ids, and the agents
//! ([`agent`]) that UserStatus, Agent Status Details and the other agent-based APIs list. Each
//! is a pure function of a seed and a key, so nothing here may depend on the server, the clock
//! or a random number generator; tests use them (and each model's own generator, in its folder)
//! as the independent source of expected rows. Callers pass the same `seed` that the simulator
//! was started with.
//!
//! Each generator feeds its own tag word into [`hash`] so that its draws are independent of
//! every other's: 0x01 and 0x08 here, 0x02–0x07 UserStatus and IntentRealtimeData, 0x2_ Agent
//! Status Details, 0x4_ Call Details, 0x6_ Contact Volume (and, sharing it, Agent Activity,
//! the agent and queue lists and Sessions History: correlated draws across models, harmless
//! since each truth reads its own), 0x7_ Agent Performance. A new model takes an unused range.

const TAG_AGENT: u64 = 0x01;
const TAG_QUIRK: u64 = 0x08;

/// SplitMix64 finalizer: a bijective scramble of one 64-bit word.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of a sequence of words; order matters.
pub fn hash(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(0x243F_6A88_85A3_08D3, |acc, &p| mix(acc ^ mix(p)))
}

/// FNV-1a of a string, scrambled, so string keys (bot ids) can feed [`hash`].
pub fn hash_str(s: &str) -> u64 {
    let fnv = s.bytes().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    });
    mix(fnv)
}

/// A render quirk decision (extra unknown fields and the like), deterministic in its key.
pub(crate) fn quirk(seed: u64, parts: &[u64], one_in: u64) -> bool {
    let mut all = Vec::with_capacity(parts.len() + 2);
    all.push(seed);
    all.push(TAG_QUIRK);
    all.extend_from_slice(parts);
    hash(&all).is_multiple_of(one_in)
}

pub(crate) fn uuid_like(prefix: &str, a: u64, b: u64) -> String {
    format!(
        "{prefix}{:08x}-{:04x}-5{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFF,
        0x8000 | (b >> 48 & 0x3FFF),
        b & 0xFFFF_FFFF_FFFF
    )
}

const FIRST_NAMES: [&str; 24] = [
    "Nick", "Joce", "Asha", "Ravi", "Maria", "Liam", "Chen", "Fatima", "Olga", "Kwame", "Sofia",
    "Arjun", "Emma", "Hiro", "Lucia", "Omar", "Priya", "Tom", "Zara", "Diego", "Mei", "Noah",
    "Ines", "Yusuf",
];
const LAST_NAMES: [&str; 24] = [
    "J",
    "Tay",
    "Rao",
    "Kumar",
    "Garcia",
    "Smith",
    "Wang",
    "Khan",
    "Ivanova",
    "Mensah",
    "Rossi",
    "Patel",
    "Brown",
    "Sato",
    "Fernandez",
    "Haddad",
    "Iyer",
    "Miller",
    "Ali",
    "Lopez",
    "Lin",
    "Weber",
    "Silva",
    "Demir",
];

/// One agent as the UserStatus API describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedAgent {
    /// `u-<uuid>`.
    pub user_id: String,
    /// Unique per index; what `filter.agents` matches.
    pub email: String,
    /// Empty for about one agent in ten (with `last_name`).
    pub first_name: String,
    pub last_name: String,
    /// Empty for about one agent in seven.
    pub custom_id: String,
}

/// The agent at `idx` (0-based). The simulator serves agents `0..cfg.agents` in index order.
pub fn agent(seed: u64, idx: usize) -> GeneratedAgent {
    let i = idx as u64;
    let h = hash(&[seed, TAG_AGENT, i]);
    let h2 = hash(&[seed, TAG_AGENT, i, 1]);
    let user_id = uuid_like("u-", h, h2);
    let anonymous = h % 10 == 3;
    let (first_name, last_name, email) = if anonymous {
        (
            String::new(),
            String::new(),
            format!("agent{idx}@example.com"),
        )
    } else {
        let first = FIRST_NAMES[(h >> 8) as usize % FIRST_NAMES.len()];
        let last = LAST_NAMES[(h >> 16) as usize % LAST_NAMES.len()];
        let email = format!(
            "{}.{}.{idx}@example.com",
            first.to_ascii_lowercase(),
            last.to_ascii_lowercase()
        );
        (first.to_string(), last.to_string(), email)
    };
    let custom_id = if (h >> 24).is_multiple_of(7) {
        String::new()
    } else {
        format!("{}", 100_000 + (h >> 32) % 900_000)
    };
    GeneratedAgent {
        user_id,
        email,
        first_name,
        last_name,
        custom_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_values() {
        // Reference outputs of SplitMix64 seeded with 0: the first two next() values.
        assert_eq!(mix(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(mix(0x9E37_79B9_7F4A_7C15), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn agents_are_deterministic_unique_and_sometimes_blank() {
        assert_eq!(agent(42, 3), agent(42, 3));
        assert_ne!(agent(42, 3).user_id, agent(43, 3).user_id);
        let agents: Vec<_> = (0..500).map(|i| agent(42, i)).collect();
        let emails: std::collections::HashSet<_> = agents.iter().map(|a| &a.email).collect();
        assert_eq!(emails.len(), 500);
        assert!(agents.iter().any(|a| a.first_name.is_empty()));
        assert!(agents.iter().any(|a| a.custom_id.is_empty()));
        assert!(agents
            .iter()
            .all(|a| a.user_id.starts_with("u-") && a.user_id.len() == 38));
    }
}
