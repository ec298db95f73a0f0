//! Lead sources under `/api/mobile/lead-sources` (scope `lead-sources:manage`): the push URLs
//! to paste into 小红书 聚光, 巨量引擎 飞鱼, the 抖音开放平台 and other ad platforms.
//!
//! ```no_run
//! use l2c_client::types::lead_sources::{Channel, CreateLeadSource};
//! # async fn run(client: l2c_client::Client) -> Result<(), l2c_client::Error> {
//! let created = client
//!     .lead_sources()
//!     .create(
//!         CreateLeadSource::new(Channel::Xiaohongshu, "聚光 落地页")
//!             .settings(serde_json::json!({"token": "the token shown in 聚光"})),
//!     )
//!     .send()
//!     .await?;
//! // Shown only now: paste it into 聚光 → 落地页 → 数据推送.
//! println!("{}", created.push_url);
//! # Ok(()) }
//! ```

use http::Method;
use l2c_core::api::lead_sources::{
    CreateLeadSource, CreatedLeadSource, LeadSourceView, UpdateLeadSource,
};
use l2c_core::api::showroom::Page;

use crate::client::RequestSpec;
use crate::pagination::PageStream;
use crate::{Client, Error};

/// Lead source operations; from [`Client::lead_sources`].
#[derive(Debug, Clone, Copy)]
pub struct LeadSourcesHandler<'c> {
    client: &'c Client,
}

impl<'c> LeadSourcesHandler<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        Self { client }
    }

    /// Creates a source; the answer holds its push URL (and a generated secret), shown only once.
    pub fn create(self, source: CreateLeadSource) -> LeadSourceCall<'c, CreatedLeadSource> {
        LeadSourceCall::new(self.client, Method::POST, vec![]).body(&source)
    }

    /// Lists this client's sources (no secrets, no push URLs).
    pub fn list(self) -> ListLeadSourcesBuilder<'c> {
        ListLeadSourcesBuilder {
            client: self.client,
            page: None,
            page_size: None,
        }
    }

    /// Reads one source.
    pub fn get(self, id: impl Into<String>) -> LeadSourceCall<'c, LeadSourceView> {
        LeadSourceCall::new(self.client, Method::GET, vec![id.into()])
    }

    /// Renames a source or replaces its settings.
    pub fn update(
        self,
        id: impl Into<String>,
        update: UpdateLeadSource,
    ) -> LeadSourceCall<'c, LeadSourceView> {
        LeadSourceCall::new(self.client, Method::PUT, vec![id.into()]).body(&update)
    }

    /// Issues a new push URL (the old one stops working at once) and, for a generated secret,
    /// a new secret; both are shown only in the answer.
    pub fn rotate(self, id: impl Into<String>) -> LeadSourceCall<'c, CreatedLeadSource> {
        LeadSourceCall::new(
            self.client,
            Method::POST,
            vec![id.into(), "rotate".to_owned()],
        )
    }

    /// Deletes a source; its push URL answers 404 from then on.
    pub fn delete(self, id: impl Into<String>) -> LeadSourceCall<'c, ()> {
        LeadSourceCall::new(self.client, Method::DELETE, vec![id.into()])
    }
}

/// Builder for one lead source operation; `T` is what `.send()` returns.
#[must_use = "call .send() to perform the request"]
pub struct LeadSourceCall<'c, T> {
    client: &'c Client,
    method: Method,
    segments: Vec<String>,
    body: Option<Result<serde_json::Value, String>>,
    request_id: Option<String>,
    _response: std::marker::PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for LeadSourceCall<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeadSourceCall")
            .field("method", &self.method)
            .field("segments", &self.segments)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl<'c, T> LeadSourceCall<'c, T> {
    fn new(client: &'c Client, method: Method, segments: Vec<String>) -> Self {
        Self {
            client,
            method,
            segments,
            body: None,
            request_id: None,
            _response: std::marker::PhantomData,
        }
    }

    fn body<B: serde::Serialize>(mut self, body: &B) -> Self {
        self.body = Some(serde_json::to_value(body).map_err(|e| e.to_string()));
        self
    }

    /// The idempotency key for a POST/PUT (`X-Request-Id`); a UUID v4 when not set.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    fn spec(&self) -> Result<RequestSpec, Error> {
        let mut segments = vec!["lead-sources"];
        segments.extend(self.segments.iter().map(String::as_str));
        let mut spec = RequestSpec::new(self.method.clone(), super::path(segments))
            .request_id(self.request_id.clone());
        if let Some(body) = &self.body {
            let body = body
                .as_ref()
                .map_err(|e| Error::config(crate::BuildError::Body(e.clone())))?;
            spec = spec.json(body)?;
        }
        Ok(spec)
    }
}

impl LeadSourceCall<'_, ()> {
    /// Sends the request.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] with status 404 for an unknown source.
    pub async fn send(self) -> Result<(), Error> {
        self.client.execute(self.spec()?).await.map(drop)
    }
}

macro_rules! json_send {
    ($($ty:ty),+) => {$(
        impl LeadSourceCall<'_, $ty> {
            /// Sends the request.
            ///
            /// # Errors
            ///
            /// [`Error::Api`]: 404 for an unknown source, 422 naming a bad setting, 409 when
            /// the client holds the most sources allowed.
            pub async fn send(self) -> Result<$ty, Error> {
                self.client.execute_json(self.spec()?).await
            }
        }
    )+};
}

json_send!(CreatedLeadSource, LeadSourceView);

/// Builder for [`LeadSourcesHandler::list`].
#[derive(Debug, Clone)]
#[must_use = "call .send() or .stream() to list lead sources"]
pub struct ListLeadSourcesBuilder<'c> {
    client: &'c Client,
    page: Option<u32>,
    page_size: Option<u32>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Paging {
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page_size: Option<u32>,
}

impl super::PageQuery for Paging {
    fn first_page(&self) -> u32 {
        self.page.unwrap_or(1)
    }

    fn with_page(mut self, page: u32) -> Self {
        self.page = Some(page);
        self
    }
}

impl ListLeadSourcesBuilder<'_> {
    /// The page, from 1 (default 1).
    pub fn page(mut self, page: u32) -> Self {
        self.page = Some(page);
        self
    }

    /// Items per page, 1–100 (default 20).
    pub fn page_size(mut self, page_size: u32) -> Self {
        self.page_size = Some(page_size);
        self
    }

    /// Fetches one page.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] with status 400 for bad paging.
    pub async fn send(self) -> Result<Page<LeadSourceView>, Error> {
        super::get_page(self.client, &["lead-sources"], &self.paging()).await
    }

    /// Streams every source from the selected page on.
    pub fn stream(self) -> PageStream<LeadSourceView> {
        super::stream_pages(self.client, &["lead-sources"], self.paging())
    }

    fn paging(&self) -> Paging {
        Paging {
            page: self.page,
            page_size: self.page_size,
        }
    }
}
