//! Extractors whose rejections are problem+json responses naming the offending field.
//!
//! Drop-in replacements for axum's [`axum::Json`], [`axum::extract::Path`] and
//! [`axum::extract::Query`]: same behaviour, but a malformed body or parameter becomes an
//! [`AppError`] with a stable `code` and a `detail` that says which field was wrong. Rejections
//! are [`Refused`]: their responses carry
//! [`NotExecuted`](l2c_core::idempotency::NotExecuted), so the idempotency layer never records a
//! request the handler did not run.
//!
//! | rejection | status | `code` |
//! |---|---|---|
//! | body is not JSON / truncated | 400 | `malformed_json` |
//! | JSON of the wrong shape (missing field, wrong type, unknown enum value) | 422 | `invalid_body` |
//! | no `Content-Type: application/json` | 415 | `unsupported_media_type` |
//! | body over the size limit | 413 | `payload_too_large` |
//! | bad path parameter | 400 | `invalid_path_parameter` |
//! | bad query parameter | 400 | `invalid_query_parameter` |

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use l2c_core::Problem;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::AppError;
use crate::routes::body::Refused;

/// A JSON body (request) or JSON response; rejections are problem+json.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Refused;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(json_rejection(&rejection).into()),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_rejection(rejection: &JsonRejection) -> Problem {
    let text = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "Invalid request body",
        )
        .with_detail(strip_prefix(&text)),
        JsonRejection::JsonSyntaxError(_) => {
            Problem::bad_request("malformed_json", strip_prefix(&text))
        }
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported Media Type",
        )
        .with_detail("send the body with `Content-Type: application/json`"),
        JsonRejection::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload Too Large",
            )
            .with_detail("the request body is larger than this route accepts")
        }
        _ => Problem::bad_request("invalid_body", "the request body could not be read"),
    }
}

/// axum's messages start with a generic sentence; keep what names the field.
fn strip_prefix(text: &str) -> String {
    for prefix in [
        "Failed to deserialize the JSON body into the target type: ",
        "Failed to parse the request body as JSON: ",
        "Failed to deserialize query string: ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
    text.to_owned()
}

/// Path parameters; rejections are 400 problem+json naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(rejection) => Err(path_rejection(&rejection).into()),
        }
    }
}

fn path_rejection(rejection: &PathRejection) -> AppError {
    if rejection.status().is_server_error() {
        // A route/extractor mismatch is a programming error, not the caller's.
        return AppError::internal(format!("path extraction: {}", rejection.body_text()));
    }
    let text = rejection.body_text();
    let detail = text
        .strip_prefix("Invalid URL: ")
        .unwrap_or(&text)
        .to_owned();
    Problem::bad_request("invalid_path_parameter", detail).into()
}

/// Query parameters; rejections are 400 problem+json naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(rejection) => Err(query_rejection(&rejection).into()),
        }
    }
}

fn query_rejection(rejection: &QueryRejection) -> Problem {
    Problem::bad_request(
        "invalid_query_parameter",
        strip_prefix(&rejection.body_text()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::{get, post};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Body1 {
        name: String,
        count: u32,
    }

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    #[serde(rename_all = "camelCase")]
    struct Paging {
        page_size: Option<u32>,
    }

    fn router() -> Router {
        Router::new()
            .route("/j", post(|Json(_b): Json<Body1>| async { "ok" }))
            .route("/p/{id}", get(|Path(_id): Path<u64>| async { "ok" }))
            .route("/q", get(|Query(_q): Query<Paging>| async { "ok" }))
    }

    async fn call(req: Request<Body>) -> (StatusCode, serde_json::Value) {
        let res = router().oneshot(req).await.unwrap();
        let status = res.status();
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    fn json(body: &str) -> Request<Body> {
        Request::post("/j")
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    }

    #[tokio::test]
    async fn wrong_json_field_type_is_named() {
        let (status, body) = call(json(r#"{"name":"a","count":"x"}"#)).await;
        assert_eq!(status, 422);
        assert_eq!(body["code"], "invalid_body");
        assert!(body["detail"].as_str().unwrap().contains("count"), "{body}");
    }

    #[tokio::test]
    async fn missing_json_field_is_named() {
        let (_, body) = call(json(r#"{"name":"a"}"#)).await;
        assert!(body["detail"].as_str().unwrap().contains("count"), "{body}");
    }

    #[tokio::test]
    async fn malformed_json_is_400() {
        let (status, body) = call(json(r#"{"name":"#)).await;
        assert_eq!(status, 400);
        assert_eq!(body["code"], "malformed_json");
    }

    #[tokio::test]
    async fn missing_content_type_is_415() {
        let req = Request::post("/j").body(Body::from("{}")).unwrap();
        let (status, body) = call(req).await;
        assert_eq!(status, 415);
        assert_eq!(body["code"], "unsupported_media_type");
    }

    #[tokio::test]
    async fn bad_path_parameter_is_400() {
        let (status, body) = call(Request::get("/p/abc").body(Body::empty()).unwrap()).await;
        assert_eq!(status, 400);
        assert_eq!(body["code"], "invalid_path_parameter");
        assert!(body["detail"].as_str().unwrap().contains("abc"), "{body}");
    }

    #[tokio::test]
    async fn bad_query_parameter_is_named() {
        let req = Request::get("/q?pageSize=big").body(Body::empty()).unwrap();
        let (status, body) = call(req).await;
        assert_eq!(status, 400);
        assert_eq!(body["code"], "invalid_query_parameter");
        assert!(
            body["detail"].as_str().unwrap().contains("pageSize"),
            "{body}"
        );
    }
}
