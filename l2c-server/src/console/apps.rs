//! 应用: the apps (clients) — list, create, scopes and quota, the secret roll, disable and
//! enable, the all-customers grant.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use http::StatusCode;
use l2c_core::rate_limit::Quota;
use l2c_core::{Scope, Scopes};
use maud::{Markup, html};

use super::layout::{self, Nav, Tab, banner, csrf, page, time};
use super::session::ConsoleSession;
use crate::admin::clients::{self, ClientError};

/// The overlaps offered when rolling a secret (hours, label); the default is
/// [`clients::DEFAULT_ROLL_OVERLAP`], the longest [`clients::MAX_ROLL_OVERLAP`].
const OVERLAP_CHOICES: &[(u64, &str)] = &[
    (0, "立即失效"),
    (1, "1 小时"),
    (24, "24 小时"),
    (72, "3 天"),
    (168, "7 天"),
];

fn default_overlap_hours() -> u64 {
    clients::DEFAULT_ROLL_OVERLAP.as_secs() / 3600
}
use crate::state::AppState;
use crate::store::accounts::Role;
use crate::store::clients::{Client, NewClient};
use crate::store::unix_millis;

/// A submitted form, as name/value pairs (checkboxes repeat a name).
pub type Fields = Vec<(String, String)>;

/// The first value of `name`.
pub fn field<'f>(fields: &'f Fields, name: &str) -> Option<&'f str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Every value of `name`.
pub fn all<'f>(fields: &'f Fields, name: &str) -> Vec<&'f str> {
    fields
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The `?ok=` code of a redirect after an action.
#[derive(Debug, serde::Deserialize)]
pub struct Done {
    #[serde(default)]
    ok: Option<String>,
}

impl Done {
    /// A `?ok=` code read elsewhere.
    pub fn from_code(ok: Option<String>) -> Self {
        Self { ok }
    }
}

fn done_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "updated" => "已保存。",
        "disabled" => "已停用。",
        "enabled" => "已启用。",
        "granted" => "授权已更新。",
        "deleted" => "已删除。",
        "resent" => "已重新排队发送。",
        "tested" => "测试事件（PING）已排队发送，稍后刷新查看投递结果。",
        "promoted" => "新密钥已启用：X-L2C-Signature 现在使用新密钥签名。",
        _ => return None,
    })
}

/// The overlap choice of a secret rotation (form field `overlap_hours`, the default
/// preselected); the apps' client secret and the webhooks' signing secret share it.
pub fn overlap_select() -> Markup {
    html! {
        label for="overlap" { "旧密钥保留时间" }
        select #overlap name="overlap_hours" {
            @for (hours, label) in OVERLAP_CHOICES {
                option value=(hours) selected[*hours == default_overlap_hours()] { (label) }
            }
        }
    }
}

/// The overlap chosen with [`overlap_select`] (absent: [`clients::DEFAULT_ROLL_OVERLAP`]); a
/// 422 page beyond [`clients::MAX_ROLL_OVERLAP`].
#[allow(clippy::result_large_err)] // the console answers with a whole page
pub fn overlap_of(fields: &Fields) -> Result<Duration, Response> {
    let max_hours = clients::MAX_ROLL_OVERLAP.as_secs() / 3600;
    match field(fields, "overlap_hours").map(str::parse::<u64>) {
        None => Ok(clients::DEFAULT_ROLL_OVERLAP),
        Some(Ok(h)) if h <= max_hours => Ok(Duration::from_secs(h * 3600)),
        Some(_) => Err(layout::message_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "参数错误",
            &format!("重叠期须为 0 到 {max_hours} 小时。"),
        )),
    }
}

/// The `?ok=` banner, if any.
pub fn done_banner(done: &Done) -> Markup {
    html! {
        @if let Some(text) = done.ok.as_deref().and_then(done_text) { (banner(true, text)) }
    }
}

