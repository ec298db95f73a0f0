//! 线索来源 (an app's lead sources) and 审计日志 (the audit log, operators only).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use http::{HeaderMap, StatusCode};
use maud::{Markup, html};

use super::apps::{Done, Fields, done_banner, field, visible_app};
use super::layout::{self, Nav, Tab, banner, csrf, page, time};
use super::session::ConsoleSession;
use crate::admin::lead_sources::{self as uc, LeadSourceError};
use crate::routes::lead_sources::{HOOK_PATH, base_url};
use crate::state::AppState;
use crate::store::accounts::Role;
use crate::store::clients::Client;
use crate::usecases::lead_sources::Issued as Shown;

/// `GET /console/apps/{id}/lead-sources`.
pub async fn lead_sources(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    match visible_app(&state, &session, &id).await {
        Ok(c) => sources_page(&state, &session, &c, done_banner(&done), StatusCode::OK).await,
        Err(r) => r,
    }
}

async fn sources_page(
    state: &AppState,
    session: &ConsoleSession,
    c: &Client,
    notice: Markup,
    status: StatusCode,
) -> Response {
    let (sources, _) = match state.db.lead_sources().list(&c.id, 1, 100).await {
        Ok(s) => s,
        Err(e) => return layout::internal(&e),
    };
    let base = format!("/console/apps/{}/lead-sources", c.id);
    let body = html! {
        (layout::app_tabs(c.id.as_str(), &c.name, Tab::LeadSources))
        (notice)
        div.card {
            h2 { "线索来源" }
            p.muted { "广告平台（小红书聚光、巨量引擎飞鱼、抖音开放平台等）把线索推送到这些地址。推送地址只在创建和轮换时显示一次。" }
            div.tablewrap {
                table {
                    thead { tr { th { "名称" } th { "渠道" } th { "ID" } th { "更新时间" } th {} } }
                    tbody {
                        @for s in &sources {
                            tr {
                                td { (s.name) }
                                td.mono { (s.channel) }
                                td.mono.small { (s.id) }
                                td.nowrap { (time(s.updated_at)) }
                                td.nowrap {
                                    form.inline method="post" action={ (base) "/" (s.id) "/rotate" } data-confirm="轮换后旧推送地址立即失效，确定？" {
                                        (csrf(session)) button.small type="submit" { "轮换地址" }
                                    }
                                    form.inline method="post" action={ (base) "/" (s.id) "/delete" } data-confirm="确定删除该线索来源？已接收的线索会保留。" {
                                        (csrf(session)) button.small.danger type="submit" { "删除" }
                                    }
                                }
                            }
                        }
                        @if sources.is_empty() { tr { td colspan="5" .muted { "尚未创建线索来源。" } } }
                    }
                }
            }
        }
        div.card {
            h2 { "创建通用（GENERIC）来源" }
            p.muted { "其他渠道（小红书、飞鱼、抖音）需要平台参数，请使用 API " code { "POST /api/mobile/lead-sources" } "。" }
            form method="post" action=(base) {
                (csrf(session))
                label for="name" { "名称" }
                input #name type="text" name="name" required maxlength="64" placeholder="官网表单";
                label for="id_pointer" { "线索 ID 的 JSON Pointer" }
                input #id_pointer type="text" name="id_pointer" required value="/id";
                label for="mobile_pointer" { "手机号的 JSON Pointer" }
                input #mobile_pointer type="text" name="mobile_pointer" required value="/mobile";
                button.primary type="submit" { "创建" }
            }
        }
    };
    (status, page(session, Nav::Apps, "线索来源", body)).into_response()
}

fn shown_notice(state: &AppState, headers: &HeaderMap, shown: &Shown, what: &str) -> Markup {
    let url = format!("{}{HOOK_PATH}{}", base_url(state, headers), shown.token);
    html! {
        (banner(true, what))
        (layout::secret_once("推送地址（仅显示这一次，请立即保存）：", "push-url", &url, "把它填写到广告平台的线索推送设置中。"))
        @if let Some(secret) = &shown.secret {
            (layout::secret_once("签名密钥（仅显示这一次）：", "push-secret", secret, "推送方用它对请求体做 HMAC-SHA256 签名。"))
        }
    }
}

