//! Cross-field rules of the request bodies, stated in JSON Schema 2020-12 (`if` / `then`,
//! `not`, `dependentRequired`), which utoipa's derive has no attribute for. They are the rules
//! `domain::validate::sync_order` applies, so a body the document accepts is one the server
//! accepts on these points. What JSON Schema cannot compare (one number against another:
//! `amounts.deposit` and `amounts.paid` at most `amounts.total`, `FULLY_PAID` meaning `paid`
//! equals `total`) is in the field descriptions.

use serde_json::{Value, json};
use utoipa::Modify;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

/// The rules of `SyncOrder`, as `allOf` members.
fn sync_order_rules() -> Value {
    json!([
        {
            "description": "`UNPAID` only with `CANCELLED` (every other status means the deposit \
                            is paid: `status_payment_mismatch`), and with nothing paid",
            "if": { "properties": { "paymentStatus": { "const": "UNPAID" } } },
            "then": {
                "properties": {
                    "status": { "const": "CANCELLED" },
                    "amounts": { "properties": { "paid": { "const": 0 } } }
                }
            }
        },
        {
            "description": "`DEPOSIT_PAID` and `PARTIALLY_PAID` with something paid (and less \
                            than `amounts.total`)",
            "if": {
                "properties": {
                    "paymentStatus": { "enum": ["DEPOSIT_PAID", "PARTIALLY_PAID"] }
                }
            },
            "then": {
                "properties": { "amounts": { "properties": { "paid": { "exclusiveMinimum": 0 } } } }
            }
        },
        {
            "description": "Either `customerId` or `customer`, not both",
            "not": { "required": ["customerId", "customer"] }
        }
    ])
}

/// Adds the cross-field rules to the component schemas they constrain.
#[derive(Debug)]
pub struct CrossFieldRules;

impl Modify for CrossFieldRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        // utoipa's `Object` has no `allOf` member of its own; its flattened extension map
        // serializes the keyword beside the derived ones.
        // RFC 6749 §2.3.1: a secret in the body comes with its client id (400
        // `invalid_request` otherwise).
        if let Some(RefOr::T(Schema::Object(token))) = components.schemas.get_mut("TokenRequest") {
            token
                .extensions
                .get_or_insert_with(Default::default)
                .insert(
                    "dependentRequired".to_owned(),
                    json!({ "client_secret": ["client_id"] }),
                );
        }
        if let Some(RefOr::T(Schema::Object(sync))) = components.schemas.get_mut("SyncOrder") {
            sync.extensions
                .get_or_insert_with(Default::default)
                .insert("allOf".to_owned(), sync_order_rules());
        }
    }
}
