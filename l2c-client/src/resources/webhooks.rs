//! Webhook subscriptions under `/api/mobile/webhooks` (scope `webhooks:manage`, spec §5.1).
//!
//! ```no_run
//! use l2c_client::types::events::EventType;
//! use l2c_client::types::webhooks::CreateWebhook;
//! # async fn run(client: l2c_client::Client) -> Result<(), l2c_client::Error> {
//! let created = client
//!     .webhooks()
//!     .create(CreateWebhook::new("https://erp.example.com/l2c", [EventType::OrderStatusChanged]))
//!     .send()
//!     .await?;
//! // The secret is shown only now: store it where the receiver can read it.
//! let secret = created.secret;
//! // Check the receiver is ready: a PING event to this subscription only.
//! client.webhooks().send_test(created.id.clone()).send().await?;
//! for delivery in client.webhooks().deliveries(created.id).send().await?.items {
//!     println!("{} {:?}", delivery.event_id, delivery.status);
//! }
//! # let _ = secret; Ok(()) }
//! ```
//!
//! After a receiver's outage, resend every failed delivery since it began:
//!
//! ```no_run
//! use futures_util::TryStreamExt;
//! use l2c_client::types::webhooks::DeliveryStatus;
//! # async fn run(client: l2c_client::Client, id: l2c_client::types::WebhookId,
//! #   outage_began: chrono::DateTime<chrono::FixedOffset>) -> Result<(), l2c_client::Error> {
//! let failed: Vec<_> = client
//!     .webhooks()
//!     .deliveries(id.clone())
//!     .status(DeliveryStatus::Failed)
//!     .stream()
//!     .try_collect()
//!     .await?;
//! println!("{} failed deliveries", failed.len());
//! let recovered = client.webhooks().recover(id, outage_began).send().await?;
//! println!("{} queued again", recovered.queued);
//! # Ok(()) }
//! ```

use chrono::{DateTime, FixedOffset};
use http::Method;
use l2c_core::api::events::EventType;
use l2c_core::api::showroom::Page;
use l2c_core::api::webhooks::{
    CreateWebhook, CreatedWebhook, Delivery, DeliveryStatus, RecoverWebhook, Recovered,
    RotateWebhookSecret, RotatedSecret, Webhook,
};
use l2c_core::api::{DeliveryId, WebhookId};

use crate::client::RequestSpec;
use crate::pagination::PageStream;
use crate::{Client, Error};

/// Webhook subscription operations; from [`Client::webhooks`].
#[derive(Debug, Clone, Copy)]
pub struct WebhooksHandler<'c> {
    client: &'c Client,
}

