//! Code generation for `#[fabraix::action]`. Cannot fail: `valid.rs` has checked everything.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ReturnType;
use syn::spanned::Spanned;

use super::valid::ActionFn;
use crate::codegen::{local, respan, return_type_hint};
use crate::item::FnItem;

pub(crate) fn expand(action: &ActionFn, item: &FnItem) -> TokenStream {
    let krate = &action.krate;
    let call = local("__fabraix_call");
    let result = local("__fabraix_result");
    let error = local("__fabraix_error");
    let describe = describe(action);
    let refuse = refuse(krate, &item.sig.output, &error);
    let hint = return_type_hint(krate, &item.sig.output);
    let block = &item.block;
    // The two shapes differ only in how the check is awaited and how the body is run.
    let (check, run) = if item.sig.asyncness.is_some() {
        // Input:  async fn f(args) -> R { body }
        // Output: async fn f(args) -> R {
        //             let call = <describe args>;          // Result<ActionCall, Error>
        //             let call = match call { Ok(c) => match c.check().await { Ok(a) => a,
        //                          Err(e) => return refuse(e) }, Err(e) => return refuse(e) };
        //             let result = async move { <type hint>; body }.await;
        //             call.finish(&result);                // the `tool` event
        //             result
        //         }
        (
            quote!(#krate::__private::ActionCall::check(#call).await),
            quote!(async move { #hint #block }.await),
        )
    } else {
        // Input:  fn f(args) -> R { body }
        // Output: the same, with `c.check_blocking()`, and the body run as
        //         `call_once(move || { <type hint>; body })` (`return` stays in the body;
        //         as `FnOnce`, it may give back borrows of what it captured, `&mut self`
        //         included, as the fn could).
        (
            quote!(#krate::__private::ActionCall::check_blocking(#call)),
            quote!(#krate::__private::call_once(move || { #hint #block })),
        )
    };
    let body = quote! {
        let #call = #describe;
        let #call = match #call {
            #krate::__private::Ok(#call) => match #check {
                #krate::__private::Ok(#call) => #call,
                #krate::__private::Err(#error) => return #refuse,
            },
            #krate::__private::Err(#error) => return #refuse,
        };
        let #result = #run;
        #krate::__private::ApprovedCall::finish(#call, &#result);
        #result
    };
    item.with_body(body)
}

// Input:  fn transfer_funds(to: String, amount_cents: u64)   /// Move money.
// Output: { let mut args = ActionArgs::new(); args.arg("to", &to); args.arg("amount_cents",
//           &amount_cents); args.finish("transfer_funds", "Move money.") }
fn describe(action: &ActionFn) -> TokenStream {
    let krate = &action.krate;
    let args = local("__fabraix_args");
    let adds = action.params.iter().map(|param| {
        let name = &param.name;
        let ident = &param.ident;
        // Spanned at the argument, so a type that cannot be described is reported there.
        let reference = quote_spanned!(ident.span()=> &#ident);
        quote! { #args.arg(#name, #reference); }
    });
    let name = &action.name;
    let description = &action.description;
    quote! {
        {
            let mut #args = #krate::__private::ActionArgs::new();
            #(#adds)*
            #args.finish(#name, #description)
        }
    }
}

// Input:  -> R
// Output: refuse::<R>(error), spanned at `R` so a return type that is not a `Result` is
//         reported on it.
fn refuse(krate: &TokenStream, output: &ReturnType, error: &proc_macro2::Ident) -> TokenStream {
    let span = match output {
        ReturnType::Default => proc_macro2::Span::call_site(),
        ReturnType::Type(_, ty) => ty.span(),
    };
    let refuse = respan(&quote!(#krate::__private::refuse), span);
    quote_spanned! {span=> #refuse(#error) }
}
