//! `GET /api/mobile/customers/:id` (scope `customers:read`).

use http::Method;
use l2c_core::api::CustomerId;
use l2c_core::api::customers::Customer;

use crate::client::RequestSpec;
use crate::{Client, Error};

/// Customer operations; from [`Client::customers`].
#[derive(Debug, Clone, Copy)]
pub struct CustomersHandler<'c> {
    client: &'c Client,
}

impl<'c> CustomersHandler<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        Self { client }
    }

    /// Reads a customer's masked view (spec §4.2): `138****5678`, `张*`, region only.
    pub fn get(self, id: impl Into<CustomerId>) -> GetCustomerBuilder<'c> {
        GetCustomerBuilder {
            client: self.client,
            id: id.into(),
        }
    }
}

/// Builder for [`CustomersHandler::get`].
#[derive(Debug)]
#[must_use = "call .send() to read the customer"]
pub struct GetCustomerBuilder<'c> {
    client: &'c Client,
    id: CustomerId,
}

impl GetCustomerBuilder<'_> {
    /// Sends the request.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] with status 404 when the customer does not exist or is not visible to
    /// this client.
    pub async fn send(self) -> Result<Customer, Error> {
        let spec = RequestSpec::new(Method::GET, super::path(["customers", self.id.as_str()]));
        self.client.execute_json(spec).await
    }
}
