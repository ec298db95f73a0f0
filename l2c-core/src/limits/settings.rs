//! The configuration both limit layers share ([`LimitSettings`]), written once, and the form
//! every service of a layer shares ([`Prepared`]).
//!
//! [`KeyedRateLimitLayer`](crate::rate_limit::KeyedRateLimitLayer) and
//! [`ConcurrencyCapLayer`](crate::concurrency::ConcurrencyCapLayer) each hold a
//! `LimitSettings` (key extraction, anonymous key, store, store-failure policy, policy name,
//! fail-open counter and the lazily built per-layer state) and get their common builder methods
//! from [`limit_settings_methods!`](crate::limits::settings::limit_settings_methods).

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{Extensions, Request, Response};

use super::response::PrebuiltProblem;
use super::{
    ConfigError, Decided, FailOpenCounter, FailurePolicy, KeyExtractor, LimitDecisions, StoreError,
    validate_policy_name,
};

/// What both limit layers are configured with, over a store of type `St` (a trait object), plus
/// the per-layer state `Sh` every service made by the layer shares.
///
/// `Sh` is built on the first `layer()` call (axum calls `layer()` per connection on a router
/// without state) and every setter forgets it, so a layer changed after use builds it afresh.
pub(crate) struct LimitSettings<St: ?Sized, Sh> {
    key: KeyExtractor,
    anonymous_key: Option<Arc<str>>,
    store: Arc<St>,
    failure: FailurePolicy,
    fail_open: FailOpenCounter,
    decisions: LimitDecisions,
    policy: Arc<str>,
    /// What the limiter is called in logs ("rate limit", "concurrency").
    kind: &'static str,
    shared: OnceLock<Arc<Sh>>,
}

impl<St: ?Sized, Sh> LimitSettings<St, Sh> {
    /// Keyed by the authenticated `client_id`, failing open, named `policy` (a valid name).
    pub(crate) fn new(store: Arc<St>, policy: &'static str, kind: &'static str) -> Self {
        Self {
            key: KeyExtractor::client_id(),
            anonymous_key: None,
            store,
            failure: FailurePolicy::Open,
            fail_open: FailOpenCounter::new(),
            decisions: LimitDecisions::new(),
            policy: Arc::from(policy),
            kind,
            shared: OnceLock::new(),
        }
    }

    /// Forgets the built state; every setter, including a layer's own, calls this.
    pub(crate) fn changed(&mut self) {
        self.shared = OnceLock::new();
    }

    pub(crate) fn set_key(&mut self, key: KeyExtractor) {
        self.changed();
        self.key = key;
    }

    pub(crate) fn set_anonymous_key(&mut self, key: &str) {
        self.changed();
        self.anonymous_key = Some(Arc::from(key));
    }

    pub(crate) fn set_store(&mut self, store: Arc<St>) {
        self.changed();
        self.store = store;
    }

    pub(crate) fn set_failure_policy(&mut self, failure: FailurePolicy) {
        self.changed();
        self.failure = failure;
    }

    pub(crate) fn set_policy_name(&mut self, name: &str) -> Result<(), ConfigError> {
        validate_policy_name(name)?;
        self.changed();
        self.policy = Arc::from(name);
        Ok(())
    }

    pub(crate) fn store(&self) -> &Arc<St> {
        &self.store
    }

    /// The validated policy name.
    pub(crate) fn policy(&self) -> &str {
        &self.policy
    }

    pub(crate) fn fail_open_counter(&self) -> &FailOpenCounter {
        &self.fail_open
    }

    pub(crate) fn decisions(&self) -> &LimitDecisions {
        &self.decisions
    }

    /// The shared state, built with `build` on the first call after a change.
    pub(crate) fn shared(&self, build: impl FnOnce(Prepared<St>) -> Sh) -> Arc<Sh> {
        self.shared
            .get_or_init(|| Arc::new(build(self.prepare())))
            .clone()
    }

    /// The settings in the form a service uses.
    pub(crate) fn prepare(&self) -> Prepared<St> {
        Prepared {
            store: self.store.clone(),
            key: self.key.clone(),
            anonymous_key: self.anonymous_key.clone(),
            failure: self.failure,
            fail_open: self.fail_open.clone(),
            decisions: self.decisions.clone(),
            unavailable: PrebuiltProblem::store_unavailable(),
            policy: self.policy.clone(),
            kind: self.kind,
        }
    }
}

