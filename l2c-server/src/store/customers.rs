//! Customers: one per mobile number, linked to the clients that brought or served them.

use l2c_core::ClientId;
use l2c_core::api::customers::{Customer, CustomerStage, Region};
use l2c_core::api::{CustomerId, OrderId};
use sqlx::{AnyConnection, Row};

use super::sql::{bind_all, millis_to_cst, placeholders};
use super::{Db, StoreError};
use crate::domain::mask::mask_name;
use crate::domain::{Mobile, new_id};
use crate::seal::{DataKeys, Field, link_row};

/// Customer queries. Get one with [`Db::customers`].
#[derive(Debug, Clone, Copy)]
pub struct CustomerStore<'a> {
    db: &'a Db,
}

impl Db {
    /// The customers.
    pub fn customers(&self) -> CustomerStore<'_> {
        CustomerStore { db: self }
    }
}

/// [`find_or_create`]'s insert. Any uniqueness conflict (the blind index, or the plain number
/// without a key) means another transaction created the customer meanwhile.
pub const INSERT_CUSTOMER_SQL: &str = "INSERT INTO customers (id, mobile_e164, mobile_index, \
     name, province, city, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";
/// [`link`].
pub const LINK_SQL: &str = "INSERT INTO client_customers (client_id, customer_id, linked_at, \
     name, province, city) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (client_id, customer_id) DO NOTHING";

/// [`id_by_mobile`]'s lookup of a customer by `indexes` blind indexes of its mobile number (one
/// per known data key; one without a key).
pub fn by_mobile_sql(indexes: usize) -> String {
    format!(
        "SELECT id FROM customers WHERE mobile_index IN ({})",
        placeholders(indexes)
    )
}

/// Contact details that find or create a customer.
#[derive(Debug, Clone, Copy)]
pub struct CustomerContact<'a> {
    /// The normalized mobile number, the customer's identity.
    pub mobile: &'a Mobile,
    /// The name, used only when the customer is created.
    pub name: &'a str,
    /// The province, used only when the customer is created.
    pub province: Option<&'a str>,
    /// The city, used only when the customer is created.
    pub city: Option<&'a str>,
}

/// Finds the customer with `contact.mobile` or creates one; nothing about an existing customer
/// is overwritten. Returns the id and whether it was created.
///
/// # Errors
///
/// [`StoreError::Database`] when a query fails.
pub async fn find_or_create(
    conn: &mut AnyConnection,
    keys: &DataKeys,
    contact: CustomerContact<'_>,
    now: i64,
) -> Result<(CustomerId, bool), StoreError> {
    if let Some(existing) = id_by_mobile(conn, keys, contact.mobile).await? {
        return Ok((existing, false));
    }
    let id = new_id("cus");
    let e164 = contact.mobile.e164();
    let inserted = sqlx::query(INSERT_CUSTOMER_SQL)
        .bind(&id)
        .bind(keys.seal(Field::CustomerMobile, &id, e164))
        .bind(keys.blind_index(Field::CustomerMobile, e164))
        .bind(keys.seal(Field::CustomerName, &id, contact.name.trim()))
        .bind(contact.province.map(str::trim))
        .bind(contact.city.map(str::trim))
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if inserted == 1 {
        return Ok((CustomerId::new(id), true));
    }
    let existing = id_by_mobile(conn, keys, contact.mobile)
        .await?
        .ok_or_else(|| StoreError::Corrupt {
            table: "customers",
            detail: "conflicting customer vanished".into(),
        })?;
    Ok((existing, false))
}

/// The id of the customer with this mobile number, if any: looked up by its blind index under
/// every known data key (a rotation may not have re-indexed it yet).
///
/// # Errors
///
/// [`StoreError::Database`] when the query fails.
pub async fn id_by_mobile(
    conn: &mut AnyConnection,
    keys: &DataKeys,
    mobile: &Mobile,
) -> Result<Option<CustomerId>, StoreError> {
    let indexes = keys.blind_indexes(Field::CustomerMobile, mobile.e164());
    let sql = by_mobile_sql(indexes.len());
    let row = bind_all(sqlx::query(&sql), &indexes)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => Some(CustomerId::new(r.try_get::<String, _>("id")?)),
        None => None,
    })
}

