//! Check 10: every unit an export writes is in the coverage record, and `status` classifies
//! it. A history dataset's days (per entity where it has entities) are recorded with the
//! truth's rows per table and read as OK or EMPTY (PROVISIONAL only when the dataset said the
//! unit holds open data); a snapshot dataset's polls are counted on their day and the records
//! they added on the days they went to.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use smartassist_export::coverage::status::{self, DatasetFacts, Provisional, UnitState};
use smartassist_export::coverage::Writer;
use smartassist_export::datasets::{Dataset, DatasetInfo};
use smartassist_export::sink::StateStore;

use super::common::registry::Rows;

/// Rows of `want` per table for one unit.
fn rows_of_unit(want: &Rows, day: NaiveDate, entity: Option<&str>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for ((table, dt, e, _), n) in want {
        if *dt == day && e.as_deref() == entity {
            *out.entry(table.clone()).or_default() += *n as u64;
        }
    }
    out
}

/// After a backfill of `days`: each unit of them is recorded as the truth says.
pub async fn assert_history_recorded(
    info: &DatasetInfo,
    d: &Dataset,
    (state, account_id): (&StateStore, &str),
    days: &[NaiveDate],
    want: &Rows,
) {
    let name = info.name;
    let facts = DatasetFacts::of(d);
    let (first, last) = (days[0], days[days.len() - 1]);
    let stored = status::read(state, &facts, account_id, first, last).await;
    assert_eq!(stored.problems, Vec::<String>::new(), "{name}: coverage");
    let report = status::classify(&facts, &stored, (first, last), Utc::now(), "x");
    let units: Vec<_> = report
        .units
        .iter()
        .filter(|u| days.contains(&u.day))
        .collect();
    let per_day = facts.entities.len().max(1);
    assert_eq!(units.len(), days.len() * per_day, "{name}: units recorded");
    for u in units {
        let what = format!("{name} {} {:?}", u.day, u.entity);
        let expected = rows_of_unit(want, u.day, u.entity.as_deref());
        for table in info.tables {
            assert_eq!(
                u.tables.get(table.name).copied().unwrap_or(0),
                expected.get(table.name).copied().unwrap_or(0),
                "{what}: rows of {table} in the coverage record"
            );
        }
        // A today-only list's unit is today's snapshot, still replaced by later runs of today.
        let ok = matches!(u.status, UnitState::Ok | UnitState::Empty)
            || (u.status == UnitState::Provisional && u.provisional == Some(Provisional::Open))
            || (facts.no_past
                && u.status == UnitState::Provisional
                && u.provisional == Some(Provisional::PartialDay));
        assert!(
            ok,
            "{what}: classified {:?} ({:?})",
            u.status, u.provisional
        );
        assert_eq!(u.by, Some(Writer::Backfill), "{what}: written by");
        assert!(u.requests.unwrap_or(0) > 0, "{what}: its requests");
    }
}

/// After polls of `entities` on `poll_day`, `polls` each: the day counts them, and the days the
/// records went to hold the truth's rows.
pub async fn assert_polls_recorded(
    info: &DatasetInfo,
    d: &Dataset,
    (state, account_id): (&StateStore, &str),
    poll_day: NaiveDate,
    polls: u64,
    want: &Rows,
) {
    let name = info.name;
    let facts = DatasetFacts::of(d);
    let days: Vec<NaiveDate> = want.keys().map(|(_, dt, ..)| *dt).collect();
    let first = days.iter().copied().min().unwrap_or(poll_day).min(poll_day);
    let last = days.iter().copied().max().unwrap_or(poll_day).max(poll_day);
    let stored = status::read(state, &facts, account_id, first, last).await;
    assert_eq!(stored.problems, Vec::<String>::new(), "{name}: coverage");
    let report = status::classify(&facts, &stored, (first, last), Utc::now(), "x");
    for entity in &facts.entities {
        let mine: Vec<_> = report
            .units
            .iter()
            .filter(|u| u.entity.as_deref() == Some(entity))
            .collect();
        let on_poll_day = mine
            .iter()
            .find(|u| u.day == poll_day)
            .unwrap_or_else(|| panic!("{name} {entity}: no unit on {poll_day}"));
        let counted = on_poll_day.polls.as_ref().map_or(0, |p| p.ok);
        assert_eq!(counted, polls, "{name} {entity}: polls on {poll_day}");
        assert!(
            matches!(on_poll_day.status, UnitState::Ok | UnitState::Empty),
            "{name} {entity}: {:?}",
            on_poll_day.status
        );
        for u in &mine {
            let expected = rows_of_unit(want, u.day, Some(entity));
            for table in info.tables {
                assert_eq!(
                    u.tables.get(table.name).copied().unwrap_or(0),
                    expected.get(table.name).copied().unwrap_or(0),
                    "{name} {entity} {}: rows of {table} in the coverage record",
                    u.day
                );
            }
        }
    }
}
