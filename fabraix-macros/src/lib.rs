//! Procedural macros of the `fabraix` SDK: `#[fabraix::agent]` and `#[fabraix::action]`.
//!
//! Use them through the `fabraix` crate, which documents them. Each macro runs the same
//! pipeline: tokens → typed arguments (`attr.rs`) → every semantic check (`valid.rs`) →
//! code generation that cannot fail (`expand.rs`). On error the original item is emitted
//! with the error, so one mistake gives one message.
#![warn(missing_docs)]

mod action;
mod agent;
mod args;
mod codegen;
mod item;
mod lookalike;
mod spawn_lint;

use proc_macro::TokenStream;

/// Registers a Fabraix agent run each time the fn is called, and makes its trace current
/// for everything the fn calls. Documented in the `fabraix` crate.
#[proc_macro_attribute]
pub fn agent(args: TokenStream, input: TokenStream) -> TokenStream {
    agent::expand(args.into(), input.into()).into()
}

/// Checks each call of the fn with Fabraix before its body runs: the body runs only if the
/// verdict approves the call. Documented in the `fabraix` crate.
#[proc_macro_attribute]
pub fn action(args: TokenStream, input: TokenStream) -> TokenStream {
    action::expand(args.into(), input.into()).into()
}
