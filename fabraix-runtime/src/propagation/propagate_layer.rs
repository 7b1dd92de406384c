//! [`PropagateLayer`]: the client side. Every outgoing request carries the current run.

use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use super::inject_current;

/// A [`tower::Layer`](tower_layer::Layer) for HTTP clients: each request sent through it
/// carries the run current where it is sent (its `traceparent` and `baggage`, as
/// [`inject`](super::inject) writes them). Outside any run, requests go out unchanged.
///
/// The run is read when the service is called, so put the layer outermost, where the
/// caller's task calls it.
///
/// ```
/// use fabraix::propagation::PropagateLayer;
/// use tower_layer::Layer;
/// use tower_service::Service;
///
/// # #[derive(Clone)]
/// # struct Http;
/// # impl Service<http::Request<String>> for Http {
/// #     type Response = http::HeaderMap;
/// #     type Error = std::convert::Infallible;
/// #     type Future = std::future::Ready<Result<http::HeaderMap, Self::Error>>;
/// #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
/// #         std::task::Poll::Ready(Ok(()))
/// #     }
/// #     fn call(&mut self, request: http::Request<String>) -> Self::Future {
/// #         std::future::ready(Ok(request.headers().clone()))
/// #     }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let trace = fabraix::Trace::new(
/// #     fabraix::TraceId::from_uuid(uuid::Uuid::new_v4()),
/// #     fabraix::AgentId::from_name("a").unwrap(),
/// #     "2024-01-15T14:30:45.123Z".parse().unwrap(),
/// # );
/// let mut client = PropagateLayer::new().layer(Http);
/// let sent = fabraix::scope(trace, async move {
///     client.call(http::Request::new(String::new())).await
/// })
/// .await
/// .unwrap();
/// assert_eq!(fabraix::propagation::extract(&sent), Some(trace));
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct PropagateLayer {
    _private: (),
}

impl PropagateLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Layer<S> for PropagateLayer {
    type Service = Propagate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Propagate { inner }
    }
}

/// The service [`PropagateLayer`] wraps around a client.
#[derive(Clone, Debug)]
pub struct Propagate<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for Propagate<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        inject_current(request.headers_mut());
        self.inner.call(request)
    }
}
