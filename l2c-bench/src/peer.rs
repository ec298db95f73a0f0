//! The stack users would assemble instead of l2c: `tower_governor` keyed by peer IP in front of
//! a typical `jsonwebtoken` HS256 bearer middleware written with `axum::middleware::from_fn`,
//! the way the axum JWT examples and most blog posts do it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use http::StatusCode;
use http::header::AUTHORIZATION;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tower::ServiceBuilder;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;

use crate::{AUDIENCE, BoxError, CLIENT_ID, ISSUER, SCOPE, Stacked};

/// The claims the middleware checks and hands to handlers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    iss: String,
    aud: String,
    sub: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    scope: String,
}

/// A token the peer middleware accepts, valid from `now` for `lifetime`.
pub fn issue_token(secret: &[u8], now: u64, lifetime: Duration) -> Result<String, BoxError> {
    let claims = Claims {
        iss: ISSUER.to_owned(),
        aud: AUDIENCE.to_owned(),
        sub: CLIENT_ID.to_owned(),
        iat: now,
        nbf: now,
        exp: now + lifetime.as_secs(),
        scope: SCOPE.as_str().to_owned(),
    };
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )?;
    Ok(token)
}

struct Keys {
    decoding: DecodingKey,
    validation: Validation,
}

/// Bearer middleware: 401 unless the token verifies; the claims go into the extensions.
async fn require_bearer(
    State(keys): State<Arc<Keys>>,
    mut req: Request,
    next: Next,
) -> Result<Response, StatusCode> {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let data = jsonwebtoken::decode::<Claims>(token, &keys.decoding, &keys.validation)
        .map_err(|_| StatusCode::UNAUTHORIZED)?;
    req.extensions_mut().insert(data.claims);
    Ok(next.run(req).await)
}

/// `router` behind tower_governor (outermost, keyed by peer IP) and the bearer middleware,
/// wrapped around the router as a whole (see [`crate::Stacked`]).
///
/// With `reject_all` the quota is one request per hour, so after the first request every
/// request is a 429; otherwise it is far above what one core can serve, so nothing is rejected.
/// The service must be served with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn stack(router: Router, secret: &[u8], reject_all: bool) -> Result<impl Stacked, BoxError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    let keys = Arc::new(Keys {
        decoding: DecodingKey::from_secret(secret),
        validation,
    });

    let mut builder = GovernorConfigBuilder::default();
    if reject_all {
        builder.per_second(3600).burst_size(1);
    } else {
        builder.per_nanosecond(1).burst_size(1_000_000);
    }
    let config = builder.finish().ok_or("invalid governor quota")?;

    Ok(ServiceBuilder::new()
        .layer(GovernorLayer::new(config))
        .layer(middleware::from_fn_with_state(keys, require_bearer))
        .service(router))
}
