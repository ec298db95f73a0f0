//! Unit tests of the revocation hook of `JwtAuthLayer`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use tower::{Layer, ServiceExt, service_fn};

use super::*;
use crate::identity::{AuthenticatedClient, ClientId, Scope, Scopes};
use crate::{NotExecuted, RequestId};

fn pair() -> (TokenIssuer, Arc<TokenVerifier>) {
    let key = HmacKey::new([9u8; 32]).unwrap();
    let issuer = TokenIssuer::new("iss", "aud", SigningKey::Hmac(key.clone(), None));
    let verifier = TokenVerifier::builder("iss", "aud")
        .hmac_key(key)
        .build()
        .unwrap();
    (issuer, Arc::new(verifier))
}

fn request(token: &str) -> Request<()> {
    let mut req = Request::builder()
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap();
    req.extensions_mut().insert(RequestId::new("req-7"));
    req
}

/// A handler answering with the authenticated client's id; counts its calls.
fn echo(
    calls: Arc<AtomicUsize>,
) -> impl tower::Service<Request<()>, Response = Response<Bytes>, Error = Infallible, Future = impl Send>
+ Clone
+ Send
+ 'static {
    service_fn(move |req: Request<()>| {
        calls.fetch_add(1, Ordering::SeqCst);
        let id = req
            .extensions()
            .get::<AuthenticatedClient>()
            .map(|c| c.client_id.to_string())
            .unwrap_or_default();
        async move { Ok::<_, Infallible>(Response::new(Bytes::from(id))) }
    })
}

/// A refusal by the hook is indistinguishable from a bad token to the caller: same status,
/// challenge, cache header and body; only the logged reason differs.
#[tokio::test]
async fn a_revoked_client_gets_exactly_the_invalid_token_answer() {
    let (issuer, verifier) = pair();
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = JwtAuthLayer::new(verifier)
        .realm("crm")
        .with_revocation(|_: &AuthenticatedClient| RevocationCheck::Revoked);
    let svc = layer.layer(echo(Arc::clone(&calls)));
    let token = issuer
        .issue(&ClientId::new("gone"), Scopes::all())
        .access_token;

    let revoked = svc.clone().oneshot(request(&token)).await.unwrap();
    let forged = svc.oneshot(request(&format!("{token}x"))).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    for res in [&revoked, &forged] {
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers()["www-authenticate"],
            r#"Bearer realm="crm", error="invalid_token""#
        );
        assert_eq!(res.headers()["cache-control"], "no-store");
        assert!(res.extensions().get::<NotExecuted>().is_some());
    }
    assert_eq!(revoked.body(), forged.body());
    let body: serde_json::Value = serde_json::from_slice(revoked.body()).unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["requestId"], "req-7");
    assert_eq!(
        revoked.extensions().get::<AuthRejection>(),
        Some(&AuthRejection::Revoked)
    );
}

/// The hook sees the verified claims only: not for a missing or bad token, and with the
/// token's client and scopes otherwise.
#[tokio::test]
async fn the_hook_is_asked_only_about_verified_tokens() {
    let (issuer, verifier) = pair();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook = {
        let seen = Arc::clone(&seen);
        move |client: &AuthenticatedClient| {
            seen.lock().unwrap().push(client.clone());
            RevocationCheck::Active
        }
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = JwtAuthLayer::new(verifier)
        .with_revocation(hook)
        .layer(echo(Arc::clone(&calls)));
    let token = issuer
        .issue(&ClientId::new("erp-1"), Scopes::one(Scope::OrdersRead))
        .access_token;

    let res = svc.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = svc.clone().oneshot(request("a.b.c")).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(seen.lock().unwrap().is_empty());

    let res = svc.oneshot(request(&token)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.body(), "erp-1");
    assert_eq!(
        *seen.lock().unwrap(),
        [AuthenticatedClient::new(
            "erp-1",
            Scopes::one(Scope::OrdersRead)
        )]
    );
}

/// A lookup holds the request until it answers: the inner service runs after a `true`, never
/// after a `false`, and the lookup runs once per request.
#[tokio::test]
async fn a_lookup_decides_before_the_inner_service_runs() {
    let (issuer, verifier) = pair();
    let lookups = Arc::new(AtomicUsize::new(0));
    let hook = {
        let lookups = Arc::clone(&lookups);
        move |client: &AuthenticatedClient| {
            let lookups = Arc::clone(&lookups);
            let exists = client.client_id.as_str() == "new-1";
            RevocationCheck::lookup(async move {
                tokio::task::yield_now().await;
                lookups.fetch_add(1, Ordering::SeqCst);
                exists
            })
        }
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = JwtAuthLayer::new(verifier)
        .with_revocation(hook)
        .layer(echo(Arc::clone(&calls)));
    let issue = |id: &str| issuer.issue(&ClientId::new(id), Scopes::all()).access_token;

    let res = svc.clone().oneshot(request(&issue("new-1"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.body(), "new-1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let res = svc.oneshot(request(&issue("deleted-2"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.extensions().get::<AuthRejection>(),
        Some(&AuthRejection::Revoked)
    );
    assert!(res.extensions().get::<NotExecuted>().is_some());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(lookups.load(Ordering::SeqCst), 2);
}

#[test]
fn the_layer_debug_shows_whether_a_hook_is_set_and_nothing_else() {
    let (_, verifier) = pair();
    let plain = format!("{:?}", JwtAuthLayer::new(Arc::clone(&verifier)));
    assert!(plain.contains("revocation: false"), "{plain}");
    let hooked = format!(
        "{:?}",
        JwtAuthLayer::new(verifier)
            .with_revocation(|_: &AuthenticatedClient| RevocationCheck::Active)
    );
    assert!(hooked.contains("revocation: true"), "{hooked}");
    assert_eq!(
        format!("{:?}", RevocationCheck::lookup(async { true })),
        "Lookup(..)"
    );
}
