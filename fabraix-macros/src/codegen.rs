//! Pieces of generated code both attributes use.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ReturnType, Type};

// Input:  -> R
// Output: if let Some(ret) = None::<R> { return ret; }
// Fixes the output type of the async block (or closure) the body moves into, as the fn
// signature did, so `?` and method calls in the body infer exactly as before the rewrite.
// Skipped when `R` contains `impl Trait`, which cannot be named there.
pub(crate) fn return_type_hint(krate: &TokenStream, output: &ReturnType) -> TokenStream {
    let (ty, span) = match output {
        ReturnType::Default => (quote!(()), Span::call_site()),
        ReturnType::Type(_, ty) if contains_impl_trait(ty) => return TokenStream::new(),
        ReturnType::Type(_, ty) => (quote!(#ty), ty.span()),
    };
    // Hygienic, but located at `R`: the compiler's "return type inferred to be `R` here"
    // then points at the signature rather than at the attribute.
    let ret = Ident::new("__fabraix_ret", Span::mixed_site().located_at(span));
    quote_spanned! {span=>
        #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::needless_return)]
        if let #krate::__private::Some(#ret) = #krate::__private::None::<#ty> {
            return #ret;
        }
    }
}

/// Whether an `impl` keyword appears anywhere in the type.
pub(crate) fn contains_impl_trait(ty: &Type) -> bool {
    fn walk(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => ident == "impl",
            proc_macro2::TokenTree::Group(group) => walk(group.stream()),
            _ => false,
        })
    }
    walk(quote!(#ty))
}

/// A local of the expansion, hygienic so it can never clash with the user's names.
pub(crate) fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// The tokens with every span set to `span`, so that an error about generated code (a
/// trait bound on a generated call, say) is reported on the user's token at `span`.
pub(crate) fn respan(tokens: &TokenStream, span: Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(&group.stream(), span));
                inner.set_span(span);
                token = proc_macro2::TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// How to name a return type that can never carry `Err(fabraix::Error)`, when the type
/// itself shows it; any other type is left to the compiler's trait bound.
pub(crate) fn never_a_result(ty: &Type) -> Option<&'static str> {
    match ty {
        Type::Tuple(t) if t.elems.is_empty() => Some("`()`"),
        Type::Never(_) => Some("`!`"),
        Type::ImplTrait(_) => Some("an `impl Trait`"),
        _ => None,
    }
}
