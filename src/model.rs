//! Domain vocabulary shared by every layer: the UserStatus bucket granularity. A pure value type
//! with exact string forms; parsing it is the config's job, using it is everyone else's.

use std::fmt;
use std::str::FromStr;

use chrono::Duration;

/// UserStatus bucket width, exactly the ISO-8601 values the API documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    PT15M,
    PT30M,
    PT1H,
    PT2H,
    PT4H,
    PT8H,
    PT12H,
    PT24H,
}

impl Granularity {
    pub const ALL: [Granularity; 8] = [
        Granularity::PT15M,
        Granularity::PT30M,
        Granularity::PT1H,
        Granularity::PT2H,
        Granularity::PT4H,
        Granularity::PT8H,
        Granularity::PT12H,
        Granularity::PT24H,
    ];

    /// The wire form sent in the request body and stored in the `granularity` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::PT15M => "PT15M",
            Granularity::PT30M => "PT30M",
            Granularity::PT1H => "PT1H",
            Granularity::PT2H => "PT2H",
            Granularity::PT4H => "PT4H",
            Granularity::PT8H => "PT8H",
            Granularity::PT12H => "PT12H",
            Granularity::PT24H => "PT24H",
        }
    }

    pub fn minutes(self) -> i64 {
        match self {
            Granularity::PT15M => 15,
            Granularity::PT30M => 30,
            Granularity::PT1H => 60,
            Granularity::PT2H => 120,
            Granularity::PT4H => 240,
            Granularity::PT8H => 480,
            Granularity::PT12H => 720,
            Granularity::PT24H => 1440,
        }
    }

    pub fn duration(self) -> Duration {
        Duration::minutes(self.minutes())
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown granularity {0:?} (expected one of PT15M, PT30M, PT1H, PT2H, PT4H, PT8H, PT12H, PT24H)")]
pub struct UnknownGranularity(pub String);

impl FromStr for Granularity {
    type Err = UnknownGranularity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Granularity::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| UnknownGranularity(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granularity_round_trips_and_rejects_unknown() {
        for g in Granularity::ALL {
            assert_eq!(g.as_str().parse::<Granularity>(), Ok(g));
        }
        assert_eq!(Granularity::PT2H.minutes(), 120);
        assert!("PT5M".parse::<Granularity>().is_err());
        assert!("pt15m".parse::<Granularity>().is_err());
    }
}
