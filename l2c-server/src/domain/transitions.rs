//! Which status changes an ERP sync may make.
//!
//! Fulfilment ([`OrderStatus`]) follows the main path
//! DEPOSIT_PAID → MEASURE_PENDING → MEASURED → DESIGNING → DESIGN_CONFIRMED → PRODUCTION_PENDING →
//! SCHEDULING → IN_PRODUCTION → READY_TO_SHIP → SHIPPED → INSTALL_PENDING → INSTALLING →
//! INSTALLED → COMPLETED. A sync carries the ERP's current state, so it may move forward by
//! several steps at once (syncs in between can be lost). Besides that:
//!
//! - CANCELLED from any status up to DESIGN_CONFIRMED (nothing is produced yet); CANCELLED is final;
//! - AFTER_SALES from INSTALLED or COMPLETED, and from there back to COMPLETED (resolved) or
//!   INSTALL_PENDING (a repair visit);
//! - the real backward moves: re-measure (MEASURED or DESIGNING → MEASURE_PENDING), design
//!   revision before production (DESIGN_CONFIRMED or PRODUCTION_PENDING → DESIGNING), and a second
//!   install visit (INSTALLING or INSTALLED → INSTALL_PENDING);
//! - staying in the same status (a sync that changes only amounts or payments).
//!
//! Payment ([`PaymentStatus`]) moves forward UNPAID → DEPOSIT_PAID → PARTIALLY_PAID → FULLY_PAID
//! (skipping allowed); any paid status may go to REFUNDING, which ends in REFUNDED or, when the
//! refund is withdrawn, back at a paid status. REFUNDED is final.
//!
//! The two fields must also agree ([`status_agrees_with_payment`]): an order exists on the
//! platform once its deposit is paid (`ORDER_CREATED`, 新订单已创建（并付定金）), so every
//! fulfilment status implies a paid deposit except CANCELLED, and none of them goes with an
//! UNPAID payment status. The cases looked at:
//!
//! - DEPOSIT_PAID and every later main-path status: the deposit is paid by definition;
//! - AFTER_SALES: reached only from INSTALLED or COMPLETED, so it was paid; after a refund its
//!   payment status is REFUNDING or REFUNDED, never UNPAID again (payment never moves back to
//!   UNPAID);
//! - CANCELLED: an ERP may report an order cancelled before its deposit was taken, so any
//!   payment status goes, UNPAID included; such an order emits no `ORDER_CREATED`;
//! - REFUNDING and REFUNDED are not UNPAID and go with any status.

use l2c_core::api::status::{OrderStatus, PaymentStatus};

use OrderStatus as S;

/// The main fulfilment path, in order.
pub const MAIN_PATH: [OrderStatus; 14] = [
    S::DepositPaid,
    S::MeasurePending,
    S::Measured,
    S::Designing,
    S::DesignConfirmed,
    S::ProductionPending,
    S::Scheduling,
    S::InProduction,
    S::ReadyToShip,
    S::Shipped,
    S::InstallPending,
    S::Installing,
    S::Installed,
    S::Completed,
];

/// The backward moves the business really makes.
pub const BACKWARD_MOVES: [(OrderStatus, OrderStatus); 6] = [
    // Re-measure.
    (S::Measured, S::MeasurePending),
    (S::Designing, S::MeasurePending),
    // Design revision before production.
    (S::DesignConfirmed, S::Designing),
    (S::ProductionPending, S::Designing),
    // Second install visit.
    (S::Installing, S::InstallPending),
    (S::Installed, S::InstallPending),
];

fn main_index(s: OrderStatus) -> Option<usize> {
    MAIN_PATH.iter().position(|m| *m == s)
}

/// Whether a sync may move an order's fulfilment status from `from` to `to`.
pub fn fulfilment_allowed(from: OrderStatus, to: OrderStatus) -> bool {
    if from == to {
        return true;
    }
    match (from, to) {
        (S::Cancelled, _) => false,
        (_, S::Cancelled) => {
            main_index(from).is_some_and(|i| i <= main_index(S::DesignConfirmed).unwrap_or(0))
        }
        (S::Installed | S::Completed, S::AfterSales) => true,
        (_, S::AfterSales) => false,
        (S::AfterSales, S::Completed | S::InstallPending) => true,
        (S::AfterSales, _) => false,
        _ => match (main_index(from), main_index(to)) {
            (Some(i), Some(j)) if j > i => true,
            _ => BACKWARD_MOVES.contains(&(from, to)),
        },
    }
}

/// Whether the status an order is created with is a possible first status.
///
/// An ERP may connect to the platform late, so any status but AFTER_SALES is accepted on
/// creation (after-sales needs an installed order the platform has seen).
pub fn valid_initial_status(s: OrderStatus) -> bool {
    s != S::AfterSales
}

/// Whether fulfilment status `s` implies that the deposit has been paid: every status but
/// CANCELLED (see the module docs).
pub fn implies_deposit_paid(s: OrderStatus) -> bool {
    s != S::Cancelled
}

/// Whether an order may be in fulfilment status `status` with payment status `payment`: not
/// UNPAID while the status [implies a paid deposit](implies_deposit_paid).
pub fn status_agrees_with_payment(status: OrderStatus, payment: PaymentStatus) -> bool {
    !(payment == PaymentStatus::Unpaid && implies_deposit_paid(status))
}

fn paid_rank(p: PaymentStatus) -> Option<u8> {
    match p {
        PaymentStatus::Unpaid => Some(0),
        PaymentStatus::DepositPaid => Some(1),
        PaymentStatus::PartiallyPaid => Some(2),
        PaymentStatus::FullyPaid => Some(3),
        PaymentStatus::Refunding | PaymentStatus::Refunded => None,
    }
}

