//! `showroom().items()`: one page, and a stream over all pages.

use futures_util::{StreamExt, TryStreamExt};
use l2c_client::test_util::{MockPlatform, problem_response};
use l2c_client::types::showroom::{Page, ShowroomItem, ShowroomItemType, Visibility};
use l2c_core::Problem;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::common::{at, requests_to};

const ITEMS_PATH: &str = "/api/mobile/showroom/items";

fn item(n: u32) -> ShowroomItem {
    ShowroomItem::new(
        format!("itm_{n}").into(),
        ShowroomItemType::Product,
        format!("Item {n}"),
        "wardrobe",
        Visibility::Public,
        at(),
    )
}

/// Page `page` holds `ids` and claims `total`.
async fn mock_page(platform: &MockPlatform, page: u32, ids: &[u32], total: u64) {
    let body = Page::new(ids.iter().copied().map(item).collect(), page, 2, total);
    Mock::given(method("GET"))
        .and(path(ITEMS_PATH))
        .and(query_param("page", page.to_string()))
        .and(query_param("pageSize", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(platform.server())
        .await;
}

fn ids(items: &[ShowroomItem]) -> Vec<&str> {
    items.iter().map(|i| i.id.as_str()).collect()
}

#[tokio::test]
async fn the_stream_walks_three_pages_and_stops_at_an_empty_last_page() {
    let platform = MockPlatform::start().await;
    // The catalogue shrank while paging: `total` still says 8, page 4 is empty.
    mock_page(&platform, 1, &[1, 2], 8).await;
    mock_page(&platform, 2, &[3, 4], 8).await;
    mock_page(&platform, 3, &[5, 6], 8).await;
    mock_page(&platform, 4, &[], 8).await;
    let client = platform.client();

    let items: Vec<ShowroomItem> = client
        .showroom()
        .items()
        .page_size(2)
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        ids(&items),
        ["itm_1", "itm_2", "itm_3", "itm_4", "itm_5", "itm_6"]
    );
    assert_eq!(requests_to(&platform, ITEMS_PATH).await.len(), 4);
}

#[tokio::test]
async fn the_stream_stops_once_total_is_reached_without_fetching_further() {
    let platform = MockPlatform::start().await;
    mock_page(&platform, 1, &[1, 2], 5).await;
    mock_page(&platform, 2, &[3, 4], 5).await;
    mock_page(&platform, 3, &[5], 5).await;
    let client = platform.client();

    let items: Vec<ShowroomItem> = client
        .showroom()
        .items()
        .page_size(2)
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(items.len(), 5);
    // A fourth request would have hit the catch-all and failed the stream.
    assert_eq!(requests_to(&platform, ITEMS_PATH).await.len(), 3);
}

#[tokio::test]
async fn send_fetches_one_page_with_filters_in_the_query() {
    let platform = MockPlatform::start().await;
    Mock::given(method("GET"))
        .and(path(ITEMS_PATH))
        .and(query_param("type", "CASE"))
        .and(query_param("keyword", "岩板 餐桌"))
        .and(query_param("page", "3"))
        .and(query_param("pageSize", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(Page::new(vec![item(9)], 3, 2, 5)))
        .mount(platform.server())
        .await;
    let page = platform
        .client()
        .showroom()
        .items()
        .item_type(ShowroomItemType::Case)
        .keyword("岩板 餐桌")
        .page(3)
        .page_size(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page.total, 5);
    assert_eq!(ids(&page.items), ["itm_9"]);
}

#[tokio::test]
async fn an_error_mid_stream_is_yielded_once_and_ends_the_stream() {
    let platform = MockPlatform::start().await;
    mock_page(&platform, 1, &[1, 2], 6).await;
    Mock::given(method("GET"))
        .and(path(ITEMS_PATH))
        .and(query_param("page", "2"))
        .respond_with(problem_response(&Problem::bad_request(
            "invalid_page",
            "`page` is out of range",
        )))
        .mount(platform.server())
        .await;
    let results: Vec<_> = platform
        .client()
        .showroom()
        .items()
        .page_size(2)
        .stream()
        .collect()
        .await;
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[1].is_ok());
    assert_eq!(
        results[2].as_ref().unwrap_err().code(),
        Some("invalid_page")
    );
}
