//! `GET /api/mobile/showroom/items`: products and cases for partners' marketing content.
//!
//! A client sees every `PUBLIC` item plus the `AUTHORIZED` items it was granted. The list is
//! paged with `page` (from 1) and `pageSize` (1–100, default 20); a page past the end has empty
//! `items`, and the order is stable (by id), so walking the pages sees every item exactly once.
//!
//! ```
//! use l2c_core::api::showroom::{Page, ShowroomItem};
//!
//! let page: Page<serde_json::Value> =
//!     serde_json::from_str(r#"{"items": [], "page": 3, "pageSize": 20, "total": 41}"#).unwrap();
//! assert_eq!(page.page, 3);
//! assert!(!page.has_next());
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::ids::ShowroomItemId;

/// The default `page`.
pub const DEFAULT_PAGE: u32 = 1;
/// The default `pageSize`.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// The largest accepted `pageSize`; larger values are refused with 400, not clamped.
pub const MAX_PAGE_SIZE: u32 = 100;
/// The largest accepted `page`; larger values are refused with 400.
pub const MAX_PAGE: u32 = 1_000_000;

/// What a showroom item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ShowroomItemType {
    /// A product (cabinet, wardrobe, door, …).
    Product,
    /// A finished project (案例).
    Case,
}

impl ShowroomItemType {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ShowroomItemType::Product => "PRODUCT",
            ShowroomItemType::Case => "CASE",
        }
    }
}

impl fmt::Display for ShowroomItemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a known value of a wire enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value `{0}`")]
pub struct UnknownValue(pub String);

impl FromStr for ShowroomItemType {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "PRODUCT" => Ok(Self::Product),
            "CASE" => Ok(Self::Case),
            _ => Err(UnknownValue(s.to_owned())),
        }
    }
}

/// Who may see a showroom item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Visibility {
    /// Every client with `showroom:read`.
    Public,
    /// Only clients the operator granted it to (`l2c-server client grant`).
    Authorized,
}

impl Visibility {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "PUBLIC",
            Visibility::Authorized => "AUTHORIZED",
        }
    }
}

impl FromStr for Visibility {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "PUBLIC" => Ok(Self::Public),
            "AUTHORIZED" => Ok(Self::Authorized),
            _ => Err(UnknownValue(s.to_owned())),
        }
    }
}

/// A product or case of the smart showroom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ShowroomItem {
    /// The item's id.
    pub id: ShowroomItemId,
    /// Product or case.
    #[serde(rename = "type")]
    pub item_type: ShowroomItemType,
    /// The title, e.g. `北欧原木风衣柜`.
    #[cfg_attr(feature = "openapi", schema(example = "北欧原木风三门衣柜"))]
    pub title: String,
    /// The category, e.g. `衣柜`.
    #[cfg_attr(feature = "openapi", schema(example = "衣柜"))]
    pub category: String,
    /// A short description.
    pub summary: String,
    /// Tags, e.g. style and material.
    pub tags: Vec<String>,
    /// The cover image.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "https://cdn.example.com/showroom/itm_0001/cover.jpg")
    )]
    pub cover_image_url: String,
    /// The starting price in fen (products only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = 1299900))]
    pub price_from: Option<i64>,
    /// Who may see the item.
    pub visibility: Visibility,
    /// When the item last changed.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2026-11-01T09:00:00+08:00"))]
    pub updated_at: DateTime<FixedOffset>,
}

impl ShowroomItem {
    /// An item with no tags and no price; set the public fields for more.
    pub fn new(
        id: ShowroomItemId,
        item_type: ShowroomItemType,
        title: impl Into<String>,
        category: impl Into<String>,
        visibility: Visibility,
        updated_at: DateTime<FixedOffset>,
    ) -> Self {
        Self {
            id,
            item_type,
            title: title.into(),
            category: category.into(),
            summary: String::new(),
            tags: Vec::new(),
            cover_image_url: String::new(),
            price_from: None,
            visibility,
            updated_at,
        }
    }
}

/// The query of `GET /api/mobile/showroom/items`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[non_exhaustive]
pub struct ShowroomQuery {
    /// Only items of this type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub item_type: Option<ShowroomItemType>,
    /// Only items of this category (exact match, at most 64 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        param(
            max_length = 64,
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$"
        )
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 64,
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$"
        )
    )]
    pub category: Option<String>,
    /// Only items whose title, summary, category or tags contain this text (case-insensitive,
    /// at most 64 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        param(
            max_length = 64,
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$"
        )
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 64,
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$"
        )
    )]
    pub keyword: Option<String>,
    /// The page, from 1 (default 1), at most 1,000,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 1000000))]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000000))]
    pub page: Option<u32>,
    /// Items per page, 1–100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 100))]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub page_size: Option<u32>,
}

impl ShowroomQuery {
    /// The first page with the default size and no filter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Filters by type.
    #[must_use]
    pub fn item_type(mut self, item_type: ShowroomItemType) -> Self {
        self.item_type = Some(item_type);
        self
    }

    /// Filters by category.
    #[must_use]
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.category = Some(category.into());
        self
    }

    /// Filters by keyword.
    #[must_use]
    pub fn keyword(mut self, keyword: impl Into<String>) -> Self {
        self.keyword = Some(keyword.into());
        self
    }

    /// Sets the page (from 1).
    #[must_use]
    pub fn page(mut self, page: u32) -> Self {
        self.page = Some(page);
        self
    }

    /// Sets the page size (1–100).
    #[must_use]
    pub fn page_size(mut self, page_size: u32) -> Self {
        self.page_size = Some(page_size);
        self
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this page; empty past the end.
    pub items: Vec<T>,
    /// The page number, from 1.
    pub page: u32,
    /// The page size asked for.
    pub page_size: u32,
    /// The exact number of items across all pages.
    pub total: u64,
}

impl<T> Page<T> {
    /// A page.
    pub fn new(items: Vec<T>, page: u32, page_size: u32, total: u64) -> Self {
        Self {
            items,
            page,
            page_size,
            total,
        }
    }

    /// Whether a later page holds items.
    pub fn has_next(&self) -> bool {
        u64::from(self.page).saturating_mul(u64::from(self.page_size)) < self.total
    }
}