impl<St: ?Sized, Sh> Clone for LimitSettings<St, Sh> {
    fn clone(&self) -> Self {
        Self {
            key: self.key.clone(),
            anonymous_key: self.anonymous_key.clone(),
            store: self.store.clone(),
            failure: self.failure,
            fail_open: self.fail_open.clone(),
            decisions: self.decisions.clone(),
            policy: self.policy.clone(),
            kind: self.kind,
            shared: self.shared.clone(),
        }
    }
}

impl<St: ?Sized + fmt::Debug, Sh> fmt::Debug for LimitSettings<St, Sh> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitSettings")
            .field("key", &self.key)
            .field("anonymous_key", &self.anonymous_key)
            .field("store", &self.store)
            .field("failure", &self.failure)
            .field("fail_open", &self.fail_open)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// [`LimitSettings`] as every service of one layer shares it.
#[derive(Debug)]
pub(crate) struct Prepared<St: ?Sized> {
    pub(crate) store: Arc<St>,
    key: KeyExtractor,
    anonymous_key: Option<Arc<str>>,
    failure: FailurePolicy,
    pub(crate) fail_open: FailOpenCounter,
    decisions: LimitDecisions,
    unavailable: PrebuiltProblem,
    pub(crate) policy: Arc<str>,
    kind: &'static str,
}

impl<St: ?Sized> Prepared<St> {
    /// The partition key of `req`: the extractor's, else the anonymous key, else `None` (the
    /// request passes without limit).
    pub(crate) fn key<'r, B>(&'r self, req: &'r Request<B>) -> Option<Cow<'r, str>> {
        self.key
            .extract(req)
            .or_else(|| self.anonymous_key.as_deref().map(Cow::Borrowed))
    }

    /// Counts one decision in the layer's [`LimitDecisions`].
    pub(crate) fn decided(&self, decided: Decided) {
        self.decisions.record(decided);
    }

    /// Applies the [`FailurePolicy`] to a store failure: the 503 to send (fail-closed), or
    /// `None` to let the request through, counted and logged (fail-open).
    pub(crate) fn store_failed<B: From<Bytes>>(
        &self,
        error: &StoreError,
        extensions: &Extensions,
    ) -> Option<Response<B>> {
        let (policy, kind) = (&*self.policy, self.kind);
        match self.failure {
            FailurePolicy::Closed => {
                tracing::warn!(%error, %policy, "{kind} store failed; rejecting (fail-closed)");
                self.decided(Decided::Unavailable);
                Some(self.unavailable.response(extensions, 1))
            }
            FailurePolicy::Open => {
                tracing::warn!(%error, %policy, "{kind} store failed; letting the request through (fail-open)");
                self.fail_open.increment();
                self.decided(Decided::Allowed);
                None
            }
        }
    }
}

/// The builder methods both limit layers share, each delegating to the layer's
/// `settings: LimitSettings<dyn $store, _>` field.
///
/// `$store_example` is an intra-doc link to the layer's Redis store, `$default_policy` the
/// layer's default policy name and `$other` the other layer (for the docs).
macro_rules! limit_settings_methods {
    (
        store: $store:path,
        store_example: $store_example:literal,
        default_policy: $default_policy:literal,
        other: $other:literal $(,)?
    ) => {
        /// Derives the partition key with `f` instead of the authenticated client (e.g. the peer
        /// address on the token endpoint). `None` means "no key" (see
        /// [`anonymous_key`](Self::anonymous_key)).
        pub fn key_fn<F>(self, f: F) -> Self
        where
            F: Fn($crate::limits::RequestHead<'_>) -> Option<String> + Send + Sync + 'static,
        {
            self.key_extractor($crate::limits::KeyExtractor::from_fn(f))
        }

        #[doc = concat!("Uses `extractor` for the partition key (shareable with ", $other, ").")]
        pub fn key_extractor(mut self, extractor: $crate::limits::KeyExtractor) -> Self {
            self.settings.set_key(extractor);
            self
        }

        /// Counts requests without a key under `key`, all together. Without this (the default)
        /// such requests pass without limit and without limit headers.
        pub fn anonymous_key(mut self, key: &str) -> Self {
            self.settings.set_anonymous_key(key);
            self
        }

        #[doc = concat!("Keeps the state in `store` (e.g. ", $store_example, ") instead of memory.")]
        pub fn with_store(self, store: impl $store) -> Self {
            self.with_shared_store(::std::sync::Arc::new(store))
        }

        /// Keeps the state in an already shared store (several layers may share one).
        pub fn with_shared_store(mut self, store: ::std::sync::Arc<dyn $store>) -> Self {
            self.settings.set_store(store);
            self
        }

        /// What to do when the store fails (default
        /// [`FailurePolicy::Open`](crate::limits::FailurePolicy::Open)).
        pub fn failure_policy(mut self, policy: $crate::limits::FailurePolicy) -> Self {
            self.settings.set_failure_policy(policy);
            self
        }

        #[doc = concat!(
            "Names the policy in the headers and in `violated-policies` (default `",
            $default_policy,
            "`).\n\n# Errors\n\n",
            "[`ConfigError::PolicyName`](crate::limits::ConfigError::PolicyName) unless the name ",
            "is 1–64 characters of `a-z0-9-_.`."
        )]
        pub fn policy_name(mut self, name: &str) -> Result<Self, $crate::limits::ConfigError> {
            self.settings.set_policy_name(name)?;
            Ok(self)
        }

        /// The store.
        pub fn store(&self) -> &::std::sync::Arc<dyn $store> {
            self.settings.store()
        }

        /// The fail-open counter, shared with every service built from this layer, for a metric.
        pub fn fail_open_counter(&self) -> &$crate::limits::FailOpenCounter {
            self.settings.fail_open_counter()
        }

        /// Requests let through so far because the store failed.
        pub fn fail_open_total(&self) -> u64 {
            self.settings.fail_open_counter().get()
        }

        /// The decisions of every service built from this layer (allowed, rejected,
        /// unavailable), counted as they are made, for a metric.
        pub fn decisions(&self) -> &$crate::limits::LimitDecisions {
            self.settings.decisions()
        }
    };
}

