//! The options of `#[fabraix::action(...)]`, each kept with the tokens the user wrote.

use proc_macro2::TokenStream;
use syn::punctuated::Punctuated;
use syn::{Ident, LitStr, Token};

use crate::args::{self, ArgValue, Errors, Setting, expect_str, set_once};

pub(crate) const KEYS: &[&str] = &["name", "description", "skip", "crate"];

/// What the attribute said, before any check against the fn.
#[derive(Default)]
pub(crate) struct ActionArgs {
    pub name: Option<Setting<LitStr>>,
    pub description: Option<Setting<LitStr>>,
    pub skip: Option<Setting<Punctuated<Ident, Token![,]>>>,
    pub krate: Option<Setting<LitStr>>,
}

pub(crate) fn parse(tokens: TokenStream) -> syn::Result<ActionArgs> {
    let mut out = ActionArgs::default();
    let mut errors = Errors::default();
    for arg in args::parse(tokens)? {
        let key = arg.key;
        let stored = match key.to_string().as_str() {
            "name" => expect_str(&key, arg.value, "\"transfer_funds\"")
                .map(|v| set_once(&mut out.name, &key, v, &mut errors)),
            "description" => expect_str(&key, arg.value, "\"Move money between accounts.\"")
                .map(|v| set_once(&mut out.description, &key, v, &mut errors)),
            "skip" => match arg.value {
                ArgValue::List(list) => {
                    set_once(&mut out.skip, &key, list, &mut errors);
                    Ok(())
                }
                ArgValue::Expr(expr) => Err(syn::Error::new_spanned(
                    expr,
                    "`skip` takes a list of argument names, e.g. `skip(client, db)`",
                )),
                ArgValue::Parens(tokens) => Err(syn::Error::new_spanned(
                    tokens,
                    "`skip` takes a list of argument names, e.g. `skip(client, db)`",
                )),
            },
            "crate" => expect_str(&key, arg.value, "\"my_crate::fabraix\"")
                .map(|v| set_once(&mut out.krate, &key, v, &mut errors)),
            _ => Err(args::unknown(&key, KEYS)),
        };
        if let Err(e) = stored {
            errors.push(e);
        }
    }
    errors.finish()?;
    Ok(out)
}
