//! Marking route prefixes deprecated from the command line (spec §6, RFC 9745, RFC 8594).
//!
//! `--deprecate PREFIX=DEPRECATED,SUNSET[,SUCCESSOR]` (repeatable; `L2C_DEPRECATE` takes several
//! separated by `;`) wraps every route under `PREFIX` in l2c-core's
//! [`l2c_core::deprecation::DeprecationLayer`]: responses carry
//! `Deprecation: @<epoch>`, `Sunset` and, with a successor, `Link: <…>; rel="successor-version"`;
//! from the sunset on the routes answer `410 Gone`. Dates are `YYYY-MM-DD` (midnight UTC) or
//! RFC 3339; a sunset less than six months after the deprecation is refused at startup.
//!
//! ```
//! use l2c_server::deprecate::DeprecateRule;
//!
//! let rule: DeprecateRule = "/api/v1/showroom=2026-12-01,2027-06-02,/api/v2/showroom"
//!     .parse()
//!     .unwrap();
//! assert!(rule.matches("/api/v1/showroom/items"));
//! assert!(!rule.matches("/api/v1/showroomx"));
//! assert!("/api/v1=2026-12-01,2027-01-01".parse::<DeprecateRule>().is_err()); // < 6 months
//! ```

use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use l2c_core::deprecation::{ConfigError, Deprecation, DeprecationLayer};
use tower::{Layer, ServiceExt};

/// One deprecated route prefix.
#[derive(Debug, Clone)]
pub struct DeprecateRule {
    prefix: String,
    deprecation: Deprecation,
    /// Built once here, not on every request under the prefix.
    layer: DeprecationLayer,
}

/// Why a `--deprecate` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeprecateRuleError {
    /// Not `PREFIX=DEPRECATED,SUNSET[,SUCCESSOR]`.
    #[error(
        "expected PREFIX=DEPRECATED,SUNSET[,SUCCESSOR], e.g. /api/v1/showroom=2026-12-01,2027-06-02,/api/v2/showroom"
    )]
    Syntax,
    /// The prefix is not an absolute path.
    #[error("the prefix must start with `/`")]
    Prefix,
    /// A date that is neither `YYYY-MM-DD` nor RFC 3339.
    #[error("`{0}` is not a date (YYYY-MM-DD or RFC 3339)")]
    Date(String),
    /// The layer refused the dates or the successor (e.g. a sunset under six months away).
    #[error(transparent)]
    Layer(#[from] ConfigError),
}

fn parse_date(s: &str) -> Result<DateTime<Utc>, DeprecateRuleError> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| DeprecateRuleError::Date(s.to_owned()))
}

impl FromStr for DeprecateRule {
    type Err = DeprecateRuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (prefix, rest) = s.split_once('=').ok_or(DeprecateRuleError::Syntax)?;
        let prefix = prefix.trim().trim_end_matches('/');
        if !prefix.starts_with('/') {
            return Err(DeprecateRuleError::Prefix);
        }
        let parts: Vec<&str> = rest.split(',').map(str::trim).collect();
        let (deprecated, sunset, successor) = match parts.as_slice() {
            [d, s] => (*d, *s, None),
            [d, s, succ] => (*d, *s, Some(*succ)),
            _ => return Err(DeprecateRuleError::Syntax),
        };
        let mut deprecation = Deprecation::new(parse_date(deprecated)?, parse_date(sunset)?)?;
        if let Some(succ) = successor {
            deprecation = deprecation.successor(succ)?;
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            layer: DeprecationLayer::new(deprecation.clone()),
            deprecation,
        })
    }
}

impl DeprecateRule {
    /// Whether `path` is the prefix or lies under it (whole segments only).
    pub fn matches(&self, path: &str) -> bool {
        path.strip_prefix(self.prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The deprecation applied under the prefix.
    pub fn deprecation(&self) -> &Deprecation {
        &self.deprecation
    }
}

/// Middleware: runs requests under a deprecated prefix through its [`DeprecationLayer`] (the
/// first matching rule wins); others pass untouched.
pub async fn apply(
    State(rules): State<Arc<[DeprecateRule]>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    match rules.iter().find(|r| r.matches(path)) {
        Some(rule) => {
            let svc = rule.layer.layer(next);
            match svc.oneshot(req).await {
                Ok(res) => res,
                Err(never) => match never {},
            }
        }
        None => next.run(req).await,
    }
}

/// [`apply`] as an [`Around`](crate::inplace::Around) middleware, which [`crate::app`] runs
/// without cloning the route it wraps — unless a rule matches, whose layer then wraps a clone.
#[derive(Debug, Clone)]
pub struct Deprecations(pub Arc<[DeprecateRule]>);

impl crate::inplace::Around for Deprecations {
    fn around<S: crate::inplace::Route>(
        &self,
        inner: &mut S,
        req: Request,
    ) -> crate::inplace::InPlaceFuture {
        let path = req.uri().path();
        match self.0.iter().find(|r| r.matches(path)) {
            Some(rule) => {
                let svc = rule.layer.layer(
                    tower::ServiceBuilder::new()
                        .map_response(axum::response::IntoResponse::into_response)
                        .map_err(Into::<std::convert::Infallible>::into)
                        .service(inner.clone()),
                );
                Box::pin(async move {
                    match svc.oneshot(req).await {
                        Ok(res) => Ok(res),
                        Err(never) => match never {},
                    }
                })
            }
            None => {
                let answer = crate::inplace::call(inner, req);
                Box::pin(async move { Ok(answer.await) })
            }
        }
    }
}
