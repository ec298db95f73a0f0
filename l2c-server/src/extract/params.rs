//! Path and query parameters.

use axum::extract::FromRequestParts;
use axum::extract::rejection::{PathRejection, QueryRejection};
use http::request::Parts;
use l2c_core::Problem;
use serde::de::DeserializeOwned;

use super::Refused;
use crate::domain::FieldError;
use crate::error::AppError;

/// axum's messages start with a generic sentence; keep what names the field.
fn strip_prefix(text: &str) -> String {
    for prefix in ["Failed to deserialize query string: "] {
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

/// 400 `invalid_query_parameter` naming the parameter.
pub fn invalid_query(err: &FieldError) -> Problem {
    Problem::bad_request("invalid_query_parameter", err.to_string())
        .with_extension("field", err.field.clone())
}

/// Picks the values of `names` from a raw query string: each at most once (a second one is
/// refused, naming it), other parameters ignored. Parsed by hand rather than by a `Query`
/// extractor so that every refusal names its parameter.
pub(crate) fn query_params<const N: usize>(
    raw: Option<&str>,
    names: [&str; N],
) -> Result<[Option<String>; N], FieldError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|_| FieldError::new("query", "is not a valid query string"))?;
    let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
    for (k, v) in pairs {
        let Some(i) = names.iter().position(|n| *n == k) else {
            continue;
        };
        if values[i].is_some() {
            return Err(FieldError::new(k, "must be given at most once"));
        }
        values[i] = Some(v);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Json;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::routing::{get, post};
    use http::StatusCode;
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
