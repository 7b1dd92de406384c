//! The item an attribute sits on: a fn with a body, or an error saying what it is instead.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Attribute, Block, ImplItemFn, Item, ItemFn, Signature, TraitItemFn, Visibility};

/// A fn with a body: a free fn, a method in an impl, or a trait method with a default body.
pub(crate) struct FnItem {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    /// `default` on a specializing impl's method, kept as written.
    pub defaultness: Option<syn::Token![default]>,
    pub sig: Signature,
    pub block: Block,
}

impl FnItem {
    /// Writes the fn back with another body, between the braces the user wrote, so the
    /// fn's span (and lints reported on it) stays on the user's code.
    pub fn with_body(&self, body: TokenStream) -> TokenStream {
        let FnItem {
            attrs,
            vis,
            defaultness,
            sig,
            block,
        } = self;
        let mut braces = proc_macro2::Group::new(proc_macro2::Delimiter::Brace, body);
        braces.set_span(block.brace_token.span.join());
        quote::quote! { #(#attrs)* #vis #defaultness #sig #braces }
    }
}

/// Reads the item, or says (at its first token) why the attribute cannot go there.
pub(crate) fn parse(input: TokenStream, attribute: &str) -> syn::Result<FnItem> {
    if let Ok(f) = syn::parse2::<ItemFn>(input.clone()) {
        let defaultness = f.modifiers.defaultness;
        return Ok(FnItem {
            attrs: f.attrs,
            vis: f.vis,
            defaultness,
            sig: f.sig,
            block: *f.block,
        });
    }
    if let Ok(f) = syn::parse2::<ImplItemFn>(input.clone()) {
        return Ok(FnItem {
            attrs: f.attrs,
            vis: f.vis,
            defaultness: f.modifiers.defaultness,
            sig: f.sig,
            block: f.block,
        });
    }
    if let Ok(f) = syn::parse2::<TraitItemFn>(input.clone()) {
        return match f.default {
            Some(block) => Ok(FnItem {
                attrs: f.attrs,
                vis: Visibility::Inherited,
                defaultness: f.modifiers.defaultness,
                sig: f.sig,
                block,
            }),
            None => Err(syn::Error::new(
                f.semi_token.map_or_else(|| f.sig.span(), |s| s.span),
                format!(
                    "`#[fabraix::{attribute}]` needs a fn with a body; put it on the method in each `impl` instead of the trait's declaration"
                ),
            )),
        };
    }
    match syn::parse2::<Item>(input.clone()) {
        Ok(item) => {
            let what = describe(&item);
            Err(syn::Error::new(
                first_token_span(&item),
                format!("`#[fabraix::{attribute}]` goes on a fn, not on {what}"),
            ))
        }
        Err(e) => Err(e),
    }
}

fn describe(item: &Item) -> &'static str {
    match item {
        Item::Struct(_) => "a struct",
        Item::Enum(_) => "an enum",
        Item::Union(_) => "a union",
        Item::Trait(_) => "a trait",
        Item::Impl(_) => "an impl block; put it on a method inside",
        Item::Mod(_) => "a module",
        Item::Const(_) => "a const",
        Item::Static(_) => "a static",
        Item::Type(_) => "a type alias",
        Item::Use(_) => "a use declaration",
        Item::ForeignMod(_) => "an extern block",
        Item::Macro(_) => "a macro invocation",
        _ => "this item",
    }
}

/// The span of the keyword that says what the item is (`struct`, `enum`, ...).
fn first_token_span(item: &Item) -> proc_macro2::Span {
    match item {
        Item::Struct(i) => i.struct_token.span,
        Item::Enum(i) => i.enum_token.span,
        Item::Union(i) => i.union_token.span,
        Item::Trait(i) => i.trait_token.span,
        Item::Impl(i) => i.impl_token.span,
        Item::Mod(i) => i.mod_token.span,
        Item::Const(i) => i.const_token.span,
        Item::Static(i) => i.static_token.span,
        Item::Type(i) => i.type_token.span,
        other => other
            .to_token_stream()
            .into_iter()
            .next()
            .map_or_else(proc_macro2::Span::call_site, |t| t.span()),
    }
}
