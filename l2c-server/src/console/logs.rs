//! 请求日志: an app's recent API requests (newest first, paged, searchable by request id,
//! filtered by status class) with a per-hour chart of the last 24 hours; operators also have
//! the page over every request, the unattributed ones included (a 401's token names no app
//! anyone can trust; see [`crate::observe::request_log`]).

mod chart;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use maud::{Markup, html};

use super::apps::visible_app;
use super::layout::{self, Nav, Tab, banner, page, time};
use super::session::ConsoleSession;
use crate::state::AppState;
use crate::store::accounts::Role;
use crate::store::request_logs::{RequestLogFilter, RequestLogRow, StatusClass};

/// Rows per page.
const PAGE: i64 = 50;

/// The page's query: all text, checked here, so a bad value gets a sentence rather than a bare
/// 400.
#[derive(Debug, Default, serde::Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// The query, checked.
struct Checked {
    page: i64,
    request_id: Option<String>,
    status: Option<StatusClass>,
    /// What was wrong, in words.
    error: Option<&'static str>,
}

fn check(q: &LogQuery) -> Checked {
    let mut error = None;
    let page = match q.page.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => 1,
        Some(p) => match p.parse::<i64>() {
            Ok(n) if (1..=100_000).contains(&n) => n,
            _ => {
                error = Some("页码无效，已显示第 1 页。");
                1
            }
        },
    };
    let request_id = q
        .request_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let request_id = match request_id {
        Some(id) if l2c_core::RequestId::is_valid(id.as_bytes()) => Some(id.to_owned()),
        Some(_) => {
            error = Some("请求 ID 无效：应为 1–255 个可见 ASCII 字符（X-Request-Id 的取值）。");
            None
        }
        None => None,
    };
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match StatusClass::parse(s) {
            Some(c) => Some(c),
            None => {
                error = Some("状态筛选无效。");
                None
            }
        },
    };
    Checked {
        page,
        request_id,
        status,
        error,
    }
}

