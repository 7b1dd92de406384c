//! Every check of `#[fabraix::agent]`, in one place; yields the final, valid settings.

use proc_macro2::{Span, TokenStream};
use syn::{Expr, GenericArgument, PathArguments, ReturnType, Stmt, Type, TypeParamBound};

use super::attr::AgentArgs;
use crate::args::{self, Errors};
use crate::codegen::never_a_result;
use crate::item::FnItem;
use crate::lookalike::agent_id_problem;

/// What to do when the run cannot be registered.
pub(crate) enum OnFailure {
    Continue,
    /// Return `Err(error.into())`; the span is the value's, for type errors.
    Error(Span),
    Panic,
}

/// Where the run is registered and made current, by the kind of fn.
pub(crate) enum Shape {
    /// `async fn`: registration is awaited on entry; the body runs in the run.
    Async,
    /// `fn f() -> impl Future<..>`: the body runs as written and makes a future; that future
    /// registers the run when first polled, then runs in it, as an `async fn`'s would.
    ReturnsFuture,
    /// `fn f() -> Pin<Box<dyn Future<..>>>` (or `BoxFuture` / `LocalBoxFuture`): as
    /// `ReturnsFuture`, the boxed future the body makes is boxed again inside the one that
    /// registers the run.
    ReturnsBoxedFuture,
    /// A body ending in `Box::pin(async { .. })` or `async { .. }.boxed()`, as `async-trait`
    /// writes them: the async block registers the run when first polled, then runs in it.
    BoxedAsyncTail,
    /// Any other fn: registration blocks on entry; the body runs in the run.
    Sync,
}

/// Settings that passed every check: expansion cannot fail on them.
pub(crate) struct Agent {
    pub shape: Shape,
    pub id: Expr,
    pub system_prompt: Expr,
    /// `conversation = …`: the call is a turn of this conversation, continuing its run.
    pub conversation: Option<Expr>,
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

    for attr in &item.attrs {
        let segments: Vec<String> = attr
            .path()
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        if segments == ["fabraix", "agent"] {
            errors.push(syn::Error::new_spanned(
                attr,
                "`#[fabraix::agent]` is given twice: each call would register two runs; keep one",
            ));
        }
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

    if let Some(conversation) = &args.conversation
        && let Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) = &conversation.value
        && lit.value().trim().is_empty()
    {
        errors.push(syn::Error::new(
            lit.span(),
            "an empty `conversation` names no conversation; name it from the fn's arguments, e.g. `conversation = &request.conversation_id`",
        ));
    }

    let shape = shape(item);
    let on_failure = match &args.on_failure {
        None => OnFailure::Continue,
        Some(setting) => match setting.value.value().as_str() {
            "continue" => OnFailure::Continue,
            "panic" => OnFailure::Panic,
            "error" => {
                if let Some(why) = cannot_return_error(&shape, &sig.output) {
                    errors.push(syn::Error::new(
                        setting.value.span(),
                        format!(
                            "`on_failure = \"error\"` needs the fn to return `Result<T, E>` with `E: From<fabraix::Error>`, but {why}; return a `Result`, or use `on_failure = \"continue\"`"
                        ),
                    ));
                }
                OnFailure::Error(setting.value.span())
            }
            other => {
                errors.push(syn::Error::new(
                    setting.value.span(),
                    format!(
                        "unknown `on_failure` value `{other:?}`; expected one of `\"continue\"`, `\"error\"`, `\"panic\"`"
                    ),
                ));
                OnFailure::Continue
            }
        },
    };

    let krate = args::crate_path(args.krate.as_ref(), &mut errors);

    errors.finish()?;
    // Both are present: a missing one was reported above and returned.
    let (Some(id), Some(system_prompt)) = (args.id, args.system_prompt) else {
        return Err(syn::Error::new(Span::call_site(), usage));
    };
    Ok(Agent {
        shape,
        id: id.value,
        system_prompt: system_prompt.value,
        conversation: args.conversation.map(|c| c.value),
        on_failure,
        client: args.client.map(|c| c.value),
        krate,
    })
}

/// The kind of fn, read from its signature and the end of its body.
fn shape(item: &FnItem) -> Shape {
    if item.sig.asyncness.is_some() {
        Shape::Async
    } else if let ReturnType::Type(_, ty) = &item.sig.output
        && impl_future_output(ty).is_some()
    {
        Shape::ReturnsFuture
    } else if let ReturnType::Type(_, ty) = &item.sig.output
        && is_boxed_future(ty)
    {
        Shape::ReturnsBoxedFuture
    } else if boxed_async_tail(&item.block).is_some() {
        Shape::BoxedAsyncTail
    } else {
        Shape::Sync
    }
}