fn refusal(e: &LeadSourceError) -> Option<String> {
    match e {
        LeadSourceError::Invalid(m) => Some(format!("参数无效：{m}")),
        LeadSourceError::NotFound(_) => None,
        LeadSourceError::TooMany => Some("线索来源数量已达上限，请先删除一个。".into()),
        _ => None,
    }
}

/// `POST /console/apps/{id}/lead-sources`: create a GENERIC source.
pub async fn create_lead_source(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let c = match visible_app(&state, &session, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let result = uc::create_generic(
        &state,
        &session.actor(),
        &c.id,
        field(&fields, "name").unwrap_or_default(),
        field(&fields, "id_pointer").unwrap_or_default(),
        field(&fields, "mobile_pointer").unwrap_or_default(),
    )
    .await;
    match result {
        Ok(shown) => {
            let notice = shown_notice(&state, &headers, &shown, "线索来源已创建。");
            sources_page(&state, &session, &c, notice, StatusCode::CREATED).await
        }
        Err(e) => match refusal(&e) {
            Some(m) => {
                sources_page(
                    &state,
                    &session,
                    &c,
                    banner(false, &m),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            None => layout::internal(&e),
        },
    }
}

/// `POST /console/apps/{id}/lead-sources/{ls}/rotate`.
pub async fn rotate_lead_source(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path((id, ls)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let c = match visible_app(&state, &session, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match uc::rotate(&state, &session.actor(), &c.id, &ls).await {
        Ok(shown) => {
            let notice = shown_notice(&state, &headers, &shown, "推送地址已轮换，旧地址已失效。");
            sources_page(&state, &session, &c, notice, StatusCode::OK).await
        }
        Err(LeadSourceError::NotFound(_)) => layout::not_found(),
        Err(e) => layout::internal(&e),
    }
}

/// `POST /console/apps/{id}/lead-sources/{ls}/delete`.
pub async fn delete_lead_source(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path((id, ls)): Path<(String, String)>,
) -> Response {
    let c = match visible_app(&state, &session, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match uc::delete(&state, &session.actor(), &c.id, &ls).await {
        Ok(()) => {
            Redirect::to(&format!("/console/apps/{id}/lead-sources?ok=deleted")).into_response()
        }
        Err(LeadSourceError::NotFound(_)) => layout::not_found(),
        Err(e) => layout::internal(&e),
    }
}

/// The audit page's query.
#[derive(Debug, serde::Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    page: Option<i64>,
}

const AUDIT_PAGE: i64 = 50;

/// `GET /console/audit` (operators; 404 for developers).
pub async fn audit_log(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Query(q): Query<AuditQuery>,
) -> Response {
    if session.account.role != Role::Operator {
        return layout::not_found();
    }
    let page_no = q.page.unwrap_or(1).max(1);
    let entries = match state
        .db
        .audit()
        .list(AUDIT_PAGE + 1, (page_no - 1).saturating_mul(AUDIT_PAGE))
        .await
    {
        Ok(e) => e,
        Err(e) => return layout::internal(&e),
    };
    let more = entries.len() > usize::try_from(AUDIT_PAGE).unwrap_or(usize::MAX);
    let body = html! {
        div.pagehead { h1 { "审计日志" } p.muted { "控制台与命令行的每一次操作：谁、做了什么、哪个应用、何时、从哪里。只读。" } }
        div.card {
            div.tablewrap {
                table {
                    thead { tr { th { "时间" } th { "账号" } th { "操作" } th { "应用" } th { "对象" } th { "来源地址" } } }
                    tbody {
                        @for e in entries.iter().take(usize::try_from(AUDIT_PAGE).unwrap_or(0)) {
                            tr {
                                td.nowrap { (time(e.at)) }
                                td { (e.username) }
                                td.mono { (e.action) }
                                td.mono.small { (e.client_id.as_deref().unwrap_or("—")) }
                                td.small { (e.target.as_deref().unwrap_or("—")) }
                                td.mono.small { (e.address.as_deref().unwrap_or("—")) }
                            }
                        }
                        @if entries.is_empty() { tr { td colspan="6" .muted { "暂无记录。" } } }
                    }
                }
            }
            div.pager {
                @if page_no > 1 { a href={ "/console/audit?page=" (page_no - 1) } { "← 上一页" } }
                span.muted { "第 " (page_no) " 页" }
                @if more { a href={ "/console/audit?page=" (page_no + 1) } { "下一页 →" } }
            }
        }
    };
    page(&session, Nav::Audit, "审计日志", body).into_response()
}
