//! The argument syntax the attributes share: `key = value, ...`, each key at most once.

use proc_macro2::TokenStream;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Token};

/// One `key = value` (or a bare `key(...)` list, for options that take one).
pub(crate) struct Arg {
    pub key: Ident,
    pub value: ArgValue,
}

pub(crate) enum ArgValue {
    /// `key = expr`
    Expr(Expr),
    /// `key(a, b)`
    List(Punctuated<Ident, Token![,]>),
    /// `key(...)` holding something other than names, e.g. `id("support-bot")`: an error
    /// for every key, worded by the key's parser.
    Parens(TokenStream),
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if !(lookahead.peek(Ident) || input.peek(Token![crate])) {
            let found: TokenStream = input.fork().parse::<proc_macro2::TokenTree>()?.into();
            return Err(syn::Error::new_spanned(
                found,
                "expected `key = value`; positional arguments are not supported, e.g. write `id = \"support-bot\"`",
            ));
        }
        let key = if input.peek(Token![crate]) {
            let token: Token![crate] = input.parse()?;
            Ident::new("crate", token.span)
        } else {
            input.parse::<Ident>()?
        };
        if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            if input.is_empty() || input.peek(Token![,]) {
                return Err(syn::Error::new(
                    key.span(),
                    format!("`{key}` needs a value after `=`"),
                ));
            }
            let value: Expr = input.parse()?;
            Ok(Arg {
                key,
                value: ArgValue::Expr(value),
            })
        } else if input.peek(syn::token::Paren) {
            let content;
            syn::parenthesized!(content in input);
            let tokens: TokenStream = content.parse()?;
            let value = match Punctuated::parse_terminated.parse2(tokens.clone()) {
                Ok(list) => ArgValue::List(list),
                Err(_) => ArgValue::Parens(tokens),
            };
            Ok(Arg { key, value })
        } else {
            Err(syn::Error::new(
                key.span(),
                format!("expected `=` after `{key}`, as in `{key} = ...`"),
            ))
        }
    }
}

/// Parses the attribute's argument list.
pub(crate) fn parse(args: TokenStream) -> syn::Result<Vec<Arg>> {
    let parser = Punctuated::<Arg, Token![,]>::parse_terminated;
    Ok(parser.parse2(args)?.into_iter().collect())
}

/// A value given once.
pub(crate) struct Setting<T> {
    pub value: T,
}

/// Stores `value` in `slot`, or reports the key as a duplicate. The one duplicate check
/// for every key of every attribute.
pub(crate) fn set_once<T>(
    slot: &mut Option<Setting<T>>,
    key: &Ident,
    value: T,
    errors: &mut Errors,
) {
    if slot.is_some() {
        errors.push(syn::Error::new(
            key.span(),
            format!("duplicate argument `{key}`; give it once"),
        ));
    } else {
        *slot = Some(Setting { value });
    }
}

/// The errors of one expansion, reported together.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// A value that must be a string literal.
pub(crate) fn expect_str(key: &Ident, value: ArgValue, example: &str) -> syn::Result<LitStr> {
    match value {
        ArgValue::Expr(Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        })) => Ok(lit),
        ArgValue::Expr(other) => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` takes a string literal, e.g. `{key} = {example}`"),
        )),
        ArgValue::List(_) | ArgValue::Parens(_) => Err(takes_a_value(key, &value, example)),
    }
}

/// A value that must be an expression (`key = expr`, not `key(...)`).
pub(crate) fn expect_expr(key: &Ident, value: ArgValue, example: &str) -> syn::Result<Expr> {
    match value {
        ArgValue::Expr(expr) => Ok(expr),
        ArgValue::List(_) | ArgValue::Parens(_) => Err(takes_a_value(key, &value, example)),
    }
}

/// `key(...)` where `key = value` was meant: suggests the value written in the parentheses.
fn takes_a_value(key: &Ident, value: &ArgValue, example: &str) -> syn::Error {
    let content = match value {
        ArgValue::List(list) => quote::quote!(#list),
        ArgValue::Parens(tokens) => tokens.clone(),
        ArgValue::Expr(expr) => quote::quote!(#expr),
    };
    let written = match syn::parse2::<Expr>(content) {
        Ok(expr) => quote::quote!(#expr).to_string(),
        Err(_) => example.to_owned(),
    };
    syn::Error::new(
        key.span(),
        format!("`{key}` takes a value after `=`, not a list; write `{key} = {written}`"),
    )
}

/// `unknown argument `x`; expected one of `a`, `b`` with a suggestion when one is close.
pub(crate) fn unknown(key: &Ident, known: &[&str]) -> syn::Error {
    let name = key.to_string();
    let list = known
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let suggestion = known
        .iter()
        .map(|k| (edit_distance(&name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    syn::Error::new(
        key.span(),
        format!("unknown argument `{name}`{suggestion}; expected one of {list}"),
    )
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// The path of the `fabraix` facade: `::fabraix`, or what `crate = "…"` says.
pub(crate) fn crate_path(krate: Option<&Setting<LitStr>>, errors: &mut Errors) -> TokenStream {
    let Some(setting) = krate else {
        return quote::quote!(::fabraix);
    };
    match setting.value.parse::<syn::Path>() {
        Ok(path) => quote::quote!(#path),
        Err(_) => {
            errors.push(syn::Error::new(
                setting.value.span(),
                "`crate` must be a path to the `fabraix` crate, e.g. `crate = \"my_sdk::fabraix\"`",
            ));
            quote::quote!(::fabraix)
        }
    }
}
