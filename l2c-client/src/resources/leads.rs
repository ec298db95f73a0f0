//! `POST /api/mobile/leads/hook` (scope `leads:write`).

use http::Method;
use l2c_core::api::leads::{PushLead, PushLeadResponse};

use crate::client::RequestSpec;
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
