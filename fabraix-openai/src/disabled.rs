//! A disabled SDK (`FABRAIX_DISABLED=1`, `ClientBuilder::disabled(true)`): the user turned
//! checking off on purpose, so tool calls are allowed unchecked. The one place this crate
//! tells that apart from the other ways of having no verdict, which all refuse the call.

use fabraix::Error;

/// What a call that got no verdict may do: `Ok(())` when the reason is a disabled SDK (the
/// call is allowed, unchecked, and the first such call of the process says so), else
/// `Err(error)`, and the call is refused.
pub(crate) fn unchecked_if_disabled(error: Error, tool: &str) -> Result<(), Error> {
    match error {
        Error::Disabled => {
            fabraix::__private::warn_unchecked("fabraix-openai", tool);
            Ok(())
        }
        error => Err(error),
    }
}