/// Whether a sync may move an order's payment status from `from` to `to`.
pub fn payment_allowed(from: PaymentStatus, to: PaymentStatus) -> bool {
    use PaymentStatus as P;
    if from == to {
        return true;
    }
    match (from, to) {
        (P::Refunded, _) => false,
        (P::Unpaid, P::Refunding | P::Refunded) => false,
        (_, P::Refunding) => true,
        (P::Refunding, P::Refunded) => true,
        (P::Refunding, p) => paid_rank(p).is_some_and(|r| r > 0),
        (_, P::Refunded) => false,
        _ => match (paid_rank(from), paid_rank(to)) {
            (Some(a), Some(b)) => b > a,
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentStatus as P;

    #[test]
    fn unpaid_goes_only_with_cancelled() {
        for &status in OrderStatus::ALL {
            assert_eq!(
                status_agrees_with_payment(status, PaymentStatus::Unpaid),
                status == S::Cancelled,
                "{status}"
            );
            for &payment in PaymentStatus::ALL {
                if payment != PaymentStatus::Unpaid {
                    assert!(
                        status_agrees_with_payment(status, payment),
                        "{status} {payment}"
                    );
                }
            }
        }
    }

    /// The full fulfilment table, written out by hand: row = from, the listed statuses are the
    /// allowed targets besides staying put. Every (from, to) pair is checked against it.
    fn expected_targets(from: OrderStatus) -> Vec<OrderStatus> {
        let forward_from = |i: usize| MAIN_PATH[i + 1..].to_vec();
        let mut t = match from {
            S::DepositPaid => forward_from(0),
            S::MeasurePending => forward_from(1),
            S::Measured => forward_from(2),
            S::Designing => forward_from(3),
            S::DesignConfirmed => forward_from(4),
            S::ProductionPending => forward_from(5),
            S::Scheduling => forward_from(6),
            S::InProduction => forward_from(7),
            S::ReadyToShip => forward_from(8),
            S::Shipped => forward_from(9),
            S::InstallPending => forward_from(10),
            S::Installing => forward_from(11),
            S::Installed => forward_from(12),
            S::Completed => vec![],
            S::Cancelled => vec![],
            S::AfterSales => vec![S::Completed, S::InstallPending],
        };
        match from {
            S::DepositPaid | S::MeasurePending => t.push(S::Cancelled),
            S::Measured => t.extend([S::Cancelled, S::MeasurePending]),
            S::Designing => t.extend([S::Cancelled, S::MeasurePending]),
            S::DesignConfirmed => t.extend([S::Cancelled, S::Designing]),
            S::ProductionPending => t.push(S::Designing),
            S::Installing => t.push(S::InstallPending),
            S::Installed => t.extend([S::InstallPending, S::AfterSales]),
            S::Completed => t.push(S::AfterSales),
            _ => {}
        }
        t.push(from);
        t
    }

    #[test]
    fn every_fulfilment_pair_matches_the_table() {
        let mut allowed = 0;
        for &from in OrderStatus::ALL {
            let targets = expected_targets(from);
            for &to in OrderStatus::ALL {
                assert_eq!(
                    fulfilment_allowed(from, to),
                    targets.contains(&to),
                    "{from} -> {to}"
                );
                allowed += usize::from(fulfilment_allowed(from, to));
            }
        }
        // 16 self-moves + 91 forward moves on the main path + 5 cancels + 2 into after-sales
        // + 2 out of it + 6 backward moves.
        assert_eq!(allowed, 16 + 91 + 5 + 2 + 2 + 6);
    }

    #[test]
    fn cancellation_stops_once_production_is_planned() {
        assert!(fulfilment_allowed(S::DesignConfirmed, S::Cancelled));
        assert!(!fulfilment_allowed(S::ProductionPending, S::Cancelled));
        assert!(!fulfilment_allowed(S::Scheduling, S::Cancelled));
        assert!(!fulfilment_allowed(S::Cancelled, S::DepositPaid));
    }

    #[test]
    fn no_backward_move_into_or_after_production() {
        assert!(!fulfilment_allowed(S::Scheduling, S::Designing));
        assert!(!fulfilment_allowed(S::Shipped, S::InProduction));
        assert!(!fulfilment_allowed(S::Completed, S::Installed));
    }

    #[test]
    fn every_payment_pair_matches_the_table() {
        let expected = |from: PaymentStatus| -> Vec<PaymentStatus> {
            match from {
                P::Unpaid => vec![P::Unpaid, P::DepositPaid, P::PartiallyPaid, P::FullyPaid],
                P::DepositPaid => {
                    vec![P::DepositPaid, P::PartiallyPaid, P::FullyPaid, P::Refunding]
                }
                P::PartiallyPaid => vec![P::PartiallyPaid, P::FullyPaid, P::Refunding],
                P::FullyPaid => vec![P::FullyPaid, P::Refunding],
                P::Refunding => vec![
                    P::Refunding,
                    P::Refunded,
                    P::DepositPaid,
                    P::PartiallyPaid,
                    P::FullyPaid,
                ],
                P::Refunded => vec![P::Refunded],
            }
        };
        for &from in PaymentStatus::ALL {
            for &to in PaymentStatus::ALL {
                assert_eq!(
                    payment_allowed(from, to),
                    expected(from).contains(&to),
                    "{from} -> {to}"
                );
            }
        }
    }
}
