use std::convert::Infallible;

use http::{Request, Response, StatusCode};
use tower::ServiceExt;
use tower_layer::Layer;

use super::*;
use crate::Problem;

fn refusing(
    status: StatusCode,
    retry_after: Option<&'static str>,
) -> impl tower_service::Service<
    Request<Vec<u8>>,
    Response = Response<Vec<u8>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(move |_req: Request<Vec<u8>>| async move {
        let mut res = Problem::new(status, "x", "X").into_response::<Vec<u8>>();
        if let Some(s) = retry_after {
            res.headers_mut().insert("retry-after", s.parse().unwrap());
        }
        Ok::<_, Infallible>(res)
    })
}

fn request(content_type: &str) -> Request<Vec<u8>> {
    Request::builder()
        .header("content-type", content_type)
        .body(Vec::new())
        .unwrap()
}

#[tokio::test]
async fn refusals_of_grpc_requests_become_grpc_statuses() {
    for (status, code) in [
        (StatusCode::UNAUTHORIZED, "16"),
        (StatusCode::FORBIDDEN, "7"),
        (StatusCode::TOO_MANY_REQUESTS, "8"),
        (StatusCode::CONFLICT, "6"),
        (StatusCode::BAD_REQUEST, "3"),
        (StatusCode::SERVICE_UNAVAILABLE, "14"),
    ] {
        let svc = GrpcRefusalLayer::new().layer(refusing(status, Some("2")));
        let res = svc.oneshot(request("application/grpc")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{status}");
        assert_eq!(res.headers()["content-type"], "application/grpc");
        assert_eq!(res.headers()["grpc-status"], code, "{status}");
        assert_eq!(res.headers()["retry-after"], "2");
        let message = res.headers()["grpc-message"].to_str().unwrap();
        assert!(message.contains("retry after 2 s"), "{message}");
        assert!(res.body().is_empty(), "Trailers-Only: no body");
    }
}

#[tokio::test]
async fn plain_http_keeps_its_problem() {
    let svc = GrpcRefusalLayer::new().layer(refusing(StatusCode::TOO_MANY_REQUESTS, Some("1")));
    let res = svc.oneshot(request("application/json")).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert!(res.headers().get("grpc-status").is_none());
}

#[tokio::test]
async fn answers_of_the_grpc_service_pass_through() {
    let ok = tower::service_fn(|_req: Request<Vec<u8>>| async {
        let mut res = Response::new(b"payload".to_vec());
        res.headers_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        Ok::<_, Infallible>(res)
    });
    let res = GrpcRefusalLayer::new()
        .layer(ok)
        .oneshot(request("application/grpc+proto"))
        .await
        .unwrap();
    assert_eq!(res.body(), b"payload");
    assert!(res.headers().get("grpc-status").is_none());
}

#[test]
fn grpc_content_types() {
    let h = |ct: &str| {
        let mut m = http::HeaderMap::new();
        m.insert("content-type", ct.parse().unwrap());
        m
    };
    assert!(is_grpc(&h("application/grpc")));
    assert!(is_grpc(&h("application/grpc+proto")));
    assert!(is_grpc(&h("Application/GRPC; charset=utf-8")));
    assert!(!is_grpc(&h("application/grpc-web")));
    assert!(!is_grpc(&h("application/json")));
    assert!(!is_grpc(&http::HeaderMap::new()));
}

#[test]
fn messages_are_percent_encoded() {
    assert_eq!(percent_encode("a b%c\u{e9}"), "a b%25c%C3%A9");
}