pub(crate) use limit_settings_methods;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{AuthenticatedClient, Scopes};

    #[derive(Debug)]
    struct NoStore;

    type Settings = LimitSettings<NoStore, String>;

    fn settings() -> Settings {
        LimitSettings::new(Arc::new(NoStore), "default", "test")
    }

    #[test]
    fn every_setter_forgets_the_built_state() {
        let mut s = settings();
        let setters: [&dyn Fn(&mut Settings); 5] = [
            &|s| s.set_key(KeyExtractor::client_id()),
            &|s| s.set_anonymous_key("anon"),
            &|s| s.set_store(Arc::new(NoStore)),
            &|s| s.set_failure_policy(FailurePolicy::Closed),
            &|s| s.set_policy_name("renamed").unwrap(),
        ];
        for (i, set) in setters.iter().enumerate() {
            let before = s.shared(|p| format!("{i}:{}", p.policy));
            assert!(Arc::ptr_eq(&before, &s.shared(|_| unreachable!())));
            set(&mut s);
            let after = s.shared(|p| format!("{i}:{}", p.policy));
            assert!(!Arc::ptr_eq(&before, &after), "setter {i}");
        }
        assert_eq!(*s.shared(|_| unreachable!()), "4:renamed");
    }

    #[test]
    fn an_invalid_policy_name_changes_nothing() {
        let mut s = settings();
        let built = s.shared(|p| p.policy.to_string());
        assert!(s.set_policy_name("Not Valid").is_err());
        assert_eq!(s.policy(), "default");
        assert!(Arc::ptr_eq(&built, &s.shared(|_| unreachable!())));
    }

    #[test]
    fn the_anonymous_key_applies_only_without_a_key() {
        let mut s = settings();
        let keyed = Request::builder()
            .extension(AuthenticatedClient::new("acme", Scopes::all()))
            .body(())
            .unwrap();
        let anonymous = Request::new(());
        assert!(s.prepare().key(&anonymous).is_none());
        s.set_anonymous_key("anon");
        let prepared = s.prepare();
        assert_eq!(prepared.key(&keyed).as_deref(), Some("acme"));
        assert_eq!(prepared.key(&anonymous).as_deref(), Some("anon"));
    }

    #[test]
    fn store_failures_follow_the_failure_policy() {
        let mut s = settings();
        let error = StoreError::Timeout;
        let open = s.prepare();
        assert!(
            open.store_failed::<Bytes>(&error, &Extensions::new())
                .is_none()
        );
        assert_eq!(s.fail_open_counter().get(), 1);
        assert_eq!(s.decisions().by_outcome()[0], ("allowed", 1));
        s.set_failure_policy(FailurePolicy::Closed);
        let res = s
            .prepare()
            .store_failed::<Bytes>(&error, &Extensions::new())
            .expect("fail-closed answers");
        assert_eq!(res.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(s.fail_open_counter().get(), 1);
        assert_eq!(
            s.decisions().by_outcome(),
            [("allowed", 1), ("rejected", 0), ("unavailable", 1)]
        );
    }
}
