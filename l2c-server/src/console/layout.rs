//! The page shell, the login page, messages and small helpers shared by the pages.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use maud::{DOCTYPE, Markup, html};

use super::session::ConsoleSession;
use crate::store::accounts::Role;

/// Which item of the top navigation is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// 应用.
    Apps,
    /// 审计日志.
    Audit,
    /// 请求日志 (every app's, for operators; a developer's link goes to its app's).
    Logs,
}

/// Which tab of an app is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// 概览.
    Overview,
    /// 开发者选项 → Webhook.
    Webhooks,
    /// 线索来源.
    LeadSources,
    /// 请求日志.
    Logs,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · L2C 开发者控制台" }
            link rel="stylesheet" href="/console/static/console.css";
            script src="/console/static/console.js" defer {}
        }
    }
}

/// A signed-in page.
pub fn page(session: &ConsoleSession, nav: Nav, title: &str, body: Markup) -> Markup {
    let operator = session.account.role == Role::Operator;
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            (head(title))
            body {
                header.topbar {
                    a.brand href="/console/apps" {
                        span.logo { "L2C" }
                        span.long { " 开放平台 · 开发者控制台" }
                        span.short { " 控制台" }
                    }
                    nav.mainnav {
                        a.active[nav == Nav::Apps] href="/console/apps" { "应用" }
                        @if operator {
                            a.active[nav == Nav::Logs] href="/console/logs" { "请求日志" }
                            a.active[nav == Nav::Audit] href="/console/audit" { "审计日志" }
                        } @else if let Some(app) = &session.account.client_id {
                            a.active[nav == Nav::Logs] href={ "/console/apps/" (app.as_str()) "/logs" } { "请求日志" }
                        }
                    }
                    div.user {
                        span.who {
                            (session.account.username)
                            span.role { @if operator { "运营" } @else { "开发者" } }
                        }
                        form method="post" action="/console/logout" {
                            (csrf(session))
                            button.link type="submit" { "退出登录" }
                        }
                    }
                }
                main.content { (body) }
            }
        }
    }
}

/// The tabs of an app.
pub fn app_tabs(client_id: &str, name: &str, tab: Tab) -> Markup {
    html! {
        div.apphead {
            p.crumbs { a href="/console/apps" { "应用" } " / " (name) }
            h1 { (name) }
            p.muted.mono { (client_id) }
        }
        nav.tabs {
            a.active[tab == Tab::Overview] href={ "/console/apps/" (client_id) } { "概览" }
            a.active[tab == Tab::Webhooks] href={ "/console/apps/" (client_id) "/webhooks" } { "开发者选项 → Webhook" }
            a.active[tab == Tab::LeadSources] href={ "/console/apps/" (client_id) "/lead-sources" } { "线索来源" }
            a.active[tab == Tab::Logs] href={ "/console/apps/" (client_id) "/logs" } { "请求日志" }
        }
    }
}

/// Scopes as tags.
pub fn scope_tags(scopes: l2c_core::Scopes) -> Markup {
    html! { span.tags { @for s in scopes.iter() { span.tag.mono { (s.as_str()) } } } }
}

/// The hidden CSRF field of a form.
pub fn csrf(session: &ConsoleSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A secret shown once, with a copy button.
pub fn secret_once(label: &str, id: &str, value: &str, note: &str) -> Markup {
    html! {
        div.notice.secret {
            p { strong { (label) } }
            div.copyrow {
                code.secretvalue id=(id) { (value) }
                button.copy type="button" data-copy=(id) { "复制" }
            }
            p.muted { (note) }
        }
    }
}

/// A success or error banner.
pub fn banner(ok: bool, text: &str) -> Markup {
    html! { div.notice.ok[ok].error[!ok] role="status" { (text) } }
}

/// `2026-12-05 21:30:00` in China Standard Time.
pub fn time(ms: i64) -> String {
    crate::store::sql::millis_to_cst(ms)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The login page.
pub fn login(token: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            (head("登录"))
            body.loginpage {
                main.login {
                    div.logo.big { "L2C" }
                    h1 { "开发者控制台" }
                    p.muted { "L2C 开放平台 · 设置中心" }
                    @if let Some(e) = error { (banner(false, e)) }
                    form method="post" action="/console/login" {
                        input type="hidden" name="csrf" value=(token);
                        label for="username" { "用户名" }
                        input #username type="text" name="username" autocomplete="username" required autofocus;
                        label for="password" { "密码" }
                        input #password type="password" name="password" autocomplete="current-password" required;
                        button.primary.wide type="submit" { "登录" }
                    }
                    p.muted.small { "账号由平台运营通过 " code { "l2c-server admin create" } " 创建。" }
                }
            }
        }
    }
}

/// A page with only a title and a sentence (errors without a session).
pub fn message_page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="zh-CN" {
            (head(title))
            body.loginpage {
                main.login {
                    h1 { (title) }
                    p { (text) }
                    p { a href="/console/apps" { "返回控制台" } }
                }
            }
        }
    };
    (status, body).into_response()
}

/// 404 in the console (also for another app's objects).
pub fn not_found() -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        "未找到",
        "该页面不存在，或您无权访问。",
    )
}

/// 500 with the cause logged, not shown.
pub fn internal(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console request failed");
    message_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "服务器错误",
        "处理请求时出错，请稍后重试。",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_form_has_the_fields_and_escapes() {
        let html = login("tok\"en", Some("<b>x</b>")).into_string();
        assert!(html.contains(r#"id="username""#), "{html}");
        assert!(html.contains(r#"name="password""#));
        assert!(html.contains(r#"value="tok&quot;en""#));
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(!html.contains("<b>x"));
    }
}
