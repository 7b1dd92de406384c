//! Paths outside the API's, answered by a handler the server's user supplies
//! ([`MockServerBuilder::fallback`](super::MockServerBuilder::fallback)).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

/// A request to a path outside `/v1`, its body read in full (an `http` 1.x request).
pub type FallbackRequest = hyper::http::Request<Bytes>;

/// The answer to a [`FallbackRequest`] (an `http` 1.x response).
pub type FallbackResponse = hyper::http::Response<Bytes>;

type Handler =
    dyn Fn(FallbackRequest) -> Pin<Box<dyn Future<Output = FallbackResponse> + Send>> + Send + Sync;

/// The handler, shared by every connection.
#[derive(Clone)]
pub(super) struct Fallback(Arc<Handler>);

impl Fallback {
    pub fn new<F, Fut>(handler: F) -> Self
    where
        F: Fn(FallbackRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = FallbackResponse> + Send + 'static,
    {
        Self(Arc::new(move |request| Box::pin(handler(request))))
    }

    pub async fn answer(&self, request: FallbackRequest) -> FallbackResponse {
        (self.0)(request).await
    }

    /// Whether a request to `path` is the handler's rather than the API's.
    pub fn serves(path: &str) -> bool {
        path != "/v1" && !path.starts_with("/v1/")
    }
}

impl fmt::Debug for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fallback(..)")
    }
}
