//! Every check of `#[fabraix::agent]`, in one place; yields the final, valid settings.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Expr, ReturnType, Type};

use super::attr::AgentArgs;
use crate::args::Errors;
use crate::item::FnItem;
use crate::lookalike::agent_id_problem;

/// What to do when the run cannot be registered.
pub(crate) enum OnFailure {
    Continue,
    /// Return `Err(error.into())`; the span is the value's, for type errors.
    Error(Span),
    Panic,
}

/// Settings that passed every check: expansion cannot fail on them.
pub(crate) struct Agent {
    pub id: Expr,
    pub system_prompt: Expr,
    pub on_failure: OnFailure,
    pub client: Option<Expr>,
    /// The path of the `fabraix` facade, `::fabraix` unless `crate = "…"` says otherwise.
    pub krate: TokenStream,
}

pub(crate) fn check(args: AgentArgs, item: &FnItem) -> syn::Result<Agent> {
    let mut errors = Errors::default();
    let sig = &item.sig;

    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new(
            constness.span,
            "`#[fabraix::agent]` cannot go on a `const fn`: registering a run talks to the network at run time; remove `const`",
        ));
    }

    let usage = "write `#[fabraix::agent(id = \"support-bot\", system_prompt = \"You are ...\")]`";
    if args.id.is_none() {
        errors.push(syn::Error::new(
            Span::call_site(),
            format!("missing `id`: every agent run needs its agent's id; {usage}"),
        ));
    }
    if args.system_prompt.is_none() {
        errors.push(syn::Error::new(
            Span::call_site(),
            format!("missing `system_prompt`: Fabraix registers each run with its system prompt; {usage}"),
        ));
    }

    if let Some(id) = &args.id
        && let Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) = &id.value
        && let Some(problem) = agent_id_problem(&lit.value())
    {
        errors.push(syn::Error::new(lit.span(), problem));
    }

    let on_failure = match &args.on_failure {
        None => OnFailure::Continue,
        Some(setting) => match setting.value.value().as_str() {
            "continue" => OnFailure::Continue,
            "panic" => OnFailure::Panic,
            "error" => {
                if let Some(why) = cannot_return_error(&sig.output) {
                    errors.push(syn::Error::new(
                        setting.value.span(),
                        format!(
                            "`on_failure = \"error\"` needs the fn to return `Result<T, E>` with `E: From<fabraix::Error>`, but it returns {why}; return a `Result`, or use `on_failure = \"continue\"`"
                        ),
                    ));
                }
                OnFailure::Error(setting.value.span())
            }
            other => {
                errors.push(syn::Error::new(
                    setting.value.span(),
                    format!(
                        "unknown `on_failure` value `{other}`; expected one of \"continue\", \"error\", \"panic\""
                    ),
                ));
                OnFailure::Continue
            }
        },
    };

    let krate = match &args.krate {
        None => quote!(::fabraix),
        Some(setting) => match setting.value.parse::<syn::Path>() {
            Ok(path) => quote!(#path),
            Err(_) => {
                errors.push(syn::Error::new(
                    setting.value.span(),
                    "`crate` must be a path to the `fabraix` crate, e.g. `crate = \"my_sdk::fabraix\"`",
                ));
                quote!(::fabraix)
            }
        },
    };

    errors.finish()?;
    // Both are present: a missing one was reported above and returned.
    let (Some(id), Some(system_prompt)) = (args.id, args.system_prompt) else {
        return Err(syn::Error::new(Span::call_site(), usage));
    };
    Ok(Agent {
        id: id.value,
        system_prompt: system_prompt.value,
        on_failure,
        client: args.client.map(|c| c.value),
        krate,
    })
}

/// Why a return type can never carry `Err(fabraix::Error)`, when that is plain from the
/// signature; other types are left to the compiler's `ErrorReturn` bound.
fn cannot_return_error(output: &ReturnType) -> Option<&'static str> {
    match output {
        ReturnType::Default => Some("`()`"),
        ReturnType::Type(_, ty) => match &**ty {
            Type::Tuple(t) if t.elems.is_empty() => Some("`()`"),
            Type::Never(_) => Some("`!`"),
            Type::ImplTrait(_) => Some("an `impl Trait`"),
            _ => None,
        },
    }
}
