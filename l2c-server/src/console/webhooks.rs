//! 开发者选项 → Webhook: subscriptions (add, edit, disable, re-enable, delete; the secret's
//! rotation and promotion are in [`super::webhook_secret`]) and their deliveries (newest first,
//! paged, filtered by status and event type, resend).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use http::StatusCode;
use l2c_core::ClientId;
use l2c_core::api::events::EventType;
use maud::{Markup, html};

use super::apps::{Done, Fields, all, done_banner, field, visible_app};
use super::layout::{self, Nav, Tab, banner, csrf, page, time};
use super::session::ConsoleSession;
use crate::admin::webhooks::{self as uc, DeliveryFilter, WebhookError};
use crate::ssrf::SsrfError;
use crate::state::AppState;
use crate::store::clients::Client;
use crate::store::outbox::Subscription;

/// The refusal of a URL, in words.
fn url_refusal(e: &SsrfError) -> String {
    match e {
        SsrfError::Invalid => {
            "URL 无效：请填写完整的地址，例如 https://example.com/l2c/webhook。".into()
        }
        SsrfError::NotHttps => "URL 必须使用 https。".into(),
        SsrfError::Credentials => "URL 不能包含用户名或密码。".into(),
        SsrfError::NoHost => "URL 缺少主机名。".into(),
        SsrfError::Unresolvable(h) => format!("主机 {h} 无法解析，请检查域名。"),
        SsrfError::NonPublic(ip) => format!(
            "该地址解析到内网或保留地址（{ip}）。为防止服务端请求伪造（SSRF），Webhook 只能指向公网地址。"
        ),
    }
}

fn refusal(e: &WebhookError) -> Option<String> {
    Some(match e {
        WebhookError::Url(s) => url_refusal(s),
        WebhookError::NoEvents => "请至少选择一个事件类型。".into(),
        WebhookError::Disabled => "该 Webhook 已停用，请先重新启用再重新发送。".into(),
        WebhookError::TooMany => e
            .to_string()
            .replace("an app may hold at most", "每个应用最多可添加")
            .replace("subscriptions", "个 Webhook"),
        _ => return None,
    })
}

fn events_of(fields: &Fields) -> Vec<EventType> {
    all(fields, "events")
        .into_iter()
        .filter_map(|e| e.parse().ok())
        .collect()
}

fn event_boxes(selected: &[EventType]) -> Markup {
    html! {
        div.checks {
            @for t in EventType::ALL {
                label.check {
                    input type="checkbox" name="events" value=(t.as_str()) checked[selected.contains(t)];
                    span.mono { (t.as_str()) }
                }
            }
        }
    }
}

fn enabled_badge(s: &Subscription) -> Markup {
    html! { @if s.enabled { span.badge.on { "启用" } } @else { span.badge.off { "已停用" } } }
}

fn base(client: &str) -> String {
    format!("/console/apps/{client}/webhooks")
}

