use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use tower_service::Service;

use super::Deprecation;
use super::config::imf_fixdate;
use super::future::ResponseFuture;
use crate::problem::Problem;

/// The service made by [`DeprecationLayer`](super::DeprecationLayer).
///
/// Before the sunset it calls the inner service unchanged and adds `Deprecation`, `Sunset` and
/// the configured `Link`s to the response (also to error responses). From the sunset on it
/// answers `410 Gone` problem+json (code `api_version_sunset`, with a `successor` member when a
/// successor is configured) carrying the same headers, without calling the inner service.
#[derive(Debug, Clone)]
pub struct Deprecated<S> {
    pub(super) inner: S,
    pub(super) config: Arc<Deprecation>,
}

impl<S> Deprecated<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Deprecated<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let config = Arc::clone(&self.config);
        if config.is_sunset() {
            let mut problem = Problem::new(StatusCode::GONE, "api_version_sunset", "Gone")
                .with_detail(match &config.successor {
                    Some(next) => format!(
                        "This API version was retired on {}; use {next} instead.",
                        imf_fixdate(config.sunset_at)
                    ),
                    None => format!(
                        "This API version was retired on {}.",
                        imf_fixdate(config.sunset_at)
                    ),
                })
                .with_request_id_from(req.extensions());
            if let Some(next) = &config.successor {
                problem = problem.with_extension("successor", next.clone());
            }
            return ResponseFuture::gone(problem.into_response(), config);
        }
        ResponseFuture::inner(self.inner.call(req), config)
    }
}
