//! The revocation hook of [`JwtAuthLayer`](super::JwtAuthLayer): whether the client of a
//! validly signed token may still use it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::identity::AuthenticatedClient;

/// Whether the client a verified token was issued to may still use it (not revoked, disabled or
/// deleted), asked by [`JwtAuthLayer`](super::JwtAuthLayer) right after the signature and
/// claims are checked, before anything inside the layer runs.
///
/// A refused client gets the layer's own 401 `invalid_token` answer — the same challenge, body
/// and [`NotExecuted`](crate::NotExecuted) mark as an expired token, so a caller learns nothing
/// more — with [`AuthRejection::Revoked`](super::AuthRejection::Revoked) in the response
/// extensions for logs.
///
/// `check` runs on every authenticated request: answer from memory
/// ([`RevocationCheck::Active`] / [`RevocationCheck::Revoked`]) and reach for I/O only for a
/// client not known yet ([`RevocationCheck::lookup`]); the layer then waits for the lookup before
/// calling the inner service. Any `Fn(&AuthenticatedClient) -> RevocationCheck` is a hook.
///
/// ```
/// use std::collections::HashSet;
/// use std::sync::Arc;
/// use http::{Request, Response, StatusCode};
/// use l2c_core::auth::{HmacKey, JwtAuthLayer, RevocationCheck, SigningKey, TokenIssuer, TokenVerifier};
/// use l2c_core::{AuthenticatedClient, ClientId, NotExecuted, Scope, Scopes};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let key = HmacKey::generate();
/// let issuer = TokenIssuer::new("https://l2c.example", "l2c", SigningKey::Hmac(key.clone(), None));
/// let verifier = TokenVerifier::builder("https://l2c.example", "l2c").hmac_key(key).build().unwrap();
///
/// let known: HashSet<&str> = ["erp-1", "crm-2"].into();
/// let disabled: HashSet<&str> = ["crm-2"].into();
/// let hook = move |client: &AuthenticatedClient| {
///     let id = client.client_id.as_str();
///     if disabled.contains(id) {
///         RevocationCheck::Revoked
///     } else if known.contains(id) {
///         RevocationCheck::Active
///     } else {
///         // Not seen yet: ask the database (here, a client created a moment ago).
///         let created_since = id == "new-3";
///         RevocationCheck::lookup(async move { created_since })
///     }
/// };
/// let svc = ServiceBuilder::new()
///     .layer(JwtAuthLayer::new(Arc::new(verifier)).with_revocation(hook))
///     .service(service_fn(|_req: Request<String>| async {
///         Ok::<_, std::convert::Infallible>(Response::new(Vec::<u8>::new()))
///     }));
///
/// let call = |client: &str| {
///     let token = issuer.issue(&ClientId::new(client), Scopes::one(Scope::OrdersRead)).access_token;
///     let req = Request::builder().header("authorization", format!("Bearer {token}")).body(String::new()).unwrap();
///     svc.clone().oneshot(req)
/// };
/// assert_eq!(call("erp-1").await.unwrap().status(), StatusCode::OK);
/// assert_eq!(call("new-3").await.unwrap().status(), StatusCode::OK);
/// for refused in ["crm-2", "deleted-4"] {
///     let res = call(refused).await.unwrap();
///     assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
///     assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="l2c", error="invalid_token""#);
///     assert!(res.extensions().get::<NotExecuted>().is_some());
/// }
/// # }
/// ```
pub trait Revocation: Send + Sync + 'static {
    /// Whether `client` (verified claims: `sub` and scopes) may use its token.
    fn check(&self, client: &AuthenticatedClient) -> RevocationCheck;
}

impl<F> Revocation for F
where
    F: Fn(&AuthenticatedClient) -> RevocationCheck + Send + Sync + 'static,
{
    fn check(&self, client: &AuthenticatedClient) -> RevocationCheck {
        self(client)
    }
}

/// The answer of a [`Revocation`] hook.
#[non_exhaustive]
pub enum RevocationCheck {
    /// The client may use the token: the request goes on.
    Active,
    /// The client's tokens are refused (revoked, disabled, deleted): 401 `invalid_token`.
    Revoked,
    /// Not known from memory: the layer waits for this lookup (`true`: active) before calling
    /// the inner service. Built by [`RevocationCheck::lookup`].
    Lookup(Pin<Box<dyn Future<Output = bool> + Send + 'static>>),
}

impl RevocationCheck {
    /// A lookup resolving to whether the client is active.
    pub fn lookup(future: impl Future<Output = bool> + Send + 'static) -> Self {
        Self::Lookup(Box::pin(future))
    }
}

impl fmt::Debug for RevocationCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Active => "Active",
            Self::Revoked => "Revoked",
            Self::Lookup(_) => "Lookup(..)",
        })
    }
}
