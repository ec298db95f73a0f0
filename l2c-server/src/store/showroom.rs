//! Showroom items (products and cases), their per-client grants, and the demo catalogue.

use l2c_core::ClientId;
use l2c_core::api::ShowroomItemId;
use l2c_core::api::showroom::{Page, ShowroomItem, ShowroomItemType, Visibility};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::{begin_write, like_escape, millis_to_cst};
use super::{Db, StoreError};

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

/// One demo item: type, title, category, summary, tags, price from in yuan, visibility.
type DemoRow = (
    ShowroomItemType,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    Option<i64>,
    Visibility,
);

/// A realistic demo catalogue of custom-furnishing products and finished cases: most `PUBLIC`,
/// a few `AUTHORIZED` (new-season lines and premium cases a partner must be granted).
pub fn demo_catalogue(now_millis: i64) -> Vec<ShowroomItem> {
    use ShowroomItemType::{Case, Product};
    use Visibility::{Authorized, Public};
    // (type, title, category, summary, tags, price from in yuan, visibility)
    let rows: [DemoRow; 36] = [
        (
            Product,
            "北欧原木风三门衣柜",
            "衣柜",
            "E0 级多层实木板，顶天立地，内部分区可定制",
            &["北欧", "实木多层板", "衣柜"],
            Some(6_999),
            Public,
        ),
        (
            Product,
            "极简无把手平开衣柜",
            "衣柜",
            "隐藏式拉手，门板 PET 肤感膜，耐指纹",
            &["极简", "无把手", "肤感"],
            Some(8_599),
            Public,
        ),
        (
            Product,
            "玻璃门轻奢衣柜",
            "衣柜",
            "长虹玻璃门 + 铝框，内置感应灯带",
            &["轻奢", "长虹玻璃", "灯带"],
            Some(11_800),
            Public,
        ),
        (
            Product,
            "推拉门移门衣柜",
            "衣柜",
            "静音阻尼滑轨，适合小户型卧室",
            &["小户型", "移门", "静音"],
            Some(5_980),
            Public,
        ),
        (
            Product,
            "开放式衣帽间系统",
            "衣帽间",
            "铝合金立柱 + 层板，可随时调整高度",
            &["衣帽间", "开放式", "铝合金"],
            Some(15_800),
            Public,
        ),
        (
            Product,
            "U 型步入式衣帽间",
            "衣帽间",
            "中岛首饰柜 + 全身镜，适合主卧套间",
            &["衣帽间", "中岛", "主卧"],
            Some(32_000),
            Authorized,
        ),
        (
            Product,
            "L 型奶油风整体橱柜",
            "橱柜",
            "石英石台面，抽屉式地柜，一字或 L 型布局",
            &["奶油风", "石英石", "橱柜"],
            Some(12_800),
            Public,
        ),
        (
            Product,
            "U 型岩板台面橱柜",
            "橱柜",
            "一体岩板台面，耐高温防渗，带水槽柜",
            &["岩板", "U 型", "橱柜"],
            Some(18_900),
            Public,
        ),
        (
            Product,
            "开放式中岛厨房",
            "橱柜",
            "中岛兼餐桌，嵌入式蒸烤箱位预留",
            &["中岛", "开放式厨房", "嵌入式"],
            Some(36_800),
            Authorized,
        ),
        (
            Product,
            "窄边框铝框玻璃吊柜",
            "橱柜",
            "18mm 窄边框，通透不压抑",
            &["吊柜", "铝框玻璃"],
            Some(1_680),
            Public,
        ),
        (
            Product,
            "整墙书柜",
            "书柜",
            "顶天立地整墙书柜，带梯子导轨",
            &["书房", "整墙", "书柜"],
            Some(7_800),
            Public,
        ),
        (
            Product,
            "书桌书柜一体组合",
            "书柜",
            "转角书桌 + 书柜，儿童房与书房通用",
            &["书桌", "儿童房", "一体"],
            Some(5_280),
            Public,
        ),
        (
            Product,
            "榻榻米地台床",
            "榻榻米",
            "升降桌 + 地台储物，多功能房首选",
            &["榻榻米", "升降桌", "储物"],
            Some(9_800),
            Public,
        ),
        (
            Product,
            "榻榻米衣柜组合",
            "榻榻米",
            "地台与衣柜连体设计，小房间不浪费空间",
            &["榻榻米", "衣柜", "小户型"],
            Some(12_600),
            Public,
        ),
        (
            Product,
            "实木复合静音室内门",
            "木门",
            "实木复合门芯，磁吸静音门锁",
            &["木门", "静音", "实木复合"],
            Some(2_380),
            Public,
        ),
        (
            Product,
            "极窄边玻璃隐形门",
            "木门",
            "与墙面齐平的隐形门，可做护墙板同色",
            &["隐形门", "极窄边"],
            Some(3_980),
            Authorized,
        ),
        (
            Product,
            "护墙板背景墙",
            "护墙板",
            "免漆护墙板，客厅电视墙或卧室床头墙",
            &["护墙板", "背景墙", "免漆"],
            Some(680),
            Public,
        ),
        (
            Product,
            "玄关鞋柜带换鞋凳",
            "鞋柜",
            "悬空设计，底部放常穿鞋，换鞋凳可翻折",
            &["玄关", "鞋柜", "悬空"],
            Some(3_280),
            Public,
        ),
        (
            Product,
            "餐边柜酒柜一体",
            "酒柜",
            "恒温酒柜嵌入位，上方玻璃展示柜",
            &["餐边柜", "酒柜", "嵌入式"],
            Some(6_480),
            Public,
        ),
        (
            Product,
            "悬浮电视柜",
            "电视柜",
            "壁挂式悬浮电视柜，线路暗藏",
            &["客厅", "悬浮", "电视柜"],
            Some(2_980),
            Public,
        ),
        (
            Product,
            "阳台洗衣机柜",
            "阳台柜",
            "洗烘叠放位 + 洗手盆，防水板材",
            &["阳台", "洗衣机柜", "防水"],
            Some(3_580),
            Public,
        ),
        (
            Product,
            "浴室防水浴室柜",
            "浴室柜",
            "蜂窝铝板柜体，智能镜柜可选",
            &["浴室柜", "防水", "智能镜"],
            Some(4_280),
            Public,
        ),
        (
            Product,
            "儿童房成长型衣柜",
            "衣柜",
            "可调节挂衣杆高度，圆角防撞",
            &["儿童房", "成长型", "圆角"],
            Some(4_980),
            Public,
        ),
        (
            Product,
            "2027 春季新品·胡桃木系列",
            "衣柜",
            "北美黑胡桃木皮饰面，新季限定色",
            &["新品", "胡桃木", "限定"],
            Some(19_800),
            Authorized,
        ),
        (
            Case,
            "杭州滨江 89㎡ 奶油风三居全屋定制",
            "全屋定制",
            "三口之家，收纳增加 40%，从量尺到安装 45 天",
            &["奶油风", "三居", "杭州"],
            None,
            Public,
        ),
        (
            Case,
            "上海徐汇 62㎡ 小户型改造",
            "小户型",
            "榻榻米 + 折叠床，一房变两房",
            &["小户型", "榻榻米", "上海"],
            None,
            Public,
        ),
        (
            Case,
            "成都高新 140㎡ 新中式大平层",
            "全屋定制",
            "胡桃木色护墙板 + 整墙书柜，茶室独立",
            &["新中式", "大平层", "成都"],
            None,
            Public,
        ),
        (
            Case,
            "南京江宁 120㎡ 北欧原木风",
            "全屋定制",
            "原木色系，儿童房成长型家具",
            &["北欧", "原木", "南京"],
            None,
            Public,
        ),
        (
            Case,
            "深圳南山 75㎡ 极简黑白灰",
            "全屋定制",
            "无把手柜体，隐形门统一立面",
            &["极简", "无把手", "深圳"],
            None,
            Public,
        ),
        (
            Case,
            "苏州园区 180㎡ 轻奢别墅",
            "别墅",
            "步入式衣帽间 + 开放式中岛厨房",
            &["轻奢", "别墅", "苏州"],
            None,
            Authorized,
        ),
        (
            Case,
            "武汉光谷 98㎡ 现代简约",
            "全屋定制",
            "L 型橱柜 + 阳台洗衣机柜，动线优化",
            &["现代简约", "武汉"],
            None,
            Public,
        ),
        (
            Case,
            "北京朝阳 55㎡ 老房翻新",
            "旧房改造",
            "老破小翻新，玄关鞋柜与整墙收纳",
            &["旧房改造", "北京", "收纳"],
            None,
            Public,
        ),
        (
            Case,
            "广州天河 110㎡ 法式复古",
            "全屋定制",
            "法式线条门板，奶咖配色",
            &["法式", "复古", "广州"],
            None,
            Public,
        ),
        (
            Case,
            "西安曲江 160㎡ 意式极简大宅",
            "大宅",
            "岩板 + 玻璃门柜体，灯光与柜体一体设计",
            &["意式极简", "大宅", "西安"],
            None,
            Authorized,
        ),
        (
            Case,
            "重庆渝北 85㎡ 日式原木",
            "全屋定制",
            "榻榻米茶室 + 原木色护墙板",
            &["日式", "原木", "重庆"],
            None,
            Public,
        ),
        (
            Case,
            "长沙岳麓 130㎡ 多孩家庭收纳方案",
            "全屋定制",
            "两个儿童房 + 书房，书柜收纳 1200 本",
            &["多孩家庭", "收纳", "长沙"],
            None,
            Public,
        ),
    ];
    rows.iter()
        .enumerate()
        .map(|(i, (t, title, category, summary, tags, price, vis))| {
            let id = format!("itm_{:04}", i + 1);
            let mut item = ShowroomItem::new(
                ShowroomItemId::new(id.clone()),
                *t,
                *title,
                *category,
                *vis,
                millis_to_cst(now_millis),
            );
            item.summary = (*summary).to_owned();
            item.tags = tags.iter().map(|s| (*s).to_owned()).collect();
            item.cover_image_url = format!("https://cdn.l2c.example/showroom/{id}/cover.jpg");
            item.price_from = price.map(|yuan| yuan * 100);
            item
        })
        .collect()
}
