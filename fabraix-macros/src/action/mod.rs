//! `#[fabraix::action]`: check each call with Fabraix before the body runs.

mod attr;
mod expand;
mod valid;

use proc_macro2::TokenStream;

use crate::item;

/// Parse → validate → expand; on any error, the errors and the item as written.
pub(crate) fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    match action(args, input.clone()) {
        Ok(output) => output,
        Err(error) => {
            let mut output = error.to_compile_error();
            output.extend(input);
            output
        }
    }
}

fn action(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let parsed_args = attr::parse(args);
    let item = item::parse(input, "action");
    let (args, item) = match (parsed_args, item) {
        (Ok(args), Ok(item)) => (args, item),
        (Err(mut a), Err(b)) => {
            a.combine(b);
            return Err(a);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let action = valid::check(args, &item)?;
    Ok(expand::expand(&action, &item))
}
