//! Code generation for `#[fabraix::agent]`. Cannot fail: `valid.rs` has checked everything.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::{ReturnType, Type};

use super::valid::{Agent, OnFailure};
use crate::item::FnItem;
use crate::spawn_lint;

pub(crate) fn expand(agent: &Agent, item: &FnItem) -> TokenStream {
    let body = if item.sig.asyncness.is_some() {
        async_body(agent, item)
    } else {
        sync_body(agent, item)
    };
    item.with_body(body)
}

// Input:  async fn f(args) -> R { body }
// Output: async fn f(args) -> R {
//             let run = AgentRun::start(client, agent_id(id), system_prompt(prompt)).await;
//             let run = <on_failure>(run);
//             AgentRun::scope(run, async move { <type hint for R>; body }).await
//         }
fn async_body(agent: &Agent, item: &FnItem) -> TokenStream {
    let krate = &agent.krate;
    let run = local("__fabraix_run");
    let start = start_call(agent, quote!(start), quote!(.await));
    let on_failure = on_failure(agent, &run);
    let hint = return_type_hint(krate, &item.sig.output);
    let block = &item.block;
    let lints = spawn_lint::markers(&quote!(#block), krate);
    quote! {
        let #run = #start;
        let #run = #on_failure;
        #krate::__private::AgentRun::scope(#run, async move {
            #hint
            #lints
            #block
        })
        .await
    }
}

// Input:  fn f(args) -> R { body }
// Output: fn f(args) -> R {
//             let run = AgentRun::start_blocking(client, agent_id(id), system_prompt(prompt));
//             let run = <on_failure>(run);
//             let guard = AgentRun::enter(run);   // current until the fn returns or unwinds
//             body
//         }
fn sync_body(agent: &Agent, item: &FnItem) -> TokenStream {
    let krate = &agent.krate;
    let run = local("__fabraix_run");
    let guard = local("__fabraix_guard");
    let start = start_call(agent, quote!(start_blocking), TokenStream::new());
    let on_failure = on_failure(agent, &run);
    let block = &item.block;
    let lints = spawn_lint::markers(&quote!(#block), krate);
    quote! {
        let #run = #start;
        let #run = #on_failure;
        let #guard = #krate::__private::AgentRun::enter(#run);
        #lints
        #block
    }
}

// Input:  id = ID, system_prompt = PROMPT, client = CLIENT
// Output: AgentRun::start(Some::<&Client>(CLIENT) | None, agent_id(ID), system_prompt(PROMPT))
fn start_call(agent: &Agent, function: TokenStream, suffix: TokenStream) -> TokenStream {
    let krate = &agent.krate;
    let client = match &agent.client {
        Some(client) => quote! {
            #krate::__private::Some::<&#krate::__private::Client>(#client)
        },
        None => quote!(#krate::__private::None),
    };
    let id = &agent.id;
    let prompt = &agent.system_prompt;
    quote! {
        #krate::__private::AgentRun::#function(
            #client,
            #krate::__private::agent_id(#id),
            #krate::__private::system_prompt(#prompt),
        ) #suffix
    }
}

// Input:  on_failure = "continue" | "panic" | "error"
// Output: AgentRun::or_continue(run) | AgentRun::or_panic(run)
//         | match run { Ok(run) => run, Err(e) => return ErrorReturn::from_error(e) }
fn on_failure(agent: &Agent, run: &Ident) -> TokenStream {
    let krate = &agent.krate;
    match agent.on_failure {
        OnFailure::Continue => quote!(#krate::__private::AgentRun::or_continue(#run)),
        OnFailure::Panic => quote!(#krate::__private::AgentRun::or_panic(#run)),
        OnFailure::Error(span) => {
            let error = local("__fabraix_error");
            // Spanned at the `"error"` value, so a return type that cannot carry the error
            // is reported there.
            let from_error = quote_spanned! {span=>
                #krate::__private::ErrorReturn::from_error(#error)
            };
            quote! {
                match #run {
                    #krate::__private::Ok(#run) => #run,
                    #krate::__private::Err(#error) => return #from_error,
                }
            }
        }
    }
}

// Input:  -> R
// Output: if let Some(ret) = None::<R> { return ret; }
// Fixes the async block's output type up front, as a fn signature would, so `?` and
// method calls in the body infer exactly as they did before the rewrite. Skipped when `R`
// contains `impl Trait`, which cannot be named here.
fn return_type_hint(krate: &TokenStream, output: &ReturnType) -> TokenStream {
    let ty = match output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) if contains_impl_trait(ty) => return TokenStream::new(),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let ret = local("__fabraix_ret");
    let span = match output {
        ReturnType::Default => Span::call_site(),
        ReturnType::Type(_, ty) => syn::spanned::Spanned::span(&**ty),
    };
    quote_spanned! {span=>
        #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::needless_return)]
        if let #krate::__private::Some(#ret) = #krate::__private::None::<#ty> {
            return #ret;
        }
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    let mut found = false;
    scan_type(ty, &mut found);
    found
}

fn scan_type(ty: &Type, found: &mut bool) {
    // Token-level: any `impl` keyword inside the type.
    let tokens = quote!(#ty);
    fn walk(tokens: TokenStream, found: &mut bool) {
        for token in tokens {
            match token {
                proc_macro2::TokenTree::Ident(ident) if ident == "impl" => *found = true,
                proc_macro2::TokenTree::Group(group) => walk(group.stream(), found),
                _ => {}
            }
        }
    }
    walk(tokens, found);
}

/// A local of the expansion, hygienic so it can never clash with the user's names.
fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}
