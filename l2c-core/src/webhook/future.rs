use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::combinators::Collect;
use http_body_util::{LengthLimitError, Limited};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{ReplayGuard, Verifier, VerifyError};
use crate::problem::Problem;

pin_project! {
    /// The response future of [`VerifyWebhook`](super::VerifyWebhook).
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
        ReqBody: Body,
        ReqBody::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        #[pin]
        state: State<S, ReqBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
        ReqBody: Body,
        ReqBody::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        Collecting {
            #[pin]
            collect: Collect<Limited<ReqBody>>,
            parts: Option<Parts>,
            inner: Option<S>,
            verifier: Arc<Verifier>,
        },
        Calling {
            #[pin]
            future: S::Future,
            pending: Option<Pending>,
        },
        Respond {
            response: Option<S::Response>,
        },
    }
}

impl<S, ReqBody> std::fmt::Debug for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
    ReqBody: Body,
    ReqBody::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// An event id recorded as "being handled"; forgotten on drop unless settled.
struct Pending {
    guard: ReplayGuard,
    id: String,
    armed: bool,
}

impl Pending {
    fn settle(mut self) {
        self.guard.settle(&self.id);
        self.armed = false;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.armed {
            self.guard.forget(&self.id);
        }
    }
}

pub(super) fn reject<B: From<Bytes>>(
    error: &VerifyError,
    extensions: &http::Extensions,
) -> Response<B> {
    if let VerifyError::Duplicate { settled: true } = error {
        let mut response = Response::new(B::from(Bytes::from_static(b"{\"duplicate\":true}")));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response.extensions_mut().insert(error.clone());
        // Answered by the layer: the handler did not run for this delivery.
        response.extensions_mut().insert(crate::NotExecuted);
        return response;
    }
    let mut response: Response<B> = error
        .to_problem()
        .with_request_id_from(extensions)
        .into_response();
    response.extensions_mut().insert(error.clone());
    response.extensions_mut().insert(crate::NotExecuted);
    response
}

impl<S, ReqBody> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
    ReqBody: Body,
    ReqBody::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    pub(super) fn respond(response: S::Response) -> Self {
        Self {
            state: State::Respond {
                response: Some(response),
            },
        }
    }

    pub(super) fn collecting(
        collect: Collect<Limited<ReqBody>>,
        parts: Parts,
        inner: S,
        verifier: Arc<Verifier>,
    ) -> Self {
        Self {
            state: State::Collecting {
                collect,
                parts: Some(parts),
                inner: Some(inner),
                verifier,
            },
        }
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Body + From<Bytes>,
    ReqBody::Error: Into<Box<dyn StdError + Send + Sync>>,
    ResBody: From<Bytes>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Collecting {
                    collect,
                    parts,
                    inner,
                    verifier,
                } => {
                    let collected = ready!(collect.poll(cx));
                    let (Some(mut parts), Some(mut inner)) = (parts.take(), inner.take()) else {
                        // Only reachable if polled again after a panic inside this state.
                        let problem = Problem::internal();
                        this.state.set(State::Respond {
                            response: Some(problem.into_response()),
                        });
                        continue;
                    };
                    let bytes = match collected {
                        Ok(collected) => collected.to_bytes(),
                        Err(err) => {
                            let response = if err.downcast_ref::<LengthLimitError>().is_some() {
                                let error = VerifyError::BodyTooLarge {
                                    limit: verifier.body_limit(),
                                };
                                reject(&error, &parts.extensions)
                            } else {
                                Problem::bad_request(
                                    "unreadable_body",
                                    "The request body could not be read.",
                                )
                                .with_request_id_from(&parts.extensions)
                                .into_response()
                            };
                            this.state.set(State::Respond {
                                response: Some(response),
                            });
                            continue;
                        }
                    };
                    match verifier.verify_with(&parts.headers, &bytes, false) {
                        Ok((event, scheme)) => {
                            let pending = verifier.replay_guard().map(|guard| Pending {
                                guard: guard.clone(),
                                id: event.id.clone(),
                                armed: true,
                            });
                            parts.extensions.insert(event);
                            parts.extensions.insert(scheme);
                            let request = Request::from_parts(parts, ReqBody::from(bytes));
                            let future = inner.call(request);
                            this.state.set(State::Calling { future, pending });
                        }
                        Err(error) => {
                            let response = reject(&error, &parts.extensions);
                            this.state.set(State::Respond {
                                response: Some(response),
                            });
                        }
                    }
                }
                StateProj::Calling { future, pending } => {
                    let result = ready!(future.poll(cx));
                    if let Some(pending) = pending.take() {
                        // Dropping an armed `Pending` forgets the id so a retry is handled again.
                        if matches!(&result, Ok(response) if response.status().is_success()) {
                            pending.settle();
                        }
                    }
                    return Poll::Ready(result);
                }
                StateProj::Respond { response } => {
                    let response = response.take().unwrap_or_else(|| {
                        let mut r = Response::new(ResBody::from(Bytes::new()));
                        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                        r
                    });
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}
