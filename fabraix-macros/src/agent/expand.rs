//! Code generation for `#[fabraix::agent]`. Cannot fail: `valid.rs` has checked everything.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Lifetime, Stmt};

use super::valid::{Agent, OnFailure, Shape, boxed_async_tail};
use crate::codegen::{local, respan, return_type_hint};
use crate::item::FnItem;
use crate::spawn_lint;

pub(crate) fn expand(agent: &Agent, item: &FnItem) -> TokenStream {
    let body = match agent.shape {
        Shape::Async => async_body(agent, item),
        Shape::ReturnsFuture => future_body(agent, item, false),
        Shape::ReturnsBoxedFuture => future_body(agent, item, true),
        Shape::BoxedAsyncTail => boxed_tail_body(agent, item),
        Shape::Sync => sync_body(agent, item),
    };
    item.with_body(body)
}

// Input:  async fn f(args) -> R { body }
// Output: async fn f(args) -> R {
//             let run = AgentRun::start(client, agent_id(id), system_prompt(prompt)).await;
//                    // with `conversation`: start_turn(.., conversation(CONVERSATION))
//             let run = <on_failure>(run);
//             AgentRun::scope(run, async move { <type hint for R>; body }).await
//         }
fn async_body(agent: &Agent, item: &FnItem) -> TokenStream {
    let krate = &agent.krate;
    let run = local("__fabraix_run");
    let start = start_call(agent, false);
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
//                    // with `conversation`: start_turn_blocking(.., conversation(CONVERSATION))
//             let run = <on_failure>(run);
//             let guard = AgentRun::enter(run);   // current until the fn returns or unwinds
//             body
//         }
fn sync_body(agent: &Agent, item: &FnItem) -> TokenStream {
    let krate = &agent.krate;
    let run = local("__fabraix_run");
    let guard = local("__fabraix_guard");
    let start = start_call(agent, true);
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

// Input:  fn f(args) -> impl Future<Output = T> { body }
// Output: fn f(args) -> impl Future<Output = T> {
//             let (client, id, prompt) = (CLIENT.cloned(), agent_id(ID), system_prompt(PROMPT));
//             let body = 'body: { body };   // as written; each `return x` is `break 'body x`
//             <registration future>(body)  // registers when first polled, then runs `body` in the run
//         }
// The body runs before any registration, as written, and only makes the future: the run
// covers that future, as it covers an `async fn`'s body. For a boxed future (`Pin<Box<dyn
// Future>>`, `BoxFuture`), the registering future is boxed in turn: `Box::pin(<..>(body))`.
fn future_body(agent: &Agent, item: &FnItem, boxed: bool) -> TokenStream {
    let krate = &agent.krate;
    let body = local("__fabraix_body");
    let label = Lifetime {
        apostrophe: Span::mixed_site(),
        ident: local("__fabraix_body"),
    };
    let mut block = item.block.clone();
    let mut returns = Returns {
        label: &label,
        found: false,
    };
    returns.visit_block_mut(&mut block);
    let labelled = if returns.found {
        quote!(#label: #block)
    } else {
        quote!(#block)
    };
    let inputs = owned_inputs(agent);
    let lints = spawn_lint::markers(&quote!(#block), krate);
    let registering = registering_future(agent, &body);
    let (registering, annotation) = match (&item.sig.output, boxed) {
        // The return type is nameable: every `return` in the body coerces to it, as it did
        // before (a `Box::pin(async ..)` to `Pin<Box<dyn Future ..>>`).
        (syn::ReturnType::Type(_, ty), true) => (
            quote!(#krate::__private::Box::pin(#registering)),
            quote!(: #ty),
        ),
        _ => (registering, TokenStream::new()),
    };
    quote! {
        #inputs
        #lints
        let #body #annotation = #labelled;
        #registering
    }
}

// Input:  fn f(args) -> Pin<Box<dyn Future<..>>> { stmts; Box::pin(async move { body }) }
// Output: fn f(args) -> Pin<Box<dyn Future<..>>> {
//             let (client, id, prompt) = (CLIENT.cloned(), agent_id(ID), system_prompt(PROMPT));
//             stmts;                                   // as written, before any registration
//             let body = async move { body };
//             Box::pin(<registration future>(body))    // the call as written
//         }
// The same for `async move { body }.boxed()`.
fn boxed_tail_body(agent: &Agent, item: &FnItem) -> TokenStream {
    let krate = &agent.krate;
    let (Some(future), Some((Stmt::Expr(tail, None), prelude))) =
        (boxed_async_tail(&item.block), item.block.stmts.split_last())
    else {
        // `valid.rs` chose this shape only for such a tail.
        return sync_body(agent, item);
    };
    let body = local("__fabraix_body");
    let registering = registering_future(agent, &body);
    let boxed = match tail {
        Expr::Call(call) => {
            let func = &call.func;
            quote!(#func(#registering))
        }
        Expr::MethodCall(call) => {
            let method = &call.method;
            quote!((#registering).#method())
        }
        _ => return sync_body(agent, item),
    };
    let inputs = owned_inputs(agent);
    let block = &item.block;
    let lints = spawn_lint::markers(&quote!(#block), krate);
    quote! {
        #inputs
        #lints
        #(#prelude)*
        let #body = #future;
        #boxed
    }
}

// Input:  id = ID, system_prompt = PROMPT, client = CLIENT, conversation = CONVERSATION
// Output: let client = Some::<&Client>(CLIENT).cloned() | None::<Client>;
//         let id = agent_id(ID); let prompt = system_prompt(PROMPT);
//         let conversation = conversation(CONVERSATION);   // with `conversation` only
// Evaluated on entry, as for every other shape, into owned values, so that the future that
// registers borrows nothing from the call.
fn owned_inputs(agent: &Agent) -> TokenStream {
    let krate = &agent.krate;
    let inputs = owned_input_names();
    let client_value = match &agent.client {
        Some(expr) => {
            let some = client_arg(krate, expr);
            quote!(#some.cloned())
        }
        None => quote!(#krate::__private::None::<#krate::__private::Client>),
    };
    let OwnedInputs {
        client,
        id,
        prompt,
        conversation,
    } = &inputs;
    let id_value = id_arg(agent);
    let prompt_value = prompt_arg(agent);
    let conversation = conversation_arg(agent).map(|value| {
        quote! { let #conversation = #value; }
    });
    quote! {
        let #client = #client_value;
        let #id = #id_value;
        let #prompt = #prompt_value;
        #conversation
    }
}

/// The locals [`owned_inputs`] binds.
struct OwnedInputs {
    client: Ident,
    id: Ident,
    prompt: Ident,
    conversation: Ident,
}

fn owned_input_names() -> OwnedInputs {
    OwnedInputs {
        client: local("__fabraix_client"),
        id: local("__fabraix_id"),
        prompt: local("__fabraix_prompt"),
        conversation: local("__fabraix_conversation"),
    }
}

// Input:  body (a future), the owned inputs
// Output: async move {
//             let run = AgentRun::start(client.as_ref(), id, prompt).await;
//                    // or AgentRun::start_turn(client.as_ref(), id, prompt, conversation)
//             let run = <on_failure>(run);
//             AgentRun::scope(run, body).await
//         }
fn registering_future(agent: &Agent, body: &Ident) -> TokenStream {
    let krate = &agent.krate;
    let run = local("__fabraix_run");
    let OwnedInputs {
        client,
        id,
        prompt,
        conversation,
    } = owned_input_names();
    let on_failure = on_failure(agent, &run);
    let (function, conversation) = match &agent.conversation {
        Some(_) => (quote!(start_turn), Some(quote!(, #conversation))),
        None => (quote!(start), None),
    };
    quote! {
        async move {
            let #run = #krate::__private::AgentRun::#function(
                #krate::__private::Option::as_ref(&#client),
                #id,
                #prompt
                #conversation
            )
            .await;
            let #run = #on_failure;
            #krate::__private::AgentRun::scope(#run, #body).await
        }
    }
}

// Input:  id = ID, system_prompt = PROMPT, client = CLIENT, conversation = CONVERSATION
// Output: AgentRun::start(Some::<&Client>(CLIENT) | None, agent_id(ID), system_prompt(PROMPT)).await
//         or, with `conversation`, AgentRun::start_turn(.., conversation(CONVERSATION)).await;
//         `start_blocking` / `start_turn_blocking` (not awaited) for a sync fn
fn start_call(agent: &Agent, blocking: bool) -> TokenStream {
    let krate = &agent.krate;
    let client = match &agent.client {
        Some(client) => client_arg(krate, client),
        None => quote!(#krate::__private::None),
    };
    let id = id_arg(agent);
    let prompt = prompt_arg(agent);
    let conversation = conversation_arg(agent).map(|value| quote!(, #value));
    let function = match (conversation.is_some(), blocking) {
        (false, false) => quote!(start),
        (false, true) => quote!(start_blocking),
        (true, false) => quote!(start_turn),
        (true, true) => quote!(start_turn_blocking),
    };
    let suffix = (!blocking).then(|| quote!(.await));
    quote! {
        #krate::__private::AgentRun::#function(#client, #id, #prompt #conversation) #suffix
    }
}

// Input:  client = CLIENT
// Output: Some::<&Client>(CLIENT), spanned at CLIENT so a mistyped client is reported there
fn client_arg(krate: &TokenStream, client: &Expr) -> TokenStream {
    let span = client.span();
    let krate = respan(krate, span);
    quote_spanned! {span=> #krate::__private::Some::<&#krate::__private::Client>(#client) }
}

// Input:  id = ID
// Output: agent_id(ID), spanned at ID so an id of the wrong type is reported there
fn id_arg(agent: &Agent) -> TokenStream {
    let id = &agent.id;
    let span = id.span();
    let krate = respan(&agent.krate, span);
    quote_spanned! {span=> #krate::__private::agent_id(#id) }
}

// Input:  system_prompt = PROMPT
// Output: system_prompt(PROMPT), spanned at PROMPT so a prompt of the wrong type is reported there
fn prompt_arg(agent: &Agent) -> TokenStream {
    let prompt = &agent.system_prompt;
    let span = prompt.span();
    let krate = respan(&agent.krate, span);
    quote_spanned! {span=> #krate::__private::system_prompt(#prompt) }
}

// Input:  conversation = CONVERSATION
// Output: conversation(CONVERSATION), spanned at CONVERSATION so an expression that is not a
//         string is reported there
fn conversation_arg(agent: &Agent) -> Option<TokenStream> {
    let conversation = agent.conversation.as_ref()?;
    let span = conversation.span();
    let krate = respan(&agent.krate, span);
    Some(quote_spanned! {span=> #krate::__private::conversation(#conversation) })
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
            let spanned = respan(krate, span);
            let from_error = quote_spanned! {span=>
                #spanned::__private::ErrorReturn::from_error(#error)
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

/// Turns the body's own `return x` into `break 'label x`, so the body can be evaluated as a
/// value. Closures, async blocks and nested items keep theirs: those return from themselves.
struct Returns<'a> {
    label: &'a Lifetime,
    found: bool,
}

impl VisitMut for Returns<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Closure(_) | Expr::Async(_) => {}
            Expr::Return(ret) => {
                if let Some(value) = &mut ret.expr {
                    self.visit_expr_mut(value);
                }
                let label = self.label;
                let value = ret.expr.take();
                let span = ret.return_token.span;
                *expr = syn::parse_quote_spanned!(span=> break #label #value);
                self.found = true;
            }
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}
