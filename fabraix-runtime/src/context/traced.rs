//! [`Traced`] and [`SyncScope`]: a run made current around a future's polls, or around
//! synchronous code.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::RunContext;
use super::slot;

/// Swaps the context in on creation and back out on drop, so a panic inside a scope
/// cannot leave a stale run behind.
struct Entered<'a>(&'a mut RunContext);

impl<'a> Entered<'a> {
    fn enter(ctx: &'a mut RunContext) -> Self {
        slot::swap(&mut ctx.slot, &mut ctx.client);
        Entered(ctx)
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        slot::swap(&mut self.0.slot, &mut self.0.client);
    }
}

pin_project_lite::pin_project! {
    /// A future that runs inside an agent run: see [`scope`](crate::scope),
    /// [`RunContext::scope`] and [`TraceFutureExt`](crate::TraceFutureExt).
    ///
    /// The run is current during every poll of the inner future and while the inner future
    /// is dropped, so the destructors of a cancelled agent fn (a timeout, a `select!`, an
    /// aborted task) still see their run.
    #[must_use = "futures do nothing unless polled"]
    pub struct Traced<F> {
        ctx: RunContext,
        #[pin]
        future: Option<F>,
    }

    impl<F> PinnedDrop for Traced<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.future.is_some() {
                let _entered = Entered::enter(this.ctx);
                this.future.set(None);
            }
        }
    }
}

impl<F> Traced<F> {
    pub(crate) fn new(ctx: RunContext, future: F) -> Self {
        Self {
            ctx,
            future: Some(future),
        }
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        let _entered = Entered::enter(this.ctx);
        match this.future.as_mut().as_pin_mut() {
            Some(future) => {
                let output = std::task::ready!(future.poll(cx));
                // Done: dropped now, inside the run, rather than later outside it.
                this.future.set(None);
                Poll::Ready(output)
            }
            None => Poll::Pending,
        }
    }
}

impl<F> std::fmt::Debug for Traced<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traced")
            .field("trace", &self.ctx.slot.trace())
            .finish_non_exhaustive()
    }
}

/// A guard that makes a run current on this thread until it is dropped.
///
/// Used by the expansion of `#[fabraix::agent]` on synchronous fns; `!Send`, so it cannot
/// be held across an `.await` in a spawned future.
pub struct SyncScope {
    saved: RunContext,
    _not_send: PhantomData<*const ()>,
}

impl SyncScope {
    pub(crate) fn enter(mut ctx: RunContext) -> Self {
        slot::swap(&mut ctx.slot, &mut ctx.client);
        Self {
            saved: ctx,
            _not_send: PhantomData,
        }
    }
}

impl Drop for SyncScope {
    fn drop(&mut self) {
        slot::swap(&mut self.saved.slot, &mut self.saved.client);
    }
}

impl std::fmt::Debug for SyncScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncScope").finish_non_exhaustive()
    }
}