/// `GET /console/apps/{id}/logs`: one app's requests (the app's people; 404 for others).
pub async fn app_logs(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Response {
    let c = match visible_app(&state, &session, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let head = layout::app_tabs(c.id.as_str(), &c.name, Tab::Logs);
    let here = format!("/console/apps/{}/logs", c.id);
    logs_page(&state, &session, Some(c.id.as_str()), head, &here, &q).await
}

/// `GET /console/logs`: every request, unattributed ones included (operators; 404 for
/// developers).
pub async fn all_logs(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Query(q): Query<LogQuery>,
) -> Response {
    if session.account.role != Role::Operator {
        return layout::not_found();
    }
    let head = html! {
        div.pagehead {
            h1 { "请求日志" }
            p.muted { "所有应用的 API 请求，包括无法归属到应用的请求（例如令牌无效的 401）。按请求 ID 查找合作方反馈的问题请求。" }
        }
    };
    logs_page(&state, &session, None, head, "/console/logs", &q).await
}

async fn logs_page(
    state: &AppState,
    session: &ConsoleSession,
    client: Option<&str>,
    head: Markup,
    here: &str,
    q: &LogQuery,
) -> Response {
    let checked = check(q);
    let filter = RequestLogFilter::new(client)
        .request_id(checked.request_id.as_deref())
        .status(checked.status);
    let now = state.db.now_millis();
    let store = state.db.request_logs();
    let offset = (checked.page - 1).saturating_mul(PAGE);
    let (rows, hours) = match tokio::try_join!(
        store.list(&filter, PAGE + 1, offset),
        store.hourly(client, chart::first_hour(now)),
    ) {
        Ok(r) => r,
        Err(e) => return layout::internal(&e),
    };
    let more = rows.len() > PAGE as usize;
    let rows = &rows[..rows.len().min(PAGE as usize)];
    let hours = chart::buckets(&hours, now);
    let page_link = |n: i64| {
        let mut query = vec![("page", n.to_string())];
        if let Some(id) = &checked.request_id {
            query.push(("request_id", id.clone()));
        }
        if let Some(s) = checked.status {
            query.push(("status", s.as_str().to_owned()));
        }
        format!(
            "{here}?{}",
            serde_urlencoded::to_string(&query).unwrap_or_default()
        )
    };
    let body = html! {
        (head)
        @if let Some(e) = checked.error { (banner(false, e)) }
        div.card {
            h2 { "最近 24 小时" }
            (chart::render(&hours))
        }
        div.card {
            h2 { "请求" }
            p.muted.small { "保留 " (retention(state)) "。只记录时间、方法、路由模板、状态、请求 ID、耗时与限流状态，从不记录请求体、令牌或密钥。" }
            form.filters method="get" action=(here) {
                input type="text" name="request_id" aria-label="请求 ID" placeholder="请求 ID（X-Request-Id，精确匹配）"
                    value=(checked.request_id.as_deref().unwrap_or("")) maxlength="255";
                select name="status" aria-label="状态" {
                    option value="" { "全部状态" }
                    @for c in StatusClass::ALL {
                        option value=(c.as_str()) selected[checked.status == Some(c)] { (c.as_str()) }
                    }
                }
                button type="submit" { "查询" }
                @if checked.request_id.is_some() || checked.status.is_some() { a href=(here) { "清除" } }
            }
            (table(rows, client.is_none()))
            div.pager {
                @if checked.page > 1 { a href=(page_link(checked.page - 1)) { "← 上一页" } }
                span.muted { "第 " (checked.page) " 页" }
                @if more { a href=(page_link(checked.page + 1)) { "下一页 →" } }
            }
        }
    };
    let status = if checked.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    // An operator reached an app's log from the apps; everyone else from 请求日志.
    let nav = if client.is_some() && session.account.role == Role::Operator {
        Nav::Apps
    } else {
        Nav::Logs
    };
    (status, page(session, nav, "请求日志", body)).into_response()
}

fn retention(state: &AppState) -> String {
    match state.config.request_logs.retention.duration() {
        None => "全部记录".into(),
        Some(d) if d.as_secs() % 86_400 == 0 => format!("{} 天", d.as_secs() / 86_400),
        Some(d) if d.as_secs() % 3_600 == 0 => format!("{} 小时", d.as_secs() / 3_600),
        Some(d) => format!("{} 秒", d.as_secs()),
    }
}

fn status_badge(status: u16) -> Markup {
    html! {
        @match status {
            200..=399 => span.badge.on.mono { (status) },
            400..=499 => span.badge.wait.mono { (status) },
            _ => span.badge.off.mono { (status) },
        }
    }
}

fn limit_state(r: &RequestLogRow) -> Markup {
    html! {
        @if r.status == 429 { span.badge.off { "已限流" } }
        @else if let Some(n) = r.rate_remaining { span.small { "剩余 " (n) } }
        @else { span.muted { "—" } }
    }
}

fn table(rows: &[RequestLogRow], with_app: bool) -> Markup {
    let cols = if with_app { 8 } else { 7 };
    html! {
        div.tablewrap {
            table.logs {
                thead {
                    tr {
                        th { "时间" } th { "方法" } th { "路由" } th { "状态" } th { "请求 ID" } th { "耗时" } th { "限流" }
                        @if with_app { th { "应用" } }
                    }
                }
                tbody {
                    @for r in rows {
                        tr {
                            td.nowrap { (time(r.at)) }
                            td.mono { (r.method) }
                            td.mono.small.url { (r.route) }
                            td { (status_badge(r.status)) }
                            td.mono.small.url { (r.request_id) }
                            td.nowrap { (format!("{:.1} ms", r.latency_us as f64 / 1000.0)) }
                            td.nowrap { (limit_state(r)) }
                            @if with_app {
                                td.mono.small {
                                    @match &r.client_id {
                                        Some(c) => a href={ "/console/apps/" (c) "/logs" } { (c) },
                                        None => span.muted { "未归属" },
                                    }
                                }
                            }
                        }
                    }
                    @if rows.is_empty() { tr { td colspan=(cols) .muted { "没有符合条件的请求。" } } }
                }
            }
        }
    }
}
