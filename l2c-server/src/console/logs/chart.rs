//! The per-hour chart of the 请求日志 page: requests, 4xx, 429 and 5xx over the last 24 hours,
//! as server-rendered SVG (no script: the console's CSP allows none inline) with a table of
//! the same numbers for screen readers and for anyone who prefers text.

use maud::{Markup, html};

use crate::store::request_logs::{HOUR_MS, HourCounts};

/// Hours the chart shows (the current one last).
pub const HOURS: usize = 24;

/// Width and height of the drawing (SVG user units; it scales to the page's width).
const W: i64 = 400;
const H: i64 = 250;
/// The plot area.
const LEFT: i64 = 36;
const RIGHT: i64 = 8;
const TOP: i64 = 34;
const BOTTOM: i64 = 26;

/// Colours of the stacked series, bottom up: 5xx, 429, other 4xx, the rest.
const SERVER: &str = "#dc2626";
const LIMITED: &str = "#7c3aed";
const CLIENT: &str = "#f59e0b";
const OTHER: &str = "#3b82f6";

/// The [`HOURS`] hours ending with the one `now` (unix ms) falls in, oldest first, with the
/// counts of `rows` (the hours that had requests) and zeros elsewhere.
pub fn buckets(rows: &[HourCounts], now: i64) -> Vec<HourCounts> {
    let last = now.div_euclid(HOUR_MS) * HOUR_MS;
    let first = last - (HOURS as i64 - 1) * HOUR_MS;
    (0..HOURS as i64)
        .map(|i| {
            let hour_start = first + i * HOUR_MS;
            rows.iter()
                .find(|r| r.hour_start == hour_start)
                .copied()
                .unwrap_or(HourCounts {
                    hour_start,
                    ..HourCounts::default()
                })
        })
        .collect()
}

/// The start of the first hour [`buckets`] shows for `now`.
pub fn first_hour(now: i64) -> i64 {
    (now.div_euclid(HOUR_MS) - (HOURS as i64 - 1)) * HOUR_MS
}

/// A round upper bound of the y axis (1, 2, 5 × 10ⁿ) at least `max`.
fn axis_max(max: i64) -> i64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if m * step >= max.max(1) {
                return m * step;
            }
        }
        step = step.saturating_mul(10);
    }
}

fn hour_label(ms: i64) -> String {
    crate::store::sql::millis_to_cst(ms)
        .format("%H:00")
        .to_string()
}

