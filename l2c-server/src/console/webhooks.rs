//! 开发者选项 → Webhook: subscriptions (add, edit, disable, re-enable, delete; the secret's
//! rotation and promotion are in [`super::webhook_secret`]); their deliveries (newest first,
//! paged, filtered, every attempt, resend), test events and recovery are in
//! [`super::deliveries`].

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
use crate::admin::webhooks::{self as uc, WebhookError};
use crate::ssrf::SsrfError;
use crate::state::AppState;
use crate::store::clients::Client;
use crate::store::outbox::Subscription;
use crate::usecases::subscriptions::SubscriptionError;

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

/// A refused action, in words (`None`: not the user's doing).
fn refusal(e: &WebhookError) -> Option<String> {
    Some(match e {
        WebhookError::Url(s) => url_refusal(s),
        WebhookError::NoEvents => "请至少选择一个事件类型。".into(),
        WebhookError::Unsubscribable => "PING 测试事件只在请求时发送，不能订阅。".into(),
        WebhookError::Disabled => {
            "该 Webhook 已停用：请先重新启用，再发送测试事件、重新发送或恢复。".into()
        }
        WebhookError::Since(SubscriptionError::SinceInFuture) => "起始时间不能晚于现在。".into(),
        WebhookError::Since(SubscriptionError::SinceTooOld { oldest }) => {
            format!("起始时间不能早于 {oldest}：更早的投递记录已按保留期清理。")
        }
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
            @for t in EventType::SUBSCRIBABLE {
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
    let (draft_url, draft_events) = draft.unwrap_or(("", EventType::SUBSCRIBABLE));
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
    pub(super) ok: Option<String>,
    #[serde(default)]
    pub(super) status: Option<String>,
    #[serde(default)]
    pub(super) event: Option<String>,
    #[serde(default)]
    pub(super) page: Option<i64>,
}

/// The app `id` and its subscription `wh`, if the session may see them; the console's 404
/// otherwise.
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
    let reason = s.disabled_reason.as_ref().filter(|_| !s.enabled);
    let now = state.db.now_millis();
    let here = format!("{}/{}", base(c.id.as_str()), s.id);
    let deliveries = match super::deliveries::card(state, session, s, q, &here).await {
        Ok(m) => m,
        Err(r) => return r,
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
        (deliveries)
    };
    (status, page(session, Nav::Apps, "Webhook", body)).into_response()
}

/// The answer to a refused action on subscription `s` of app `c`: the subscription page with
/// the refusal in words on top (409 for a disabled subscription, else 422), 404 for an unknown
/// one, 500 for a failure that is not the user's doing.
pub(super) async fn refused(
    state: &AppState,
    session: &ConsoleSession,
    (c, s): (&Client, &Subscription),
    e: &WebhookError,
) -> Response {
    let status = match e {
        WebhookError::NotFound => return layout::not_found(),
        WebhookError::Disabled => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    match refusal(e) {
        Some(msg) => show_with(state, session, c, s, banner(false, &msg), status).await,
        None => layout::internal(e),
    }
}

/// The subscription page (first page of deliveries, no filter) with `notice` on top.
pub(super) async fn show_with(
    state: &AppState,
    session: &ConsoleSession,
    c: &Client,
    s: &Subscription,
    notice: Markup,
    status: StatusCode,
) -> Response {
    show_page(
        state,
        session,
        c,
        s,
        &DeliveryQuery::default(),
        notice,
        status,
    )
    .await
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
        Err(e) => refused(&state, &session, (&c, &s), &e).await,
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
