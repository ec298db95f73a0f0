//! End to end: the SDK against a real `l2c-server` on 127.0.0.1:0.

use http::StatusCode;
use l2c_client::{Client, Error};
use l2c_core::Scopes;
use l2c_server::testing::{Backend, TestServer};

fn sdk(server: &TestServer, id: &str, secret: &str) -> Client {
    Client::builder()
        .base_url(&server.base_url)
        .credentials(id, secret)
        .http_client(
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("reqwest"),
        )
        .build()
        .expect("client")
}

#[tokio::test]
async fn the_sdk_gets_a_token_and_the_server_accepts_it() {
    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        let app = server.create_client(Scopes::all()).await;
        let client = sdk(&server, &app.id, &app.secret);

        client
            .authenticate()
            .await
            .expect("token from the real endpoint");

        // The bearer token passes the JWT layer: the answer is the route's 404, not a 401.
        let err = client
            .customers()
            .get("cus_does_not_exist")
            .send()
            .await
            .expect_err("no such customer");
        assert_eq!(err.status(), Some(StatusCode::NOT_FOUND), "{err:?}");
        assert!(err.request_id().is_some(), "{err:?}");

        server.stop().await;
    }
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error_with_the_oauth_code() {
    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        let app = server.create_client(Scopes::all()).await;
        let client = sdk(&server, &app.id, "not-the-secret-not-the-secret-000");

        let err = client.authenticate().await.expect_err("refused");
        match &err {
            Error::Auth { status, error } => {
                assert_eq!(*status, StatusCode::UNAUTHORIZED);
                assert_eq!(error.error.as_str(), "invalid_client");
            }
            other => panic!("expected Error::Auth, got {other:?}"),
        }
        server.stop().await;
    }
}
