//! `GET /api/mobile/showroom/items` (scope `showroom:read`).

use l2c_core::api::showroom::{Page, ShowroomItem, ShowroomItemType, ShowroomQuery};

use crate::pagination::PageStream;
use crate::{Client, Error};

/// Showroom operations; from [`Client::showroom`].
#[derive(Debug, Clone, Copy)]
pub struct ShowroomHandler<'c> {
    client: &'c Client,
}

impl<'c> ShowroomHandler<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        Self { client }
    }

    /// Lists products and cases visible to this client (spec §4.5): `PUBLIC` items plus the
    /// `AUTHORIZED` ones granted to it, in a stable order.
    ///
    /// ```no_run
    /// use futures_util::TryStreamExt;
    /// use l2c_client::types::showroom::ShowroomItemType;
    /// # async fn run(client: l2c_client::Client) -> Result<(), l2c_client::Error> {
    /// let first = client.showroom().items().page(1).page_size(50).send().await?;
    /// println!("{} of {}", first.items.len(), first.total);
    ///
    /// let mut cases = client.showroom().items().item_type(ShowroomItemType::Case).stream();
    /// while let Some(item) = cases.try_next().await? {
    ///     println!("{}", item.title);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn items(self) -> ListItemsBuilder<'c> {
        ListItemsBuilder {
            client: self.client,
            query: ShowroomQuery::new(),
        }
    }
}

/// Builder for [`ShowroomHandler::items`].
#[derive(Debug, Clone)]
#[must_use = "call .send() or .stream() to list items"]
pub struct ListItemsBuilder<'c> {
    client: &'c Client,
    query: ShowroomQuery,
}

impl ListItemsBuilder<'_> {
    /// Only items of this type (`PRODUCT` or `CASE`).
    pub fn item_type(mut self, item_type: ShowroomItemType) -> Self {
        self.query = self.query.item_type(item_type);
        self
    }

    /// Only items of this category.
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.query = self.query.category(category);
        self
    }

    /// Only items whose title, summary or tags contain this text.
    pub fn keyword(mut self, keyword: impl Into<String>) -> Self {
        self.query = self.query.keyword(keyword);
        self
    }

    /// The page, from 1 (default 1). With [`stream`](Self::stream): the first page to fetch.
    pub fn page(mut self, page: u32) -> Self {
        self.query = self.query.page(page);
        self
    }

    /// Items per page, 1–100 (default 20; the server answers 400 outside that range).
    pub fn page_size(mut self, page_size: u32) -> Self {
        self.query = self.query.page_size(page_size);
        self
    }

    /// Fetches one page.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] with status 400 for a page size outside 1–100 or a page below 1.
    pub async fn send(self) -> Result<Page<ShowroomItem>, Error> {
        super::get_page(self.client, &["showroom", "items"], &self.query).await
    }

    /// Streams every item from the selected page on, fetching the next page as the stream is
    /// polled. Ends after an empty page or the page that reaches `total`.
    pub fn stream(self) -> PageStream<ShowroomItem> {
        super::stream_pages(self.client, &["showroom", "items"], self.query)
    }
}