impl<'c> WebhooksHandler<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        Self { client }
    }

    /// Subscribes a URL to event types; the answer holds the signing secret, shown only once.
    pub fn create(self, subscription: CreateWebhook) -> CreateWebhookBuilder<'c> {
        CreateWebhookBuilder {
            client: self.client,
            body: subscription,
            request_id: None,
        }
    }

    /// Lists this client's subscriptions (without secrets), oldest first, a page at a time.
    pub fn list(self) -> ListWebhooksBuilder<'c> {
        ListWebhooksBuilder {
            client: self.client,
            query: ListQuery::default(),
        }
    }

    /// Deletes a subscription.
    pub fn delete(self, id: impl Into<WebhookId>) -> WebhookCall<'c, ()> {
        WebhookCall::new(self.client, Method::DELETE, vec![id.into().into_string()])
    }

    /// Issues a new secret, staged: the previous one keeps signing until the answer's
    /// `previousSecretExpiresAt` (24 h unless [`WebhookCall::overlap`] says otherwise) —
    /// `X-L2C-Signature` with it alone until [`promote_secret`](Self::promote_secret) or that
    /// time, `webhook-signature` with both — so receivers switch without dropping events.
    pub fn rotate_secret(self, id: impl Into<WebhookId>) -> WebhookCall<'c, RotatedSecret> {
        WebhookCall::new(
            self.client,
            Method::POST,
            vec![id.into().into_string(), "rotate-secret".to_owned()],
        )
    }

    /// Promotes the new secret of a staged rotation once every receiver verifies with it:
    /// `X-L2C-Signature` signs with it from then on. The answer is the subscription, its
    /// `secret_rotation` at [`RotationStage::Promoted`](l2c_core::api::webhooks::RotationStage).
    ///
    /// An [`Error::Api`] with status 409 (`no_secret_rotation`, `secret_already_promoted`)
    /// when there is nothing to promote.
    pub fn promote_secret(self, id: impl Into<WebhookId>) -> WebhookCall<'c, Webhook> {
        WebhookCall::new(
            self.client,
            Method::POST,
            vec![id.into().into_string(), "promote-secret".to_owned()],
        )
    }

    /// Lists a subscription's deliveries with every attempt (status, latency, error), newest
    /// first, a page at a time; optionally only one status or event type.
    pub fn deliveries(self, id: impl Into<WebhookId>) -> ListDeliveriesBuilder<'c> {
        ListDeliveriesBuilder {
            client: self.client,
            id: id.into(),
            query: ListQuery::default(),
        }
    }

    /// Sends a test event: a `PING` queued for this subscription only, delivered (signed,
    /// recorded, retried) like any event. The answer is its pending delivery.
    pub fn send_test(self, id: impl Into<WebhookId>) -> WebhookCall<'c, Delivery> {
        WebhookCall::new(
            self.client,
            Method::POST,
            vec![id.into().into_string(), "test".to_owned()],
        )
    }

    /// Resends every failed delivery of a subscription queued since `since` (at most the
    /// server's retention back, default 30 days; not in the future).
    pub fn recover(
        self,
        id: impl Into<WebhookId>,
        since: DateTime<FixedOffset>,
    ) -> RecoverWebhookBuilder<'c> {
        RecoverWebhookBuilder {
            client: self.client,
            id: id.into(),
            body: RecoverWebhook::new(since),
            request_id: None,
        }
    }

    /// Queues a delivery again.
    pub fn redeliver(
        self,
        id: impl Into<WebhookId>,
        delivery_id: impl Into<DeliveryId>,
    ) -> WebhookCall<'c, Delivery> {
        WebhookCall::new(
            self.client,
            Method::POST,
            vec![
                id.into().into_string(),
                "deliveries".to_owned(),
                delivery_id.into().into_string(),
                "redeliver".to_owned(),
            ],
        )
    }
}

/// Builder for [`WebhooksHandler::create`].
#[derive(Debug)]
#[must_use = "call .send() to create the subscription"]
pub struct CreateWebhookBuilder<'c> {
    client: &'c Client,
    body: CreateWebhook,
    request_id: Option<String>,
}

impl CreateWebhookBuilder<'_> {
    /// The idempotency key (`X-Request-Id`, 1–255 visible ASCII); a UUID v4 when not set.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Sends the request.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] with status 400 for a URL the platform refuses (not https, not public) or
    /// an empty event list.
    pub async fn send(self) -> Result<CreatedWebhook, Error> {
        let spec = RequestSpec::new(Method::POST, super::path(["webhooks"]))
            .json(&self.body)?
            .request_id(self.request_id);
        self.client.execute_json(spec).await
    }
}

/// Builder for the subscription operations without a body; `T` is what `.send()` returns.
#[must_use = "call .send() to perform the request"]
pub struct WebhookCall<'c, T> {
    client: &'c Client,
    method: Method,
    segments: Vec<String>,
    request_id: Option<String>,
    body: Option<RotateWebhookSecret>,
    _response: std::marker::PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for WebhookCall<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookCall")
            .field("method", &self.method)
            .field("segments", &self.segments)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl<'c, T> WebhookCall<'c, T> {
    fn new(client: &'c Client, method: Method, segments: Vec<String>) -> Self {
        Self {
            client,
            method,
            segments,
            request_id: None,
            body: None,
            _response: std::marker::PhantomData,
        }
    }

    /// The idempotency key for a POST (`X-Request-Id`); a UUID v4 when not set.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    fn spec(&self) -> Result<RequestSpec, Error> {
        let mut segments = vec!["webhooks"];
        segments.extend(self.segments.iter().map(String::as_str));
        let spec = RequestSpec::new(self.method.clone(), super::path(segments))
            .request_id(self.request_id.clone());
        match &self.body {
            Some(body) => spec.json(body),
            None => Ok(spec),
        }
    }
}

impl WebhookCall<'_, RotatedSecret> {
    /// How long the previous secret keeps signing (whole seconds, at most 7 days; zero replaces
    /// it at once). Without it the server's rotation window applies (24 h by default).
    pub fn overlap(mut self, overlap: std::time::Duration) -> Self {
        self.body = Some(RotateWebhookSecret::new(overlap.as_secs()));
        self
    }
}