/// The chart of `hours` (from [`buckets`]) and its table.
pub fn render(hours: &[HourCounts]) -> Markup {
    let sum = |f: fn(&HourCounts) -> i64| hours.iter().map(f).sum::<i64>();
    let (total, c4, c429, c5) = (
        sum(|h| h.total),
        sum(|h| h.client_errors),
        sum(|h| h.limited),
        sum(|h| h.server_errors),
    );
    let top = axis_max(hours.iter().map(|h| h.total).max().unwrap_or(0));
    let plot_h = H - TOP - BOTTOM;
    let slot = (W - LEFT - RIGHT) as f64 / hours.len().max(1) as f64;
    let y = |n: i64| TOP as f64 + plot_h as f64 * (1.0 - n as f64 / top as f64);
    let summary = format!(
        "过去 24 小时每小时请求数：共 {total} 次请求，4xx {c4} 次，其中 429 {c429} 次，5xx {c5} 次"
    );
    html! {
        figure.chart {
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (W) " " (H) } width="100%"
                role="img" aria-label=(summary) font-size="13" font-family="sans-serif" {
                title { (summary) }
                // Legend.
                @for (i, (colour, label)) in [(OTHER, "2xx/3xx"), (CLIENT, "4xx"), (LIMITED, "429"), (SERVER, "5xx")].iter().enumerate() {
                    rect x=(LEFT + i as i64 * 84) y="8" width="12" height="12" rx="2" fill=(colour) {}
                    text x=(LEFT + i as i64 * 84 + 17) y="18" fill="#374151" { (label) }
                }
                // Grid and y labels: 0, half, top.
                @for n in [0, top / 2, top] {
                    line x1=(LEFT) x2=(W - RIGHT) y1=(format!("{:.1}", y(n))) y2=(format!("{:.1}", y(n)))
                        stroke="#e5e7eb" {}
                    text x=(LEFT - 4) y=(format!("{:.1}", y(n) + 4.0)) text-anchor="end" fill="#6b7280" { (n) }
                }
                @for (i, h) in hours.iter().enumerate() {
                    @let x = LEFT as f64 + slot * i as f64 + slot * 0.15;
                    @let w = slot * 0.7;
                    g.hour {
                        title {
                            (hour_label(h.hour_start)) "：请求 " (h.total) "，4xx " (h.client_errors)
                            "（429 " (h.limited) "），5xx " (h.server_errors)
                        }
                        // Stacked bottom up; every segment is a share of the hour's total.
                        @for (from, to, colour) in segments(h) {
                            @if to > from {
                                rect x=(format!("{x:.1}")) width=(format!("{w:.1}"))
                                    y=(format!("{:.1}", y(to))) height=(format!("{:.1}", y(from) - y(to)))
                                    fill=(colour) {}
                            }
                        }
                    }
                    @if i % 4 == 0 || i == hours.len() - 1 {
                        text x=(format!("{:.1}", x + w / 2.0)) y=(H - 8) text-anchor="middle" fill="#6b7280" {
                            (hour_label(h.hour_start))
                        }
                    }
                }
            }
            figcaption.muted.small { (summary) "（北京时间，当前小时在最右）" }
        }
        details.charttable {
            summary { "按小时查看数据" }
            div.tablewrap {
                table {
                    thead { tr { th { "小时" } th { "请求" } th { "4xx" } th { "429" } th { "5xx" } } }
                    tbody {
                        @for h in hours.iter().rev() {
                            tr {
                                td.nowrap { (hour_label(h.hour_start)) }
                                td { (h.total) } td { (h.client_errors) } td { (h.limited) } td { (h.server_errors) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The stacked segments of an hour, bottom up: `(from, to, colour)` in requests.
fn segments(h: &HourCounts) -> [(i64, i64, &'static str); 4] {
    let s5 = h.server_errors;
    let s429 = s5 + h.limited;
    let s4 = s5 + h.client_errors;
    [
        (0, s5, SERVER),
        (s5, s429, LIMITED),
        (s429, s4, CLIENT),
        (s4, h.total.max(s4), OTHER),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hour_start: i64, total: i64, c4: i64, c429: i64, c5: i64) -> HourCounts {
        HourCounts {
            hour_start,
            total,
            client_errors: c4,
            limited: c429,
            server_errors: c5,
        }
    }

    #[test]
    fn buckets_are_the_24_hours_up_to_now_with_zeros_between() {
        let now = 1_765_000_000_000 + 1_234; // within an hour
        let last = now / HOUR_MS * HOUR_MS;
        let rows = [
            at(last - 30 * HOUR_MS, 9, 0, 0, 0), // too old: not shown
            at(last - 23 * HOUR_MS, 3, 1, 0, 0),
            at(last, 5, 2, 1, 1),
        ];
        let b = buckets(&rows, now);
        assert_eq!(b.len(), 24);
        assert_eq!(b[0], rows[1]);
        assert_eq!(b[23], rows[2]);
        assert_eq!(b[12], at(last - 11 * HOUR_MS, 0, 0, 0, 0));
        assert_eq!(first_hour(now), last - 23 * HOUR_MS);
    }

    #[test]
    fn axis_is_round_and_never_zero() {
        assert_eq!(
            [0, 1, 3, 7, 10, 11, 180, 2001].map(axis_max),
            [1, 1, 5, 10, 10, 20, 200, 5000]
        );
    }

    #[test]
    fn segments_stack_up_to_the_total() {
        let s = segments(&at(0, 10, 4, 1, 2));
        assert_eq!(s.map(|(a, b, _)| (a, b)), [(0, 2), (2, 3), (3, 6), (6, 10)]);
    }

    #[test]
    fn renders_svg_without_script_or_inline_style() {
        let hours = buckets(&[at(0, 5, 2, 1, 1)], 0);
        let html = render(&hours).into_string();
        assert!(html.contains("<svg"), "{html}");
        assert!(html.contains("共 5 次请求，4xx 2 次，其中 429 1 次，5xx 1 次"));
        assert!(!html.contains("<script") && !html.contains("style="));
        assert_eq!(html.matches("<g class=\"hour\">").count(), 24);
    }
}
