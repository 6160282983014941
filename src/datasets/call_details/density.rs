//! The density profile kept between days (`_state/call_details/account_id=A/density.json`): the
//! hourly session counts of the most recent complete local day exported, from which the next
//! day's request windows are sized. Only a hint: a missing one costs a few requests while a day
//! is discovered; a corrupt one follows the policy of every state object (an error; deleting it
//! is safe). Backfills store it too: the latest complete day's profile wins whoever exported it.

use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{Density, INFO};
use crate::datasets::Context;
use crate::error::Error;
use crate::error_chain::error_chain;
use crate::state::{self, StateObject};

/// The hourly record counts of a complete local day, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DensityState {
    /// The local day counted.
    pub day: NaiveDate,
    /// IANA zone of that local day; a profile of another zone is not used.
    pub timezone: String,
    /// Records per hour from the day's first instant (23, 24 or 25 entries).
    pub hourly: Vec<u32>,
    pub updated_at: chrono::DateTime<Utc>,
}

/// One per account: `_state/call_details/account_id=A/density.json`.
impl StateObject for DensityState {
    type Key = ();
    fn file_name(_: &()) -> String {
        "density.json".to_string()
    }
}

/// The stored profile, when it was counted in `tz`.
pub(super) async fn expected(cx: &Context, tz: Tz) -> Result<Option<Density>, Error> {
    Ok(
        state::load_object::<DensityState>(&cx.state, INFO.name, &cx.account_id, &())
            .await?
            .filter(|s| s.timezone == tz.name())
            .map(|s| Density { hourly: s.hourly }),
    )
}

/// Stores the profile of the complete local `day` as the one the next days are planned from,
/// unless a later day's is stored by then (backfills finish days out of order; another process
/// storing at the same moment can still win, which costs only a worse hint). A failure only
/// costs the next day some discovery requests, so it is logged, not returned.
pub(super) async fn keep(cx: &Context, tz: Tz, day: NaiveDate, density: Density) {
    if density.sessions() == 0 {
        return;
    }
    let zone = tz.name();
    let stored = DensityState {
        day,
        timezone: zone.to_string(),
        hourly: density.hourly,
        updated_at: Utc::now(),
    };
    // Compare-and-swap: a later day's profile stored meanwhile (by this or another process)
    // is kept.
    let result = state::update_object::<DensityState, _>(
        &cx.state,
        INFO.name,
        &cx.account_id,
        &(),
        |current| match current {
            Some(s) if s.day > day && s.timezone == zone => None,
            _ => Some(stored.clone()),
        },
    )
    .await;
    if let Err(e) = result {
        warn!(error = %error_chain(&e), "Could not store the call-details density; the next day is planned without it.");
    }
}
