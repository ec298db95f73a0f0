//! Paged list endpoints: one page at a time, or a [`Stream`] over every item.
//!
//! List endpoints take `page` (from 1) and `pageSize` (1–100) and answer
//! `{items, page, pageSize, total}`. Their request builders have `.page(n)` / `.page_size(n)`,
//! `.send()` for one page and `.stream()` for a [`PageStream`] that fetches page after page
//! lazily. The stream ends after an empty page, or once `page * pageSize >= total`; an error ends
//! it after being yielded.
//!
//! ```no_run
//! use futures_util::TryStreamExt;
//! # async fn run(client: l2c_client::Client) -> Result<(), l2c_client::Error> {
//! let items: Vec<_> = client.showroom().items().page_size(100).stream().try_collect().await?;
//! println!("{} showroom items", items.len());
//! # Ok(()) }
//! ```
//!
//! [`paginate`] builds such a stream from any page-fetching closure:
//!
//! ```
//! use futures_util::{StreamExt, TryStreamExt};
//! use l2c_client::pagination::{paginate, Paginated};
//!
//! struct Page { items: Vec<u32>, page_size: u32, total: u64 }
//! impl Paginated for Page {
//!     type Item = u32;
//!     fn page_size(&self) -> Option<u32> { Some(self.page_size) }
//!     fn total(&self) -> Option<u64> { Some(self.total) }
//!     fn into_items(self) -> Vec<u32> { self.items }
//! }
//!
//! # tokio_test_block_on(async {
//! let stream = paginate(1, |page: u32| async move {
//!     let first = (page - 1) * 2;
//!     let items = (first..(first + 2).min(5)).collect();
//!     Ok::<_, l2c_client::Error>(Page { items, page_size: 2, total: 5 })
//! });
//! assert_eq!(stream.try_collect::<Vec<_>>().await.unwrap(), vec![0, 1, 2, 3, 4]);
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::error::Error;

/// The largest `pageSize` the platform accepts.
pub use l2c_core::api::showroom::MAX_PAGE_SIZE;

/// One page of a list endpoint's response.
pub trait Paginated {
    /// The element type.
    type Item;

    /// The page size the server applied, if it said.
    fn page_size(&self) -> Option<u32>;

    /// The total number of items across all pages, if the server said.
    fn total(&self) -> Option<u64>;

    /// The items of this page.
    fn into_items(self) -> Vec<Self::Item>;
}

impl<T> Paginated for l2c_core::api::showroom::Page<T> {
    type Item = T;

    fn page_size(&self) -> Option<u32> {
        Some(self.page_size)
    }

    fn total(&self) -> Option<u64> {
        Some(self.total)
    }

    fn into_items(self) -> Vec<T> {
        self.items
    }
}

/// A [`Stream`] over the items of every page, fetched lazily one page at a time.
#[must_use = "streams do nothing unless polled"]
pub struct PageStream<T> {
    inner: Pin<Box<dyn Stream<Item = Result<T, Error>> + Send>>,
}

impl<T> fmt::Debug for PageStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageStream").finish_non_exhaustive()
    }
}

impl<T> Stream for PageStream<T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

struct State<F, T> {
    fetch: F,
    next: Option<u32>,
    buffer: VecDeque<T>,
}

/// Streams the items of pages `first_page`, `first_page + 1`, … as returned by `fetch(page)`.
///
/// Stops after an empty page, after the page for which `page * pageSize >= total`, or after
/// yielding the first error.
pub fn paginate<P, F, Fut>(first_page: u32, fetch: F) -> PageStream<P::Item>
where
    P: Paginated + Send + 'static,
    P::Item: Send + 'static,
    F: FnMut(u32) -> Fut + Send + 'static,
    Fut: Future<Output = Result<P, Error>> + Send + 'static,
{
    let state = State {
        fetch,
        next: Some(first_page.max(1)),
        buffer: VecDeque::new(),
    };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(item) = state.buffer.pop_front() {
                return Some((Ok(item), state));
            }
            let page = state.next?;
            match (state.fetch)(page).await {
                Ok(response) => {
                    let total = response.total();
                    let page_size = response.page_size();
                    let items = response.into_items();
                    let exhausted = items.is_empty()
                        || match (total, page_size) {
                            (Some(total), Some(size)) => u64::from(page) * u64::from(size) >= total,
                            _ => false,
                        };
                    state.next = if exhausted { None } else { page.checked_add(1) };
                    state.buffer.extend(items);
                }
                Err(err) => {
                    state.next = None;
                    return Some((Err(err), state));
                }
            }
        }
    });
    PageStream {
        inner: Box::pin(stream),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures_util::StreamExt;

    use super::*;

    struct Page {
        items: Vec<u32>,
        page_size: u32,
        total: Option<u64>,
    }

    impl Paginated for Page {
        type Item = u32;
        fn page_size(&self) -> Option<u32> {
            Some(self.page_size)
        }
        fn total(&self) -> Option<u64> {
            self.total
        }
        fn into_items(self) -> Vec<u32> {
            self.items
        }
    }

    fn run<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    type Log = Arc<Mutex<Vec<u32>>>;

    fn recording(
        pages: Vec<Result<Page, Error>>,
    ) -> (
        impl FnMut(u32) -> std::future::Ready<Result<Page, Error>> + Send + 'static,
        Log,
    ) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut pages: VecDeque<_> = pages.into();
        let log = seen.clone();
        let fetch = move |page| {
            log.lock().unwrap().push(page);
            std::future::ready(
                pages
                    .pop_front()
                    .unwrap_or_else(|| Err(Error::config(crate::BuildError::InvalidPath))),
            )
        };
        (fetch, seen)
    }

    #[test]
    fn stops_when_total_is_reached() {
        let (fetch, seen) = recording(vec![
            Ok(Page {
                items: vec![1, 2],
                page_size: 2,
                total: Some(3),
            }),
            Ok(Page {
                items: vec![3],
                page_size: 2,
                total: Some(3),
            }),
        ]);
        let items: Vec<_> = run(paginate(1, fetch).collect::<Vec<_>>());
        let items: Vec<u32> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(items, vec![1, 2, 3]);
        assert_eq!(*seen.lock().unwrap(), vec![1, 2]);
    }

    #[test]
    fn stops_on_an_empty_page_without_total() {
        let (fetch, seen) = recording(vec![
            Ok(Page {
                items: vec![1],
                page_size: 1,
                total: None,
            }),
            Ok(Page {
                items: vec![],
                page_size: 1,
                total: None,
            }),
        ]);
        let items: Vec<_> = run(paginate(1, fetch).collect::<Vec<_>>());
        assert_eq!(items.len(), 1);
        assert_eq!(*seen.lock().unwrap(), vec![1, 2]);
    }

    #[test]
    fn an_error_is_yielded_once_and_ends_the_stream() {
        let (fetch, seen) = recording(vec![
            Ok(Page {
                items: vec![1],
                page_size: 1,
                total: Some(10),
            }),
            Err(Error::config(crate::BuildError::InvalidPath)),
        ]);
        let items = run(paginate(1, fetch).collect::<Vec<_>>());
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert!(items[1].is_err());
        assert_eq!(*seen.lock().unwrap(), vec![1, 2]);
    }
}
