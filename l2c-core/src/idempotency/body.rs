//! Buffering the request body of an idempotent request, up to the layer's limit.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request body could not be buffered.
pub(super) enum ReadBodyError {
    TooLarge,
    Unreadable,
}

/// The whole body, at most `limit` bytes.
///
/// A body that arrives in one frame (nearly every JSON request) is kept as that frame's
/// `Bytes` (no copy when the body's data is `Bytes`, as hyper's and axum's is), with no
/// intermediate frame list; several frames are joined into one buffer. Once the body says it
/// has ended (`is_end_stream`, e.g. a `Content-Length` reached) it is not polled again.
/// Trailers are ignored.
pub(super) async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, ReadBodyError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut total = 0usize;
    while let Some(frame) = body.as_mut().frame().await {
        let frame = frame.map_err(|error| {
            let error: BoxError = error.into();
            tracing::debug!(%error, "request body failed while buffering it");
            ReadBodyError::Unreadable
        })?;
        if let Ok(mut data) = frame.into_data() {
            let len = data.remaining();
            total = total.saturating_add(len);
            if total > limit {
                return Err(ReadBodyError::TooLarge);
            }
            if len > 0 {
                let chunk = data.copy_to_bytes(len);
                match (&mut joined, first.take()) {
                    (Some(buf), _) => buf.put(chunk),
                    (None, None) => first = Some(chunk),
                    (None, Some(head)) => {
                        let mut buf = BytesMut::with_capacity(head.len() + chunk.len());
                        buf.put(head);
                        buf.put(chunk);
                        joined = Some(buf);
                    }
                }
            }
        }
        if body.is_end_stream() {
            break;
        }
    }
    Ok(match joined {
        Some(buf) => buf.freeze(),
        None => first.unwrap_or_default(),
    })
}
