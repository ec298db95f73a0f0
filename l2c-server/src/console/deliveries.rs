//! 开发者选项 → Webhook → 投递记录: a subscription's deliveries (newest first, paged, filtered by
//! status and event type), each folding out all its attempts and the exact body that was
//! signed and sent; resend one, send a test event (`PING`), and recover every failed delivery
//! since a chosen time.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::{DateTime, FixedOffset, NaiveDateTime};
use http::StatusCode;
use l2c_core::api::events::EventType;
use l2c_core::api::webhooks::{Delivery, DeliveryAttempt, DeliveryStatus};
use maud::{Markup, html};

use super::apps::{Fields, field};
use super::layout::{self, banner, csrf};
use super::session::ConsoleSession;
use super::webhooks::{DeliveryQuery, refused, show_with, subscription};
use crate::admin::webhooks::{self as uc, DELIVERY_PAGE_SIZE, DeliveryFilter};
use crate::state::AppState;
use crate::store::outbox::Subscription;
use crate::store::sql::millis_to_cst;

fn at(t: &DateTime<FixedOffset>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn status_badge(status: DeliveryStatus) -> Markup {
    html! {
        @match status {
            DeliveryStatus::Succeeded => span.badge.on { "成功" },
            DeliveryStatus::Failed => span.badge.off { "失败" },
            _ => span.badge.wait { "待发送" },
        }
    }
}

/// One attempt with its own result: 2xx is 成功, anything else (or no answer) 失败.
fn attempt(n: usize, a: &DeliveryAttempt) -> Markup {
    let ok = a.response_status.is_some_and(|c| (200..300).contains(&c));
    html! {
        li.attempt {
            span.muted { "#" (n) " " }
            @if ok { span.badge.on { "成功" } } @else { span.badge.off { "失败" } }
            " "
            @match a.response_status {
                Some(code) => span.mono.code.fail[!ok] { "HTTP " (code) },
                None => span.mono.code.fail { "无响应" },
            }
            " · " span.nowrap { (at(&a.attempted_at)) }
            " · " (a.latency_ms) " ms"
            @if let Some(err) = &a.error { br; span.muted.small { (err) } }
            @if let Some(body) = a.response_body.as_deref().filter(|b| !b.is_empty()) {
                details.exchange {
                    summary.small { "接收方应答（前 4 KiB）" }
                    pre.payload { (body) }
                }
            }
            @if !a.request_headers.is_empty() {
                details.exchange {
                    summary.small { "发送的请求头" }
                    pre.headers {
                        @for (name, value) in &a.request_headers { (name) ": " (value) "\n" }
                    }
                }
            }
        }
    }
}

/// One delivery: a summary line (current status), folding out the attempts and the body.
fn delivery(here: &str, session: &ConsoleSession, d: &Delivery, payload: Option<&str>) -> Markup {
    html! {
        details.delivery {
            summary {
                span.nowrap { (at(&d.created_at)) }
                " " span.mono { (d.event_type.as_str()) }
                " " (status_badge(d.status))
                " " span.muted.small.nowrap { (d.attempts.len()) " 次尝试" }
            }
            div.deliverybody {
                p.small.muted { "事件 ID " span.mono { (d.event_id) } " · 投递 ID " span.mono { (d.id) } }
                p.label { "当前状态：" (status_badge(d.status))
                    @if let Some(next) = &d.next_attempt_at { span.muted.small { "（下次尝试 " (at(next)) "）" } }
                }
                p.label { "每次尝试" }
                @if d.attempts.is_empty() {
                    p.muted { "尚未尝试。" }
                } @else {
                    ol.attempts { @for (i, a) in d.attempts.iter().enumerate() { (attempt(i + 1, a)) } }
                }
                p.label { "签名的请求体（原样发送）" }
                @match payload {
                    Some(p) => pre.payload { (p) },
                    None => p.muted { "事件已按保留期清理。" },
                }
                @if d.status != DeliveryStatus::Pending {
                    form method="post" action={ (here) "/deliveries/" (d.id) "/resend" } {
                        (csrf(session)) button.small type="submit" { "重新发送" }
                    }
                }
            }
        }
    }
}

/// The delivery card of a subscription page: actions (test, recover), filters, the page of
/// deliveries and the pager.
pub(super) async fn card(
    state: &AppState,
    session: &ConsoleSession,
    s: &Subscription,
    q: &DeliveryQuery,
    here: &str,
) -> Result<Markup, Response> {
    let filter = DeliveryFilter {
        status: match q.status.as_deref() {
            Some("PENDING") => Some(DeliveryStatus::Pending),
            Some("SUCCEEDED") => Some(DeliveryStatus::Succeeded),
            Some("FAILED") => Some(DeliveryStatus::Failed),
            _ => None,
        },
        event_type: q.event.as_deref().and_then(|e| e.parse().ok()),
    };
    let page_no = q
        .page
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or(1)
        .clamp(1, 1_000_000);
    let page = uc::deliveries(state, s, &filter, page_no)
        .await
        .map_err(|e| layout::internal(&e))?;
    let more = u64::from(page_no) * u64::from(DELIVERY_PAGE_SIZE) < page.total;
    let status_name = filter.status.map(crate::store::outbox::status_name);
    let paging = |p: u32| {
        let mut url = format!("{here}?page={p}");
        if let Some(st) = status_name {
            url.push_str(&format!("&status={st}"));
        }
        if let Some(e) = filter.event_type {
            url.push_str(&format!("&event={}", e.as_str()));
        }
        url
    };
    let now = millis_to_cst(state.db.now_millis());
    Ok(html! {
        div.grid {
            div.card {
                h2 { "发送测试事件" }
                p.muted { "向此地址发送一个 PING 事件（签名、记录并按计划重试，与真实事件相同），用来确认接收方已就绪。" }
                form method="post" action={ (here) "/test" } {
                    (csrf(session)) button type="submit" { "发送测试事件" }
                }
            }
            div.card {
                h2 { "恢复" }
                form.recover method="post" action={ (here) "/recover" } {
                    (csrf(session))
                    label for="since" { "接收方故障恢复后，重新发送此时间（北京时间）之后的全部失败投递：" }
                    input #since type="datetime-local" name="since" required
                        value=((now - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M").to_string());
                    button type="submit" { "重新发送失败的投递" }
                }
            }
        }
        div.card {
            h2 { "投递记录" }
            form.filters method="get" action=(here) {
                select name="status" aria-label="状态" {
                    option value="" { "全部状态" }
                    @for (v, label) in [("PENDING", "待发送"), ("SUCCEEDED", "成功"), ("FAILED", "失败")] {
                        option value=(v) selected[status_name == Some(v)] { (label) }
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
            p.muted.small { "共 " (page.total) " 条，最新的在前。点开一条查看每次尝试与签名的请求体。" }
            div.deliveries {
                @for d in &page.items {
                    (delivery(here, session, d, page.payloads.get(&d.event_id).map(String::as_str)))
                }
                @if page.items.is_empty() { p.muted { "暂无投递记录。" } }
            }
            div.pager {
                @if page_no > 1 { a href=(paging(page_no - 1)) { "← 上一页" } }
                span.muted { "第 " (page_no) " 页" }
                @if more { a href=(paging(page_no + 1)) { "下一页 →" } }
            }
        }
    })
}

/// `POST …/webhooks/{wh}/test`: queue a `PING` for this subscription.
pub async fn send_test(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path((id, wh)): Path<(String, String)>,
) -> Response {
    let (c, s) = match subscription(&state, &session, &id, &wh).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match uc::send_test(&state, &session.actor(), &c.id, &s.id).await {
        Ok(_) => {
            Redirect::to(&format!("/console/apps/{id}/webhooks/{wh}?ok=tested")).into_response()
        }
        Err(e) => refused(&state, &session, (&c, &s), &e).await,
    }
}

/// `2026-12-06T09:30` (or with seconds), read as 北京时间 (UTC+8, as the console shows times).
fn parse_local(s: &str) -> Option<i64> {
    let s = s.trim();
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    let cst = FixedOffset::east_opt(8 * 3600)?;
    naive
        .and_local_timezone(cst)
        .single()
        .map(|t| t.timestamp_millis())
}

/// `POST …/webhooks/{wh}/recover` (`since`): resend every failed delivery since then.
pub async fn recover(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path((id, wh)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let (c, s) = match subscription(&state, &session, &id, &wh).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(since) = field(&fields, "since").and_then(parse_local) else {
        let msg = "请填写有效的起始时间，例如 2026-12-06 09:30。";
        return show_with(
            &state,
            &session,
            &c,
            &s,
            banner(false, msg),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    match uc::recover(&state, &session.actor(), &c.id, &s.id, since).await {
        Ok(n) => {
            let text = format!("已将 {n} 条失败的投递重新排队发送。");
            show_with(
                &state,
                &session,
                &c,
                &s,
                banner(true, &text),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => refused(&state, &session, (&c, &s), &e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_local;

    #[test]
    fn local_times_are_beijing_time() {
        // 2026-12-06 09:30 +08:00 = 01:30 UTC.
        assert_eq!(parse_local("2026-12-06T09:30"), Some(1_796_520_600_000));
        assert_eq!(parse_local("2026-12-06T09:30:00"), Some(1_796_520_600_000));
        assert_eq!(parse_local("yesterday"), None);
        assert_eq!(parse_local(""), None);
    }
}