/// The async block a body ends in, when it ends in `Box::pin(async { .. })` (any path ending
/// in `pin`) or `async { .. }.boxed()` / `.boxed_local()`.
pub(crate) fn boxed_async_tail(block: &syn::Block) -> Option<&syn::ExprAsync> {
    let Some(Stmt::Expr(tail, None)) = block.stmts.last() else {
        return None;
    };
    match tail {
        Expr::Call(call) if call.args.len() == 1 => {
            let Expr::Path(func) = &*call.func else {
                return None;
            };
            let last = func.path.segments.last()?;
            match &call.args[0] {
                Expr::Async(block) if last.ident == "pin" => Some(block),
                _ => None,
            }
        }
        Expr::MethodCall(call) if call.args.is_empty() => match &*call.receiver {
            Expr::Async(block) if call.method == "boxed" || call.method == "boxed_local" => {
                Some(block)
            }
            _ => None,
        },
        _ => None,
    }
}

/// `Pin<Box<dyn Future<..>>>`, or the `futures` aliases `BoxFuture` / `LocalBoxFuture`.
fn is_boxed_future(ty: &Type) -> bool {
    let Type::Path(path) = ty else {
        return false;
    };
    let Some(last) = path.path.segments.last() else {
        return false;
    };
    if last.ident == "BoxFuture" || last.ident == "LocalBoxFuture" {
        return true;
    }
    if last.ident != "Pin" {
        return false;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return false;
    };
    args.args.iter().any(|arg| match arg {
        GenericArgument::Type(Type::Path(boxed)) => boxed.path.segments.last().is_some_and(|b| {
            b.ident == "Box"
                && matches!(&b.arguments, PathArguments::AngleBracketed(inner)
                    if inner.args.iter().any(|a| matches!(a,
                        GenericArgument::Type(Type::TraitObject(object))
                            if object.bounds.iter().any(|bound| matches!(bound,
                                TypeParamBound::Trait(t)
                                    if t.path.segments.last().is_some_and(|s| s.ident == "Future"))))))
        }),
        _ => false,
    })
}

/// For `impl Future<Output = T> + ..`: `Some(Some(T))`, or `Some(None)` when the bound does
/// not name its output.
fn impl_future_output(ty: &Type) -> Option<Option<&Type>> {
    let Type::ImplTrait(bounds) = ty else {
        return None;
    };
    bounds.bounds.iter().find_map(|bound| match bound {
        TypeParamBound::Trait(bound) => {
            let last = bound.path.segments.last()?;
            (last.ident == "Future").then(|| output_binding(&last.arguments))
        }
        _ => None,
    })
}

/// The future's output in `Pin<Box<dyn Future<Output = T> + ..>>` and the like: the first
/// `Output = T` anywhere in the type.
fn nested_future_output(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Path(path) => {
            path.path
                .segments
                .iter()
                .find_map(|segment| match &segment.arguments {
                    PathArguments::AngleBracketed(args) => {
                        args.args.iter().find_map(|arg| match arg {
                            GenericArgument::Type(ty) => nested_future_output(ty),
                            _ => None,
                        })
                    }
                    _ => None,
                })
        }
        Type::TraitObject(object) => object.bounds.iter().find_map(|bound| match bound {
            TypeParamBound::Trait(bound) => output_binding(&bound.path.segments.last()?.arguments),
            _ => None,
        }),
        Type::Paren(inner) => nested_future_output(&inner.elem),
        Type::Group(inner) => nested_future_output(&inner.elem),
        _ => None,
    }
}

fn output_binding(arguments: &PathArguments) -> Option<&Type> {
    let PathArguments::AngleBracketed(args) = arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(&assoc.ty),
        _ => None,
    })
}

/// Why the fn can never give back `Err(fabraix::Error)`, when that is plain from the
/// signature; other types are left to the compiler's `ErrorReturn` bound.
fn cannot_return_error(shape: &Shape, output: &ReturnType) -> Option<String> {
    let ReturnType::Type(_, ty) = output else {
        return Some("it returns `()`".into());
    };
    let (what, ty) = match shape {
        Shape::ReturnsFuture => ("its future's output is", impl_future_output(ty).flatten()?),
        Shape::BoxedAsyncTail | Shape::ReturnsBoxedFuture => {
            ("its future's output is", nested_future_output(ty)?)
        }
        Shape::Async | Shape::Sync => ("it returns", &**ty),
    };
    never_a_result(ty).map(|shown| format!("{what} {shown}"))
}
