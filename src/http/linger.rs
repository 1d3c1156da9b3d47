//! Lingering close for request bodies a handler left unread.
//!
//! A body over the limit is refused (413) after its first 1.5 MiB, and an unauthorised or
//! unknown call is answered before its body is read at all. hyper then closes the connection
//! with the rest of the body unread, and the kernel answers the data still arriving with a
//! reset: a client still sending sees a broken pipe instead of the answer. As nginx's
//! lingering close does, the answer goes out at once and the rest of the body is read and
//! thrown away, for at most [`LINGER_TIME`] and [`LINGER_BYTES`], before the connection is
//! let go.

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot;

/// How long the rest of an unread body is read after the answer.
pub const LINGER_TIME: Duration = Duration::from_secs(5);
/// How much of an unread body is read after the answer: a 10 MiB upload fits with room.
pub const LINGER_BYTES: usize = 32 * 1024 * 1024;

/// Passes the request on and, when its body was left unread, reads the rest of it (within
/// bounds) in a task of its own, while hyper writes the answer.
pub async fn drain_unread(req: Request, next: Next) -> Response {
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let (back, mut unread) = oneshot::channel();
    let req = req.map(|inner| {
        Body::new(GivesBack {
            inner,
            back: Some(back),
        })
    });
    let response = next.run(req).await;
    // The handler is done with the request: a body it left is back by now, or never comes.
    if let Ok(rest) = unread.try_recv() {
        tokio::spawn(drain(rest));
    }
    response
}

/// Reads `body` to its end and drops what it reads, within the bounds.
async fn drain(body: Body) {
    let mut data = body.into_data_stream();
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while let Some(Ok(chunk)) = data.next().await {
            match left.checked_sub(chunk.len()) {
                Some(l) => left = l,
                None => break,
            }
        }
    })
    .await;
}

/// A request body that, dropped before its end, hands what is left back to the middleware.
struct GivesBack {
    inner: Body,
    back: Option<oneshot::Sender<Body>>,
}

impl HttpBody for GivesBack {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        // A body that ended, or failed (the client went away), has nothing left to read.
        if let Poll::Ready(None | Some(Err(_))) = polled {
            self.back = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for GivesBack {
    fn drop(&mut self) {
        if let Some(back) = self.back.take()
            && !self.inner.is_end_stream()
        {
            let _ = back.send(std::mem::take(&mut self.inner));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use tower::ServiceExt;

    /// A body of `chunks` chunks of 1 MiB, counting how many were read.
    fn counted(chunks: usize, read: std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Body {
        Body::from_stream(futures::stream::iter((0..chunks).map(move |_| {
            read.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 1024 * 1024]))
        })))
    }

    async fn call(handler_reads: bool, chunks: usize) -> usize {
        let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let app = axum::Router::new()
            .route(
                "/",
                post(move |body: Body| async move {
                    if handler_reads {
                        let _ = axum::body::to_bytes(body, usize::MAX).await;
                    }
                    "answered"
                }),
            )
            .layer(axum::middleware::from_fn(drain_unread));
        let req = Request::post("/")
            .body(counted(chunks, read.clone()))
            .unwrap();
        let response = app.oneshot(req).await.unwrap();
        assert_eq!(response.status(), 200);
        // The drain runs beside the answer.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        read.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[tokio::test]
    async fn an_unread_body_is_read_after_the_answer_within_the_bounds() {
        assert_eq!(call(false, 10).await, 10, "read to its end");
        let most = LINGER_BYTES / (1024 * 1024);
        assert_eq!(call(false, 100).await, most + 1, "read up to the bound");
        assert_eq!(
            call(true, 10).await,
            10,
            "a body the handler read is left alone"
        );
    }
}
