//! The process-wide client used by `#[fabraix::agent]` fns without `client = …`.

use once_cell::sync::OnceCell;

use super::Client;
use crate::model::Error;

static GLOBAL: OnceCell<Client> = OnceCell::new();

/// Sets the global client, used by agent runs that name no `client = …`.
///
/// The first call wins: a later call, or a call after the global client was already built
/// from the environment, returns [`Error::AlreadyInitialized`] and changes nothing.
///
/// ```
/// let client = fabraix_runtime::Client::builder().disabled(true).build().unwrap();
/// fabraix_runtime::init(client.clone()).unwrap();
/// assert!(matches!(
///     fabraix_runtime::init(client),
///     Err(fabraix_runtime::Error::AlreadyInitialized)
/// ));
/// ```
pub fn init(client: Client) -> Result<(), Error> {
    GLOBAL.set(client).map_err(|_| Error::AlreadyInitialized)
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
