//! One module per resource of the open platform, one request builder per operation.
//!
//! Reach them from a [`Client`]: [`Client::leads`], [`Client::lead_sources`], [`Client::customers`], [`Client::orders`],
//! [`Client::showroom`], [`Client::reports`] and [`Client::webhooks`]. Each operation returns a
//! builder; set its options, then call `.send()` (list operations also have `.stream()`).
//! Request and response bodies are the shared wire types of [`l2c_core::api`], re-exported as
//! [`crate::types`].
//!
//! ```no_run
//! use l2c_client::types::leads::{LeadSource, PushLead};
//! # async fn run(client: l2c_client::Client) -> Result<(), l2c_client::Error> {
//! let submitted_at = chrono::DateTime::parse_from_rfc3339("2026-11-20T10:15:00+08:00").unwrap();
//! let lead = PushLead::new(LeadSource::Douyin, "dy-7301", "张三", "13800138000", submitted_at);
//! let created = client.leads().push(lead).send().await?;
//! let customer = client.customers().get(created.customer_id).send().await?;
//! println!("{} {}", customer.name, customer.mobile); // masked: 张* 138****8000
//! # Ok(()) }
//! ```

pub mod customers;
pub mod lead_sources;
pub mod leads;
pub mod orders;
pub mod reports;
pub mod showroom;
pub mod webhooks;

use http::Method;
use l2c_core::api::leads::LeadQuery;
use l2c_core::api::showroom::{Page, ShowroomQuery};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::RequestSpec;
use crate::pagination::{PageStream, paginate};
use crate::{Client, Error};

/// The path prefix of the open platform's endpoints.
pub(crate) const MOBILE: [&str; 2] = ["api", "mobile"];

/// `MOBILE` followed by `rest`, as owned path segments.
pub(crate) fn path<'a>(rest: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    MOBILE.iter().copied().chain(rest).collect()
}

impl Client {
    /// Leads: `POST /api/mobile/leads/hook`, `GET /api/mobile/leads`, `GET /api/mobile/leads/:id`.
    pub fn leads(&self) -> leads::LeadsHandler<'_> {
        leads::LeadsHandler::new(self)
    }

    /// Lead sources, the ad platforms' push URLs: `/api/mobile/lead-sources`.
    pub fn lead_sources(&self) -> lead_sources::LeadSourcesHandler<'_> {
        lead_sources::LeadSourcesHandler::new(self)
    }

    /// Customers: `GET /api/mobile/customers/:id`.
    pub fn customers(&self) -> customers::CustomersHandler<'_> {
        customers::CustomersHandler::new(self)
    }

    /// Orders: `POST /api/mobile/orders/sync`, `GET /api/mobile/orders/:id/status`.
    pub fn orders(&self) -> orders::OrdersHandler<'_> {
        orders::OrdersHandler::new(self)
    }

    /// The showroom: `GET /api/mobile/showroom/items`.
    pub fn showroom(&self) -> showroom::ShowroomHandler<'_> {
        showroom::ShowroomHandler::new(self)
    }

    /// Reports: `GET /api/mobile/reports/orders/export`.
    pub fn reports(&self) -> reports::ReportsHandler<'_> {
        reports::ReportsHandler::new(self)
    }

    /// Webhook subscriptions: `/api/mobile/webhooks`.
    pub fn webhooks(&self) -> webhooks::WebhooksHandler<'_> {
        webhooks::WebhooksHandler::new(self)
    }
}

/// A list query whose pages the server numbers from 1 (`page`, `pageSize`).
pub(crate) trait PageQuery: Serialize + Clone + Send + Sync + 'static {
    /// The page the query asks for (1 when unset).
    fn first_page(&self) -> u32;
    /// The same query for `page`.
    fn with_page(self, page: u32) -> Self;
}

impl PageQuery for LeadQuery {
    fn first_page(&self) -> u32 {
        self.page.unwrap_or(1)
    }

    fn with_page(self, page: u32) -> Self {
        self.page(page)
    }
}

impl PageQuery for ShowroomQuery {
    fn first_page(&self) -> u32 {
        self.page.unwrap_or(1)
    }

    fn with_page(self, page: u32) -> Self {
        self.page(page)
    }
}

/// `GET` one page of the list at `/api/mobile/{segments}` with `query`.
pub(crate) async fn get_page<T: DeserializeOwned>(
    client: &Client,
    segments: &[&str],
    query: &impl Serialize,
) -> Result<Page<T>, Error> {
    let spec = RequestSpec::new(Method::GET, path(segments.iter().copied())).query(query)?;
    client.execute_json(spec).await
}

/// Streams every item of the list at `/api/mobile/{segments}` from the query's page on, fetching
/// the next page as the stream is polled.
pub(crate) fn stream_pages<T, Q>(client: &Client, segments: &[&str], query: Q) -> PageStream<T>
where
    T: DeserializeOwned + Send + 'static,
    Q: PageQuery,
{
    let client = client.clone();
    let segments: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
    paginate(query.first_page(), move |page| {
        let client = client.clone();
        let segments = segments.clone();
        let query = query.clone().with_page(page);
        async move {
            let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
            get_page(&client, &segments, &query).await
        }
    })
}
