//! `#[fabraix::action]`: check each call with Fabraix before the body runs.

mod attr;
mod expand;
mod valid;

use proc_macro2::TokenStream;

/// Parse (`attr.rs`) → validate (`valid.rs`) → expand (`expand.rs`).
pub(crate) fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    crate::pipeline(
        "action",
        args,
        input,
        attr::parse,
        valid::check,
        expand::expand,
    )
}
