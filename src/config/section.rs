//! Dataset config sections: the contract between `config/` and a dataset that owns its section.
//! A dataset declares its section by implementing [`DatasetSection`] in its own folder (raw keys,
//! validation, defaults and their documented values) and hands [`SectionSpec::of`] to the
//! registry; [`super::Config::from_toml`] is given the registry's specs, parses and validates
//! every section it names, and keeps the validated values in [`DatasetSections`], where the
//! dataset finds its own again by type ([`super::Config::section`]). `config/` itself never names
//! a dataset.
//!
//! Two rules are shared by every section, so no section takes a default from another by name:
//! - **The account zone.** A section's `timezone`, when unset, is [`SectionContext::timezone`]:
//!   `[api] timezone` when set; otherwise the `timezone` of the first section that declares
//!   [`DatasetSection::TIMEZONE_IS_ACCOUNT_ZONE`] and sets one (configs written before
//!   `[api] timezone` existed set the zone there); otherwise UTC.
//! - **`[api]` aliases.** A section may declare keys of `[api]` as aliases of its own keys
//!   ([`ApiAlias`]): the value is moved into the section before it is parsed, problems with it
//!   name the key as written, and setting both is a problem.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono_tz::Tz;
use serde::de::DeserializeOwned;

use super::parse::Problems;

/// What every section validator may read besides its own keys.
#[derive(Debug, Clone)]
pub struct SectionContext<'a> {
    /// `[api] account_id` (possibly empty when it is missing: a problem is reported for it).
    pub account_id: &'a str,
    /// `[api] iid`, the stream id (possibly empty when it is missing: a problem is reported for
    /// it), for paths that hold it (`{stream_id}`).
    pub iid: &'a str,
    /// The account zone: the default of every section's `timezone` (see the module docs).
    pub timezone: Tz,
}

/// A key of `[api]` accepted as an alias of a key of a dataset's section (kept for configs
/// written before the key moved into the section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiAlias {
    /// The key in `[api]`, e.g. `user_status_path`.
    pub api_key: &'static str,
    /// The section's own key, e.g. `path`.
    pub key: &'static str,
}

/// A dataset's config section, implemented by its validated config type.
pub trait DatasetSection: fmt::Debug + Send + Sync + Sized + 'static {
    /// The TOML section name (the dataset's name).
    const NAME: &'static str;
    /// `(key, default as documented)` for every key of the section with a literal default,
    /// written as in TOML (`60`, `"UTC"`, `false`); keys relative to the section. The configuration table
    /// of the dataset's page (`docs/datasets/<name>.md`) and the shipped `config.toml` are
    /// checked against these.
    const DEFAULTS: &'static [(&'static str, &'static str)];
    /// Documented defaults of keys this section shares with others, e.g.
    /// [`super::history::DEFAULTS`] for a history dataset's section.
    const SHARED_DEFAULTS: &'static [(&'static str, &'static str)] = &[];
    /// `[api]` keys that are aliases of this section's keys.
    const API_ALIASES: &'static [ApiAlias] = &[];
    /// Whether this section's `timezone` stands in for `[api] timezone` when that is unset.
    const TIMEZONE_IS_ACCOUNT_ZONE: bool = false;
    /// The keys as written; unknown keys must be refused (`#[serde(deny_unknown_fields)]`).
    type Raw: DeserializeOwned + Default;

    /// Pure validation of the raw keys, pushing every problem (keys named `section.key`).
    fn validate(raw: &Self::Raw, cx: &SectionContext<'_>, p: &mut Problems) -> Self;

    /// Checks that need the other sections (e.g. a default taken from another dataset's
    /// section), once every section is validated; pushes problems like `validate`. None by
    /// default.
    fn check_against(&self, _config: &super::Config, _p: &mut Problems) {}
}

/// The type-erased form of a [`DatasetSection`] that the registry hands to the config loader.
pub struct SectionSpec {
    pub name: &'static str,
    pub defaults: &'static [(&'static str, &'static str)],
    pub shared_defaults: &'static [(&'static str, &'static str)],
    pub api_aliases: &'static [ApiAlias],
    pub timezone_is_account_zone: bool,
    /// Deserializes the raw section (`None`: absent) and validates it.
    pub(super) load: fn(Raw<'_>, &SectionContext<'_>, &mut Problems) -> Arc<dyn SectionValue>,
    /// Runs the validated section's [`DatasetSection::check_against`].
    pub(super) cross: fn(&super::Config, &mut Problems),
}

impl SectionSpec {
    /// The spec of section type `S`.
    pub const fn of<S: DatasetSection>() -> SectionSpec {
        SectionSpec {
            name: S::NAME,
            defaults: S::DEFAULTS,
            shared_defaults: S::SHARED_DEFAULTS,
            api_aliases: S::API_ALIASES,
            timezone_is_account_zone: S::TIMEZONE_IS_ACCOUNT_ZONE,
            load: load::<S>,
            cross: cross::<S>,
        }
    }

    /// The section's documented defaults, shared ones included, by key within the section.
    pub fn all_defaults(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.shared_defaults.iter().chain(self.defaults).copied()
    }

    /// [`SectionSpec::all_defaults`] with full keys (`section.key`).
    pub fn full_defaults(&self) -> impl Iterator<Item = (String, &'static str)> + '_ {
        self.all_defaults()
            .map(|(k, v)| (format!("{}.{k}", self.name), v))
    }
}

impl fmt::Debug for SectionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SectionSpec({})", self.name)
    }
}

/// A section's raw TOML value and the collector of parse problems.
pub(super) struct Raw<'a> {
    pub value: Option<toml::Value>,
    pub parse: &'a mut super::Sections,
}

fn load<S: DatasetSection>(
    raw: Raw<'_>,
    cx: &SectionContext<'_>,
    p: &mut Problems,
) -> Arc<dyn SectionValue> {
    let keys: S::Raw = raw.parse.parse(S::NAME, raw.value);
    Arc::new(S::validate(&keys, cx, p))
}

fn cross<S: DatasetSection>(config: &super::Config, p: &mut Problems) {
    if let Some(section) = config.section::<S>() {
        section.check_against(config, p);
    }
}

/// A validated section held by the config: any `Debug` value that can be shared.
pub trait SectionValue: Any + fmt::Debug + Send + Sync {}
impl<T: Any + fmt::Debug + Send + Sync> SectionValue for T {}

/// The validated dataset sections, by section name.
#[derive(Debug, Clone, Default)]
pub struct DatasetSections(BTreeMap<&'static str, Arc<dyn SectionValue>>);

impl DatasetSections {
    /// The validated section `S`, when its spec was loaded.
    pub fn get<S: DatasetSection>(&self) -> Option<&S> {
        let value: &dyn Any = self.0.get(S::NAME)?.as_ref();
        value.downcast_ref::<S>()
    }

    /// Replaces section `S` (tests and tools that adjust a loaded config).
    pub fn set<S: DatasetSection>(&mut self, section: S) {
        self.0.insert(S::NAME, Arc::new(section));
    }

    pub(super) fn insert(&mut self, name: &'static str, value: Arc<dyn SectionValue>) {
        self.0.insert(name, value);
    }

    /// Names of the loaded sections.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.keys().copied()
    }
}
