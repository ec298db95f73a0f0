//! `GET /api/mobile/customers/:id`: the masked customer view.
//!
//! The platform never returns raw personal data to partners: the name keeps its first character
//! (`张*`), the mobile number its first three and last four digits (`138****5678`) and the address
//! only its region.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::ids::{CustomerId, OrderId};

/// Where a customer lives, down to the district and no further.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Region {
    /// Province, e.g. `浙江省`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    /// City, e.g. `杭州市`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// District, e.g. `西湖区`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
}

/// How far along the funnel a customer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum CustomerStage {
    /// Only leads so far.
    Lead,
    /// At least one order.
    Customer,
}

/// The masked view of a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Customer {
    /// The customer's id.
    pub id: CustomerId,
    /// The name with all but the first character masked, e.g. `张*`.
    #[cfg_attr(feature = "openapi", schema(example = "张*"))]
    pub name: String,
    /// The mobile number with the middle four digits masked, e.g. `138****5678`.
    #[cfg_attr(feature = "openapi", schema(example = "138****5678"))]
    pub mobile: String,
    /// The region of the customer's address; never the street.
    pub region: Region,
    /// Tags such as the lead sources that brought the customer in.
    pub tags: Vec<String>,
    /// The funnel stage.
    pub stage: CustomerStage,
    /// The customer's orders that the caller may see.
    pub order_ids: Vec<OrderId>,
    /// When the customer was first seen.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2026-11-20T10:15:00+08:00"))]
    pub created_at: DateTime<FixedOffset>,
}

impl Customer {
    /// A masked view with an empty region, no tags and no orders; set the public fields for more.
    ///
    /// The caller is responsible for passing already-masked `name` and `mobile` values.
    pub fn new(
        id: CustomerId,
        name: impl Into<String>,
        mobile: impl Into<String>,
        stage: CustomerStage,
        created_at: DateTime<FixedOffset>,
    ) -> Self {
        Self {
            id,
            name: name.into(),
            mobile: mobile.into(),
            region: Region::default(),
            tags: Vec::new(),
            stage,
            order_ids: Vec::new(),
            created_at,
        }
    }
}

impl Region {
    /// A region.
    pub fn new(province: Option<String>, city: Option<String>, district: Option<String>) -> Self {
        Self {
            province,
            city,
            district,
        }
    }
}