/// What a client said about a customer when it first linked to it: the part of the customer
/// view that comes from the client's own leads and orders.
#[derive(Debug, Clone, Copy)]
pub struct LinkDetails<'a> {
    /// The name the client gave.
    pub name: &'a str,
    /// The province the client gave.
    pub province: Option<&'a str>,
    /// The city the client gave.
    pub city: Option<&'a str>,
}

impl<'a> From<CustomerContact<'a>> for LinkDetails<'a> {
    fn from(c: CustomerContact<'a>) -> Self {
        Self {
            name: c.name,
            province: c.province,
            city: c.city,
        }
    }
}

/// Links a client to a customer with the details it gave (idempotent: the first link's details
/// and time are kept).
///
/// # Errors
///
/// [`StoreError::Database`] when the query fails.
pub async fn link(
    conn: &mut AnyConnection,
    keys: &DataKeys,
    client: &ClientId,
    customer: &CustomerId,
    details: LinkDetails<'_>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(LINK_SQL)
        .bind(client.as_str())
        .bind(customer.as_str())
        .bind(now)
        .bind(keys.seal(
            Field::LinkName,
            &link_row(client.as_str(), customer.as_str()),
            details.name.trim(),
        ))
        .bind(details.province.map(str::trim))
        .bind(details.city.map(str::trim))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Links a client that names an existing customer by id (it holds the all-customers grant, or
/// is linked already) with the customer's own details (idempotent like [`link`]).
///
/// # Errors
///
/// [`StoreError::Database`] when the query fails.
pub async fn link_by_id(
    conn: &mut AnyConnection,
    keys: &DataKeys,
    client: &ClientId,
    customer: &CustomerId,
    now: i64,
) -> Result<(), StoreError> {
    let row = sqlx::query("SELECT name, province, city FROM customers WHERE id = $1")
        .bind(customer.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(()) };
    // Opened and sealed again: the link's copy is bound to the link's row.
    let name = keys.open(
        Field::CustomerName,
        customer.as_str(),
        &row.try_get::<String, _>("name")?,
    )?;
    let province: Option<String> = row.try_get("province")?;
    let city: Option<String> = row.try_get("city")?;
    let details = LinkDetails {
        name: &name,
        province: province.as_deref(),
        city: city.as_deref(),
    };
    link(conn, keys, client, customer, details, now).await
}

/// Whether `client` may see `customer`: linked to it, or granted every customer.
///
/// # Errors
///
/// [`StoreError::Database`] when the query fails.
pub async fn visible_to(
    conn: &mut AnyConnection,
    client: &ClientId,
    customer: &str,
) -> Result<bool, StoreError> {
    let row = sqlx::query(
        "SELECT c.id FROM customers c WHERE c.id = $1 AND (\
           EXISTS (SELECT 1 FROM client_customers l WHERE l.client_id = $2 AND l.customer_id = c.id) \
           OR EXISTS (SELECT 1 FROM clients g WHERE g.id = $2 AND g.all_customers = 1))",
    )
    .bind(customer)
    .bind(client.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.is_some())
}

impl CustomerStore<'_> {
    /// The masked view of customer `id` as `client` may see it; `None` when it does not exist
    /// or the client may not see it (the two are deliberately indistinguishable).
    ///
    /// A client linked to the customer reads only what its own leads and orders say: the name
    /// and region it first gave, its own leads' sources as tags, stage `CUSTOMER` only when it
    /// has an order for the customer, and its first link as `createdAt`. Another client that
    /// brought the same person in changes nothing of that view. A client holding the
    /// all-customers grant reads the brand's single view of any customer (every lead's source,
    /// the stage from every order, the region and time the customer was first seen). The grant
    /// widens customers only: `orderIds` always lists the caller's own orders alone.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when a query fails, [`StoreError::Corrupt`] for a broken row.
    pub async fn masked_view(
        &self,
        client: &ClientId,
        id: &str,
    ) -> Result<Option<Customer>, StoreError> {
        let keys = self.db.data_keys();
        let mut conn = self.db.pool().acquire().await?;
        let all = all_customers_granted(&mut conn, client).await?;
        let row = if all {
            sqlx::query(
                "SELECT id, mobile_e164, name, province, city, district, created_at \
                 FROM customers WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
        } else {
            sqlx::query(
                "SELECT c.id, c.mobile_e164, l.name, l.province, l.city, \
                 l.linked_at AS created_at \
                 FROM client_customers l JOIN customers c ON c.id = l.customer_id \
                 WHERE l.client_id = $1 AND l.customer_id = $2",
            )
            .bind(client.as_str())
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let customer_id: String = row.try_get("id")?;
        let mobile: String = row.try_get("mobile_e164")?;
        let mobile = keys.open(Field::CustomerMobile, &customer_id, &mobile)?;
        let name: String = row.try_get("name")?;
        let name = if all {
            keys.open(Field::CustomerName, &customer_id, &name)?
        } else {
            keys.open(
                Field::LinkName,
                &link_row(client.as_str(), &customer_id),
                &name,
            )?
        };
        let mobile = Mobile::from_e164(&mobile).map_err(|_| StoreError::Corrupt {
            table: "customers",
            detail: "mobile_e164 is not a valid number".into(),
        })?;
        // Only the customer record has a district; a client's link holds province and city.
        let district = if all { row.try_get("district")? } else { None };
        let order_ids = sqlx::query(
            "SELECT id FROM orders WHERE customer_id = $1 AND client_id = $2 \
             ORDER BY created_at, id",
        )
        .bind(id)
        .bind(client.as_str())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("id").map(OrderId::new))
        .collect::<Result<Vec<_>, _>>()?;
        let any_order = !order_ids.is_empty()
            || (all
                && sqlx::query("SELECT 1 AS one FROM orders WHERE customer_id = $1 LIMIT 1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?
                    .is_some());
        // `$3 = 1`: the brand's view (granted); otherwise the caller's own leads only.
        let tags = sqlx::query(
            "SELECT DISTINCT source FROM leads \
             WHERE customer_id = $1 AND (client_id = $2 OR $3 = 1) ORDER BY source",
        )
        .bind(id)
        .bind(client.as_str())
        .bind(i64::from(all))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("source"))
        .collect::<Result<Vec<_>, _>>()?;
        let stage = if any_order {
            CustomerStage::Customer
        } else {
            CustomerStage::Lead
        };
        let mut view = Customer::new(
            CustomerId::new(customer_id),
            mask_name(&name),
            mobile.masked(),
            stage,
            millis_to_cst(row.try_get("created_at")?),
        );
        view.region = Region::new(row.try_get("province")?, row.try_get("city")?, district);
        view.tags = tags;
        view.order_ids = order_ids;
        Ok(Some(view))
    }
}

/// Whether the operator granted `client` every customer.
///
/// # Errors
///
/// [`StoreError::Database`] when the query fails.
pub async fn all_customers_granted(
    conn: &mut AnyConnection,
    client: &ClientId,
) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT all_customers FROM clients WHERE id = $1")
        .bind(client.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<i64, _>("all_customers")? == 1,
        None => false,
    })
}

impl CustomerStore<'_> {
    /// Grants (or withdraws) `client` the right to read every customer. Returns whether the
    /// client exists.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the query fails.
    pub async fn grant_all(&self, client: &ClientId, granted: bool) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE clients SET all_customers = $1 WHERE id = $2")
            .bind(i64::from(granted))
            .bind(client.as_str())
            .execute(self.db.pool())
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// How many customers are stored.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the query fails.
    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM customers")
            .fetch_one(self.db.pool())
            .await?
            .try_get("n")?)
    }
}