/// The app `id` if the session may see it; the console's 404 otherwise (also for another
/// developer's app, so its existence is not revealed).
pub async fn visible_app(
    state: &AppState,
    session: &ConsoleSession,
    id: &str,
) -> Result<Client, Response> {
    if !session.account.may_see(id) {
        return Err(layout::not_found());
    }
    match state.db.clients().get(id).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(layout::not_found()),
        Err(e) => Err(layout::internal(&e)),
    }
}

/// The 403 answer when the session is not an operator's.
fn unless_operator(session: &ConsoleSession) -> Option<Response> {
    (session.account.role != Role::Operator).then(|| {
        layout::message_page(
            StatusCode::FORBIDDEN,
            "无权操作",
            "只有平台运营可以执行此操作。",
        )
    })
}

fn status_badge(c: &Client) -> Markup {
    html! {
        @if c.disabled { span.badge.off { "已停用" } } @else { span.badge.on { "启用" } }
    }
}

fn quota_text(q: Option<Quota>) -> String {
    q.map_or_else(|| "默认".to_owned(), |q| q.to_string())
}

fn scope_boxes(selected: Scopes) -> Markup {
    html! {
        div.checks {
            @for s in Scope::ALL {
                label.check {
                    input type="checkbox" name="scopes" value=(s.as_str()) checked[selected.contains(s)];
                    span.mono { (s.as_str()) }
                }
            }
        }
    }
}

fn parse_scopes(fields: &Fields) -> Result<Scopes, String> {
    let mut scopes = Scopes::empty();
    for s in all(fields, "scopes") {
        let scope: Scope = s.parse().map_err(|_| format!("未知的权限范围 {s}"))?;
        scopes = scopes.with(scope);
    }
    if scopes.is_empty() {
        return Err("请至少选择一个权限范围。".into());
    }
    Ok(scopes)
}

fn parse_quota(fields: &Fields) -> Result<Option<Quota>, String> {
    match field(fields, "rate_limit").map(str::trim) {
        None | Some("") => Ok(None),
        Some(q) => q
            .parse()
            .map(Some)
            .map_err(|_| format!("配额格式不正确：{q}（例如 100/s、6000/min、100/s;burst=200）")),
    }
}

/// `GET /console/apps`.
pub async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Query(done): Query<Done>,
) -> Response {
    list_page(&state, &session, done_banner(&done), StatusCode::OK).await
}

async fn list_page(
    state: &AppState,
    session: &ConsoleSession,
    notice: Markup,
    status: StatusCode,
) -> Response {
    let clients = match state.db.clients().list().await {
        Ok(c) => c,
        Err(e) => return layout::internal(&e),
    };
    let visible: Vec<&Client> = clients
        .iter()
        .filter(|c| session.account.may_see(c.id.as_str()))
        .collect();
    let operator = session.account.role == Role::Operator;
    let body = html! {
        div.pagehead { h1 { "应用" } p.muted { "合作方应用（client）及其凭据、权限范围与配额。" } }
        (notice)
        div.card {
            div.tablewrap {
                table {
                    thead { tr { th { "名称" } th { "Client ID" } th { "状态" } th { "权限范围" } th { "配额" } th { "创建时间" } } }
                    tbody {
                        @for c in &visible {
                            tr {
                                td { a href={ "/console/apps/" (c.id) } { (c.name) } }
                                td.mono { (c.id) }
                                td { (status_badge(c)) }
                                td.small { (layout::scope_tags(c.scopes)) }
                                td.mono { (quota_text(c.rate_limit)) }
                                td.nowrap { (time(unix_millis(c.created_at))) }
                            }
                        }
                        @if visible.is_empty() { tr { td colspan="6" .muted { "暂无应用。" } } }
                    }
                }
            }
        }
        @if operator {
            div.card {
                h2 { "创建应用" }
                form method="post" action="/console/apps" {
                    (csrf(session))
                    label for="name" { "名称" }
                    input #name type="text" name="name" required maxlength="100";
                    p.label { "权限范围" }
                    (scope_boxes(Scopes::all()))
                    label for="rate_limit" { "配额（留空使用服务器默认值）" }
                    input #rate_limit type="text" name="rate_limit" placeholder="100/s";
                    label.check { input type="checkbox" name="all_customers" value="1"; span { "允许读取全部客户" } }
                    button.primary type="submit" { "创建应用" }
                }
            }
        }
    };
    (status, page(session, Nav::Apps, "应用", body)).into_response()
}

