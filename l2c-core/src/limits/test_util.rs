//! Helpers shared by the limiter and concurrency tests.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Request;
use http_body::{Body, Frame};
use tokio::sync::mpsc;

use crate::identity::{AuthenticatedClient, Scopes};

#[cfg(feature = "redis")]
/// The Redis URL for tests, or `None` after printing why the test is skipped.
pub(crate) fn redis_url() -> Option<String> {
    match std::env::var("L2C_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!("skipping: L2C_TEST_REDIS_URL not set");
            None
        }
    }
}

#[cfg(feature = "redis")]
/// A random key prefix, so concurrent test runs never share Redis keys.
pub(crate) fn random_prefix() -> String {
    format!("l2c-test:{}:", uuid::Uuid::new_v4().simple())
}

/// A request from `client`.
pub(crate) fn request_from(client: &str) -> Request<()> {
    let mut req = Request::new(());
    req.extensions_mut()
        .insert(AuthenticatedClient::new(client, Scopes::all()));
    req
}

#[cfg(feature = "redis")]
/// An address on 127.0.0.1 that nothing listens on.
pub(crate) fn unused_local_addr() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}

/// A response body that is either complete or streamed from a channel the test controls.
#[derive(Debug)]
pub(crate) enum TestBody {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Result<Bytes, std::io::Error>>),
}

impl From<Bytes> for TestBody {
    fn from(b: Bytes) -> Self {
        TestBody::Full(Some(b))
    }
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            TestBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            TestBody::Stream(rx) => rx
                .poll_recv(cx)
                .map(|item| item.map(|r| r.map(Frame::data))),
        }
    }
}

/// Reads a body to its end (or first error) and returns what was read.
pub(crate) async fn collect<B>(body: B) -> Result<Bytes, B::Error>
where
    B: Body<Data = Bytes>,
{
    use http_body_util::BodyExt;
    body.collect().await.map(|c| c.to_bytes())
}
