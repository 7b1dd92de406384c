//! Procedural macros of the `fabraix` SDK. Use them through `fabraix`.
#![warn(missing_docs)]

use proc_macro::TokenStream;

/// Registers a Fabraix agent run each time the fn is called. See the `fabraix` crate.
#[proc_macro_attribute]
pub fn agent(_args: TokenStream, input: TokenStream) -> TokenStream {
    input
}
