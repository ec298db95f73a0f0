//! Which columns are sealed: [`Field`] names each in the associated data, [`COLUMNS`] drives
//! sealing in place and rotation.

/// A sealed column (or group of columns a value may move between, like a webhook's current and
/// previous secret). Its label is part of every value's associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// `customers.mobile_e164` (and the blind index `customers.mobile_index`).
    CustomerMobile,
    /// `customers.name`.
    CustomerName,
    /// `customers.address`.
    CustomerAddress,
    /// `client_customers.name`: the name a client gave.
    LinkName,
    /// `leads.name`.
    LeadName,
    /// `leads.mobile_e164`.
    LeadMobile,
    /// `leads.form_fields`: the form answers (JSON).
    LeadFormFields,
    /// `leads.raw_payload`: the request body as received.
    LeadRawPayload,
    /// `webhook_subscriptions.secret` and `.previous_secret` (a rotation moves one into the
    /// other inside the database).
    WebhookSecret,
    /// `lead_sources.secret`.
    LeadSourceSecret,
    /// `signing_keys.key_material`.
    SigningKey,
}

impl Field {
    /// The label bound into the associated data (`table.column`).
    pub const fn label(self) -> &'static str {
        match self {
            Field::CustomerMobile => "customers.mobile_e164",
            Field::CustomerName => "customers.name",
            Field::CustomerAddress => "customers.address",
            Field::LinkName => "client_customers.name",
            Field::LeadName => "leads.name",
            Field::LeadMobile => "leads.mobile_e164",
            Field::LeadFormFields => "leads.form_fields",
            Field::LeadRawPayload => "leads.raw_payload",
            Field::WebhookSecret => "webhook_subscriptions.secret",
            Field::LeadSourceSecret => "lead_sources.secret",
            Field::SigningKey => "signing_keys.key_material",
        }
    }
}

/// One sealed column: where it is and how its rows are identified.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SealedColumn {
    /// The table.
    pub table: &'static str,
    /// The column.
    pub column: &'static str,
    /// The key columns; the row identity in the associated data is their values joined by `/`.
    pub keys: &'static [&'static str],
    /// The field (associated-data label).
    pub field: Field,
}

const fn col(
    table: &'static str,
    column: &'static str,
    keys: &'static [&'static str],
    field: Field,
) -> SealedColumn {
    SealedColumn {
        table,
        column,
        keys,
        field,
    }
}

/// Every sealed column. A new column holding a mobile number, a name, an address, a secret, a
/// private key or a raw body belongs here (and its reads and writes go through
/// [`DataKeys`](super::DataKeys)).
pub const COLUMNS: &[SealedColumn] = &[
    col("customers", "mobile_e164", &["id"], Field::CustomerMobile),
    col("customers", "name", &["id"], Field::CustomerName),
    col("customers", "address", &["id"], Field::CustomerAddress),
    col(
        "client_customers",
        "name",
        &["client_id", "customer_id"],
        Field::LinkName,
    ),
    col("leads", "name", &["id"], Field::LeadName),
    col("leads", "mobile_e164", &["id"], Field::LeadMobile),
    col("leads", "form_fields", &["id"], Field::LeadFormFields),
    col("leads", "raw_payload", &["id"], Field::LeadRawPayload),
    col(
        "webhook_subscriptions",
        "secret",
        &["id"],
        Field::WebhookSecret,
    ),
    col(
        "webhook_subscriptions",
        "previous_secret",
        &["id"],
        Field::WebhookSecret,
    ),
    col("lead_sources", "secret", &["id"], Field::LeadSourceSecret),
    col("signing_keys", "key_material", &["id"], Field::SigningKey),
];

/// The row identity of `client_customers` in the associated data.
pub fn link_row(client_id: &str, customer_id: &str) -> String {
    format!("{client_id}/{customer_id}")
}
