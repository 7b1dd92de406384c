//! `#[fabraix::agent]`: register a run on entry, run the body inside it.

mod attr;
mod expand;
mod valid;

use proc_macro2::TokenStream;

/// Parse (`attr.rs`) → validate (`valid.rs`) → expand (`expand.rs`).
pub(crate) fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    crate::pipeline(
        "agent",
        args,
        input,
        attr::parse,
        valid::check,
        expand::expand,
    )
}
