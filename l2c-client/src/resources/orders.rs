//! `POST /api/mobile/orders/sync` (scope `orders:write`) and `GET /api/mobile/orders/:id/status`
//! (scope `orders:read`).

use http::Method;
use l2c_core::api::OrderId;
use l2c_core::api::orders::{OrderStatusView, SyncOrder, SyncOrderResponse};

use crate::client::RequestSpec;
use crate::{Client, Error};

/// Order operations; from [`Client::orders`].
#[derive(Debug, Clone, Copy)]
pub struct OrdersHandler<'c> {
    client: &'c Client,
}

impl<'c> OrdersHandler<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        Self { client }
    }

    /// Pushes an order's state from the ERP (spec §4.3). A stale `version` is acknowledged with
    /// `applied: false`; an illegal transition is an [`Error::Api`] with status 409.
    pub fn sync(self, order: SyncOrder) -> SyncOrderBuilder<'c> {
        SyncOrderBuilder {
            client: self.client,
            order,
            request_id: None,
        }
    }

    /// Reads an order's fulfilment and payment status with labels and history (spec §4.4).
    pub fn status(self, id: impl Into<OrderId>) -> OrderStatusBuilder<'c> {
        OrderStatusBuilder {
            client: self.client,
            id: id.into(),
        }
    }
}

/// Builder for [`OrdersHandler::sync`].
#[derive(Debug)]
#[must_use = "call .send() to sync the order"]
pub struct SyncOrderBuilder<'c> {
    client: &'c Client,
    order: SyncOrder,
    request_id: Option<String>,
}

impl SyncOrderBuilder<'_> {
    /// The idempotency key (`X-Request-Id`, 1–255 visible ASCII); a UUID v4 when not set.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Sends the request.
    ///
    /// # Errors
    ///
    /// [`Error::Api`]: 400 for invalid input, 409 for an illegal status transition, 422 when the
    /// same `X-Request-Id` was used with a different body.
    pub async fn send(self) -> Result<SyncOrderResponse, Error> {
        let spec = RequestSpec::new(Method::POST, super::path(["orders", "sync"]))
            .json(&self.order)?
            .request_id(self.request_id);
        self.client.execute_json(spec).await
    }
}

/// Builder for [`OrdersHandler::status`].
#[derive(Debug)]
#[must_use = "call .send() to read the status"]
pub struct OrderStatusBuilder<'c> {
    client: &'c Client,
    id: OrderId,
}

impl OrderStatusBuilder<'_> {
    /// Sends the request.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] with status 404 for an unknown order.
    pub async fn send(self) -> Result<OrderStatusView, Error> {
        let spec = RequestSpec::new(
            Method::GET,
            super::path(["orders", self.id.as_str(), "status"]),
        );
        self.client.execute_json(spec).await
    }
}