/// `GET /console/apps/{id}/webhooks`.
pub async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    match visible_app(&state, &session, &id).await {
        Ok(c) => {
            list_page(
                &state,
                &session,
                &c,
                done_banner(&done),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(r) => r,
    }
}

async fn list_page(
    state: &AppState,
    session: &ConsoleSession,
    c: &Client,
    notice: Markup,
    draft: Option<(&str, &[EventType])>,
    status: StatusCode,
) -> Response {
    let subs = match state.db.webhooks().list(&c.id).await {
        Ok(s) => s,
        Err(e) => return layout::internal(&e),
    };
    let (draft_url, draft_events) = draft.unwrap_or(("", EventType::ALL));
    let body = html! {
        (layout::app_tabs(c.id.as_str(), &c.name, Tab::Webhooks))
        (notice)
        div.card {
            h2 { "Webhook" }
            p.muted { "订单创建、状态变更与回款时，L2C 向这些地址推送签名事件（X-L2C-Signature 与 Standard Webhooks 头）。" }
            div.tablewrap {
                table {
                    thead { tr { th { "URL" } th { "事件" } th { "状态" } th { "创建时间" } } }
                    tbody {
                        @for s in &subs {
                            tr {
                                td.url { a href={ (base(c.id.as_str())) "/" (s.id) } { (s.url) } }
                                td.mono.small { @for e in &s.events { span.tag { (e.as_str()) } " " } }
                                td { (enabled_badge(s)) }
                                td.nowrap { (time(s.created_at)) }
                            }
                        }
                        @if subs.is_empty() { tr { td colspan="4" .muted { "尚未添加 Webhook。" } } }
                    }
                }
            }
        }
        div.card {
            h2 { "添加 Webhook" }
            form method="post" action=(base(c.id.as_str())) {
                (csrf(session))
                label for="url" { "URL（https，公网可访问）" }
                input #url type="url" name="url" required value=(draft_url) placeholder="https://example.com/l2c/webhook";
                p.label { "事件" }
                (event_boxes(draft_events))
                button.primary type="submit" { "添加 Webhook" }
            }
        }
    };
    (status, page(session, Nav::Apps, "Webhook", body)).into_response()
}

/// `POST /console/apps/{id}/webhooks`: add.
pub async fn create(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let c = match visible_app(&state, &session, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let url = field(&fields, "url").unwrap_or_default();
    let events = events_of(&fields);
    match uc::create(&state, &session.actor(), &c.id, url, &events).await {
        Ok((sub, secret)) => {
            let notice = html! {
                (banner(true, "Webhook 已添加。"))
                (layout::secret_once(
                    "签名密钥（仅显示这一次，请立即保存）：",
                    "webhook-secret",
                    secret.expose_secret(),
                    &format!("用于验证 {} 收到的事件签名。", sub.url),
                ))
            };
            list_page(&state, &session, &c, notice, None, StatusCode::CREATED).await
        }
        Err(e) => match refusal(&e) {
            Some(msg) => {
                list_page(
                    &state,
                    &session,
                    &c,
                    banner(false, &msg),
                    Some((url, &events)),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            None => layout::internal(&e),
        },
    }
}

/// The delivery list's query.
#[derive(Debug, Default, serde::Deserialize)]
pub struct DeliveryQuery {
    #[serde(default)]
    ok: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    page: Option<i64>,
}

pub(super) async fn subscription(
    state: &AppState,
    session: &ConsoleSession,
    id: &str,
    wh: &str,
) -> Result<(Client, Subscription), Response> {
    let c = visible_app(state, session, id).await?;
    match state.db.webhooks().get(&c.id, wh).await {
        Ok(Some(s)) => Ok((c, s)),
        Ok(None) => Err(layout::not_found()),
        Err(e) => Err(layout::internal(&e)),
    }
}

/// `GET /console/apps/{id}/webhooks/{wh}`: details, edit, actions and deliveries.
pub async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path((id, wh)): Path<(String, String)>,
    Query(q): Query<DeliveryQuery>,
) -> Response {
    let notice = done_banner(&Done::from_code(q.ok.clone()));
    match subscription(&state, &session, &id, &wh).await {
        Ok((c, s)) => show_page(&state, &session, &c, &s, &q, notice, StatusCode::OK).await,
        Err(r) => r,
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn show_page(
    state: &AppState,
    session: &ConsoleSession,
    c: &Client,
    s: &Subscription,
    q: &DeliveryQuery,
    notice: Markup,
    status: StatusCode,
) -> Response {
    let filter = DeliveryFilter {
        status: q.status.clone().filter(|s| !s.is_empty()),
        event_type: q.event.as_deref().and_then(|e| e.parse().ok()),
    };
    let page_no = q.page.unwrap_or(1).max(1);
    let (rows, more) = match uc::deliveries(state, &c.id, &s.id, &filter, page_no).await {
        Ok(r) => r,
        Err(WebhookError::NotFound) => return layout::not_found(),
        Err(e) => return layout::internal(&e),
    };
    let reason = match uc::disabled_reason(state, &c.id, &s.id).await {
        Ok(r) => r.filter(|_| !s.enabled),
        Err(e) => return layout::internal(&e),
    };
    let now = state.db.now_millis();
    let here = format!("{}/{}", base(c.id.as_str()), s.id);
    let paging = |p: i64| {
        let mut url = format!("{here}?page={p}");
        if let Some(st) = &filter.status {
            url.push_str(&format!("&status={st}"));
        }
        if let Some(e) = filter.event_type {
            url.push_str(&format!("&event={}", e.as_str()));
        }
        url
    };
    let body = html! {
        (layout::app_tabs(c.id.as_str(), &c.name, Tab::Webhooks))
        p.crumbs { a href=(base(c.id.as_str())) { "Webhook" } " / " span.mono { (s.id) } }
        (notice)
        @if let Some(r) = &reason {
            div.notice.warn {
                "服务器已自动停用此 Webhook（" (r) "）。接收方恢复后，点击“重新启用”。"
            }
        }
        div.grid {
            div.card {
                h2 { "订阅" }
                dl.facts {
                    dt { "状态" } dd { (enabled_badge(s)) }
                    dt { "URL" } dd.url { (s.url) }
                    dt { "创建时间" } dd { (time(s.created_at)) }
                }
                div.actions {
                    @if s.enabled {
                        form.inline method="post" action={ (here) "/disable" } { (csrf(session)) button type="submit" { "停用" } }
                    } @else {
                        form.inline method="post" action={ (here) "/enable" } { (csrf(session)) button type="submit" { "重新启用" } }
                    }
                    form.inline method="post" action={ (here) "/delete" } data-confirm="确定删除该 Webhook 及其全部投递记录？" {
                        (csrf(session)) button.danger type="submit" { "删除" }
                    }
                }
            }
            (super::webhook_secret::secret_card(session, &here, s, now))
            div.card {
                h2 { "编辑" }
                form method="post" action={ (here) "/update" } {
                    (csrf(session))
                    label for="url" { "URL" }
                    input #url type="url" name="url" required value=(s.url);
                    p.label { "事件" }
                    (event_boxes(&s.events))
                    button type="submit" { "保存" }
                }
            }
        }
        div.card {
            h2 { "投递记录" }
            form.filters method="get" action=(here) {
                select name="status" aria-label="状态" {
                    option value="" { "全部状态" }
                    @for (v, label) in [("PENDING", "待发送"), ("SUCCEEDED", "成功"), ("FAILED", "失败")] {
                        option value=(v) selected[filter.status.as_deref() == Some(v)] { (label) }
                    }
                }
                select name="event" aria-label="事件类型" {
                    option value="" { "全部事件" }
                    @for t in EventType::ALL {
                        option value=(t.as_str()) selected[filter.event_type == Some(*t)] { (t.as_str()) }
                    }
                }
                button type="submit" { "筛选" }
            }
            div.tablewrap {
                table.deliveries {
                    thead { tr { th { "时间" } th { "事件" } th { "状态" } th { "尝试" } th {} } }
                    tbody {
                        @for d in &rows {
                            tr {
                                td.nowrap { (time(d.created_at)) }
                                td { span.mono { (d.event_type) } br; span.muted.mono.small { (d.event_id) } }
                                td {
                                    @match d.status.as_str() {
                                        "SUCCEEDED" => span.badge.on { "成功" },
                                        "FAILED" => span.badge.off { "失败" },
                                        _ => span.badge.wait { "待发送" },
                                    }
                                }
                                td.attempts {
                                    @for a in &d.attempts {
                                        div.attempt {
                                            span.nowrap { (time(a.attempted_at)) }
                                            " · "
                                            @match a.response_status {
                                                Some(code) => span.mono.code.fail[!(200..300).contains(&code)] { "HTTP " (code) },
                                                None => span.mono.code.fail { "无响应" },
                                            }
                                            " · " (a.latency_ms) " ms"
                                            @if let Some(err) = &a.error { br; span.muted.small { (err) } }
                                        }
                                    }
                                    @if d.attempts.is_empty() { span.muted { "—" } }
                                }
                                td {
                                    @if d.status != "PENDING" {
                                        form method="post" action={ (here) "/deliveries/" (d.id) "/resend" } {
                                            (csrf(session)) button.small type="submit" { "重新发送" }
                                        }
                                    }
                                }
                            }
                        }
                        @if rows.is_empty() { tr { td colspan="5" .muted { "暂无投递记录。" } } }
                    }
                }
            }
            div.pager {
                @if page_no > 1 { a href=(paging(page_no - 1)) { "← 上一页" } }
                span.muted { "第 " (page_no) " 页" }
                @if more { a href=(paging(page_no + 1)) { "下一页 →" } }
            }
        }
    };
    (status, page(session, Nav::Apps, "Webhook", body)).into_response()
}

pub(super) fn back(id: &str, wh: &str, ok: &str) -> Response {
    Redirect::to(&format!("/console/apps/{id}/webhooks/{wh}?ok={ok}")).into_response()
}

/// `POST …/webhooks/{wh}/update`: URL and events.
pub async fn update(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path((id, wh)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let (c, s) = match subscription(&state, &session, &id, &wh).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let url = field(&fields, "url").unwrap_or_default();
    let events = events_of(&fields);
    match uc::update(&state, &session.actor(), &c.id, &s.id, url, &events).await {
        Ok(()) => back(&id, &wh, "updated"),
        Err(e) => match refusal(&e) {
            Some(msg) => {
                let q = DeliveryQuery::default();
                show_page(
                    &state,
                    &session,
                    &c,
                    &s,
                    &q,
                    banner(false, &msg),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            None if matches!(e, WebhookError::NotFound) => layout::not_found(),
            None => layout::internal(&e),
        },
    }
}

async fn toggle(
    state: AppState,
    session: ConsoleSession,
    id: String,
    wh: String,
    enabled: bool,
) -> Response {
    let (c, s) = match subscription(&state, &session, &id, &wh).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match uc::set_enabled(&state, &session.actor(), &c.id, &s.id, enabled).await {
        Ok(()) => back(&id, &wh, if enabled { "enabled" } else { "disabled" }),
        Err(WebhookError::NotFound) => layout::not_found(),
        Err(e) => layout::internal(&e),
    }
}

/// `POST …/webhooks/{wh}/disable`.
pub async fn disable(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path((id, wh)): Path<(String, String)>,
) -> Response {
    toggle(state, session, id, wh, false).await
}

/// `POST …/webhooks/{wh}/enable` (also after a receiver's 410).
pub async fn enable(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path((id, wh)): Path<(String, String)>,
) -> Response {
    toggle(state, session, id, wh, true).await
}

/// `POST …/webhooks/{wh}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path((id, wh)): Path<(String, String)>,
) -> Response {
    let (c, _) = match subscription(&state, &session, &id, &wh).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match uc::delete(&state, &session.actor(), &c.id, &wh).await {
        Ok(()) => Redirect::to(&format!("/console/apps/{id}/webhooks?ok=deleted")).into_response(),
        Err(WebhookError::NotFound) => layout::not_found(),
        Err(e) => layout::internal(&e),
    }
}

/// `POST …/webhooks/{wh}/deliveries/{dlv}/resend`.
pub async fn resend(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path((id, wh, dlv)): Path<(String, String, String)>,
) -> Response {
    let c = match visible_app(&state, &session, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let client: &ClientId = &c.id;
    match uc::resend(&state, &session.actor(), client, &wh, &dlv).await {
        Ok(()) => back(&id, &wh, "resent"),
        Err(WebhookError::NotFound) => layout::not_found(),
        Err(e) => match refusal(&e) {
            Some(msg) => layout::message_page(StatusCode::CONFLICT, "无法重新发送", &msg),
            None => layout::internal(&e),
        },
    }
}
