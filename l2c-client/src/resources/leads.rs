//! `POST /api/mobile/leads/hook` (scope `leads:write`); `GET /api/mobile/leads` and
//! `GET /api/mobile/leads/:id` (scope `leads:read`).

use http::Method;
use l2c_core::api::LeadId;
use l2c_core::api::leads::{Lead, LeadQuery, LeadSource, PushLead, PushLeadResponse};
use l2c_core::api::showroom::Page;

use crate::client::RequestSpec;
use crate::pagination::PageStream;
use crate::{Client, Error};

/// Lead operations; from [`Client::leads`].
#[derive(Debug, Clone, Copy)]
pub struct LeadsHandler<'c> {
    client: &'c Client,
}

impl<'c> LeadsHandler<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        Self { client }
    }

    /// Pushes a lead from a channel (spec §4.1). Pushing the same `(source, externalLeadId)`
    /// again answers with the original ids and `duplicate: true`.
    pub fn push(self, lead: PushLead) -> PushLeadBuilder<'c> {
        PushLeadBuilder {
            client: self.client,
            lead,
            request_id: None,
        }
    }

    /// Reads one of this client's leads, masked (`张*`, `138****8000`) — also those its lead
    /// sources received from the ad platforms.
    pub fn get(self, id: impl Into<LeadId>) -> GetLeadBuilder<'c> {
        GetLeadBuilder {
            client: self.client,
            id: id.into(),
        }
    }

    /// Lists this client's leads, newest first, masked.
    ///
    /// ```no_run
    /// use futures_util::TryStreamExt;
    /// use l2c_client::types::leads::LeadSource;
    /// # async fn run(client: l2c_client::Client) -> Result<(), l2c_client::Error> {
    /// let mut leads = client.leads().list().source(LeadSource::Xiaohongshu).stream();
    /// while let Some(lead) = leads.try_next().await? {
    ///     println!("{} {} {}", lead.external_lead_id, lead.name, lead.mobile);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn list(self) -> ListLeadsBuilder<'c> {
        ListLeadsBuilder {
            client: self.client,
            query: LeadQuery::new(),
        }
    }
}

/// Builder for [`LeadsHandler::get`].
#[derive(Debug)]
#[must_use = "call .send() to read the lead"]
pub struct GetLeadBuilder<'c> {
    client: &'c Client,
    id: LeadId,
}

impl GetLeadBuilder<'_> {
    /// Sends the request.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] with status 404 when the lead does not exist or is another client's.
    pub async fn send(self) -> Result<Lead, Error> {
        let spec = RequestSpec::new(Method::GET, super::path(["leads", self.id.as_str()]));
        self.client.execute_json(spec).await
    }
}

/// Builder for [`LeadsHandler::list`].
#[derive(Debug, Clone)]
#[must_use = "call .send() or .stream() to list leads"]
pub struct ListLeadsBuilder<'c> {
    client: &'c Client,
    query: LeadQuery,
}

impl ListLeadsBuilder<'_> {
    /// Only leads of this channel.
    pub fn source(mut self, source: LeadSource) -> Self {
        self.query = self.query.source(source);
        self
    }

    /// Only the lead with this channel id.
    pub fn external_lead_id(mut self, id: impl Into<String>) -> Self {
        self.query = self.query.external_lead_id(id);
        self
    }

    /// Only leads pushed through this lead source (`lsrc_…`).
    pub fn lead_source_id(mut self, id: impl Into<String>) -> Self {
        self.query = self.query.lead_source_id(id);
        self
    }

    /// Only leads received at or after `since`.
    pub fn created_since(mut self, since: chrono::DateTime<chrono::FixedOffset>) -> Self {
        self.query = self.query.created_since(since);
        self
    }

    /// The page, from 1 (default 1). With [`stream`](Self::stream): the first page to fetch.
    pub fn page(mut self, page: u32) -> Self {
        self.query = self.query.page(page);
        self
    }

    /// Items per page, 1–100 (default 20).
    pub fn page_size(mut self, page_size: u32) -> Self {
        self.query = self.query.page_size(page_size);
        self
    }

    /// Fetches one page.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] with status 400 naming a bad filter or paging parameter.
    pub async fn send(self) -> Result<Page<Lead>, Error> {
        super::get_page(self.client, &["leads"], &self.query).await
    }

    /// Streams every matching lead from the selected page on.
    pub fn stream(self) -> PageStream<Lead> {
        super::stream_pages(self.client, &["leads"], self.query)
    }
}

/// Builder for [`LeadsHandler::push`].
#[derive(Debug)]
#[must_use = "call .send() to push the lead"]
pub struct PushLeadBuilder<'c> {
    client: &'c Client,
    lead: PushLead,
    request_id: Option<String>,
}

impl PushLeadBuilder<'_> {
    /// The idempotency key (`X-Request-Id`, 1–255 visible ASCII); a UUID v4 when not set.
    /// Reuse your own key (e.g. the channel's lead id) to make a resend after a crash safe.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Sends the request.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] with status 400 and a `code` naming the bad field for invalid input.
    pub async fn send(self) -> Result<PushLeadResponse, Error> {
        let spec = RequestSpec::new(Method::POST, super::path(["leads", "hook"]))
            .json(&self.lead)?
            .request_id(self.request_id);
        self.client.execute_json(spec).await
    }
}
