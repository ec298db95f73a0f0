//! Showroom items (products and cases), their per-client grants, and the demo catalogue.

use l2c_core::ClientId;
use l2c_core::api::ShowroomItemId;
use l2c_core::api::showroom::{Page, ShowroomItem, ShowroomItemType};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::{begin_write, like_escape, millis_to_cst};
use super::{Db, StoreError};

mod demo;

pub use self::demo::demo_catalogue;

/// Showroom queries and grants. Get one with [`Db::showroom`].
#[derive(Debug, Clone, Copy)]
pub struct ShowroomStore<'a> {
    db: &'a Db,
}

impl Db {
    /// The showroom.
    pub fn showroom(&self) -> ShowroomStore<'_> {
        ShowroomStore { db: self }
    }
}

/// A validated list request.
#[derive(Debug, Clone, Default)]
pub struct ItemFilter {
    /// Only this type.
    pub item_type: Option<ShowroomItemType>,
    /// Only this category (exact).
    pub category: Option<String>,
    /// Title, summary or tags contain this (case-insensitive).
    pub keyword: Option<String>,
    /// The page, from 1.
    pub page: u32,
    /// The page size, 1–100.
    pub page_size: u32,
}

fn corrupt(detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        table: "showroom_items",
        detail: detail.into(),
    }
}

fn item(row: &AnyRow) -> Result<ShowroomItem, StoreError> {
    let item_type: String = row.try_get("item_type")?;
    let visibility: String = row.try_get("visibility")?;
    let tags: String = row.try_get("tags")?;
    let mut item = ShowroomItem::new(
        ShowroomItemId::new(row.try_get::<String, _>("id")?),
        item_type.parse().map_err(|_| corrupt("item_type"))?,
        row.try_get::<String, _>("title")?,
        row.try_get::<String, _>("category")?,
        visibility.parse().map_err(|_| corrupt("visibility"))?,
        millis_to_cst(row.try_get("updated_at")?),
    );
    item.summary = row.try_get("summary")?;
    item.tags = serde_json::from_str(&tags).map_err(|e| corrupt(format!("tags: {e}")))?;
    item.cover_image_url = row.try_get("cover_image_url")?;
    item.price_from = row.try_get("price_from")?;
    Ok(item)
}

/// A grant naming an item that does not exist.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// No such showroom item.
    #[error("no showroom item `{0}`")]
    UnknownItem(String),
    /// A database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for GrantError {
    fn from(e: sqlx::Error) -> Self {
        GrantError::Store(StoreError::Database(e))
    }
}

