//! The process-wide client used by `#[fabraix::agent]` fns without `client = …`, and the
//! guard that keeps its events at process exit.

use std::fmt;

use once_cell::sync::OnceCell;

use super::Client;
use crate::model::Error;

static GLOBAL: OnceCell<Client> = OnceCell::new();

/// Sets the global client, used by agent runs that name no `client = …`, and answers a
/// guard that, when dropped, waits (up to the client's
/// [`shutdown_timeout`](crate::ClientBuilder::shutdown_timeout), 10 s by default) for the
/// events still queued: hold it until `main` ends, so that a program that exits right
/// after its agent work keeps its events, even while the key's rate limit slows them down.
///
/// The first call wins: a later call, or a call after the global client was already built
/// from the environment, returns [`Error::AlreadyInitialized`] and changes nothing.
///
/// ```
/// let client = fabraix::Client::builder().disabled(true).build().unwrap();
/// let _fabraix = fabraix::init(client.clone()).unwrap();
/// assert!(matches!(
///     fabraix::init(client),
///     Err(fabraix::Error::AlreadyInitialized)
/// ));
/// // ... the program's work; `_fabraix` flushes when `main` returns.
/// ```
pub fn init(client: Client) -> Result<InitGuard, Error> {
    GLOBAL
        .set(client.clone())
        .map_err(|_| Error::AlreadyInitialized)?;
    Ok(InitGuard { client })
}

/// The global client: the one given to [`init`], else one built from the environment on
/// first use. A failed build is not remembered, so a later [`init`] still works.
pub fn global_client() -> Result<&'static Client, Error> {
    GLOBAL.get_or_try_init(Client::from_env)
}

/// The global client if it has been set or built, without building one: for bookkeeping
/// that must not have the side effect of creating it (which would make a later [`init`]
/// fail).
pub(crate) fn built_global_client() -> Option<&'static Client> {
    GLOBAL.get()
}

/// Returned by [`init`]: when dropped, sends what is still queued, waiting at most the
/// client's shutdown timeout. While it waits, queued events may use the key's whole rate
/// budget (no agent call is coming any more).
#[must_use = "the guard sends the queued events when it is dropped: keep it until `main` ends (`let _fabraix = fabraix::init(..)?;`)"]
pub struct InitGuard {
    client: Client,
}

impl InitGuard {
    /// Sends what is still queued now, as dropping the guard does; answers whether
    /// everything was sent (or failed) within the shutdown timeout.
    pub fn flush(&self) -> bool {
        self.client.flush_at_exit()
    }
}

impl Drop for InitGuard {
    fn drop(&mut self) {
        if !self.client.flush_at_exit() {
            tracing::warn!(
                target: "fabraix",
                in_queue = self.client.in_queue(),
                "fabraix events still queued at exit were not all sent within the shutdown timeout"
            );
        }
        // With a spool, what is left is on disk, for the next process to send.
        self.client.close_at_exit();
    }
}

impl fmt::Debug for InitGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitGuard").finish_non_exhaustive()
    }
}
