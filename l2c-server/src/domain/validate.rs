//! Input validation beyond what the JSON types enforce; every error names the field.

use std::fmt;

use l2c_core::api::leads::PushLead;
use l2c_core::api::orders::{OrderAmounts, SyncOrder};
use l2c_core::api::showroom::{DEFAULT_PAGE, DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE};
use l2c_core::api::status::PaymentStatus;

use super::mobile::Mobile;
use super::transitions::status_agrees_with_payment;

/// A field that failed validation: its path (`payments[0].amount`), what is wrong, and the
/// problem `code` it is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path in the request, e.g. `mobile`, `amounts.total`, `payments[1].amount`.
    pub field: String,
    /// What is wrong, in words that help the caller fix it.
    pub message: String,
    /// The stable problem code: [`INVALID_FIELD`] unless a rule has a code of its own.
    pub code: &'static str,
}

/// The problem code of a field the domain refuses.
pub const INVALID_FIELD: &str = "invalid_field";

/// The problem code of an order whose `status` implies a paid deposit while its
/// `paymentStatus` is `UNPAID` (see [`status_agrees_with_payment`]).
pub const STATUS_PAYMENT_MISMATCH: &str = "status_payment_mismatch";

impl FieldError {
    /// A field error with code [`INVALID_FIELD`].
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            code: INVALID_FIELD,
        }
    }

    /// The same error answered with another problem `code`.
    #[must_use]
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Refuses C0 control characters other than tab, line feed and carriage return: a NUL byte
/// cannot be stored by PostgreSQL at all, and the others are never meaningful in these fields.
///
/// # Errors
///
/// `field`, naming the first offending character.
pub fn printable(field: &str, value: &str) -> Result<(), FieldError> {
    match value
        .chars()
        .find(|c| c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{7f}'))
    {
        Some(c) => Err(FieldError::new(
            field,
            format!("must not contain control character U+{:04X}", u32::from(c)),
        )),
        None => Ok(()),
    }
}

/// Checks free text that has only a length limit (and no lower bound).
fn long_text(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    printable(field, value)?;
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

fn text(field: &str, value: &str, min: usize, max: usize) -> Result<(), FieldError> {
    printable(field, value)?;
    let len = value.trim().chars().count();
    if len < min {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

fn opt_text(field: &str, value: Option<&str>, max: usize) -> Result<(), FieldError> {
    match value {
        Some(v) => text(field, v, 0, max),
        None => Ok(()),
    }
}

fn mobile(field: &str, raw: &str) -> Result<Mobile, FieldError> {
    Mobile::parse(raw).map_err(|e| FieldError::new(field, e.to_string()))
}

/// Checks a pushed lead; returns its normalized mobile number.
///
/// # Errors
///
/// The first field that is invalid.
pub fn lead(lead: &PushLead) -> Result<Mobile, FieldError> {
    text("externalLeadId", &lead.external_lead_id, 1, 128)?;
    text("name", &lead.name, 1, 64)?;
    let mobile = mobile("mobile", &lead.mobile)?;
    opt_text("province", lead.province.as_deref(), 32)?;
    opt_text("city", lead.city.as_deref(), 32)?;
    if let Some(intent) = &lead.intent {
        long_text("intent", intent, 1000)?;
    }
    if lead.form_fields.len() > 50 {
        return Err(FieldError::new(
            "formFields",
            "must have at most 50 entries",
        ));
    }
    for (i, f) in lead.form_fields.iter().enumerate() {
        text(&format!("formFields[{i}].label"), &f.label, 1, 64)?;
        long_text(&format!("formFields[{i}].value"), &f.value, 1000)?;
    }
    if let Some(a) = &lead.attribution {
        opt_text("attribution.campaignId", a.campaign_id.as_deref(), 128)?;
        opt_text("attribution.adGroupId", a.ad_group_id.as_deref(), 128)?;
        opt_text("attribution.creativeId", a.creative_id.as_deref(), 128)?;
        opt_text("attribution.clickId", a.click_id.as_deref(), 256)?;
    }
    Ok(mobile)
}

/// Checks that the amounts are sane and agree with the payment status.
///
/// # Errors
///
/// The first field that is invalid.
pub fn amounts(a: &OrderAmounts, payment_status: PaymentStatus) -> Result<(), FieldError> {
    if a.currency != "CNY" {
        return Err(FieldError::new("amounts.currency", "must be `CNY`"));
    }
    for (field, value) in [
        ("amounts.total", a.total),
        ("amounts.deposit", a.deposit),
        ("amounts.paid", a.paid),
    ] {
        if value < 0 {
            return Err(FieldError::new(field, "must not be negative (integer fen)"));
        }
    }
    if a.deposit > a.total {
        return Err(FieldError::new(
            "amounts.deposit",
            "must not exceed `amounts.total`",
        ));
    }
    if a.paid > a.total {
        return Err(FieldError::new(
            "amounts.paid",
            "must not exceed `amounts.total`",
        ));
    }
    let consistent = match payment_status {
        PaymentStatus::Unpaid => a.paid == 0,
        PaymentStatus::DepositPaid | PaymentStatus::PartiallyPaid => a.paid > 0 && a.paid < a.total,
        PaymentStatus::FullyPaid => a.paid == a.total,
        // During and after a refund `paid` is what is still held; anything in range goes.
        PaymentStatus::Refunding | PaymentStatus::Refunded => true,
    };
    if !consistent {
        return Err(FieldError::new(
            "paymentStatus",
            format!(
                "`{payment_status}` does not agree with `amounts.paid` = {} of `amounts.total` = {}",
                a.paid, a.total
            ),
        ));
    }
    Ok(())
}

/// Checks an order sync; returns the normalized mobile number of `customer`, if given.
///
/// # Errors
///
/// The first field that is invalid.
pub fn sync_order(o: &SyncOrder) -> Result<Option<Mobile>, FieldError> {
    text("externalOrderNo", &o.external_order_no, 1, 64)?;
    if o.version < 1 {
        return Err(FieldError::new("version", "must be at least 1"));
    }
    if !status_agrees_with_payment(o.status, o.payment_status) {
        return Err(FieldError::new(
            "paymentStatus",
            format!(
                "must not be `{}` when `status` is `{}`: every status but `CANCELLED` means \
                 the deposit is paid",
                o.payment_status, o.status
            ),
        )
        .with_code(STATUS_PAYMENT_MISMATCH));
    }
    amounts(&o.amounts, o.payment_status)?;
    if o.items.len() > 200 {
        return Err(FieldError::new("items", "must have at most 200 entries"));
    }
    for (i, item) in o.items.iter().enumerate() {
        text(&format!("items[{i}].name"), &item.name, 1, 128)?;
        opt_text(&format!("items[{i}].sku"), item.sku.as_deref(), 64)?;
        if item.quantity < 1 {
            return Err(FieldError::new(
                format!("items[{i}].quantity"),
                "must be at least 1",
            ));
        }
        if item.unit_price < 0 {
            return Err(FieldError::new(
                format!("items[{i}].unitPrice"),
                "must not be negative (integer fen)",
            ));
        }
    }
    if o.milestones.len() > 50 {
        return Err(FieldError::new(
            "milestones",
            "must have at most 50 entries",
        ));
    }
    for (i, m) in o.milestones.iter().enumerate() {
        text(&format!("milestones[{i}].name"), &m.name, 1, 64)?;
    }
    if o.payments.len() > 100 {
        return Err(FieldError::new("payments", "must have at most 100 entries"));
    }
    for (i, p) in o.payments.iter().enumerate() {
        if p.amount <= 0 {
            return Err(FieldError::new(
                format!("payments[{i}].amount"),
                "must be positive (integer fen)",
            ));
        }
        text(
            &format!("payments[{i}].channelTransactionId"),
            &p.channel_transaction_id,
            1,
            128,
        )?;
    }
    match (&o.customer_id, &o.customer) {
        (Some(_), Some(_)) => Err(FieldError::new(
            "customer",
            "give either `customerId` or `customer`, not both",
        )),
        (Some(id), None) => {
            text("customerId", id.as_str(), 1, 64)?;
            Ok(None)
        }
        (None, Some(c)) => {
            text("customer.name", &c.name, 1, 64)?;
            mobile("customer.mobile", &c.mobile).map(Some)
        }
        (None, None) => Ok(None),
    }
}

/// An optional text filter of a list query: absent or empty means none; otherwise at most
/// `max` characters of printable text.
///
/// # Errors
///
/// A [`FieldError`] naming `name` when the text is too long or holds control characters.
pub fn text_filter(
    name: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match value {
        None | Some("") => Ok(None),
        Some(v) if v.chars().count() > max => Err(FieldError::new(
            name,
            format!("must be at most {max} characters"),
        )),
        Some(v) => {
            printable(name, v)?;
            Ok(Some(v.to_owned()))
        }
    }
}

/// Checks the paging parameters of a list (`page` from 1, `pageSize` 1–100, default 20).
///
/// Values arrive as the raw query strings so that a non-numeric value is reported with its name.
///
/// # Errors
///
/// `page` or `pageSize` when missing digits, out of range, or not an integer.
pub fn paging(page: Option<&str>, page_size: Option<&str>) -> Result<(u32, u32), FieldError> {
    let page = match page {
        None => DEFAULT_PAGE,
        Some(raw) => match raw.parse::<u32>() {
            Ok(p) if (1..=MAX_PAGE).contains(&p) => p,
            _ => {
                return Err(FieldError::new(
                    "page",
                    format!("must be an integer from 1 to {MAX_PAGE}"),
                ));
            }
        },
    };
    let page_size = match page_size {
        None => DEFAULT_PAGE_SIZE,
        Some(raw) => match raw.parse::<u32>() {
            Ok(s) if (1..=MAX_PAGE_SIZE).contains(&s) => s,
            _ => {
                return Err(FieldError::new(
                    "pageSize",
                    format!("must be an integer from 1 to {MAX_PAGE_SIZE}"),
                ));
            }
        },
    };
    Ok((page, page_size))
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use l2c_core::api::leads::{FormField, LeadSource};
    use l2c_core::api::orders::{OrderCustomer, Payment, PaymentKind, PaymentMethod};
    use l2c_core::api::status::OrderStatus;

    use super::*;

    type LeadEdit = fn(&mut PushLead);
    type OrderEdit = fn(&mut SyncOrder);

    fn a_lead() -> PushLead {
        PushLead::new(
            LeadSource::Douyin,
            "dy-1",
            "张三",
            "138 0013 8000",
            DateTime::parse_from_rfc3339("2026-11-20T10:15:00+08:00").unwrap(),
        )
    }

    fn an_order() -> SyncOrder {
        let mut o = SyncOrder::new(
            "ERP-1",
            OrderStatus::DepositPaid,
            PaymentStatus::DepositPaid,
            OrderAmounts::cny(1_000_000, 200_000, 200_000),
            1,
        );
        o.customer = Some(OrderCustomer::new("张三", "13800138000"));
        o
    }

    #[test]
    fn a_good_lead_passes_with_its_mobile_normalized() {
        assert_eq!(lead(&a_lead()).unwrap().e164(), "+8613800138000");
    }

    #[test]
    fn lead_errors_name_the_field() {
        let cases: Vec<(LeadEdit, &str)> = vec![
            (|l| l.mobile = "12345".into(), "mobile"),
            (|l| l.name = "  ".into(), "name"),
            (|l| l.external_lead_id = String::new(), "externalLeadId"),
            (|l| l.external_lead_id = "x".repeat(129), "externalLeadId"),
            (
                |l| l.form_fields = vec![FormField::new("", "v")],
                "formFields[0].label",
            ),
            (|l| l.city = Some("杭".repeat(33)), "city"),
            (|l| l.name = "张\u{0}三".into(), "name"),
            (
                |l| l.external_lead_id = "dy\u{1b}1".into(),
                "externalLeadId",
            ),
            (|l| l.intent = Some("a\u{0}".into()), "intent"),
            (
                |l| l.form_fields = vec![FormField::new("k", "v\u{0}")],
                "formFields[0].value",
            ),
        ];
        for (mutate, field) in cases {
            let mut l = a_lead();
            mutate(&mut l);
            assert_eq!(lead(&l).unwrap_err().field, field);
        }
    }

    #[test]
    fn order_errors_name_the_field() {
        let cases: Vec<(OrderEdit, &str)> = vec![
            (|o| o.version = 0, "version"),
            (|o| o.amounts.currency = "USD".into(), "amounts.currency"),
            (|o| o.amounts.total = -1, "amounts.total"),
            (|o| o.amounts.paid = 2_000_000, "amounts.paid"),
            (|o| o.amounts.deposit = 2_000_000, "amounts.deposit"),
            (
                |o| o.payment_status = PaymentStatus::FullyPaid,
                "paymentStatus",
            ),
            (
                |o| o.payment_status = PaymentStatus::Unpaid,
                "paymentStatus",
            ),
            (
                |o| o.customer = Some(OrderCustomer::new("李四", "1380013800")),
                "customer.mobile",
            ),
            (|o| o.customer_id = Some("cus_1".into()), "customer"),
            (|o| o.external_order_no = "A\u{0}".into(), "externalOrderNo"),
            (
                |o| {
                    o.payments = vec![Payment::new(
                        PaymentKind::Deposit,
                        PaymentMethod::Alipay,
                        0,
                        "t1",
                        DateTime::parse_from_rfc3339("2026-11-20T10:15:00+08:00").unwrap(),
                    )]
                },
                "payments[0].amount",
            ),
        ];
        for (mutate, field) in cases {
            let mut o = an_order();
            mutate(&mut o);
            assert_eq!(sync_order(&o).unwrap_err().field, field);
        }
        assert!(sync_order(&an_order()).unwrap().is_some());
    }

    #[test]
    fn unpaid_is_refused_with_a_status_that_implies_a_deposit() {
        for status in [
            OrderStatus::DepositPaid,
            OrderStatus::Scheduling,
            OrderStatus::Completed,
            OrderStatus::AfterSales,
        ] {
            let mut o = an_order();
            o.status = status;
            o.payment_status = PaymentStatus::Unpaid;
            o.amounts.paid = 0;
            o.payments.clear();
            let e = sync_order(&o).unwrap_err();
            assert_eq!(e.field, "paymentStatus", "{status}");
            assert_eq!(e.code, STATUS_PAYMENT_MISMATCH, "{status}");
            assert!(e.message.contains("`status`"), "{e}");
        }
        let mut o = an_order();
        o.status = OrderStatus::Cancelled;
        o.payment_status = PaymentStatus::Unpaid;
        o.amounts.paid = 0;
        assert!(sync_order(&o).is_ok());
        o.status = OrderStatus::AfterSales;
        o.payment_status = PaymentStatus::Refunded;
        assert!(sync_order(&o).is_ok());
    }

    #[test]
    fn tab_newline_and_return_are_allowed() {
        let mut l = a_lead();
        l.intent = Some("line one\r\n\tline two".into());
        assert!(lead(&l).is_ok());
    }

    #[test]
    fn paging_defaults_and_bounds() {
        assert_eq!(paging(None, None), Ok((1, 20)));
        assert_eq!(paging(Some("3"), Some("100")), Ok((3, 100)));
        assert_eq!(paging(Some("0"), None).unwrap_err().field, "page");
        assert_eq!(paging(Some("-1"), None).unwrap_err().field, "page");
        assert_eq!(paging(Some("abc"), None).unwrap_err().field, "page");
        assert_eq!(paging(Some("1.5"), None).unwrap_err().field, "page");
        assert_eq!(paging(Some("1000001"), None).unwrap_err().field, "page");
        assert_eq!(paging(Some("1000000"), None), Ok((1_000_000, 20)));
        assert_eq!(paging(None, Some("101")).unwrap_err().field, "pageSize");
        assert_eq!(paging(None, Some("0")).unwrap_err().field, "pageSize");
        assert_eq!(paging(None, Some("")).unwrap_err().field, "pageSize");
    }
}