impl WebhookCall<'_, ()> {
    /// Sends the request.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] with status 404 for an unknown subscription.
    pub async fn send(self) -> Result<(), Error> {
        self.client.execute(self.spec()?).await.map(drop)
    }
}

macro_rules! json_send {
    ($($ty:ty),+) => {$(
        impl WebhookCall<'_, $ty> {
            /// Sends the request.
            ///
            /// # Errors
            ///
            /// [`Error::Api`] with status 404 for an unknown subscription or delivery.
            pub async fn send(self) -> Result<$ty, Error> {
                self.client.execute_json(self.spec()?).await
            }
        }
    )+};
}

json_send!(Webhook, RotatedSecret, Delivery);

/// The query of the webhook and delivery lists.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<DeliveryStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_type: Option<EventType>,
}

impl super::PageQuery for ListQuery {
    fn first_page(&self) -> u32 {
        self.page.unwrap_or(1)
    }

    fn with_page(mut self, page: u32) -> Self {
        self.page = Some(page);
        self
    }
}

/// Builder for [`WebhooksHandler::list`].
#[derive(Debug, Clone)]
#[must_use = "call .send() or .stream() to list subscriptions"]
pub struct ListWebhooksBuilder<'c> {
    client: &'c Client,
    query: ListQuery,
}

impl ListWebhooksBuilder<'_> {
    /// The page, from 1 (default 1).
    pub fn page(mut self, page: u32) -> Self {
        self.query.page = Some(page);
        self
    }

    /// Items per page, 1–100 (default 20).
    pub fn page_size(mut self, page_size: u32) -> Self {
        self.query.page_size = Some(page_size);
        self
    }

    /// Fetches one page.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] with status 400 for bad paging.
    pub async fn send(self) -> Result<Page<Webhook>, Error> {
        super::get_page(self.client, &["webhooks"], &self.query).await
    }

    /// Streams every subscription from the selected page on.
    pub fn stream(self) -> PageStream<Webhook> {
        super::stream_pages(self.client, &["webhooks"], self.query)
    }
}

/// Builder for [`WebhooksHandler::deliveries`].
#[derive(Debug, Clone)]
#[must_use = "call .send() or .stream() to list deliveries"]
pub struct ListDeliveriesBuilder<'c> {
    client: &'c Client,
    id: WebhookId,
    query: ListQuery,
}

impl ListDeliveriesBuilder<'_> {
    /// The page, from 1 (default 1).
    pub fn page(mut self, page: u32) -> Self {
        self.query.page = Some(page);
        self
    }

    /// Items per page, 1–100 (default 20).
    pub fn page_size(mut self, page_size: u32) -> Self {
        self.query.page_size = Some(page_size);
        self
    }

    /// Only deliveries in this status.
    pub fn status(mut self, status: DeliveryStatus) -> Self {
        self.query.status = Some(status);
        self
    }

    /// Only deliveries of this event type.
    pub fn event_type(mut self, event_type: EventType) -> Self {
        self.query.event_type = Some(event_type);
        self
    }

    /// Fetches one page.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] with status 404 for an unknown subscription, 400 for bad paging.
    pub async fn send(self) -> Result<Page<Delivery>, Error> {
        let id = self.id.into_string();
        super::get_page(self.client, &["webhooks", &id, "deliveries"], &self.query).await
    }

    /// Streams every matching delivery from the selected page on.
    pub fn stream(self) -> PageStream<Delivery> {
        let id = self.id.into_string();
        super::stream_pages(self.client, &["webhooks", &id, "deliveries"], self.query)
    }
}

/// Builder for [`WebhooksHandler::recover`].
#[derive(Debug)]
#[must_use = "call .send() to recover the failed deliveries"]
pub struct RecoverWebhookBuilder<'c> {
    client: &'c Client,
    id: WebhookId,
    body: RecoverWebhook,
    request_id: Option<String>,
}

impl RecoverWebhookBuilder<'_> {
    /// The idempotency key (`X-Request-Id`, 1–255 visible ASCII); a UUID v4 when not set.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Sends the request.
    ///
    /// # Errors
    ///
    /// [`Error::Api`]: 400 naming `since` when it is in the future or older than the
    /// retention, 404 for an unknown subscription, 409 for a disabled one.
    pub async fn send(self) -> Result<Recovered, Error> {
        let id = self.id.into_string();
        let spec = RequestSpec::new(
            Method::POST,
            super::path(["webhooks", id.as_str(), "recover"]),
        )
        .json(&self.body)?
        .request_id(self.request_id);
        self.client.execute_json(spec).await
    }
}
