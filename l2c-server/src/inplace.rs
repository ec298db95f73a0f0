//! Middleware that calls the service it wraps in place.
//!
//! axum's `from_fn` hands the middleware a `Next` that owns the inner service, so it clones the
//! inner service on every request — and under [`Router::layer`](axum::Router::layer) the inner
//! service is the whole route: every layer below, the handler and its state, one boxed clone
//! per boxed level. [`InPlaceLayer`] runs an [`Around`] instead, which calls the inner service it
//! is given by reference (after `poll_ready`, as tower asks) and works on its future. The
//! outer middleware of [`crate::app`] (request log and metrics, `requestId` in problems, the
//! body timeout, deprecations) runs this way.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

/// The future of an [`InPlace`] service.
pub type InPlaceFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// What an [`Around`] middleware wraps: an axum route (any service answering a request with
/// something that becomes a response, never failing), named once for every middleware.
pub trait Route:
    Service<Request, Response: IntoResponse, Error: Into<Infallible>, Future: Send + 'static>
    + Clone
    + Send
    + 'static
{
}

impl<S> Route for S where
    S: Service<Request, Response: IntoResponse, Error: Into<Infallible>, Future: Send + 'static>
        + Clone
        + Send
        + 'static
{
}

/// A middleware in the shape [`InPlaceLayer`] runs.
pub trait Around: Clone + Send + Sync + 'static {
    /// Answers `req`, calling `inner` — ready — at most once (with [`call`]), or answering
    /// without it.
    fn around<S: Route>(&self, inner: &mut S, req: Request) -> InPlaceFuture;
}

/// Calls the ready `inner` with `req`; its response, as a [`Response`].
pub fn call<S: Route>(
    inner: &mut S,
    req: Request,
) -> impl Future<Output = Response> + Send + 'static {
    let future = inner.call(req);
    async move {
        match future.await {
            Ok(res) => res.into_response(),
            Err(e) => match e.into() {},
        }
    }
}

/// Wraps a service in the [`Around`] middleware `M`.
#[derive(Debug, Clone)]
pub struct InPlaceLayer<M>(pub M);

impl<S, M: Clone> Layer<S> for InPlaceLayer<M> {
    type Service = InPlace<S, M>;

    fn layer(&self, inner: S) -> InPlace<S, M> {
        InPlace {
            inner,
            middleware: self.0.clone(),
        }
    }
}

/// The service of [`InPlaceLayer`].
#[derive(Debug, Clone)]
pub struct InPlace<S, M> {
    inner: S,
    middleware: M,
}

impl<S: Route, M: Around> Service<Request> for InPlace<S, M> {
    type Response = Response;
    type Error = Infallible;
    type Future = InPlaceFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request) -> InPlaceFuture {
        self.middleware.around(&mut self.inner, req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::ServiceExt;

    /// Adds a header after the inner service answered.
    #[derive(Clone)]
    struct Stamp;

    impl Around for Stamp {
        fn around<S: Route>(&self, inner: &mut S, req: Request) -> InPlaceFuture {
            let answer = call(inner, req);
            Box::pin(async move {
                let mut res = answer.await;
                res.headers_mut()
                    .insert("x-stamp", http::HeaderValue::from_static("1"));
                Ok(res)
            })
        }
    }

    /// The inner service answers through the middleware and is cloned by nobody.
    #[tokio::test]
    async fn the_inner_service_is_called_in_place() {
        /// Counts its clones.
        struct Counted(Arc<AtomicUsize>);
        impl Clone for Counted {
            fn clone(&self) -> Self {
                self.0.fetch_add(1, Ordering::Relaxed);
                Counted(Arc::clone(&self.0))
            }
        }
        impl Service<Request> for Counted {
            type Response = Response;
            type Error = Infallible;
            type Future = std::future::Ready<Result<Response, Infallible>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: Request) -> Self::Future {
                std::future::ready(Ok(Response::new(axum::body::Body::empty())))
            }
        }
        let clones = Arc::new(AtomicUsize::new(0));
        let counted = Counted(Arc::clone(&clones));
        let mut svc = InPlaceLayer(Stamp).layer(counted);
        let res = svc
            .ready()
            .await
            .unwrap()
            .call(Request::new(axum::body::Body::empty()))
            .await
            .unwrap();
        assert_eq!(res.headers()["x-stamp"], "1");
        assert_eq!(
            clones.load(Ordering::Relaxed),
            0,
            "no clone of the inner service"
        );
    }
}