/// `POST /console/apps`: create (operators).
pub async fn create(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Form(fields): Form<Fields>,
) -> Response {
    if let Some(r) = unless_operator(&session) {
        return r;
    }
    let parsed = parse_scopes(&fields).and_then(|s| Ok((s, parse_quota(&fields)?)));
    let (scopes, quota) = match parsed {
        Ok(p) => p,
        Err(msg) => {
            return list_page(
                &state,
                &session,
                banner(false, &msg),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let mut new = NewClient::new(field(&fields, "name").unwrap_or_default(), scopes)
        .all_customers(field(&fields, "all_customers").is_some());
    if let Some(q) = quota {
        new = new.rate_limit(q);
    }
    match clients::create(&state.db, &session.actor(), &new).await {
        Ok((client, secret)) => {
            let notice = layout::secret_once(
                "应用已创建。Client Secret（仅显示这一次，请立即保存）：",
                "client-secret",
                secret.expose(),
                "关闭本页后将无法再次查看；遗失后请轮换密钥。",
            );
            show_page(&state, &session, &client, notice, StatusCode::CREATED).await
        }
        Err(ClientError::Invalid(_)) => {
            list_page(
                &state,
                &session,
                banner(false, "名称不能为空。"),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => layout::internal(&e),
    }
}

/// `GET /console/apps/{id}`.
pub async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    match visible_app(&state, &session, &id).await {
        Ok(c) => show_page(&state, &session, &c, done_banner(&done), StatusCode::OK).await,
        Err(r) => r,
    }
}

async fn show_page(
    state: &AppState,
    session: &ConsoleSession,
    c: &Client,
    notice: Markup,
    status: StatusCode,
) -> Response {
    let operator = session.account.role == Role::Operator;
    let now = state.db.now_millis();
    let overlap_end = c
        .previous_secret_expires_at
        .map(unix_millis)
        .filter(|t| *t > now);
    let base = format!("/console/apps/{}", c.id);
    let body = html! {
        (layout::app_tabs(c.id.as_str(), &c.name, Tab::Overview))
        (notice)
        div.grid {
            div.card {
                h2 { "概览" }
                dl.facts {
                    dt { "状态" } dd { (status_badge(c)) }
                    dt { "Client ID" } dd.mono { (c.id) }
                    dt { "权限范围" } dd.small { (layout::scope_tags(c.scopes)) }
                    dt { "配额" } dd.mono { (quota_text(c.rate_limit)) }
                    dt { "读取全部客户" } dd { @if c.all_customers { "已授权" } @else { "未授权" } }
                    dt { "创建时间" } dd { (time(unix_millis(c.created_at))) }
                }
            }
            div.card {
                h2 { "凭据" }
                p.muted { "轮换后旧密钥在重叠期内仍然有效，便于合作方无停机切换。" }
                @if let Some(t) = overlap_end {
                    p.notice.warn { "上一个密钥有效至 " strong { (time(t)) } "（北京时间）。" }
                }
                form method="post" action={ (base) "/roll-secret" } data-confirm="确定轮换该应用的 Client Secret？" {
                    (csrf(session))
                    (overlap_select())
                    button.primary type="submit" { "轮换密钥" }
                }
            }
            @if operator {
                div.card {
                    h2 { "权限范围与配额" }
                    form method="post" action={ (base) "/update" } {
                        (csrf(session))
                        (scope_boxes(c.scopes))
                        label for="rate_limit" { "配额（留空使用服务器默认值；各副本在配额刷新周期内生效）" }
                        input #rate_limit type="text" name="rate_limit" value=(c.rate_limit.map(|q| q.to_string()).unwrap_or_default()) placeholder="100/s";
                        button type="submit" { "保存" }
                    }
                }
                div.card {
                    h2 { "授权与状态" }
                    form.inline method="post" action={ (base) "/grant" } {
                        (csrf(session))
                        @if c.all_customers {
                            input type="hidden" name="all_customers" value="0";
                            button type="submit" { "撤销“读取全部客户”" }
                        } @else {
                            input type="hidden" name="all_customers" value="1";
                            button type="submit" { "授权“读取全部客户”" }
                        }
                    }
                    @if c.disabled {
                        form.inline method="post" action={ (base) "/enable" } {
                            (csrf(session))
                            button type="submit" { "启用应用" }
                        }
                    } @else {
                        form.inline method="post" action={ (base) "/disable" } data-confirm="停用后该应用无法获取令牌，已签发的令牌也将被拒绝。确定停用？" {
                            (csrf(session))
                            button.danger type="submit" { "停用应用" }
                        }
                    }
                }
            }
        }
    };
    (status, page(session, Nav::Apps, &c.name, body)).into_response()
}

/// `POST /console/apps/{id}/roll-secret`.
pub async fn roll_secret(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    if let Err(r) = visible_app(&state, &session, &id).await {
        return r;
    }
    let overlap = match overlap_of(&fields) {
        Ok(o) => o,
        Err(r) => return r,
    };
    match clients::roll_secret(&state.db, &session.actor(), &id, overlap).await {
        Ok((secret, until)) => {
            let note = format!(
                "旧密钥有效至 {}（北京时间），之后仅新密钥可用。",
                time(unix_millis(until))
            );
            let notice = layout::secret_once(
                "新的 Client Secret（仅显示这一次，请立即保存）：",
                "client-secret",
                secret.expose(),
                &note,
            );
            match visible_app(&state, &session, &id).await {
                Ok(c) => show_page(&state, &session, &c, notice, StatusCode::OK).await,
                Err(r) => r,
            }
        }
        Err(ClientError::NoSuchClient(_)) => layout::not_found(),
        Err(e) => layout::internal(&e),
    }
}

/// `POST /console/apps/{id}/update` (operators): scopes and quota.
pub async fn update(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let c = match visible_app(&state, &session, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(r) = unless_operator(&session) {
        return r;
    }
    let parsed = parse_scopes(&fields).and_then(|s| Ok((s, parse_quota(&fields)?)));
    let (scopes, quota) = match parsed {
        Ok(p) => p,
        Err(msg) => {
            return show_page(
                &state,
                &session,
                &c,
                banner(false, &msg),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    match clients::update(&state.db, &session.actor(), &id, Some(scopes), Some(quota)).await {
        Ok(_) => Redirect::to(&format!("/console/apps/{id}?ok=updated")).into_response(),
        Err(e) => layout::internal(&e),
    }
}

async fn set_disabled(
    state: AppState,
    session: ConsoleSession,
    id: String,
    disabled: bool,
) -> Response {
    if let Err(r) = visible_app(&state, &session, &id).await {
        return r;
    }
    if let Some(r) = unless_operator(&session) {
        return r;
    }
    match clients::set_disabled(&state.db, &session.actor(), &id, disabled).await {
        Ok(()) => {
            let ok = if disabled { "disabled" } else { "enabled" };
            Redirect::to(&format!("/console/apps/{id}?ok={ok}")).into_response()
        }
        Err(e) => layout::internal(&e),
    }
}

/// `POST /console/apps/{id}/disable` (operators).
pub async fn disable(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path(id): Path<String>,
) -> Response {
    set_disabled(state, session, id, true).await
}

/// `POST /console/apps/{id}/enable` (operators).
pub async fn enable(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path(id): Path<String>,
) -> Response {
    set_disabled(state, session, id, false).await
}

/// `POST /console/apps/{id}/grant` (operators): the all-customers grant.
pub async fn grant(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    if let Err(r) = visible_app(&state, &session, &id).await {
        return r;
    }
    if let Some(r) = unless_operator(&session) {
        return r;
    }
    let yes = field(&fields, "all_customers") == Some("1");
    match clients::grant_all_customers(&state.db, &session.actor(), &id, yes).await {
        Ok(()) => Redirect::to(&format!("/console/apps/{id}?ok=granted")).into_response(),
        Err(e) => layout::internal(&e),
    }
}
