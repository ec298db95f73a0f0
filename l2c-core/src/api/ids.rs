//! Identifier newtypes, so a lead id cannot be passed where an order id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $example:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        #[cfg_attr(feature = "openapi", schema(value_type = String, example = $example))]
        pub struct $name(String);

        impl $name {
            /// Wraps an id as issued by the platform.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

string_id!(
    /// The platform's id of a lead (`lead_…`).
    LeadId,
    "lead_5f0c6a4e8b0f4b7e9d4c2a1b3e6f7a80"
);
string_id!(
    /// The platform's id of a customer (`cus_…`).
    CustomerId,
    "cus_1b2c3d4e5f60718293a4b5c6d7e8f901"
);
string_id!(
    /// The platform's id of an order (`ord_…`).
    OrderId,
    "ord_9a8b7c6d5e4f30211203f4e5d6c7b8a9"
);
string_id!(
    /// The id of a showroom item (`itm_…`).
    ShowroomItemId,
    "itm_0001"
);
string_id!(
    /// The id of a webhook subscription (`wh_…`).
    WebhookId,
    "wh_3c1f2e0d9b8a47f6a5e4d3c2b1a09f8e"
);
string_id!(
    /// The id of one delivery of an event to a subscription (`dlv_…`).
    DeliveryId,
    "dlv_7e6d5c4b3a2918f7e6d5c4b3a2918f7e"
);