impl ShowroomStore<'_> {
    /// One page of the items `client` may see (every `PUBLIC` item and the `AUTHORIZED` ones
    /// granted to it), filtered, ordered by id; `total` is exact.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when a query fails or a row is broken.
    pub async fn list(
        &self,
        client: &ClientId,
        filter: &ItemFilter,
    ) -> Result<Page<ShowroomItem>, StoreError> {
        let mut sql = String::from(
            " FROM showroom_items i WHERE (i.visibility = 'PUBLIC' OR EXISTS (\
             SELECT 1 FROM showroom_grants g WHERE g.client_id = $1 AND g.item_id = i.id))",
        );
        let mut binds: Vec<String> = vec![client.as_str().to_owned()];
        if let Some(t) = filter.item_type {
            binds.push(t.as_str().to_owned());
            sql.push_str(&format!(" AND i.item_type = ${}", binds.len()));
        }
        if let Some(c) = &filter.category {
            binds.push(c.clone());
            sql.push_str(&format!(" AND i.category = ${}", binds.len()));
        }
        if let Some(k) = &filter.keyword {
            binds.push(format!("%{}%", like_escape(&k.to_lowercase())));
            let n = binds.len();
            sql.push_str(&format!(
                " AND (LOWER(i.title) LIKE ${n} ESCAPE '\\' OR LOWER(i.summary) LIKE ${n} ESCAPE '\\' \
                 OR LOWER(i.tags) LIKE ${n} ESCAPE '\\' OR LOWER(i.category) LIKE ${n} ESCAPE '\\')"
            ));
        }
        let mut conn = self.db.pool().acquire().await?;
        let count_sql = format!("SELECT COUNT(*) AS n{sql}");
        let mut count = sqlx::query(&count_sql);
        for b in &binds {
            count = count.bind(b.as_str());
        }
        let total: i64 = count.fetch_one(&mut *conn).await?.try_get("n")?;
        let limit = i64::from(filter.page_size);
        let offset = i64::from(filter.page.saturating_sub(1)) * limit;
        let page_sql = format!(
            "SELECT i.id, i.item_type, i.title, i.category, i.summary, i.tags, i.cover_image_url, \
             i.price_from, i.visibility, i.updated_at{sql} ORDER BY i.id LIMIT ${} OFFSET ${}",
            binds.len() + 1,
            binds.len() + 2
        );
        let mut query = sqlx::query(&page_sql);
        for b in &binds {
            query = query.bind(b.as_str());
        }
        let rows = query.bind(limit).bind(offset).fetch_all(&mut *conn).await?;
        let items = rows.iter().map(item).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::new(
            items,
            filter.page,
            filter.page_size,
            u64::try_from(total).unwrap_or(0),
        ))
    }

    /// Grants `client` the `AUTHORIZED` items `ids` (idempotent). Returns how many were new.
    ///
    /// # Errors
    ///
    /// [`GrantError::UnknownItem`] (and nothing granted) when an id does not exist.
    pub async fn grant(&self, client: &ClientId, ids: &[String]) -> Result<u64, GrantError> {
        let now = self.db.now_millis();
        let mut tx = begin_write(self.db).await?;
        let mut added = 0;
        for id in ids {
            let exists = sqlx::query("SELECT id FROM showroom_items WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(GrantError::UnknownItem(id.clone()));
            }
            added += sqlx::query(
                "INSERT INTO showroom_grants (client_id, item_id, granted_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (client_id, item_id) DO NOTHING",
            )
            .bind(client.as_str())
            .bind(id.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Withdraws grants of `ids` from `client`. Returns how many existed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when a query fails.
    pub async fn revoke(&self, client: &ClientId, ids: &[String]) -> Result<u64, StoreError> {
        let mut tx = begin_write(self.db).await?;
        let mut removed = 0;
        for id in ids {
            removed +=
                sqlx::query("DELETE FROM showroom_grants WHERE client_id = $1 AND item_id = $2")
                    .bind(client.as_str())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Inserts or replaces an item (operators, tests and the demo seed).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the query fails.
    pub async fn upsert(&self, item: &ShowroomItem) -> Result<(), StoreError> {
        let tags = serde_json::to_string(&item.tags).map_err(|e| corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO showroom_items (id, item_type, title, category, summary, tags, \
             cover_image_url, price_from, visibility, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (id) DO UPDATE SET item_type = excluded.item_type, \
             title = excluded.title, category = excluded.category, summary = excluded.summary, \
             tags = excluded.tags, cover_image_url = excluded.cover_image_url, \
             price_from = excluded.price_from, visibility = excluded.visibility, \
             updated_at = excluded.updated_at",
        )
        .bind(item.id.as_str())
        .bind(item.item_type.as_str())
        .bind(&item.title)
        .bind(&item.category)
        .bind(&item.summary)
        .bind(tags)
        .bind(&item.cover_image_url)
        .bind(item.price_from)
        .bind(item.visibility.as_str())
        .bind(item.updated_at.timestamp_millis())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Seeds the demo catalogue ([`demo_catalogue`]) when the showroom is empty; returns how
    /// many items were inserted (0 when it already had items).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when a query fails.
    pub async fn seed_demo_if_empty(&self) -> Result<usize, StoreError> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM showroom_items")
            .fetch_one(self.db.pool())
            .await?
            .try_get("n")?;
        if n > 0 {
            return Ok(0);
        }
        let items = demo_catalogue(self.db.now_millis());
        for item in &items {
            self.upsert(item).await?;
        }
        Ok(items.len())
    }
}
