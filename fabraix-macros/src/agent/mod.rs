//! `#[fabraix::agent]`: register a run on entry, run the body inside it.

mod attr;
mod expand;
mod valid;

use proc_macro2::TokenStream;

use crate::item;

/// Parse → validate → expand; on any error, the errors and the item as written.
pub(crate) fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    match agent(args, input.clone()) {
        Ok(output) => output,
        Err(error) => {
            let mut output = error.to_compile_error();
            output.extend(input);
            output
        }
    }
}

fn agent(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let parsed_args = attr::parse(args);
    let item = item::parse(input, "agent");
    let (args, item) = match (parsed_args, item) {
        (Ok(args), Ok(item)) => (args, item),
        (Err(mut a), Err(b)) => {
            a.combine(b);
            return Err(a);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let agent = valid::check(args, &item)?;
    Ok(expand::expand(&agent, &item))
}
