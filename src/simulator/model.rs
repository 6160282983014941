//! The contract between the simulator's generic server and the report APIs it serves. Each API
//! is an [`ApiModel`] declared in its own folder and listed once in [`super::MODELS`]; the
//! server ([`super::server`]) knows no API by name. A model declares its `/_sim/stats` label,
//! how it reads a path (its `route` returns the request's [`Handler`], holding what the path
//! captured: account or bot id, API version), the methods it allows, whether the JWT check and
//! the rate limit apply, whether its handler blocks, and, when it keeps state across requests,
//! how to build that state (the server holds it in a typed slot, [`Shared::state`]), and, for
//! the API a dataset exports, the ground truth of that dataset's rows ([`super::truth`]).
//!
//! Settings of one model live in [`ModelSettings`], a typed map in
//! [`super::SimulatorConfig::models`]: the model's own settings type, defined in its folder, is
//! read with [`ModelSettings::get`] (its `Default` when unset). Also here, for every model's
//! handler: the request ([`ApiRequest`]), the answer ([`Reply`]) and the identity-header check
//! ([`check_header`]).

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};

use super::render::error_body;
use super::shared::Shared;
use super::truth::DatasetTruth;
use super::SimulatorConfig;

/// One report API the simulator serves. Models are `static`s in their own folders.
pub(crate) struct ApiModel {
    /// The key of its requests in `/_sim/stats` (`by_endpoint`, `by_endpoint_status`); unique
    /// across [`super::MODELS`].
    pub endpoint: &'static str,
    /// The model's reading of a normalized path (segments, empty ones dropped): `None` when the
    /// path is not one of its own, else the handler bound to what the path captured. The paths
    /// of two models never overlap; the server takes the first match.
    pub route: fn(&[&str]) -> Option<Handler>,
    /// Any other method gets a 405.
    pub methods: &'static [Method],
    /// The JWT check (and the JWE unwrapping when configured) and the per-account rate limit
    /// apply before the handler runs. True for every report API.
    pub gated: bool,
    /// The handler does enough work (large pages) to run on the blocking pool.
    pub blocking: bool,
    /// Builds the model's state across requests when the simulator starts, kept for it in
    /// [`Shared::state`] under the value's type (so each model uses a type of its own); `None`
    /// for a stateless model.
    pub state: Option<fn(&SimulatorConfig) -> ModelState>,
    /// The dataset whose records this API serves (its registry name) and the ground truth of
    /// that dataset's rows, computed from the model's own generator (see [`super::truth`]);
    /// `None` for an API no dataset exports. Every registered dataset needs one model that
    /// answers for it: the compliance suite compares the dataset's output with this answer.
    pub truth: Option<DatasetTruth>,
}

/// A model's state across requests (read back with [`Shared::state`]).
pub(crate) type ModelState = Box<dyn Any + Send + Sync>;

/// Answers one request to a model, after the server's checks. Built by the model's `route`
/// around what the path captured.
pub(crate) struct Handler(Box<dyn HandlerFn>);

/// What a [`Handler`] holds: a one-shot function of the server state and the request.
trait HandlerFn: FnOnce(&Shared, &ApiRequest) -> Reply + Send {}

impl<F: FnOnce(&Shared, &ApiRequest) -> Reply + Send> HandlerFn for F {}

impl Handler {
    pub(crate) fn new(f: impl FnOnce(&Shared, &ApiRequest) -> Reply + Send + 'static) -> Self {
        Handler(Box::new(f))
    }

    pub(crate) fn call(self, shared: &Shared, request: &ApiRequest) -> Reply {
        (self.0)(shared, request)
    }
}

/// What a handler sees of a request besides its path.
pub(crate) struct ApiRequest {
    /// The raw query string, without `?`.
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiRequest {
    pub(crate) fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }
}

/// A model's answer: status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: String,
}

impl Reply {
    pub(crate) fn json(status: StatusCode, body: String) -> Self {
        Reply { status, body }
    }

    /// `status` with the Kore-style `{"errors":[{"msg","code"}]}` body.
    pub(crate) fn error(status: StatusCode, msg: &str) -> Self {
        Reply::json(status, error_body(msg, u32::from(status.as_u16())))
    }

