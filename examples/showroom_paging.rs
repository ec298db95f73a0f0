//! Run with: cargo run --example showroom_paging
//!
//! Reads one page of the showroom, then streams every item page by page.
//! Needs `L2C_CLIENT_ID` and `L2C_CLIENT_SECRET` (printed by `cargo run -p l2c-server` on first
//! start); `L2C_BASE_URL` defaults to `http://127.0.0.1:8080`.

use futures_util::TryStreamExt;
use l2c_client::Client;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = client_from_env()?;

    let first = client
        .showroom()
        .items()
        .page(1)
        .page_size(5)
        .send()
        .await?;
    println!(
        "page 1: {} of {} items (page size {})",
        first.items.len(),
        first.total,
        first.page_size
    );

    // The stream fetches the next page only when the current one is used up.
    let mut items = client.showroom().items().page_size(10).stream();
    let mut count = 0usize;
    while let Some(item) = items.try_next().await? {
        count += 1;
        println!(
            "{count:>4}. [{}] {} — {} ({:?})",
            item.item_type, item.title, item.category, item.visibility
        );
    }
    println!(
        "streamed {count} items; the first page said {}",
        first.total
    );
    Ok(())
}

fn client_from_env() -> Result<Client, Box<dyn std::error::Error>> {
    let base_url =
        std::env::var("L2C_BASE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
    let (Ok(id), Ok(secret)) = (
        std::env::var("L2C_CLIENT_ID"),
        std::env::var("L2C_CLIENT_SECRET"),
    ) else {
        return Err("set L2C_CLIENT_ID and L2C_CLIENT_SECRET (printed by `cargo run -p l2c-server` on first start)".into());
    };
    Ok(Client::builder()
        .base_url(base_url)
        .credentials(id, secret)
        .build()?)
}
