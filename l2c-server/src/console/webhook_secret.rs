//! 开发者选项 → Webhook → 签名密钥: the staged rotation of a subscription's secret.
//!
//! 轮换密钥 issues a new secret (shown once) with a chosen overlap; until the partner presses
//! 启用新密钥 (or the overlap ends) `X-L2C-Signature` keeps the previous secret, while
//! `webhook-signature` carries both signatures throughout the overlap. Both actions are the
//! use cases the API's `rotate-secret` and `promote-secret` run ([`crate::admin::webhooks`]).

use axum::extract::{Path, State};
use axum::response::Response;
use axum::{Extension, Form};
use http::StatusCode;
use l2c_core::api::webhooks::RotationStage;
use maud::{Markup, html};

use super::apps::{Fields, overlap_of, overlap_select};
use super::layout::{self, csrf, time};
use super::session::ConsoleSession;
use super::webhooks::{back, show_with, subscription};
use crate::admin::webhooks::{self as uc, WebhookError};
use crate::state::AppState;
use crate::store::outbox::Subscription;

/// The 签名密钥 card of a subscription page: where a rotation stands, 启用新密钥 while one is
/// staged, and 轮换密钥 with its overlap.
pub(super) fn secret_card(
    session: &ConsoleSession,
    here: &str,
    s: &Subscription,
    now: i64,
) -> Markup {
    let rotation = s.rotation(now);
    html! {
        div.card {
            h2 { "签名密钥" }
            @match rotation {
                Some(r) if r.stage == RotationStage::Staged => {
                    p.notice.warn {
                        "密钥轮换中：X-L2C-Signature 仍使用旧密钥签名，webhook-signature 同时携带新旧两个签名。"
                        "接收方改用新密钥验签后，请点击“启用新密钥”；否则旧密钥将于 "
                        strong { (time(r.previous_expires_at)) } "（北京时间）停用，届时自动切换到新密钥。"
                    }
                    form.inline method="post" action={ (here) "/promote" } data-confirm="确定启用新密钥？X-L2C-Signature 将立即改用新密钥签名。" {
                        (csrf(session)) button.primary type="submit" { "启用新密钥" }
                    }
                }
                Some(r) => {
                    p.muted {
                        "新密钥已启用：X-L2C-Signature 使用新密钥签名；webhook-signature 继续携带旧密钥的签名至 "
                        (time(r.previous_expires_at)) "（北京时间）。"
                    }
                }
                None => {
                    p.muted { "轮换后，旧密钥在保留时间内继续签名，X-L2C-Signature 在您启用新密钥之前仍使用旧密钥，接收方可无停机切换。" }
                }
            }
            form method="post" action={ (here) "/rotate" } data-confirm="确定轮换签名密钥？" {
                (csrf(session))
                (overlap_select())
                button type="submit" { "轮换密钥" }
            }
        }
    }
}

/// `POST …/webhooks/{wh}/rotate` (`overlap_hours`): a new secret, shown once, staged.
pub async fn rotate(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path((id, wh)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let (c, _) = match subscription(&state, &session, &id, &wh).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let overlap = match overlap_of(&fields) {
        Ok(o) => o,
        Err(r) => return r,
    };
    match uc::rotate(&state, &session.actor(), &c.id, &wh, overlap).await {
        Ok((secret, until)) => {
            let note = if overlap.is_zero() {
                "旧密钥已立即停用，所有签名改用新密钥。".to_owned()
            } else {
                format!(
                    "X-L2C-Signature 在您点击“启用新密钥”之前仍使用旧密钥签名，最迟至 {}（北京时间）；webhook-signature 同时携带新旧两个签名。",
                    time(until)
                )
            };
            let notice = layout::secret_once(
                "新的签名密钥（仅显示这一次，请立即保存）：",
                "webhook-secret",
                secret.expose_secret(),
                &note,
            );
            match subscription(&state, &session, &id, &wh).await {
                Ok((c, s)) => show_with(&state, &session, &c, &s, notice, StatusCode::OK).await,
                Err(r) => r,
            }
        }
        Err(WebhookError::NotFound) => layout::not_found(),
        Err(e) => layout::internal(&e),
    }
}

/// `POST …/webhooks/{wh}/promote`: 启用新密钥 — `X-L2C-Signature` signs with the new secret.
pub async fn promote(
    State(state): State<AppState>,
    Extension(session): Extension<ConsoleSession>,
    Path((id, wh)): Path<(String, String)>,
) -> Response {
    let (c, _) = match subscription(&state, &session, &id, &wh).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match uc::promote(&state, &session.actor(), &c.id, &wh).await {
        Ok(()) => back(&id, &wh, "promoted"),
        Err(WebhookError::NothingToPromote) => layout::message_page(
            StatusCode::CONFLICT,
            "无需启用",
            "当前没有待启用的新密钥：尚未轮换、已经启用，或旧密钥的保留时间已结束。",
        ),
        Err(WebhookError::NotFound) => layout::not_found(),
        Err(e) => layout::internal(&e),
    }
}
