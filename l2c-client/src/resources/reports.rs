//! `GET /api/mobile/reports/orders/export` (scope `reports:export`): a streamed CSV.
//!
//! The export is a long-running request: the platform lets each client run at most five at a
//! time and answers `429` beyond that (retried per the [`RetryPolicy`](crate::RetryPolicy)). The
//! body arrives as a [`ByteStream`] and is not subject to the client's per-request timeout.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use http::Method;

use crate::client::RequestSpec;
use crate::{Client, Error};

/// Report operations; from [`Client::reports`].
#[derive(Debug, Clone, Copy)]
pub struct ReportsHandler<'c> {
    client: &'c Client,
}

impl<'c> ReportsHandler<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        Self { client }
    }

    /// Exports the client's orders as CSV, streamed.
    ///
    /// ```no_run
    /// use futures_util::TryStreamExt;
    /// use tokio::io::AsyncWriteExt;
    /// # async fn run(client: l2c_client::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut csv = client.reports().export_orders().send().await?;
    /// let mut file = tokio::fs::File::create("orders.csv").await?;
    /// while let Some(chunk) = csv.try_next().await? {
    ///     file.write_all(&chunk).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn export_orders(self) -> ExportOrdersBuilder<'c> {
        ExportOrdersBuilder {
            client: self.client,
        }
    }
}

/// Builder for [`ReportsHandler::export_orders`].
#[derive(Debug)]
#[must_use = "call .send() to start the export"]
pub struct ExportOrdersBuilder<'c> {
    client: &'c Client,
}

impl ExportOrdersBuilder<'_> {
    /// Starts the export; resolves once the response headers arrived.
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`] when five exports of this client are already running (after the
    /// retry policy gave up); the usual API and transport errors.
    pub async fn send(self) -> Result<ByteStream, Error> {
        let spec = RequestSpec::new(Method::GET, super::path(["reports", "orders", "export"]))
            .accept("text/csv")
            .streaming();
        let response = self.client.execute(spec).await?;
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(ByteStream {
            content_type,
            inner: Box::pin(response.bytes_stream().map(|r| r.map_err(Error::transport))),
        })
    }
}

/// A streamed response body: a [`Stream`] of byte chunks.
#[must_use = "streams do nothing unless polled"]
pub struct ByteStream {
    content_type: Option<String>,
    inner: Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>,
}

impl ByteStream {
    /// The response's `Content-Type` (`text/csv; charset=utf-8`).
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// Reads the whole body into memory.
    ///
    /// # Errors
    ///
    /// [`Error::Transport`] or [`Error::Timeout`] if the connection fails mid-body.
    pub async fn collect(mut self) -> Result<Bytes, Error> {
        let mut buf = Vec::new();
        while let Some(chunk) = self.inner.next().await {
            buf.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(buf))
    }
}

impl fmt::Debug for ByteStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteStream")
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

impl Stream for ByteStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}
