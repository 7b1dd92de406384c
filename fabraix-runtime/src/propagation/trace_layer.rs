//! [`TraceLayer`]: the server side. The caller's run, read from a request's headers, is
//! current while the inner service handles the request.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use super::{TRACEPARENT, extract};
use crate::client::{Client, global_client};
use crate::context::{RunContext, Slot, Traced};
use crate::model::{Error, Trace};

/// The run a request from `trace`'s caller is handled in: that trace, with its events and
/// checks going through `client` (else the global client). No run is registered for it.
fn inbound_run(trace: Trace, client: Option<Client>) -> RunContext {
    RunContext::new(Slot::Traced(trace), client)
}

/// The run a request without a trace is handled in when the SDK is disabled: one without
/// a trace, as a disabled SDK's agent fns have, so that the handler's guarded tools run
/// unchecked (rather than refuse for want of a run) and its events are let go, counted.
/// `None` when the SDK is on (or no client can be had): the request is served outside any
/// run.
fn disabled_run(client: &Option<Client>) -> Option<RunContext> {
    let disabled = match client {
        Some(client) => client.is_disabled(),
        None => global_client().is_ok_and(Client::is_disabled),
    };
    disabled.then(|| RunContext::new(Slot::Untraced(Arc::new(Error::Disabled)), client.clone()))
}

/// Decides whether a request's trace is taken: see [`TraceLayer::trust`].
///
/// Implemented for every `Fn(&http::Request<B>) -> bool`, and by [`TrustAll`].
pub trait Trust<B> {
    /// Whether the trace `request` carries is taken; if not, the handler runs untraced.
    fn trusts(&self, request: &http::Request<B>) -> bool;
}

impl<B, F> Trust<B> for F
where
    F: Fn(&http::Request<B>) -> bool,
{
    fn trusts(&self, request: &http::Request<B>) -> bool {
        self(request)
    }
}

/// Takes the trace of every request: the default of [`TraceLayer`].
#[derive(Clone, Copy, Debug, Default)]
pub struct TrustAll;

impl<B> Trust<B> for TrustAll {
    fn trusts(&self, _: &http::Request<B>) -> bool {
        true
    }
}

/// A [`tower::Layer`](tower_layer::Layer) for servers (axum, tonic, hyper): the run a
/// request's `traceparent` and `baggage` name is current while the inner service handles
/// it, so the handler's `current_trace`, `log_event` and `check_action` act for the
/// caller's run.
///
/// - Events and checks go through the global client (built from the environment, or
///   given to `init`) unless [`client`](Self::client) names another. No run is
///   registered for an inbound trace: the caller registered it.
/// - A request without a trace, with a malformed one (see the
///   [module docs](super#the-wire-format)), or from a caller [`trust`](Self::trust)
///   refuses is served all the same, untraced (or in the handler's own
///   `#[fabraix::agent]` run, if it has one). With the SDK disabled
///   (`FABRAIX_DISABLED=1`) it is served as a disabled SDK's agent fns run: guarded tools
///   run unchecked, and events are let go (counted).
/// - The trace is the caller's claim: see [Trust](super#trust).
///
/// ```
/// # async fn demo() {
/// use axum::{Router, routing::post};
/// use fabraix::propagation::TraceLayer;
///
/// async fn lookup() -> &'static str {
///     // The caller's run, when the request carried one.
///     let _trace = fabraix::current_trace();
///     "ok"
/// }
///
/// let app: Router = Router::new()
///     .route("/lookup", post(lookup))
///     .layer(TraceLayer::new().trust(|request: &http::Request<axum::body::Body>| {
///         request.headers().contains_key("x-internal-caller")
///     }));
/// # let _ = app;
/// # }
/// ```
#[derive(Clone)]
pub struct TraceLayer<T = TrustAll> {
    client: Option<Client>,
    trust: T,
}

impl TraceLayer {
    /// A layer that takes every request's trace, with the global client.
    pub fn new() -> Self {
        Self {
            client: None,
            trust: TrustAll,
        }
    }
}

impl Default for TraceLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> TraceLayer<T> {
    /// Sends the events and checks of traced requests through `client` instead of the
    /// global one.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Takes a request's trace only when `trust` says so, e.g. a predicate on the
    /// request's verified identity or its origin. Other requests are served untraced.
    pub fn trust<U>(self, trust: U) -> TraceLayer<U> {
        TraceLayer {
            client: self.client,
            trust,
        }
    }
}

impl<S, T: Clone> Layer<S> for TraceLayer<T> {
    type Service = TraceService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceService {
            inner,
            client: self.client.clone(),
            trust: self.trust.clone(),
        }
    }
}

impl<T> fmt::Debug for TraceLayer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceLayer")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// The service [`TraceLayer`] wraps around a server's service.
#[derive(Clone)]
pub struct TraceService<S, T = TrustAll> {
    inner: S,
    client: Option<Client>,
    trust: T,
}

impl<S, T, B> Service<http::Request<B>> for TraceService<S, T>
where
    S: Service<http::Request<B>>,
    T: Trust<B>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TraceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let trace = if self.trust.trusts(&request) {
            extract(request.headers())
        } else {
            None
        };
        let run = match trace {
            Some(trace) => inbound_run(trace, self.client.clone()),
            None => {
                if request.headers().contains_key(TRACEPARENT) {
                    tracing::debug!("a request's trace was not taken: malformed, or not trusted");
                }
                match disabled_run(&self.client) {
                    Some(run) => run,
                    None => {
                        return TraceFuture {
                            inner: Inner::Plain {
                                future: self.inner.call(request),
                            },
                        };
                    }
                }
            }
        };
        // Some services do work in `call` itself: it runs in the caller's run too.
        let future = run.clone().sync_scope(|| self.inner.call(request));
        TraceFuture {
            inner: Inner::Traced {
                future: run.scope(future),
            },
        }
    }
}

impl<S: fmt::Debug, T> fmt::Debug for TraceService<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceService")
            .field("inner", &self.inner)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`TraceService`]: the inner service's, run in the caller's
    /// run when the request carried a trace that was taken.
    #[must_use = "futures do nothing unless polled"]
    pub struct TraceFuture<F> {
        #[pin]
        inner: Inner<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = InnerProj]
    enum Inner<F> {
        Traced { #[pin] future: Traced<F> },
        Plain { #[pin] future: F },
    }
}

impl<F: Future> Future for TraceFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.project().inner.project() {
            InnerProj::Traced { future } => future.poll(cx),
            InnerProj::Plain { future } => future.poll(cx),
        }
    }
}

impl<F> fmt::Debug for TraceFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let traced = matches!(self.inner, Inner::Traced { .. });
        f.debug_struct("TraceFuture")
            .field("traced", &traced)
            .finish_non_exhaustive()
    }
}
