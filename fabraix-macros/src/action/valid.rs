//! Every check of `#[fabraix::action]`, in one place; yields the call's description.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Expr, FnArg, Ident, Lit, Meta, Pat, ReturnType};

use super::attr::ActionArgs;
use crate::args::{self, Errors};
use crate::codegen::never_a_result;
use crate::item::FnItem;

/// One argument sent to `/check`.
pub(crate) struct Param {
    /// The name on the wire (raw identifiers unprefixed).
    pub name: String,
    /// The binding to read it from, as the user wrote it.
    pub ident: Ident,
}

/// A valid action fn: what expansion needs, and nothing that can fail.
pub(crate) struct ActionFn {
    pub name: String,
    pub description: String,
    pub params: Vec<Param>,
    pub krate: TokenStream,
}

pub(crate) fn check(args: ActionArgs, item: &FnItem) -> syn::Result<ActionFn> {
    let mut errors = Errors::default();
    let sig = &item.sig;

    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new(
            constness.span,
            "`#[fabraix::action]` cannot go on a `const fn`: the check talks to the network at run time; remove `const`",
        ));
    }

    if let Some(why) = cannot_return_error(&sig.output) {
        let span = match &sig.output {
            ReturnType::Default => sig.paren_token.span.close(),
            ReturnType::Type(_, ty) => ty.span(),
        };
        errors.push(syn::Error::new(
            span,
            format!(
                "`#[fabraix::action]` needs the fn to return `Result<T, E>` with `E: From<fabraix::Error>`, so that a blocked call can return `Err`; this fn returns {why}"
            ),
        ));
    }

    let name = match &args.name {
        Some(setting) if setting.value.value().trim().is_empty() => {
            errors.push(syn::Error::new(
                setting.value.span(),
                "`name` is empty; name the action, e.g. `name = \"transfer_funds\"`",
            ));
            String::new()
        }
        Some(setting) => setting.value.value(),
        None => sig.ident.unraw().to_string(),
    };
    let description = match &args.description {
        Some(setting) => setting.value.value(),
        None => doc_comment(&item.attrs),
    };

    // Every typed argument, by name; receivers are never sent.
    let mut named: Vec<(String, &Ident)> = Vec::new();
    let mut unnamed: Vec<&Pat> = Vec::new();
    for input in &sig.inputs {
        let FnArg::Typed(typed) = input else { continue };
        match &*typed.pat {
            Pat::Ident(pat) if pat.subpat.is_none() => {
                named.push((pat.ident.unraw().to_string(), &pat.ident));
            }
            other => unnamed.push(other),
        }
    }

    let mut skipped: Vec<String> = Vec::new();
    if let Some(setting) = &args.skip {
        for ident in &setting.value {
            let wanted = ident.unraw().to_string();
            if wanted == "self" {
                errors.push(syn::Error::new(
                    ident.span(),
                    "the receiver is never sent; take `self` out of `skip(..)`",
                ));
            } else if skipped.contains(&wanted) {
                errors.push(syn::Error::new(
                    ident.span(),
                    format!("`{wanted}` is skipped twice; list it once"),
                ));
            } else if !named.iter().any(|(name, _)| *name == wanted) {
                let known = named
                    .iter()
                    .map(|(name, _)| format!("`{name}`"))
                    .collect::<Vec<_>>();
                let known = if known.is_empty() {
                    "it takes none".to_owned()
                } else {
                    format!("its arguments are {}", known.join(", "))
                };
                errors.push(syn::Error::new(
                    ident.span(),
                    format!("`skip({wanted})`: this fn has no argument `{wanted}`; {known}"),
                ));
            } else {
                skipped.push(wanted);
            }
        }
    }

    for pat in unnamed {
        errors.push(syn::Error::new(
            pat.span(),
            "`#[fabraix::action]` sends each argument under its name; bind this one to a name (e.g. `point: Point`) and destructure it in the body",
        ));
    }

    let krate = args::crate_path(args.krate.as_ref(), &mut errors);

    errors.finish()?;
    let params = named
        .into_iter()
        .filter(|(name, _)| !skipped.contains(name))
        .map(|(name, ident)| Param {
            name,
            ident: ident.clone(),
        })
        .collect();
    Ok(ActionFn {
        name,
        description,
        params,
        krate,
    })
}

/// The fn's doc comment, one line per `///` line, without the leading space.
fn doc_comment(attrs: &[syn::Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .flat_map(|doc| {
            // `///` alone is `#[doc = ""]`: a blank line, which `lines()` would drop.
            let lines: Vec<String> = doc
                .lines()
                .map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end().to_owned())
                .collect();
            if lines.is_empty() {
                vec![String::new()]
            } else {
                lines
            }
        })
        .collect();
    lines.join("\n").trim().to_owned()
}

/// Why a return type can never carry `Err(fabraix::Error)`, when the signature shows it.
fn cannot_return_error(output: &ReturnType) -> Option<&'static str> {
    match output {
        ReturnType::Default => Some("`()`"),
        ReturnType::Type(_, ty) => never_a_result(ty),
    }
}