    pub(crate) fn bad_request(msg: &str) -> Self {
        Reply::error(StatusCode::BAD_REQUEST, msg)
    }
}

/// Checks an identity header that must equal `expected`: a 400 when it is missing and
/// `required`, a 403 when it differs. `Err` is the reply to send.
pub(crate) fn check_header(
    headers: &HeaderMap,
    name: &str,
    expected: &str,
    required: bool,
) -> Result<(), Reply> {
    match headers.get(name).and_then(|v| v.to_str().ok()) {
        None if required => Err(Reply::bad_request(&format!("{name} header is required"))),
        None => Ok(()),
        Some(v) if v == expected => Ok(()),
        Some(_) => Err(Reply::error(
            StatusCode::FORBIDDEN,
            &format!("{name} does not match the credentials"),
        )),
    }
}

/// A type that can hold one model's settings in [`ModelSettings`]: any `'static` type with a
/// `Default` (what the model does when a config does not set it), `Clone` and `Debug`.
pub trait ModelSetting: Any + Clone + Default + fmt::Debug + Send + Sync {}

impl<T: Any + Clone + Default + fmt::Debug + Send + Sync> ModelSetting for T {}

/// How a stored setting is held: the value behind `dyn Any` for the typed read, `Debug` for
/// the config's `Debug`.
trait StoredSetting: Any + fmt::Debug + Send + Sync {}

impl<T: Any + fmt::Debug + Send + Sync> StoredSetting for T {}

/// The settings of the individual API models, one value per settings type, e.g.
/// `ModelSettings::default().with(CallDetailsSim { sessions_per_hour: 40, ..Default::default() })`.
/// A model reads its own with [`ModelSettings::get`]; unset types read as their `Default`.
#[derive(Clone, Default)]
pub struct ModelSettings {
    by_type: HashMap<TypeId, Arc<dyn StoredSetting>>,
}

impl ModelSettings {
    /// The settings of type `T`: the value set last, or `T::default()`.
    pub fn get<T: ModelSetting>(&self) -> Cow<'_, T> {
        let stored = self.by_type.get(&TypeId::of::<T>());
        match stored.and_then(|v| (&**v as &dyn Any).downcast_ref::<T>()) {
            Some(v) => Cow::Borrowed(v),
            None => Cow::Owned(T::default()),
        }
    }

    /// Sets (replaces) the settings of type `T`.
    pub fn set<T: ModelSetting>(&mut self, value: T) {
        self.by_type.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// [`Self::set`], by value.
    pub fn with<T: ModelSetting>(mut self, value: T) -> Self {
        self.set(value);
        self
    }
}

impl fmt::Debug for ModelSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.by_type.values()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Density {
        per_hour: u32,
    }

    impl Default for Density {
        fn default() -> Self {
            Density { per_hour: 12 }
        }
    }

    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    struct Shape {
        legacy: bool,
    }

    #[test]
    fn settings_read_their_default_until_set_and_keep_types_apart() {
        let mut s = ModelSettings::default();
        assert_eq!(s.get::<Density>().per_hour, 12);
        s.set(Density { per_hour: 40 });
        assert_eq!(*s.get::<Density>(), Density { per_hour: 40 });
        assert_eq!(*s.get::<Shape>(), Shape::default());
        let s = s.with(Shape { legacy: true }).with(Density { per_hour: 3 });
        assert_eq!(s.get::<Density>().per_hour, 3);
        assert!(s.get::<Shape>().legacy);
        let shown = format!("{s:?}");
        assert!(shown.contains("Density { per_hour: 3 }"), "{shown}");
        assert!(shown.contains("Shape { legacy: true }"), "{shown}");
    }

    #[test]
    fn check_header_tells_missing_from_wrong() {
        let mut h = HeaderMap::new();
        assert_eq!(
            check_header(&h, "IId", "st-1", true).map_err(|r| r.status),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(check_header(&h, "IId", "st-1", false), Ok(()));
        h.insert("iid", "st-2".parse().expect("header value"));
        assert_eq!(
            check_header(&h, "IId", "st-1", false).map_err(|r| r.status),
            Err(StatusCode::FORBIDDEN)
        );
        h.insert("iid", "st-1".parse().expect("header value"));
        assert_eq!(check_header(&h, "IId", "st-1", true), Ok(()));
    }
}
